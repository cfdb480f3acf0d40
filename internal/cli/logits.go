package cli

import (
	"bufio"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/engine"
)

func newLogitsCmd() *cobra.Command {
	var (
		modelPath string
		tokens    string
		prompt    string
		asJSON    bool
		top       int
		exact     bool
	)
	cmd := &cobra.Command{
		Use:   "logits -m FILE (--tokens \"1 2 3\" | --prompt TEXT) [--json]",
		Short: "Print the logits of every position from one batched evaluation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if exact {
				defer engine.UseExactFloat(engine.UseExactFloat(true))
			}
			m, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()
			var ids []int32
			switch {
			case tokens != "" && prompt != "":
				return fmt.Errorf("give either --tokens or --prompt, not both")
			case tokens != "":
				if ids, err = parseTokens(tokens); err != nil {
					return err
				}
			case prompt != "":
				if ids, err = m.Tokenize(prompt, true, false); err != nil {
					return err
				}
			default:
				return fmt.Errorf("no input: give --tokens \"1 2 3\" or --prompt TEXT")
			}
			rows, err := m.Logits(ids)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			defer w.Flush()
			if asJSON {
				writeLogitsJSON(w, m.Config().NVocab, rows)
				return nil
			}
			tok := m.Tokenizer()
			for pos, row := range rows {
				fmt.Fprintf(w, "pos %d token %d %q:", pos, ids[pos], tok.Piece(ids[pos]))
				for _, id := range topIDs(row, top) {
					fmt.Fprintf(w, " %d(%q)=%.6g", id, tok.Piece(int32(id)), row[id])
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF model file (default: the embedded model)")
	f.StringVar(&tokens, "tokens", "", "token ids separated by spaces or commas")
	f.StringVarP(&prompt, "prompt", "p", "", "text to tokenize (with BOS as the model asks) and evaluate")
	f.BoolVar(&asJSON, "json", false, `print {"n_vocab":V,"logits":[[…],…]}, one row per position`)
	f.BoolVar(&exact, "exact", false, "float32 activations on exactly dequantized weights (llama.cpp's dequant_f32 reference) instead of llama.cpp's quantized activations")
	f.IntVar(&top, "top", 5, "without --json: how many of the largest logits to show per position")
	return cmd
}

func parseTokens(s string) ([]int32, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' || r == '[' || r == ']' })
	ids := make([]int32, 0, len(fields))
	for _, f := range fields {
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad token id %q: want integers separated by spaces", f)
		}
		ids = append(ids, int32(n))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("--tokens holds no token ids")
	}
	return ids, nil
}

// writeLogitsJSON writes each float32 as the shortest decimal that reads
// back to the same value, so the output is exact.
func writeLogitsJSON(w *bufio.Writer, nVocab int, rows [][]float32) {
	var num []byte
	fmt.Fprintf(w, `{"n_vocab":%d,"logits":[`, nVocab)
	for i, row := range rows {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('[')
		for j, v := range row {
			if j > 0 {
				w.WriteByte(',')
			}
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				w.WriteString("null") // JSON has no NaN or infinity
				continue
			}
			num = strconv.AppendFloat(num[:0], float64(v), 'g', -1, 32)
			w.Write(num)
		}
		w.WriteByte(']')
	}
	w.WriteString("]}\n")
}

func topIDs(row []float32, k int) []int {
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
	return idx[:min(k, len(idx))]
}
