// Package tokenizer turns text into token ids and back exactly the way
// llama.cpp (commit c392e5094) does for the vocabulary stored in a GGUF file.
//
// Three vocabulary types are supported, selected by tokenizer.ggml.model:
// "llama" (SentencePiece BPE with scores, byte fallback and the automatic
// space prefix), "gpt2" (byte-level BPE with merges and a pre-tokenizer chosen
// by tokenizer.ggml.pre) and "bert" (WordPiece with BERT normalization).
//
// Exactness is the point: a model only behaves like it does under llama.cpp
// if it sees the same ids, so this package reproduces llama.cpp's behaviour
// including its quirks (special-token splitting by length, the space prefix
// after every special token, Phi-3's RSTRIP, U+FFFD replacement of invalid
// UTF-8, clean_up_tokenization_spaces on decode, ...). Where llama.cpp would
// abort or throw, the functions here return an error instead.
//
// A Tokenizer is immutable after FromGGUF and safe for concurrent use.
package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/slm-dev/slm/gguf"
)

// Tokenizer encodes and decodes text for one vocabulary.
type Tokenizer struct {
	typ    vocabType
	pre    string
	tokens []string    // token text by id ("[EMPTY_<id>]" for empty entries, as llama.cpp renames them)
	scores []float32   // SPM merge priorities (0 when absent)
	attrs  []tokenAttr // effective attributes after llama.cpp's load-time edits
	toID   map[string]int32

	bos, eos, eot, eom, unk, sep, pad, mask int32 // -1 when the vocabulary has none
	fimPre, fimSuf, fimMid                  int32
	fimPad, fimRep, fimSep                  int32
	eog                                     []uint64 // bit set over ids

	addBOS, addEOS bool
	addSpacePrefix bool // SPM: prefix "▁"; every type: strip one leading space when decoding
	cleanSpaces    bool // clean_up_tokenization_spaces on decode
	maxTokenLen    int  // longest token text in bytes (WordPiece search bound)

	byteTok [256]int32 // SPM byte-fallback ids, -1 when the vocabulary lacks one

	special specialMatcher

	pieceData []byte   // Piece of every token, concatenated
	pieceOff  []uint32 // Piece(id) = pieceData[pieceOff[id]:pieceOff[id+1]]

	bpe *bpe

	scratch sync.Pool // *scratch: per-call buffers, so Encode allocates little
}

// scratch holds the buffers one Encode call needs.
type scratch struct {
	frags, frags2 []fragment
	ranks         []int32
	text          []byte
	syms          []spmSymbol
	heap          []spmBigram
	word          []byte
}

// FromGGUF builds the tokenizer described by f's tokenizer.ggml.* metadata.
// It copies what it needs, so f may be closed afterwards.
//
// Malformed metadata (missing or mistyped keys, arrays of different lengths,
// unknown tokenizer models or pre-tokenizers) is an error. Special-token ids
// that are out of range are ignored and the vocabulary type's default is kept,
// as llama.cpp does (it only warns); a default that does not exist in a small
// vocabulary becomes "none".
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	if f == nil {
		return nil, errors.New("tokenizer: nil GGUF file")
	}
	return fromMetadata(f.Get)
}

func fromMetadata(get metaGetter) (*Tokenizer, error) {
	model, ok, err := metaString(get, keyModel)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("tokenizer: %s is missing", keyModel)
	}
	pre, _, err := metaString(get, keyPre)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{pre: pre, eot: -1, eom: -1, fimPre: -1, fimSuf: -1, fimMid: -1, fimPad: -1, fimRep: -1, fimSep: -1}

	// Vocabulary type and its defaults (llama_vocab::impl::load).
	switch model {
	case "llama":
		t.typ = vocabSPM
		t.bos, t.eos, t.unk, t.sep, t.pad, t.mask = 1, 2, 0, -1, -1, -1
		t.addSpacePrefix, t.addBOS = true, true
	case "bert":
		t.typ = vocabWPM
		t.bos, t.eos, t.unk, t.sep, t.pad, t.mask = 101, -1, 100, 102, 0, 103
		t.cleanSpaces, t.addBOS = true, true
	case "gpt2":
		t.typ = vocabBPE
		t.bos, t.eos, t.unk, t.sep, t.pad, t.mask = 11, 11, -1, -1, -1, -1
		fl, err := bpeFlagsFor(pre)
		if err != nil {
			return nil, err
		}
		t.cleanSpaces, t.addBOS = fl.cleanSpaces, fl.addBOS
		if fl.noBOS {
			t.bos = -1
		}
	case "no_vocab", "none":
		return nil, fmt.Errorf("tokenizer: the model has no vocabulary (%s = %q)", keyModel, model)
	case "t5", "rwkv":
		return nil, fmt.Errorf("tokenizer: tokenizer model %q is not supported", model)
	default:
		return nil, fmt.Errorf("tokenizer: unknown tokenizer model %q", model)
	}
	if v, ok, err := metaBool(get, keyAddPrefix); err != nil {
		return nil, err
	} else if ok {
		t.addSpacePrefix = v
	}

	// Token list, scores and types.
	tokens, ok, err := metaStrings(get, keyTokens)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("tokenizer: %s is missing", keyTokens)
	}
	n := len(tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: %s is empty", keyTokens)
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: %d tokens do not fit int32 ids", n)
	}
	scores, hasScores, err := metaFloat32s(get, keyScores)
	if err != nil {
		return nil, err
	}
	if hasScores && len(scores) != n {
		return nil, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyScores, len(scores), n)
	}
	types, hasTypes, err := metaInt32s(get, keyTokenType)
	if err != nil {
		return nil, err
	}
	if hasTypes && len(types) != n {
		return nil, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyTokenType, len(types), n)
	}

	t.tokens = make([]string, n)
	t.scores = make([]float32, n)
	t.attrs = make([]tokenAttr, n)
	t.toID = make(map[string]int32, n)
	for i, s := range tokens {
		if s == "" {
			s = fmt.Sprintf("[EMPTY_%d]", i)
		}
		t.tokens[i] = s
		// A later duplicate wins, as in llama.cpp's token_to_id map.
		t.toID[s] = int32(i)
		t.maxTokenLen = max(t.maxTokenLen, len(s))
		if hasScores {
			t.scores[i] = scores[i]
		}
		if hasTypes {
			t.attrs[i] = attrFromType(types[i])
		} else {
			t.attrs[i] = attrNormal
		}
	}

	if t.typ == vocabBPE {
		merges, ok, err := metaStrings(get, keyMerges)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s is missing (required for gpt2 vocabularies)", keyMerges)
		}
		t.bpe, err = newBPE(t.tokens, merges, pre)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
	}

	// Special token ids from metadata; out-of-range values keep the default.
	// tokenizer.ggml.cls_token_id is not read: at this llama.cpp commit
	// [CLS] is the BOS id (llama_vocab_cls is deprecated and returns BOS).
	idKeys := []struct {
		key string
		dst *int32
	}{
		{keyBOS, &t.bos}, {keyEOS, &t.eos}, {keyEOT, &t.eot}, {keyEOM, &t.eom},
		{keyUNK, &t.unk}, {keySEP, &t.sep}, {keyPAD, &t.pad}, {keyMASK, &t.mask},
		{keyFIMPre, &t.fimPre}, {keyFIMSuf, &t.fimSuf}, {keyFIMMid, &t.fimMid},
		{keyFIMPad, &t.fimPad}, {keyFIMRep, &t.fimRep}, {keyFIMSep, &t.fimSep},
		{keyPrefixLegacy, &t.fimPre}, {keySuffixLegacy, &t.fimSuf}, {keyMiddleLegacy, &t.fimMid},
	}
	for _, k := range idKeys {
		v, ok, err := metaInt(get, k.key)
		if err != nil {
			return nil, err
		}
		if ok && v >= 0 && v < int64(n) {
			*k.dst = int32(v)
		}
	}
	for _, k := range idKeys {
		if *k.dst >= int32(n) {
			*k.dst = -1
		}
	}
	if v, ok, err := metaBool(get, keyAddBOS); err != nil {
		return nil, err
	} else if ok {
		t.addBOS = v
	}
	if v, ok, err := metaBool(get, keyAddEOS); err != nil {
		return nil, err
	} else if ok {
		t.addEOS = v
	}

	t.detectSpecialTokens()

	// The piece cache and the special-token matcher see the attributes as
	// they are at this point, like llama.cpp's caches.
	t.special = newSpecialMatcher(t.tokens, t.attrs)
	if err := t.buildPieces(); err != nil {
		return nil, err
	}

	name, _, err := metaString(get, keyGeneralName)
	if err != nil {
		return nil, err
	}
	t.applyModelQuirks(name, pre)

	if t.typ == vocabSPM {
		for b := range 256 {
			t.byteTok[b] = t.spmByteToken(byte(b))
		}
	}
	return t, nil
}

// detectSpecialTokens reproduces llama.cpp's text-based detection of EOT, EOM
// and FIM tokens and the end-of-generation set. Every token it recognises by
// text is forced to CONTROL (llama.cpp replaces the attribute), which decides
// whether it is split out of text without parse_special.
func (t *Tokenizer) detectSpecialTokens() {
	force := func(id int32) { t.attrs[id] = attrControl }
	detect := func(dst *int32, names ...string) {
		if *dst >= 0 {
			return
		}
		// llama.cpp takes the first hit in hash-map order, which is not
		// reproducible; the first name in the list that exists is the
		// deterministic choice (for Phi-3: <|end|> before <|endoftext|>).
		for _, s := range names {
			if id, ok := t.toID[s]; ok {
				*dst = id
				force(id)
				return
			}
		}
	}
	detect(&t.eot, "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>")
	detect(&t.eom, "<|eom_id|>")
	detect(&t.fimPre, "<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>")
	detect(&t.fimSuf, "<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>")
	detect(&t.fimMid, "<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>")
	detect(&t.fimPad, "<|fim_pad|>", "<fim-pad>", "<PAD>")
	detect(&t.fimRep, "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>")
	detect(&t.fimSep, "<|file_sep|>")

	t.eog = make([]uint64, (len(t.tokens)+63)/64)
	add := func(id int32) {
		if id >= 0 {
			t.eog[id/64] |= 1 << (uint(id) % 64)
		}
	}
	add(t.fimPad)
	add(t.fimRep)
	add(t.fimSep)
	for _, s := range []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"} {
		if id, ok := t.toID[s]; ok {
			add(id)
			force(id)
		}
	}
	add(t.eos)
	add(t.eot)
	add(t.eom)
}

// applyModelQuirks sets the per-token strip attributes llama.cpp hard-codes by
// model or pre-tokenizer name. Phi-3's GGUF does not carry the rstrip flags of
// its HF tokenizer, so llama.cpp recognises it by general.name; whitespace
// after e.g. <|end|> is then swallowed. Tokens the quirk names but the
// vocabulary lacks are skipped (llama.cpp would refuse to load).
func (t *Tokenizer) applyModelQuirks(name, pre string) {
	set := func(text string, a tokenAttr, on bool) {
		id, ok := t.toID[text]
		if !ok {
			return
		}
		if on {
			t.attrs[id] |= a
		} else {
			t.attrs[id] &^= a
		}
	}
	lname := cLocaleLower(name)
	switch {
	case quirkContainsAny(pre, "jina-v2-de", "jina-v2-es", "jina-v2-code"):
		set("<mask>", attrLStrip, true)
	case quirkContainsAny(lname, "phi-3", "phi3"):
		for _, id := range t.special.order {
			t.attrs[id] |= attrRStrip
		}
		set("</s>", attrRStrip, true)
		for _, s := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			set(s, attrRStrip, false)
		}
	}
}

func quirkContainsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if len(sub) <= len(s) {
			for i := 0; i+len(sub) <= len(s); i++ {
				if s[i:i+len(sub)] == sub {
					return true
				}
			}
		}
	}
	return false
}

// spmByteToken is llama.cpp's byte_to_token for SPM: the "<0xAB>" token, else a
// token whose text is the byte itself (never for byte 0, whose C string is
// empty), else none.
func (t *Tokenizer) spmByteToken(b byte) int32 {
	const hex = "0123456789ABCDEF"
	name := string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})
	if id, ok := t.toID[name]; ok {
		return id
	}
	if b != 0 {
		if id, ok := t.toID[string([]byte{b})]; ok {
			return id
		}
	}
	return -1
}

// ErrInvalidUTF8 is returned (wrapped) when text given to a BPE or WordPiece
// vocabulary contains a 4-byte sequence that decodes above U+10FFFF, the one
// kind of malformed input llama.cpp rejects instead of replacing with U+FFFD.
var ErrInvalidUTF8 = errors.New("invalid codepoint in UTF-8 text")

// Encode tokenizes text like llama_tokenize(vocab, text, addSpecial, parseSpecial).
//
// Special tokens are split out of the text first: USER_DEFINED tokens always,
// CONTROL (and UNKNOWN) tokens only when parseSpecial is set, longer tokens
// before shorter ones. addSpecial adds BOS/EOS as the vocabulary asks
// (tokenizer.ggml.add_bos_token/add_eos_token or the type's default) and
// [CLS] … [SEP] for WordPiece.
//
// Text need not be valid UTF-8. SPM carries invalid bytes through as byte
// tokens; BPE and WordPiece replace each invalid sequence with U+FFFD first
// (WordPiece then drops it), and fail with ErrInvalidUTF8 on a 4-byte
// sequence above U+10FFFF, where llama.cpp throws.
func (t *Tokenizer) Encode(text []byte, addSpecial, parseSpecial bool) ([]int32, error) {
	sc, _ := t.scratch.Get().(*scratch)
	if sc == nil {
		sc = new(scratch)
	}
	defer t.scratch.Put(sc)

	s := string(text)
	frags := t.partition(s, parseSpecial, sc)
	out := make([]int32, 0, len(s)/3+4)
	var err error

	switch t.typ {
	case vocabSPM:
		isPrevSpecial := true // the first fragment gets the space prefix too
		if addSpecial && t.addBOS {
			if t.bos < 0 {
				return nil, errors.New("tokenizer: add_special needs a BOS token and the vocabulary has none")
			}
			out = append(out, t.bos)
		}
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				isPrevSpecial = true
				continue
			}
			if out, err = t.spmEncode(s[f.start:f.end], t.addSpacePrefix && isPrevSpecial, out, sc); err != nil {
				return nil, err
			}
			isPrevSpecial = false
		}
		if addSpecial && t.addEOS {
			if t.eos < 0 {
				return nil, errors.New("tokenizer: add_special needs an EOS token and the vocabulary has none")
			}
			out = append(out, t.eos)
		}

	case vocabBPE:
		if addSpecial && t.addBOS {
			if t.bos < 0 {
				return nil, errors.New("tokenizer: add_special needs a BOS token and the vocabulary has none")
			}
			out = append(out, t.bos)
		}
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				continue
			}
			frag, err := lcppReplaceInvalid(s[f.start:f.end])
			if err != nil {
				return nil, err
			}
			out = t.bpe.encode(frag, out)
		}
		if addSpecial && t.addEOS {
			if t.eos < 0 {
				return nil, errors.New("tokenizer: add_special needs an EOS token and the vocabulary has none")
			}
			out = append(out, t.eos)
		}

	case vocabWPM:
		if addSpecial {
			if t.bos < 0 {
				return nil, errors.New("tokenizer: add_special needs a [CLS] (BOS) token and the vocabulary has none")
			}
			out = append(out, t.bos)
		}
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				continue
			}
			if out, err = t.wpmEncode(s[f.start:f.end], out, sc); err != nil {
				return nil, err
			}
		}
		if addSpecial {
			if t.sep < 0 {
				return nil, errors.New("tokenizer: add_special needs a [SEP] token and the vocabulary has none")
			}
			out = append(out, t.sep)
		}
	}
	return out, nil
}

// NVocab is the number of tokens.
func (t *Tokenizer) NVocab() int { return len(t.tokens) }

// BOS is the beginning-of-sequence token ([CLS] for WordPiece), or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS is the end-of-sequence token, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOT is the end-of-turn token (from metadata or detected by text such as
// <|eot_id|> or <|im_end|>), or -1.
func (t *Tokenizer) EOT() int32 { return t.eot }

// AddBOS reports whether Encode with addSpecial prepends BOS (for WordPiece it
// always prepends [CLS]; this reports llama.cpp's add_bos flag).
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether Encode with addSpecial appends EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsEOG reports whether id ends generation: EOS, EOT, EOM, the FIM pad/repo/
// separator tokens and every token whose text is one of llama.cpp's
// end-of-generation names (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>,
// <|endoftext|>, <|eom_id|>, <EOT>).
func (t *Tokenizer) IsEOG(id int32) bool {
	if id < 0 || int(id) >= len(t.tokens) {
		return false
	}
	return t.eog[id/64]&(1<<(uint(id)%64)) != 0
}

// IsControl reports whether id is a control token (after llama.cpp's
// load-time promotion of end-of-generation and FIM tokens).
func (t *Tokenizer) IsControl(id int32) bool {
	return id >= 0 && int(id) < len(t.attrs) && t.attrs[id]&attrControl != 0
}

// Token is the vocabulary text of id ("" when id is out of range). It is the
// raw entry (e.g. "▁Hello" or "Ġworld"), not the decoded piece.
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID looks a token up by its vocabulary text.
func (t *Tokenizer) ID(text string) (int32, bool) {
	id, ok := t.toID[text]
	return id, ok
}

// lcppDecodeRune decodes one codepoint at s[i:] like llama.cpp's
// unicode_cpt_from_utf8 inside unicode_cpts_from_utf8. It is laxer than Go's
// decoder (overlong forms, surrogates and 4-byte values up to 0x1FFFFF are
// accepted) and stricter about truncation; anything it rejects becomes one
// U+FFFD that consumes a single byte, so "e4 bd e5 a5 bd" yields two U+FFFD
// and then 好.
func lcppDecodeRune(s string, i int) (rune, int) {
	c := s[i]
	switch {
	case c < 0x80:
		return rune(c), 1
	case c&0x40 == 0: // continuation byte in lead position
		return utf8.RuneError, 1
	case c&0x20 == 0:
		if i+1 >= len(s) || s[i+1]&0xC0 != 0x80 {
			return utf8.RuneError, 1
		}
		return rune(c&0x1F)<<6 | rune(s[i+1]&0x3F), 2
	case c&0x10 == 0:
		if i+2 >= len(s) || s[i+1]&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 {
			return utf8.RuneError, 1
		}
		return rune(c&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), 3
	case c&0x08 == 0:
		if i+3 >= len(s) || s[i+1]&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 || s[i+3]&0xC0 != 0x80 {
			return utf8.RuneError, 1
		}
		return rune(c&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F), 4
	}
	return utf8.RuneError, 1
}

// lcppAppendRune encodes cp like unicode_cpt_to_utf8, which (unlike Go's
// encoder) writes surrogates as plain 3-byte sequences. cp must be <= 0x10FFFF.
func lcppAppendRune(b []byte, cp rune) []byte {
	switch {
	case cp <= 0x7F:
		return append(b, byte(cp))
	case cp <= 0x7FF:
		return append(b, 0xC0|byte(cp>>6), 0x80|byte(cp&0x3F))
	case cp <= 0xFFFF:
		return append(b, 0xE0|byte(cp>>12), 0x80|byte(cp>>6&0x3F), 0x80|byte(cp&0x3F))
	}
	return append(b, 0xF0|byte(cp>>18), 0x80|byte(cp>>12&0x3F), 0x80|byte(cp>>6&0x3F), 0x80|byte(cp&0x3F))
}

// lcppReplaceInvalid is what a BPE fragment goes through in llama.cpp before
// pre-tokenization: decode to codepoints (invalid bytes become U+FFFD) and
// encode again. Valid UTF-8 is returned unchanged without copying.
func lcppReplaceInvalid(s string) (string, error) {
	if utf8.ValidString(s) {
		return s, nil
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		cp, n := lcppDecodeRune(s, i)
		if cp > utf8.MaxRune {
			return "", fmt.Errorf("tokenizer: %w: % x at byte %d", ErrInvalidUTF8, s[i:i+n], i)
		}
		b = lcppAppendRune(b, cp)
		i += n
	}
	return string(b), nil
}

// eogIDs lists the end-of-generation ids (for tests and debugging).
func (t *Tokenizer) eogIDs() []int32 {
	var ids []int32
	for id := range t.tokens {
		if t.IsEOG(int32(id)) {
			ids = append(ids, int32(id))
		}
	}
	return slices.Clip(ids)
}
