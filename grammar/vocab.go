package grammar

import "github.com/slm-dev/slm/tokenizer"

// TokenizerVocab prepares a model's vocabulary for matching: every token's
// text as the detokenizer writes it (tokenizer.Piece), except control
// tokens, which a constrained generation never produces; the
// end-of-generation tokens are allowed exactly when the grammar is
// complete. Build it once per model and share it.
func TokenizerVocab(t *tokenizer.Tokenizer) *Vocab {
	n := t.NVocab()
	tokens := make([][]byte, n)
	var eog []int32
	for i := 0; i < n; i++ {
		id := int32(i)
		if t.IsEOG(id) {
			eog = append(eog, id)
			continue
		}
		if t.IsControl(id) {
			continue
		}
		tokens[i] = append([]byte(nil), t.Piece(id)...)
	}
	return NewVocab(tokens, eog)
}
