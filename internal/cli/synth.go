package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/internal/progress"
	"github.com/slm-dev/slm/synth"
)

func newSynthCmd() *cobra.Command {
	var (
		like, typ, out string
		vocab          int
		seed           uint64
		pure, exact    bool
		threads        int
		// Hidden overrides of the shape, for tests and experiments.
		nLayer, nEmbd, nFF, nHead, nHeadKV, nCtx int
	)
	cmd := &cobra.Command{
		Use:   "synth --like MODEL --type TYPE -o OUT.gguf",
		Short: "Write a GGUF model with random weights and the shape of a known model",
		Long: "synth writes a GGUF file with random weights and the real shape of a known model, in any\n" +
			"llama-quantize type, with a synthetic byte-level BPE vocabulary, so that benchmarks need no\n" +
			"download. llama.cpp loads the files too.\n\n" +
			"Models: " + strings.Join(synth.Likes(), ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if like == "" {
				return fmt.Errorf("--like is required (one of %s)", strings.Join(synth.Likes(), ", "))
			}
			if out == "" {
				return errors.New("-o OUT.gguf is required")
			}
			shape, err := synth.Lookup(like)
			if err != nil {
				return err
			}
			for _, o := range []struct {
				flag string
				v    int
				dst  *int
			}{
				{"n-layer", nLayer, &shape.NLayer}, {"n-embd", nEmbd, &shape.NEmbd}, {"n-ff", nFF, &shape.NFF},
				{"n-head", nHead, &shape.NHead}, {"n-head-kv", nHeadKV, &shape.NHeadKV}, {"n-ctx", nCtx, &shape.NCtx},
			} {
				if cmd.Flags().Changed(o.flag) {
					if o.v <= 0 {
						return fmt.Errorf("--%s must be positive, not %d", o.flag, o.v)
					}
					*o.dst = o.v
				}
			}
			if cmd.Flags().Changed("vocab") && vocab <= 0 {
				return fmt.Errorf("--vocab must be positive, not %d", vocab)
			}
			if threads < 0 {
				return fmt.Errorf("-t must be positive, not %d", threads)
			}
			bar := progress.New(cmd.ErrOrStderr(), "synth "+shape.Like, 0, false)
			opt := synth.Options{Shape: shape, Type: typ, Pure: pure, Exact: exact, Vocab: vocab, Seed: seed, Threads: threads,
				Progress: func(done, total int64) { bar.SetTotal(total); bar.Set(done) }}
			res, err := synth.WriteFile(out, opt)
			bar.Finish()
			if err != nil {
				return err
			}
			s := res.Shape
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %s shape (%s, %d layers, n_embd %d, n_ff %d, %d/%d heads, vocab %d), %s, %s parameters, %s in %d tensors, %.1fs\n",
				out, s.Like, s.Arch, s.NLayer, s.NEmbd, s.NFF, s.NHead, s.NHeadKV, res.NVocab, res.FileType.Name,
				humanCount(res.Params), humanBytes(res.FileBytes), len(res.Tensors), res.Duration.Seconds())
			fmt.Fprintf(w, "tensor types: %s\n", res.TypeCounts())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&like, "like", "", "the model whose shape to copy: "+strings.Join(synth.Likes(), ", "))
	f.StringVar(&typ, "type", "f16", "weight type, as llama-quantize names it: f16, bf16, f32, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k (q3_k, q4_k, q5_k mean the _m mixes)")
	f.BoolVar(&pure, "pure", false, "give every quantized tensor the type's base type instead of llama-quantize's mix")
	f.BoolVar(&exact, "exact", false, "encode every value of large K-quant tensors (slow) instead of drawing their blocks from a pool of exactly encoded random blocks")
	f.IntVar(&vocab, "vocab", 0, "vocabulary size (default: the model's own; the issue's benchmarks use 50257)")
	f.Uint64Var(&seed, "seed", 1, "random seed of the weights and the vocabulary")
	f.StringVarP(&out, "output", "o", "", "the GGUF file to write")
	f.IntVarP(&threads, "threads", "t", 0, "threads generating and quantizing (default: all CPUs)")
	for _, o := range []struct {
		name string
		dst  *int
	}{{"n-layer", &nLayer}, {"n-embd", &nEmbd}, {"n-ff", &nFF}, {"n-head", &nHead}, {"n-head-kv", &nHeadKV}, {"n-ctx", &nCtx}} {
		f.IntVar(o.dst, o.name, 0, "override the shape's "+o.name+" (testing)")
		f.MarkHidden(o.name)
	}
	return cmd
}
