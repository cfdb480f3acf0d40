package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/convert"
	"github.com/slm-dev/slm/quant"
)

func newConvertCmd() *cobra.Command {
	var (
		typ     string
		name    string
		pre     string
		threads int
		quiet   bool
	)
	cmd := &cobra.Command{
		Use:   "convert HF_DIR OUT.gguf",
		Short: "Convert a Hugging Face checkpoint (safetensors + config.json + tokenizer.json) to GGUF",
		Long: `convert writes a GGUF file from a Hugging Face model directory the way llama.cpp's
convert_hf_to_gguf.py does: config.json, model.safetensors (or shards with
model.safetensors.index.json), tokenizer.json and tokenizer_config.json.
Architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
GPT2LMHeadModel, Phi3ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM
(text only).
--type sets the type of the 2-D weights (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1,
q2_k … q6_k, or auto = the checkpoint's f16/bf16); 1-D tensors and norms stay F32.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := convert.Options{Name: name, Pre: pre, Threads: threads}
			if strings.EqualFold(typ, "auto") {
				opt.Auto = true
			} else {
				t, ok := quant.ParseType(typ)
				if !ok || !quant.CanQuantize(t) {
					return fmt.Errorf("unknown --type %q (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, auto)", typ)
				}
				opt.Type = t
			}
			stderr := cmd.ErrOrStderr()
			if !quiet {
				opt.Progress = func(i, n int, tname string, t quant.Type, dims []uint64) {
					fmt.Fprintf(stderr, "[%*d/%d] %-32s %-5v %v\n", len(fmt.Sprint(n)), i+1, n, tname, t, dims)
				}
			}
			if err := convert.Convert(args[0], args[1], opt); err != nil {
				return err
			}
			if !quiet {
				if fi, err := os.Stat(args[1]); err == nil {
					fmt.Fprintf(stderr, "wrote %s (%.2f MiB)\n", args[1], float64(fi.Size())/(1<<20))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&typ, "type", "f16", "weight type of 2-D tensors")
	cmd.Flags().StringVar(&name, "name", "", "general.name (default: the directory name)")
	cmd.Flags().StringVar(&pre, "pre", "", "tokenizer.ggml.pre to write instead of the detected one")
	cmd.Flags().IntVar(&threads, "threads", 0, "quantization threads (default: all cores)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}
