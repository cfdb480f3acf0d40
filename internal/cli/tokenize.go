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
			tok, done, err := openTokenizer(modelPath)
			if err != nil {
				return err
			}
			defer done()
			ids, err := tok.Encode(text, addSpecial, parseSpecial)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				decoded := tok.Decode(ids)
				res := struct {
					IDs        []int32  `json:"ids"`
					Pieces     []string `json:"pieces"`
					PiecesHex  []string `json:"pieces_hex"`
					Decoded    string   `json:"decoded"`
					DecodedHex string   `json:"decoded_hex"`
				}{IDs: ids, Pieces: make([]string, len(ids)), PiecesHex: make([]string, len(ids)),
					Decoded: string(decoded), DecodedHex: hex.EncodeToString(decoded)}
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
	f.BoolVar(&asJSON, "json", false, `print {"ids":[…],"pieces":[…],"pieces_hex":[…],"decoded":…,"decoded_hex":…}`)
	return cmd
}

// openTokenizer opens the vocabulary of path, or the embedded model's.
func openTokenizer(path string) (*tokenizer.Tokenizer, func(), error) {
	if path == "" {
		m, err := openModel("")
		if err != nil {
			return nil, nil, err
		}
		return m.Tokenizer(), func() { m.Close() }, nil
	}
	v, err := engine.OpenVocab(path)
	if err != nil {
		return nil, nil, err
	}
	return v.Tokenizer, func() { v.Close() }, nil
}

func newDetokenizeCmd() *cobra.Command {
	var (
		modelPath string
		tokens    string
	)
	cmd := &cobra.Command{
		Use:   "detokenize -m FILE --tokens \"1 2 3\"",
		Short: "Turn token ids back into text (raw bytes, special tokens rendered)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids, err := parseTokens(tokens)
			if err != nil {
				return err
			}
			tok, done, err := openTokenizer(modelPath)
			if err != nil {
				return err
			}
			defer done()
			for _, id := range ids {
				if id < 0 || int(id) >= tok.NVocab() {
					return fmt.Errorf("token id %d is outside the vocabulary (0..%d)", id, tok.NVocab()-1)
				}
			}
			_, err = cmd.OutOrStdout().Write(tok.Decode(ids))
			return err
		},
	}
	cmd.Flags().StringVarP(&modelPath, "model", "m", "", "GGUF file with a vocabulary (default: the embedded model)")
	cmd.Flags().StringVar(&tokens, "tokens", "", "token ids separated by spaces or commas")
	return cmd
}
