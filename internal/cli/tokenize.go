package cli

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/tokenizer"
)

func newTokenizeCmd() *cobra.Command {
	var (
		modelPath    string
		inputFile    string
		addSpecial   bool
		parseSpecial bool
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "tokenize -m FILE [--add-special=true|false] [--parse-special] [--json] [TEXT | --file PATH|-]",
		Short: "Split text into the model's tokens",
		Long: "Split text into the model's tokens. Works on vocabulary-only GGUF files.\n" +
			"Text read with --file (or - for stdin) is taken as raw bytes and may be invalid UTF-8.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var text []byte
			switch {
			case inputFile != "" && len(args) > 0:
				return fmt.Errorf("give the text either as an argument or with --file, not both")
			case inputFile != "":
				b, err := readInput(cmd, inputFile)
				if err != nil {
					return err
				}
				text = b
			case len(args) == 1:
				text = []byte(args[0])
			default:
				return fmt.Errorf("no text: give TEXT or --file PATH (- for stdin)")
			}
			var tok *tokenizer.Tokenizer
			if modelPath == "" {
				m, err := openModel("")
				if err != nil {
					return err
				}
				tok = m.Tokenizer()
			} else {
				v, err := engine.OpenVocab(modelPath)
				if err != nil {
					return err
				}
				defer v.Close()
				tok = v.Tokenizer
			}
			ids, err := tok.Encode(text, addSpecial, parseSpecial)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				res := struct {
					IDs       []int32  `json:"ids"`
					Pieces    []string `json:"pieces"`
					PiecesHex []string `json:"pieces_hex"`
				}{IDs: ids, Pieces: make([]string, len(ids)), PiecesHex: make([]string, len(ids))}
				for i, id := range ids {
					p := tok.Piece(id)
					res.Pieces[i] = string(p)
					res.PiecesHex[i] = hex.EncodeToString(p)
				}
				if res.IDs == nil {
					res.IDs = []int32{}
				}
				enc := json.NewEncoder(out)
				enc.SetEscapeHTML(false) // keep "<s>" readable
				return enc.Encode(res)
			}
			for _, id := range ids {
				fmt.Fprintf(out, "%6d -> %q\n", id, tok.Piece(id))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF file with a vocabulary (default: the embedded model)")
	f.StringVarP(&inputFile, "file", "f", "", "read the text from a file (- for stdin), as raw bytes")
	f.BoolVar(&addSpecial, "add-special", true, "add BOS/EOS (or CLS/SEP) as the vocabulary asks")
	f.BoolVar(&parseSpecial, "parse-special", false, "turn special-token text such as <s> into its token")
	f.BoolVar(&asJSON, "json", false, `print {"ids":[…],"pieces":[…]}`)
	return cmd
}
