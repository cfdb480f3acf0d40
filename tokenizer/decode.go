package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// buildPieces renders every token once (llama.cpp's cache_token_to_piece,
// token_to_piece with special=true) into one buffer.
func (t *Tokenizer) buildPieces() error {
	t.pieceOff = make([]uint32, len(t.tokens)+1)
	data := make([]byte, 0, len(t.tokens)*4)
	for id, text := range t.tokens {
		var err error
		data, err = t.appendPieceOf(data, text, t.attrs[id])
		if err != nil {
			return fmt.Errorf("tokenizer: token %d (%q): %w", id, text, err)
		}
		if uint64(len(data)) > 1<<32-1 {
			return fmt.Errorf("tokenizer: token pieces exceed 4 GiB")
		}
		t.pieceOff[id+1] = uint32(len(data))
	}
	t.pieceData = data
	return nil
}

// appendPieceOf is llama.cpp's token_to_piece for one token: special tokens
// (UNKNOWN, CONTROL, USER_DEFINED) render as their text; normal tokens are
// unescaped ("▁" -> " " for SPM/WordPiece, byte-level decoding for BPE);
// SPM byte tokens become their byte; anything else (UNUSED, undefined types)
// renders as nothing.
func (t *Tokenizer) appendPieceOf(dst []byte, text string, a tokenAttr) ([]byte, error) {
	if a&(attrUnknown|attrControl|attrUserDefined) != 0 {
		return append(dst, text...), nil
	}
	switch t.typ {
	case vocabSPM, vocabWPM:
		if a&attrNormal != 0 {
			for {
				i := strings.Index(text, "\u2581")
				if i < 0 {
					return append(dst, text...), nil
				}
				dst = append(append(dst, text[:i]...), ' ')
				text = text[i+len("\u2581"):]
			}
		}
		if a&attrByte != 0 {
			return append(dst, parseByteToken(text)), nil
		}
	case vocabBPE:
		if a&attrNormal != 0 {
			return appendByteLevelText(dst, text)
		}
	}
	return dst, nil
}

// appendByteLevelText is llama.cpp's llama_decode_text: each codepoint of a
// GPT-2 byte-level token maps back to its byte. A codepoint outside the
// 256-entry mapping is rendered as "[UNK_BYTE_0x<utf-8 hex><whole token>]",
// literally as llama.cpp does, which a plain byte-level decoder would not
// reproduce. A codepoint above U+10FFFF makes llama.cpp throw at load time.
func appendByteLevelText(dst []byte, text string) ([]byte, error) {
	for i := 0; i < len(text); {
		cp, n := lcppDecodeRune(text, i)
		i += n
		if cp > utf8.MaxRune {
			return dst, ErrInvalidUTF8
		}
		if b, ok := pieceByteOf(cp); ok {
			dst = append(dst, b)
			continue
		}
		var enc [4]byte
		dst = append(dst, "[UNK_BYTE_0x"...)
		for _, c := range lcppAppendRune(enc[:0], cp) {
			dst = fmt.Appendf(dst, "%02x", c)
		}
		dst = append(dst, text...)
		dst = append(dst, ']')
	}
	return dst, nil
}

// pieceRuneBytes is GPT-2's bytes_to_unicode inverted: pieceRuneBytes[r] is
// 1+byte for each of the 256 codepoints that stand for a byte (all below 324).
var pieceRuneBytes = func() (tab [324]uint16) {
	n := 0
	for b := range 256 {
		if (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			tab[b] = uint16(b) + 1
		} else {
			tab[256+n] = uint16(b) + 1
			n++
		}
	}
	return tab
}()

func pieceByteOf(r rune) (byte, bool) {
	if r < 0 || int(r) >= len(pieceRuneBytes) || pieceRuneBytes[r] == 0 {
		return 0, false
	}
	return byte(pieceRuneBytes[r] - 1), true
}

// piece is the cached piece of id, or nil for an id out of range.
func (t *Tokenizer) piece(id int32) []byte {
	if id < 0 || int(id) >= len(t.tokens) {
		return nil
	}
	return t.pieceData[t.pieceOff[id]:t.pieceOff[id+1]:t.pieceOff[id+1]]
}

// Piece is the text of one token as llama.cpp's token_to_piece renders it
// with special tokens included (e.g. "<s>", " Hello", a single raw byte for
// <0x0A>). It is a copy; AppendPiece avoids the allocation. Out-of-range ids
// give nil.
func (t *Tokenizer) Piece(id int32) []byte {
	p := t.piece(id)
	if p == nil {
		return nil
	}
	return append([]byte(nil), p...)
}

// AppendPiece appends Piece(id) to dst.
func (t *Tokenizer) AppendPiece(dst []byte, id int32) []byte {
	return append(dst, t.piece(id)...)
}

// Decode turns ids back into text like llama_detokenize with
// remove_special=false and unparse_special=true: pieces are concatenated
// (special tokens included), the first piece loses one leading space when the
// vocabulary adds a space prefix (SPM), and vocabularies with
// clean_up_tokenization_spaces (GPT-2-style BPE, WordPiece) get llama.cpp's
// space clean-up (" ." -> ".", " 's" -> "'s", ...). The result need not be
// valid UTF-8. Out-of-range ids are skipped.
func (t *Tokenizer) Decode(ids []int32) []byte {
	n := 0
	for _, id := range ids {
		n += len(t.piece(id))
	}
	out := make([]byte, 0, n)
	removeSpace := t.addSpacePrefix
	for _, id := range ids {
		p := t.piece(id)
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		out = append(out, p...)
	}
	if t.cleanSpaces {
		out = cleanUpSpaces(out)
	}
	return out
}

// cleanUpSpaces is llama.cpp's three clean-up passes in llama_detokenize,
// done in place the same way (the passes read bytes the previous write may
// have moved, so they are kept literal rather than rewritten as replaces).
func cleanUpSpaces(text []byte) []byte {
	// Pass 1: " ?", " !", " .", " ," lose the space.
	total1 := len(text)
	total := min(total1, 1)
	for i := 1; i < total1; i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			total--
		}
		text[total] = x
		total++
	}
	// Pass 2: a lone apostrophe between spaces loses both spaces.
	total2 := total
	total = min(total2, 1)
	for i := 1; i < total2; i++ {
		x := text[i]
		if x == '\'' && i+1 < total2 && text[i-1] == ' ' && text[i+1] == ' ' {
			total--
			i++
			text[i] = 0
		}
		text[total] = x
		total++
	}
	// Pass 3: " 's", " 'm", " 're", " 've" lose the space.
	total3 := total
	total = min(total3, 1)
	for i := 1; i < total3; i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < total3 {
			x1 := text[i+1]
			if x1 == 's' || x1 == 'm' {
				total--
			} else if x1 != 't' && x1 != 'd' && i+2 < total3 {
				x2 := text[i+2]
				if (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e') {
					total--
				}
			}
		}
		text[total] = x
		total++
	}
	return text[:total]
}
