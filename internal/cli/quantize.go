package cli

import (
	"fmt"
	"os"
	"strconv"

	"github.com/slm-dev/slm/imatrix"
	"github.com/slm-dev/slm/internal/progress"
	"github.com/slm-dev/slm/quant"
	"github.com/slm-dev/slm/quantize"
	"github.com/spf13/cobra"
)

func newQuantizeCmd() *cobra.Command {
	var (
		overrides         []string
		outType, embdType string
		imatrixPath       string
		pure              bool
		allowRequantize   bool
		threads           int
		verbose           bool
	)
	cmd := &cobra.Command{
		Use:   "quantize IN.gguf OUT.gguf TYPE [THREADS]",
		Short: "Rewrite a GGUF model with quantized weights, as llama-quantize does",
		Long: `Quantize a GGUF model. TYPE is one of ` + quantize.TypeNames() + `.
The mixes (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, and Q4_0… which keep the output
matrix in Q6_K) choose each tensor's type exactly as llama.cpp's llama-quantize;
Q3_K, Q4_K and Q5_K are its aliases for the _M mixes. --pure gives every
quantizable tensor TYPE's base type. Norms, biases and position embeddings stay
F32. The output is written atomically.`,
		Args: cobra.RangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			ft, err := quantize.ParseFileType(args[2])
			if err != nil {
				return err
			}
			if len(args) == 4 { // llama-quantize's positional thread count
				if threads, err = strconv.Atoi(args[3]); err != nil || threads < 1 {
					return fmt.Errorf("bad thread count %q", args[3])
				}
			}
			opt := quantize.Options{Type: ft, Pure: pure, AllowRequantize: allowRequantize, Threads: threads}
			for _, s := range overrides {
				o, err := quantize.ParseOverride(s)
				if err != nil {
					return err
				}
				opt.Overrides = append(opt.Overrides, o)
			}
			for _, x := range []struct {
				flag, val string
				dst       *quant.Type
			}{{"--output-tensor-type", outType, &opt.OutputType}, {"--token-embedding-type", embdType, &opt.TokenEmbdType}} {
				if x.val == "" {
					continue
				}
				t, ok := quant.ParseType(x.val)
				if !ok || !quant.CanQuantize(t) {
					return fmt.Errorf("bad %s %q: not a type slm can write", x.flag, x.val)
				}
				*x.dst = t
			}
			if imatrixPath != "" {
				if opt.Imatrix, err = imatrix.ReadFile(imatrixPath); err != nil {
					return err
				}
			}
			if _, err := os.Stat(args[0]); err != nil {
				return fmt.Errorf("input model: %w", err)
			}
			stderr := cmd.ErrOrStderr()
			bar := progress.New(stderr, "quantizing "+ft.Name, 0, false)
			opt.Progress = func(done, total int64) {
				bar.SetTotal(total)
				bar.Set(done)
			}
			res, err := quantize.QuantizeFile(args[0], args[1], opt)
			bar.Finish()
			if err != nil {
				return err
			}
			if verbose {
				for _, p := range res.Plans {
					note := ""
					if p.Fallback {
						note = " (fallback: rows do not fit the mix's type)"
					}
					if p.Imatrix {
						note += " (imatrix)"
					}
					fmt.Fprintf(stderr, "%-40s %-14s %5s -> %-5s%s\n", p.Name, fmt.Sprint(p.Dims), p.From, p.To, note)
				}
			}
			fmt.Fprintf(stderr, "%s: %s: %d of %d tensors converted, tensor data %s -> %s (file %s)",
				args[1], ft.Name, res.NConverted, len(res.Plans), progress.Size(int64(res.BytesIn)), progress.Size(int64(res.BytesOut)), progress.Size(int64(res.FileBytes)))
			if res.NFallback > 0 {
				fmt.Fprintf(stderr, ", %d fallbacks", res.NFallback)
			}
			if res.NImatrixTensors > 0 {
				fmt.Fprintf(stderr, ", %d with importance matrix", res.NImatrixTensors)
			}
			fmt.Fprintln(stderr)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&overrides, "tensor-type", nil, "PATTERN=TYPE: give tensors whose name matches the regular expression this type (repeatable; the last match wins)")
	f.StringVar(&outType, "output-tensor-type", "", "type of output.weight (overrides the mix)")
	f.StringVar(&embdType, "token-embedding-type", "", "type of token_embd.weight (overrides the mix)")
	f.StringVar(&imatrixPath, "imatrix", "", "importance matrix file (llama.cpp .dat format, from slm imatrix or llama-imatrix)")
	f.BoolVar(&pure, "pure", false, "no mix: every quantizable tensor gets TYPE's base type")
	f.BoolVar(&allowRequantize, "allow-requantize", false, "allow quantizing tensors that are already quantized")
	f.IntVarP(&threads, "threads", "t", 0, "threads (default: all CPUs)")
	f.BoolVarP(&verbose, "verbose", "v", false, "list every tensor's conversion")
	return cmd
}
