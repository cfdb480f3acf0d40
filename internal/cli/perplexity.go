package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/perplexity"
	"github.com/spf13/cobra"
)

func newPerplexityCmd() *cobra.Command {
	var (
		modelPath, textPath, klBase, klDiv string
		nCtx, chunks                       int
		f32Cache                           bool
	)
	cmd := &cobra.Command{
		Use:   "perplexity -m FILE -f TEXT [--ctx N] [--chunks N] [--kl-base OUT | --kl-divergence BASE]",
		Short: "Measure a model's perplexity on a text, as llama-perplexity does",
		Long: `Perplexity with llama.cpp's procedure (so the numbers compare with
llama-perplexity): the text is tokenized once with BOS, cut into chunks of
--ctx tokens, each chunk starts with BOS (when the vocabulary adds it), and
only the second half of each chunk is scored. The running value is printed
after each chunk as [1]12.3456,[2]…, then the final estimate ± its error.

--kl-base OUT also saves the model's log-probabilities (llama.cpp's
--kl-divergence-base format); --kl-divergence BASE compares this model with
such a file: KL-divergence, top-token agreement, perplexity ratio.

The KV cache is F16 as in llama-perplexity's default (keys and values rounded
to fp16), so with llama.cpp's CPU numerics, which the engine follows, the
values match llama-perplexity's to at least 4 significant digits; --f32-cache
keeps the cache in float32, as generation does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if klBase != "" && klDiv != "" {
				return errors.New("give --kl-base or --kl-divergence, not both")
			}
			m, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()
			m.SetKVF16(!f32Cache)
			var eval perplexity.Model = m
			tok := m.Tokenizer()
			v := perplexity.Vocab{NVocab: m.Config().NVocab, BOS: tok.BOS(), AddBOS: tok.AddBOS()}
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			if klDiv != "" {
				return runKL(eval, v, klDiv, chunks, out)
			}
			if textPath == "" {
				return errors.New("no text: give -f FILE (or -f - for stdin)")
			}
			text, err := readInput(cmd, textPath)
			if err != nil {
				return err
			}
			ids, err := m.Tokenize(perplexity.TrimText(string(text)), true, false)
			if err != nil {
				return err
			}
			if tok.AddEOS() {
				return errors.New("this vocabulary appends EOS to every text; llama-perplexity refuses such models too")
			}
			opt := perplexity.Options{NCtx: nCtx, Chunks: chunks, OnChunk: func(i int, ppl float64) {
				fmt.Fprintf(out, "[%d]%.4f,", i, ppl)
				out.Flush()
			}}
			if opt.NCtx <= 0 {
				opt.NCtx = min(m.ContextSize(), 512)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "perplexity: %d tokens, %d chunks of %d (second half scored)\n", len(ids), len(ids)/opt.NCtx, opt.NCtx)
			var res *perplexity.Result
			if klBase != "" {
				err = gguf.WriteFileAtomic(klBase, func(w io.Writer) error {
					res, err = perplexity.SaveBase(eval, ids, v, opt, w)
					return err
				})
			} else {
				res, err = perplexity.Run(eval, ids, v, opt)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\nFinal estimate: PPL = %.4f +/- %.5f\n", res.PPL, res.Stderr)
			if klBase != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "log-probabilities of %d positions saved to %s\n", res.Scored, klBase)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF model file (default: the embedded model)")
	f.StringVarP(&textPath, "file", "f", "", "text file to score (- for stdin)")
	f.IntVarP(&nCtx, "ctx", "c", 0, "chunk length in tokens (default: min(model context, 512))")
	f.IntVar(&chunks, "chunks", 0, "score at most this many chunks (default: all)")
	f.StringVar(&klBase, "kl-base", "", "save this (base) model's log-probabilities to OUT")
	f.StringVar(&klDiv, "kl-divergence", "", "compare this model with the base log-probabilities in BASE")
	f.BoolVar(&f32Cache, "f32-cache", false, "keep the KV cache in float32 instead of llama-perplexity's default F16")
	return cmd
}

func runKL(m perplexity.Model, v perplexity.Vocab, basePath string, chunks int, out *bufio.Writer) error {
	f, err := os.Open(basePath)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(out, "chunk %14s %26s %24s %16s\n", "PPL", "ln(PPL(Q)/PPL(base))", "KL divergence", "same top")
	res, err := perplexity.KLDivergence(m, v, f, chunks, func(i int, r *perplexity.KLResult) {
		fmt.Fprintf(out, "%5d %9.4f ± %7.4f %10.5f ± %9.5f %10.5f ± %9.5f %7.3f ± %5.3f %%\n",
			i, r.PPL, r.PPLErr, r.LogRatio, r.LogRatioErr, r.KLD, r.KLDErr, 100*r.SameTop, 100*r.SameTopErr)
		out.Flush()
	})
	if err != nil {
		return fmt.Errorf("%s: %w", basePath, err)
	}
	fmt.Fprintf(out, "\n%d tokens scored in %d chunks\n", res.Count, res.Chunks)
	fmt.Fprintf(out, "Mean PPL(Q)                   : %10.6f ± %10.6f\n", res.PPL, res.PPLErr)
	fmt.Fprintf(out, "Mean PPL(base)                : %10.6f ± %10.6f\n", res.PPLBase, res.PPLBaseErr)
	fmt.Fprintf(out, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100*res.Cor)
	fmt.Fprintf(out, "Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", res.LogRatio, res.LogRatioErr)
	fmt.Fprintf(out, "Mean    KLD: %10.6f ± %10.6f\n", res.KLD, res.KLDErr)
	fmt.Fprintf(out, "Maximum KLD: %10.6f\n99.9%%   KLD: %10.6f\n99.0%%   KLD: %10.6f\nMedian  KLD: %10.6f\nMinimum KLD: %10.6f\n", res.KLDMax, res.KLD999, res.KLD99, res.KLDMedian, res.KLDMin)
	fmt.Fprintf(out, "RMS Δp     : %6.3f ± %5.3f %%\nMaximum Δp : %6.3f %%\n", 100*res.DeltaPRMS, 100*res.DeltaPErr, 100*res.MaxDeltaP)
	fmt.Fprintf(out, "Same top p : %6.3f ± %5.3f %%\n", 100*res.SameTop, 100*res.SameTopErr)
	return nil
}
