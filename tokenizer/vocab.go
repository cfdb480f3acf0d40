package tokenizer

import (
	"fmt"
	"math"

	"github.com/slm-dev/slm/gguf"
)

// tokenAttr is llama.cpp's llama_token_attr bit set. llama.cpp derives it from
// the GGUF token type and then edits it while loading (EOG detection forces
// CONTROL, Phi-3 adds RSTRIP, ...), and those edits change how text is split,
// so the tokenizer keeps the same bits rather than the raw token types.
type tokenAttr uint16

const (
	attrUnknown     tokenAttr = 1 << 0
	attrUnused      tokenAttr = 1 << 1
	attrNormal      tokenAttr = 1 << 2
	attrControl     tokenAttr = 1 << 3
	attrUserDefined tokenAttr = 1 << 4
	attrByte        tokenAttr = 1 << 5
	attrLStrip      tokenAttr = 1 << 7
	attrRStrip      tokenAttr = 1 << 8
)

// GGUF tokenizer.ggml.token_type values (llama_token_type).
const (
	ggufTypeNormal      = 1
	ggufTypeUnknown     = 2
	ggufTypeControl     = 3
	ggufTypeUserDefined = 4
	ggufTypeUnused      = 5
	ggufTypeByte        = 6
)

// attrFromType maps a GGUF token type to its attribute. Unknown values become
// "undefined" (no bits), as in llama.cpp: such tokens are never split out as
// special tokens and render as nothing.
func attrFromType(t int32) tokenAttr {
	switch t {
	case ggufTypeNormal:
		return attrNormal
	case ggufTypeUnknown:
		return attrUnknown
	case ggufTypeControl:
		return attrControl
	case ggufTypeUserDefined:
		return attrUserDefined
	case ggufTypeUnused:
		return attrUnused
	case ggufTypeByte:
		return attrByte
	}
	return 0
}

// vocabType is llama.cpp's llama_vocab_type for the models this package supports.
type vocabType uint8

const (
	vocabSPM vocabType = iota + 1 // tokenizer.ggml.model "llama": SentencePiece BPE with scores
	vocabBPE                      // "gpt2": byte-level BPE with merges
	vocabWPM                      // "bert": WordPiece
)

func (v vocabType) String() string {
	switch v {
	case vocabSPM:
		return "SPM"
	case vocabBPE:
		return "BPE"
	case vocabWPM:
		return "WPM"
	}
	return "unknown"
}

// GGUF metadata keys read by FromGGUF.
const (
	keyModel        = "tokenizer.ggml.model"
	keyPre          = "tokenizer.ggml.pre"
	keyTokens       = "tokenizer.ggml.tokens"
	keyScores       = "tokenizer.ggml.scores"
	keyTokenType    = "tokenizer.ggml.token_type"
	keyMerges       = "tokenizer.ggml.merges"
	keyAddBOS       = "tokenizer.ggml.add_bos_token"
	keyAddEOS       = "tokenizer.ggml.add_eos_token"
	keyAddPrefix    = "tokenizer.ggml.add_space_prefix"
	keyGeneralName  = "general.name"
	keyBOS          = "tokenizer.ggml.bos_token_id"
	keyEOS          = "tokenizer.ggml.eos_token_id"
	keyEOT          = "tokenizer.ggml.eot_token_id"
	keyEOM          = "tokenizer.ggml.eom_token_id"
	keyUNK          = "tokenizer.ggml.unknown_token_id"
	keySEP          = "tokenizer.ggml.seperator_token_id" // sic, as written by the converters
	keyPAD          = "tokenizer.ggml.padding_token_id"
	keyMASK         = "tokenizer.ggml.mask_token_id"
	keyFIMPre       = "tokenizer.ggml.fim_pre_token_id"
	keyFIMSuf       = "tokenizer.ggml.fim_suf_token_id"
	keyFIMMid       = "tokenizer.ggml.fim_mid_token_id"
	keyFIMPad       = "tokenizer.ggml.fim_pad_token_id"
	keyFIMRep       = "tokenizer.ggml.fim_rep_token_id"
	keyFIMSep       = "tokenizer.ggml.fim_sep_token_id"
	keyPrefixLegacy = "tokenizer.ggml.prefix_token_id" // deprecated spellings of the FIM ids
	keySuffixLegacy = "tokenizer.ggml.suffix_token_id"
	keyMiddleLegacy = "tokenizer.ggml.middle_token_id"
)

// metaGetter is the metadata lookup FromGGUF needs; (*gguf.File).Get has this
// shape, and tests pass a plain map so that they can build hostile
// vocabularies without writing files.
type metaGetter func(key string) (any, bool)

func metaString(get metaGetter, key string) (string, bool, error) {
	v, ok := get(key)
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("tokenizer: %s has type %T, want string", key, v)
	}
	return s, true, nil
}

func metaBool(get metaGetter, key string) (bool, bool, error) {
	v, ok := get(key)
	if !ok {
		return false, false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, false, fmt.Errorf("tokenizer: %s has type %T, want bool", key, v)
	}
	return b, true, nil
}

// metaInt reads an integer of any width. Values that do not fit an int64 are
// reported as math.MaxInt64, which every caller treats as out of range.
func metaInt(get metaGetter, key string) (int64, bool, error) {
	v, ok := get(key)
	if !ok {
		return 0, false, nil
	}
	switch x := v.(type) {
	case int8:
		return int64(x), true, nil
	case int16:
		return int64(x), true, nil
	case int32:
		return int64(x), true, nil
	case int64:
		return x, true, nil
	case uint8:
		return int64(x), true, nil
	case uint16:
		return int64(x), true, nil
	case uint32:
		return int64(x), true, nil
	case uint64:
		if x > math.MaxInt64 {
			return math.MaxInt64, true, nil
		}
		return int64(x), true, nil
	}
	return 0, false, fmt.Errorf("tokenizer: %s has type %T, want an integer", key, v)
}

func metaStrings(get metaGetter, key string) ([]string, bool, error) {
	v, ok := get(key)
	if !ok {
		return nil, false, nil
	}
	s, ok := v.([]string)
	if !ok {
		return nil, false, fmt.Errorf("tokenizer: %s has type %T, want an array of strings", key, v)
	}
	return s, true, nil
}

func metaFloat32s(get metaGetter, key string) ([]float32, bool, error) {
	v, ok := get(key)
	if !ok {
		return nil, false, nil
	}
	switch x := v.(type) {
	case []float32:
		return x, true, nil
	case []float64:
		out := make([]float32, len(x))
		for i, f := range x {
			out[i] = float32(f)
		}
		return out, true, nil
	}
	return nil, false, fmt.Errorf("tokenizer: %s has type %T, want an array of float32", key, v)
}

func metaInt32s(get metaGetter, key string) ([]int32, bool, error) {
	v, ok := get(key)
	if !ok {
		return nil, false, nil
	}
	if out, ok := gguf.Int32s(v); ok {
		return out, true, nil
	}
	return nil, false, fmt.Errorf("tokenizer: %s has type %T or a value outside int32, want an array of integers", key, v)
}

// bpePreFlags is what llama.cpp's loader derives from tokenizer.ggml.pre for a
// byte-level BPE vocabulary, apart from the regexes (which newBPE owns):
// whether detokenization runs clean_up_tokenization_spaces, whether BOS is
// added by default, and whether the BOS id is cleared. An unknown name is an
// error there, and here.
type bpePreFlags struct {
	cleanSpaces bool
	addBOS      bool
	noBOS       bool
}

func bpeFlagsFor(pre string) (bpePreFlags, error) {
	switch pre {
	case "", "default", "falcon", "mpt", "starcoder", "refact", "stablelm2", "olmo", "dbrx",
		"smaug-bpe", "jais", "codeshell", "bloom", "gpt3-finnish", "exaone", "minerva-7b",
		"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
		"jina-v2-de", "jina-v2-code", "roberta-bpe":
		return bpePreFlags{cleanSpaces: true}, nil
	case "llama3", "llama-v3", "llama-bpe", "falcon3":
		return bpePreFlags{cleanSpaces: true, addBOS: true}, nil
	case "deepseek-llm", "deepseek-coder", "deepseek-v3", "command-r", "qwen2", "poro-chat",
		"viking", "smollm", "deepseek-r1-qwen", "pixtral", "gpt-4o", "llama4":
		return bpePreFlags{}, nil
	case "megrez":
		// megrez maps to the qwen2 regex but keeps the BPE default clean_spaces.
		return bpePreFlags{cleanSpaces: true}, nil
	case "chatglm-bpe":
		return bpePreFlags{cleanSpaces: true, noBOS: true}, nil
	case "tekken", "chameleon":
		return bpePreFlags{addBOS: true}, nil
	}
	return bpePreFlags{}, fmt.Errorf("tokenizer: unknown pre-tokenizer type %q", pre)
}

// parseByteToken reads the byte of an SPM byte token "<0xAB>" the way llama.cpp
// does (strtol on the two characters after "<0x"): it stops at the first
// non-hex character, so a malformed byte token still yields some byte.
func parseByteToken(text string) byte {
	if len(text) < 4 {
		return 0
	}
	s := text[3:]
	if len(s) > 2 {
		s = s[:2]
	}
	var v byte
	for i := 0; i < len(s); i++ {
		d, ok := byteTokenHexDigit(s[i])
		if !ok {
			break
		}
		v = v<<4 | d
	}
	return v
}

func byteTokenHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// cLocaleLower lowers ASCII letters only, like std::tolower in the C locale that
// llama.cpp uses on general.name.
func cLocaleLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
