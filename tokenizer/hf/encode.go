package hf

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The Split regexes of the byte-level pre-tokenizers llama.cpp knows, as
// they appear in tokenizer.json files, and the tokenizer.ggml.pre each
// maps to.
const (
	regexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	regexQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	regexTekken = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// detectPre maps a byte-level pre_tokenizer to llama.cpp's
// tokenizer.ggml.pre by its structure (llama.cpp's converter hashes the
// token output of a test string instead):
//
//	ByteLevel(use_regex=true)                     gpt-2
//	Digits(individual) + ByteLevel(use_regex)     smollm (starcoder when clean_up_tokenization_spaces)
//	Split(Llama-3 regex) + ByteLevel              llama-bpe (smaug-bpe without ignore_merges)
//	Split(Qwen2 regex) + ByteLevel                qwen2
//	Split(Tekken regex) + ByteLevel               tekken
func detectPre(pre *component, ignoreMerges, cleanUp bool) (string, error) {
	parts := pre.flatten()
	unknown := func(why string) (string, error) {
		js, _ := json.Marshal(parts)
		if len(js) > 600 {
			js = append(js[:600], "…"...)
		}
		return "", fmt.Errorf("tokenizer.json: unrecognised byte-level pre_tokenizer (%s): %s; name the llama.cpp pre-tokenizer explicitly (--pre)", why, js)
	}
	if len(parts) == 0 {
		return unknown("none")
	}
	last := parts[len(parts)-1]
	if last.Type != "ByteLevel" {
		return unknown("it does not end with ByteLevel")
	}
	if last.AddPrefixSpace != nil && *last.AddPrefixSpace {
		return unknown("ByteLevel add_prefix_space=true")
	}
	useRegex := last.UseRegex == nil || *last.UseRegex
	rest := parts[:len(parts)-1]
	switch {
	case len(rest) == 0 && useRegex:
		return "gpt-2", nil
	case len(rest) == 1 && rest[0].Type == "Digits" && rest[0].IndividualDigits && useRegex:
		if cleanUp {
			return "starcoder", nil
		}
		return "smollm", nil
	case len(rest) == 1 && rest[0].Type == "Split" && !useRegex:
		s := rest[0]
		if s.Pattern == nil || s.Pattern.Regex == nil || s.Invert || (s.Behavior != "Isolated" && s.Behavior != "") {
			return unknown("Split is not an isolating regex")
		}
		switch *s.Pattern.Regex {
		case regexLlama3:
			if ignoreMerges {
				return "llama-bpe", nil
			}
			return "smaug-bpe", nil
		case regexQwen2:
			return "qwen2", nil
		case regexTekken:
			return "tekken", nil
		}
		return unknown("unknown Split regex")
	}
	return unknown("unknown sequence")
}

// Encode tokenizes text like @huggingface/tokenizers'
// encode(text, {add_special_tokens: addSpecial}): added tokens are always
// split out of the text (HF has no parse_special=false), and addSpecial adds
// what the post-processor adds (BOS for Llama 3, Gemma, Llama 2 / Mistral).
func (t *Tokenizer) Encode(text string, addSpecial bool) ([]int32, error) {
	if t.nfc && !norm.NFC.IsNormalString(text) {
		text = t.normalizeNFC(text)
	}
	return t.tok.Encode([]byte(text), addSpecial, true)
}

// normalizeNFC applies NFC to the text between added tokens (HF extracts
// added tokens before normalizing).
func (t *Tokenizer) normalizeNFC(text string) string {
	var b strings.Builder
	for len(text) > 0 {
		at, n := t.nextAdded(text)
		b.WriteString(norm.NFC.String(text[:at]))
		b.WriteString(text[at : at+n])
		text = text[at+n:]
	}
	return b.String()
}

// nextAdded finds the leftmost (then longest) added token in s; it returns
// len(s), 0 when there is none.
func (t *Tokenizer) nextAdded(s string) (int, int) {
	best, bestLen := len(s), 0
	for _, a := range t.added {
		if i := strings.Index(s, a.Content); i >= 0 && (i < best || i == best && len(a.Content) > bestLen) {
			best, bestLen = i, len(a.Content)
		}
	}
	return best, bestLen
}

// Decode turns ids into text like @huggingface/tokenizers'
// decode(ids, {skip_special_tokens: false, clean_up_tokenization_spaces:
// false}): added tokens are emitted as they are, and the runs of other
// tokens go through the tokenizer.json's decoder chain. Ids out of range
// are skipped.
func (t *Tokenizer) Decode(ids []int32) string {
	var toks []string
	var kept []int32
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.vocab) && t.vocab[id] != "" {
			toks = append(toks, t.vocab[id])
			kept = append(kept, id)
		}
	}
	if t.isByteLevel() {
		var out strings.Builder
		var run []byte
		flush := func() {
			out.WriteString(lossyUTF8(run))
			run = run[:0]
		}
		for i, s := range toks {
			if t.isAdd[kept[i]] {
				flush()
				out.WriteString(s)
				continue
			}
			run = appendByteLevel(run, s)
		}
		flush()
		return out.String()
	}
	for _, d := range t.decoders {
		toks = applyDecoder(d, toks)
	}
	return strings.Join(toks, "")
}

func (t *Tokenizer) isByteLevel() bool {
	for _, d := range t.decoders {
		if d.Type == "ByteLevel" {
			return true
		}
	}
	return false
}

// applyDecoder is one step of a Hugging Face decoder chain over the
// per-token strings.
func applyDecoder(d component, toks []string) []string {
	switch d.Type {
	case "Replace":
		for i := range toks {
			toks[i] = strings.ReplaceAll(toks[i], *d.Pattern.String, *d.Content)
		}
	case "ByteFallback":
		var out []string
		var pending []byte
		flush := func() {
			if len(pending) == 0 {
				return
			}
			if utf8.Valid(pending) {
				out = append(out, string(pending))
			} else {
				for range pending {
					out = append(out, "\uFFFD")
				}
			}
			pending = pending[:0]
		}
		for _, s := range toks {
			if isByteToken(s) {
				pending = append(pending, hexVal(s[3])<<4|hexVal(s[4]))
				continue
			}
			flush()
			out = append(out, s)
		}
		flush()
		return out
	case "Fuse":
		return []string{strings.Join(toks, "")}
	case "Strip":
		c := []rune(*d.Content)[0]
		for i, s := range toks {
			r := []rune(s)
			a, b := 0, len(r)
			for a < len(r) && a < d.Start && r[a] == c {
				a++
			}
			for k := 0; k < d.Stop && b > a && r[b-1] == c; k++ {
				b--
			}
			toks[i] = string(r[a:b])
		}
	case "Metaspace":
		for i := range toks {
			s := strings.ReplaceAll(toks[i], "▁", " ")
			if i == 0 {
				s = strings.TrimPrefix(s, " ")
			}
			toks[i] = s
		}
	}
	return toks
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// byteLevelInverse maps GPT-2's byte-level symbols back to bytes.
var byteLevelInverse = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
			m[rune(b)] = byte(b)
		} else {
			m[rune(256+n)] = byte(b)
			n++
		}
	}
	return m
}()

// appendByteLevel appends the bytes a byte-level token stands for; a token
// with a character outside the byte alphabet is taken as it is.
func appendByteLevel(dst []byte, s string) []byte {
	start := len(dst)
	for _, r := range s {
		b, ok := byteLevelInverse[r]
		if !ok {
			return append(dst[:start], s...)
		}
		dst = append(dst, b)
	}
	return dst
}

// lossyUTF8 decodes b replacing each maximal invalid subpart with U+FFFD, as
// the WHATWG TextDecoder (and Rust's from_utf8_lossy) do.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var out strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			out.Write(b[:n])
			b = b[n:]
			continue
		}
		out.WriteRune(utf8.RuneError)
		b = b[maximalSubpart(b):]
	}
	return out.String()
}

// maximalSubpart is the length of the invalid prefix of b to replace by one
// U+FFFD: a lead byte followed by the continuation bytes that could still
// have completed it (Unicode's "maximal subpart" rule), at least 1.
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c >= 0xE0 && c <= 0xEF:
		need = 2
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 3
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		x := b[i]
		if i == 1 {
			if x < lo || x > hi {
				break
			}
		} else if x < 0x80 || x > 0xBF {
			break
		}
	}
	return i
}
