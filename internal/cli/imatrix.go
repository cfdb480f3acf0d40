package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/slm-dev/slm/imatrix"
	"github.com/slm-dev/slm/internal/progress"
	"github.com/slm-dev/slm/perplexity"
	"github.com/spf13/cobra"
)

func newImatrixCmd() *cobra.Command {
	var (
		modelPath, textPath, out string
		nCtx, chunks             int
		processOutput            bool
	)
	cmd := &cobra.Command{
		Use:   "imatrix -m FILE -f TEXT [-o OUT] [--chunks N] [--ctx N]",
		Short: "Compute an importance matrix for quantization (llama-imatrix's .dat format)",
		Long: `Run a calibration text through the model and record, for every weight
matrix of its blocks, the mean square of each input column's activations.
The result (llama.cpp's legacy imatrix.dat format, readable by llama-quantize
--imatrix as well) steers slm quantize --imatrix. The text is cut into chunks
of --ctx tokens as llama-imatrix does, and each chunk is evaluated by the
engine's own forward pass with an F16 KV cache (llama-imatrix's default).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" {
				return errors.New("no model: give -m FILE")
			}
			if textPath == "" {
				return errors.New("no calibration text: give -f FILE")
			}
			m, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()
			text, err := readInput(cmd, textPath)
			if err != nil {
				return err
			}
			ids, err := m.Tokenize(perplexity.TrimText(string(text)), true, false)
			if err != nil {
				return err
			}
			if nCtx <= 0 {
				nCtx = min(m.ContextSize(), 512)
			}
			tok := m.Tokenizer()
			n := len(ids) / nCtx
			if chunks > 0 {
				n = min(n, chunks)
			}
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "imatrix: %d tokens, %d chunks of %d\n", len(ids), n, nCtx)
			bar := progress.New(stderr, "imatrix", int64(n), false)
			mat, err := imatrix.Collect(m, ids, filepath.Base(textPath), imatrix.Options{
				NCtx: nCtx, Chunks: chunks, ProcessOutput: processOutput, BOS: tok.BOS(), AddBOS: tok.AddBOS(),
				OnChunk: func(done, _ int) { bar.Set(int64(done)) },
			})
			bar.Finish()
			if err != nil {
				return err
			}
			if err := mat.WriteFile(out); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "imatrix: %d matrices from %d chunks written to %s\n", len(mat.Entries), mat.Chunks, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF model file")
	f.StringVarP(&textPath, "file", "f", "", "calibration text (- for stdin)")
	f.StringVarP(&out, "output", "o", "imatrix.dat", "output file")
	f.IntVarP(&nCtx, "ctx", "c", 0, "chunk length in tokens (default: min(model context, 512))")
	f.IntVar(&chunks, "chunks", 0, "process at most this many chunks (default: all)")
	f.BoolVar(&processOutput, "process-output", false, "also collect output.weight")
	return cmd
}
