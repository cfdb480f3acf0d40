// Package hf reads Hugging Face tokenizers (tokenizer.json plus
// tokenizer_config.json) and encodes and decodes like @huggingface/tokenizers.
//
// The reader turns the tokenizer.json into the GGUF vocabulary metadata that
// llama.cpp's convert_hf_to_gguf.py would write (tokenizer.ggml.*), and the
// tokenizer is the slm GGUF tokenizer built from exactly that metadata
// (through an in-memory GGUF). What a GGUF cannot express is done here, in
// front of it: the NFC normalizer (Qwen2/Qwen3), which llama.cpp's GGUF path
// skips. Decoding follows the tokenizer.json's decoder (ByteLevel, or
// Replace/ByteFallback/Fuse/Strip for SentencePiece-style files) rather than
// llama.cpp's detokenizer.
//
// Supported: BPE models, either byte-level (GPT-2, Llama 3, Qwen, SmolLM:
// written as tokenizer.ggml.model "gpt2", with tokenizer.ggml.pre detected from
// the pre_tokenizer) or SentencePiece-style with byte fallback (Llama 2,
// Mistral, Gemma: written as "llama", with score = -merge rank).
package hf

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/tokenizer"
)

// Kind is the GGUF vocabulary type a tokenizer.json maps to.
type Kind string

const (
	KindBPE Kind = "gpt2"  // byte-level BPE
	KindSPM Kind = "llama" // SentencePiece-style BPE with byte fallback
)

// GGUF token types (llama_token_type).
const (
	typeNormal      int32 = 1
	typeUnknown     int32 = 2
	typeControl     int32 = 3
	typeUserDefined int32 = 4
	typeUnused      int32 = 5
	typeByte        int32 = 6
)

// Tokenizer is a loaded Hugging Face tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	Kind Kind
	Pre  string // tokenizer.ggml.pre for KindBPE

	vocab  []string // HF token text by id ("" for ids that are not used)
	added  []addedToken
	isAdd  map[int32]bool
	isSpec map[int32]bool
	merges []string

	nfc            bool
	addSpacePrefix bool // SPM: a "▁" is prepended to the text
	byteFallback   bool

	bos, eos, unk, sep, pad, cls, mask int32 // -1 when absent
	addBOS, addEOS                     *bool
	chatTemplates                      [][2]string
	cleanUp                            bool

	decoders []component // flattened decoder chain

	tok *tokenizer.Tokenizer // the GGUF tokenizer built from Metadata
}

// Options adjust Parse.
type Options struct {
	// Pre overrides the detected tokenizer.ggml.pre (byte-level BPE only).
	Pre string
	// ModelConfig is config.json, used for special token ids that
	// tokenizer_config.json does not name (may be nil).
	ModelConfig []byte
	// ChatTemplate is used when tokenizer_config.json has no chat_template:
	// a JSON string, or a list of {name, template}. Load fills it from
	// chat_template.jinja or chat_template.json.
	ChatTemplate json.RawMessage
}

// Load reads dir/tokenizer.json (or tokenizer.json.gz) and, when present,
// dir/tokenizer_config.json.
func Load(dir string, opt Options) (*Tokenizer, error) {
	tj, err := readMaybeGzip(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(filepath.Join(dir, "tokenizer.model")); serr == nil {
				return nil, fmt.Errorf("%s: no tokenizer.json (a SentencePiece tokenizer.model alone is not supported)", dir)
			}
			return nil, fmt.Errorf("%s: no tokenizer.json", dir)
		}
		return nil, err
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if opt.ChatTemplate == nil {
		if opt.ChatTemplate, err = chatTemplateFiles(dir); err != nil {
			return nil, err
		}
	}
	t, err := Parse(tj, cfg, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return t, nil
}

// chatTemplateFiles reads the chat template that newer repositories keep
// beside tokenizer_config.json (used when that file has none), as gguf-py
// does: chat_template.jinja plus additional_chat_templates/*.jinja, else
// the chat_template entry of chat_template.json. It returns the template
// in tokenizer_config.json's own JSON form, or nil.
func chatTemplateFiles(dir string) (json.RawMessage, error) {
	if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		extra, _ := filepath.Glob(filepath.Join(dir, "additional_chat_templates", "*.jinja"))
		if len(extra) == 0 {
			return json.Marshal(string(b))
		}
		type named struct {
			Name     string `json:"name"`
			Template string `json:"template"`
		}
		list := []named{{"default", string(b)}}
		for _, p := range extra {
			x, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			list = append(list, named{strings.TrimSuffix(filepath.Base(p), ".jinja"), string(x)})
		}
		return json.Marshal(list)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "chat_template.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var ct struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(b, &ct); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "chat_template.json"), err)
	}
	return ct.ChatTemplate, nil
}

// readMaybeGzip reads path, or path+".gz" decompressed when path is absent.
func readMaybeGzip(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	f, gerr := os.Open(path + ".gz")
	if gerr != nil {
		return nil, err
	}
	defer f.Close()
	zr, gerr := gzip.NewReader(f)
	if gerr != nil {
		return nil, fmt.Errorf("%s.gz: %w", path, gerr)
	}
	b, gerr = io.ReadAll(zr)
	if gerr != nil {
		return nil, fmt.Errorf("%s.gz: %w", path, gerr)
	}
	return b, nil
}

// maxVocab bounds ids read from a tokenizer.json.
const maxVocab = 1 << 24

// Parse reads a tokenizer.json and an optional tokenizer_config.json (nil
// or empty when absent).
func Parse(tokenizerJSON, tokenizerConfig []byte, opt Options) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	var cfg configJSON
	if len(bytes.TrimSpace(tokenizerConfig)) > 0 {
		if err := json.Unmarshal(tokenizerConfig, &cfg); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: %w", err)
		}
	}
	t := &Tokenizer{bos: -1, eos: -1, unk: -1, sep: -1, pad: -1, cls: -1, mask: -1, isAdd: map[int32]bool{}, isSpec: map[int32]bool{}}
	m := &f.Model
	switch m.Type {
	case "BPE":
	case "":
		if m.Vocab == nil || m.Merges == nil {
			return nil, errors.New("tokenizer.json: model has no type and is not a BPE model (vocab + merges)")
		}
	default:
		return nil, fmt.Errorf("tokenizer.json: model type %q is not supported (only BPE)", m.Type)
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("tokenizer.json: BPE dropout %v is not supported", *m.Dropout)
	}
	if (m.ContPrefix != nil && *m.ContPrefix != "") || (m.EndWordSuffix != nil && *m.EndWordSuffix != "") {
		return nil, errors.New("tokenizer.json: continuing_subword_prefix / end_of_word_suffix are not supported")
	}
	if len(m.Vocab) == 0 {
		return nil, errors.New("tokenizer.json: model.vocab is empty")
	}

	// Token text by id: the model vocab, then the added tokens (which may
	// extend it or repeat entries of it).
	n := 0
	for s, id := range m.Vocab {
		if id < 0 || id >= maxVocab {
			return nil, fmt.Errorf("tokenizer.json: token %q has id %d (want 0 ≤ id < %d)", s, id, maxVocab)
		}
		n = max(n, int(id)+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 || a.ID >= maxVocab {
			return nil, fmt.Errorf("tokenizer.json: added token %q has id %d", a.Content, a.ID)
		}
		if a.Content == "" {
			return nil, fmt.Errorf("tokenizer.json: added token %d is empty", a.ID)
		}
		n = max(n, int(a.ID)+1)
	}
	t.vocab = make([]string, n)
	for s, id := range m.Vocab {
		if t.vocab[id] != "" {
			return nil, fmt.Errorf("tokenizer.json: id %d is used by both %q and %q", id, t.vocab[id], s)
		}
		t.vocab[id] = s
	}
	for _, a := range f.AddedTokens {
		t.vocab[a.ID] = a.Content
		t.isAdd[int32(a.ID)] = true
		t.isSpec[int32(a.ID)] = a.Special || looksSpecial(a.Content)
	}
	t.added = f.AddedTokens
	var err error
	if t.merges, err = parseMerges(m.Merges); err != nil {
		return nil, err
	}

	// Normalizer, pre-tokenizer and decoder decide the kind.
	norm, err := parseComponent(f.Normalizer, "normalizer")
	if err != nil {
		return nil, err
	}
	pre, err := parseComponent(f.PreTokenizer, "pre_tokenizer")
	if err != nil {
		return nil, err
	}
	dec, err := parseComponent(f.Decoder, "decoder")
	if err != nil {
		return nil, err
	}
	post, err := parseComponent(f.PostProcessor, "post_processor")
	if err != nil {
		return nil, err
	}
	t.decoders = dec.flatten()
	t.byteFallback = m.ByteFallback
	if cfg.CleanUp != nil {
		t.cleanUp = *cfg.CleanUp
	}

	if m.ByteFallback || hasType(norm, "Replace", "Prepend") || hasType(pre, "Metaspace") {
		t.Kind = KindSPM
		if err := t.spmNormalizer(norm, pre); err != nil {
			return nil, err
		}
	} else {
		t.Kind = KindBPE
		if err := t.bpeNormalizer(norm); err != nil {
			return nil, err
		}
		if opt.Pre != "" {
			t.Pre = opt.Pre
		} else if t.Pre, err = detectPre(pre, m.IgnoreMerges, t.cleanUp); err != nil {
			return nil, err
		}
	}
	if err := t.checkDecoder(); err != nil {
		return nil, err
	}

	// Special tokens.
	t.specialIDs(&cfg, m, opt.ModelConfig)
	t.postProcessor(post, &cfg)
	if len(cfg.ChatTemplate) == 0 || string(cfg.ChatTemplate) == "null" {
		cfg.ChatTemplate = opt.ChatTemplate
	}
	if t.chatTemplates, err = chatTemplates(cfg.ChatTemplate); err != nil {
		return nil, err
	}

	// The GGUF tokenizer over the same metadata.
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	for _, kv := range t.Metadata(0) {
		w.AddKV(kv.Key, kv.Value)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	gf, err := gguf.Parse("tokenizer.json", buf.Bytes())
	if err != nil {
		return nil, err
	}
	if t.tok, err = tokenizer.FromGGUF(gf); err != nil {
		return nil, err
	}
	return t, nil
}

func hasType(c *component, types ...string) bool {
	for _, x := range c.flatten() {
		for _, ty := range types {
			if x.Type == ty {
				return true
			}
		}
	}
	return false
}

// spmNormalizer accepts the SentencePiece-style layouts: Prepend("▁") +
// Replace(" ", "▁") (Llama 2, Mistral), Replace alone (Gemma: no prefix),
// or a Metaspace pre-tokenizer (newer Llama-2-style files).
func (t *Tokenizer) spmNormalizer(norm, pre *component) error {
	for _, c := range norm.flatten() {
		switch c.Type {
		case "Prepend":
			if c.Prepend == nil || *c.Prepend != "▁" {
				return fmt.Errorf("tokenizer.json: normalizer Prepend(%q) is not supported (only \"▁\")", deref(c.Prepend))
			}
			t.addSpacePrefix = true
		case "Replace":
			if c.Pattern == nil || c.Pattern.String == nil || *c.Pattern.String != " " || c.Content == nil || *c.Content != "▁" {
				return errors.New("tokenizer.json: only the normalizer Replace(\" \" -> \"▁\") is supported")
			}
		default:
			return fmt.Errorf("tokenizer.json: normalizer %q is not supported for a SentencePiece-style BPE", c.Type)
		}
	}
	for _, c := range pre.flatten() {
		switch c.Type {
		case "Metaspace":
			if c.Replacement != nil && *c.Replacement != "▁" {
				return fmt.Errorf("tokenizer.json: Metaspace replacement %q is not supported", *c.Replacement)
			}
			switch c.PrependScheme {
			case "never":
			case "", "first", "always":
				if c.AddPrefixSpace == nil || *c.AddPrefixSpace {
					t.addSpacePrefix = true
				}
			default:
				return fmt.Errorf("tokenizer.json: Metaspace prepend_scheme %q is not supported", c.PrependScheme)
			}
		case "Split":
			// Gemma: Split(" ", MergedWithPrevious) after a normalizer that
			// has already replaced every space; it never splits anything.
			if c.Pattern == nil || c.Pattern.String == nil || *c.Pattern.String != " " {
				return errors.New("tokenizer.json: a Split pre-tokenizer in a SentencePiece-style BPE is only supported on \" \"")
			}
		default:
			return fmt.Errorf("tokenizer.json: pre_tokenizer %q is not supported for a SentencePiece-style BPE", c.Type)
		}
	}
	if !t.byteFallback {
		return errors.New("tokenizer.json: a SentencePiece-style BPE without byte_fallback is not supported")
	}
	return nil
}

// bpeNormalizer accepts no normalizer or NFC.
func (t *Tokenizer) bpeNormalizer(norm *component) error {
	for _, c := range norm.flatten() {
		switch c.Type {
		case "NFC":
			t.nfc = true
		default:
			return fmt.Errorf("tokenizer.json: normalizer %q is not supported for a byte-level BPE (only NFC)", c.Type)
		}
	}
	return nil
}

func (t *Tokenizer) checkDecoder() error {
	for _, c := range t.decoders {
		switch c.Type {
		case "ByteLevel", "ByteFallback", "Fuse":
		case "Replace":
			if c.Pattern == nil || c.Pattern.String == nil || c.Content == nil {
				return errors.New("tokenizer.json: decoder Replace needs a string pattern and content")
			}
		case "Strip":
			if c.Content == nil || len([]rune(*c.Content)) != 1 || c.Start < 0 || c.Stop < 0 {
				return errors.New("tokenizer.json: decoder Strip needs a one-character content")
			}
		case "Metaspace":
		default:
			return fmt.Errorf("tokenizer.json: decoder %q is not supported", c.Type)
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// id looks a token up by its text: added tokens first, then the vocabulary.
func (t *Tokenizer) id(text string) (int32, bool) {
	for _, a := range t.added {
		if a.Content == text {
			return int32(a.ID), true
		}
	}
	for i, s := range t.vocab {
		if s == text {
			return int32(i), true
		}
	}
	return -1, false
}

// specialIDs sets bos/eos/unk/... from tokenizer_config.json's *_token
// entries, then the model's unk_token, then config.json's *_token_id.
func (t *Tokenizer) specialIDs(cfg *configJSON, m *modelJSON, modelConfig []byte) {
	set := func(dst *int32, raw json.RawMessage) {
		if s, ok := tokenText(raw); ok {
			if id, ok := t.id(s); ok {
				*dst = id
			}
		}
	}
	set(&t.bos, cfg.BOS)
	set(&t.eos, cfg.EOS)
	set(&t.unk, cfg.UNK)
	set(&t.sep, cfg.SEP)
	set(&t.pad, cfg.PAD)
	set(&t.cls, cfg.CLS)
	set(&t.mask, cfg.MASK)
	if t.unk < 0 && m.UnkToken != nil {
		if id, ok := t.id(*m.UnkToken); ok {
			t.unk = id
		}
	}
	if len(modelConfig) == 0 {
		return
	}
	var mc map[string]json.RawMessage
	if json.Unmarshal(modelConfig, &mc) != nil {
		return
	}
	fromConfig := func(dst *int32, key string) {
		if *dst >= 0 {
			return
		}
		raw, ok := mc[key]
		if !ok {
			return
		}
		var id int64
		if json.Unmarshal(raw, &id) != nil {
			return // e.g. a list of eos ids: gguf-py ignores it too
		}
		if id >= 0 && id < int64(len(t.vocab)) {
			*dst = int32(id)
		}
	}
	fromConfig(&t.bos, "bos_token_id")
	fromConfig(&t.eos, "eos_token_id")
	fromConfig(&t.unk, "unk_token_id")
	fromConfig(&t.sep, "sep_token_id")
	fromConfig(&t.pad, "pad_token_id")
	fromConfig(&t.cls, "cls_token_id")
	fromConfig(&t.mask, "mask_token_id")
}

// postProcessor derives add_bos/add_eos from a TemplateProcessing
// post-processor (the single-sequence template starts with BOS / ends with
// EOS), the way gguf-py's SpecialVocab does; tokenizer_config.json's
// add_bos_token/add_eos_token win when present.
func (t *Tokenizer) postProcessor(post *component, cfg *configJSON) {
	for _, p := range post.flatten() {
		if p.Type != "TemplateProcessing" || len(p.Single) < 2 {
			continue
		}
		if first := p.Single[0].SpecialToken; first != nil {
			id, ok := t.id(first.ID)
			v := ok && (id == t.bos || id == t.cls)
			if ok && t.bos < 0 {
				t.bos, v = id, true
			}
			t.addBOS = &v
		}
		if last := p.Single[len(p.Single)-1].SpecialToken; last != nil {
			id, ok := t.id(last.ID)
			v := ok && id == t.eos
			if ok && t.eos < 0 {
				t.eos, v = id, true
			}
			t.addEOS = &v
		}
	}
	if cfg.AddBOS != nil {
		t.addBOS = cfg.AddBOS
	}
	if cfg.AddEOS != nil {
		t.addEOS = cfg.AddEOS
	}
	if t.Kind == KindSPM {
		// A Llama-2-style file without a template: HF adds nothing.
		f := false
		if t.addBOS == nil {
			t.addBOS = &f
		}
		if t.addEOS == nil {
			t.addEOS = &f
		}
	}
}

// NVocab is the number of token ids the tokenizer.json defines.
func (t *Tokenizer) NVocab() int { return len(t.vocab) }

// GGUF returns the GGUF tokenizer built from Metadata.
func (t *Tokenizer) GGUF() *tokenizer.Tokenizer { return t.tok }

// looksSpecial is gguf-py's does_token_look_special: added tokens that some
// models forget to mark special.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>")) ||
		(strings.HasPrefix(s, "<｜") && strings.HasSuffix(s, "｜>")) ||
		(strings.HasPrefix(s, "<unused") && strings.HasSuffix(s, ">"))
}

// isByteToken reports "<0xAB>".
func isByteToken(s string) bool {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return false
	}
	return isHex(s[3]) && isHex(s[4])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Metadata is the tokenizer.ggml.* metadata for a GGUF file, as
// convert_hf_to_gguf.py writes it. vocabSize pads the token list with
// "[PAD<id>]" entries of type UNUSED up to the model's vocab_size (0 or a
// smaller value keeps the tokenizer's own size).
func (t *Tokenizer) Metadata(vocabSize int) []gguf.KV {
	n := max(len(t.vocab), vocabSize)
	tokens := make([]string, n)
	types := make([]int32, n)
	var scores []float32
	if t.Kind == KindSPM {
		scores = make([]float32, n)
		rank := make(map[string]int, len(t.merges))
		for i, m := range t.merges {
			s := strings.Replace(m, " ", "", 1)
			if _, ok := rank[s]; !ok {
				rank[s] = i
			}
		}
		for i, s := range t.vocab {
			if r, ok := rank[s]; ok {
				scores[i] = -float32(r)
			}
		}
	}
	for i := range n {
		s := ""
		if i < len(t.vocab) {
			s = t.vocab[i]
		}
		id := int32(i)
		switch {
		case s == "":
			tokens[i] = fmt.Sprintf("[PAD%d]", i)
			types[i] = typeUnused
			continue
		case t.isSpec[id]:
			types[i] = typeControl
		case t.isAdd[id]:
			// gguf-py's SentencePiece path writes "▁" in user-defined
			// tokens as " ". Not here: the tokenizer.json matches such a
			// token (normalized: false) only where the raw text has the
			// "▁" characters, and a space run becomes "▁" runs that the
			// vocabulary must still hold as they are.
			types[i] = typeUserDefined
		case t.Kind == KindSPM && id == t.unk:
			types[i] = typeUnknown
		case t.Kind == KindSPM && isByteToken(s):
			types[i] = typeByte
		default:
			types[i] = typeNormal
		}
		if t.Kind == KindSPM && t.isAdd[id] {
			scores[i] = -1000
		}
		tokens[i] = s
	}

	kv := []gguf.KV{{Key: "tokenizer.ggml.model", Value: string(t.Kind)}}
	if t.Kind == KindBPE {
		kv = append(kv, gguf.KV{Key: "tokenizer.ggml.pre", Value: t.Pre})
	}
	kv = append(kv, gguf.KV{Key: "tokenizer.ggml.tokens", Value: tokens})
	if scores != nil {
		kv = append(kv, gguf.KV{Key: "tokenizer.ggml.scores", Value: scores})
	}
	kv = append(kv, gguf.KV{Key: "tokenizer.ggml.token_type", Value: types})
	if t.Kind == KindBPE {
		kv = append(kv, gguf.KV{Key: "tokenizer.ggml.merges", Value: t.merges})
	}
	for _, s := range []struct {
		key string
		id  int32
	}{
		{"bos", t.bos}, {"eos", t.eos}, {"unknown", t.unk}, {"seperator", t.sep},
		{"padding", t.pad}, {"cls", t.cls}, {"mask", t.mask},
	} {
		if s.id >= 0 {
			kv = append(kv, gguf.KV{Key: "tokenizer.ggml." + s.key + "_token_id", Value: uint32(s.id)})
		}
	}
	if t.addBOS != nil {
		kv = append(kv, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: *t.addBOS})
	}
	if t.addEOS != nil {
		kv = append(kv, gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: *t.addEOS})
	}
	if t.Kind == KindSPM {
		kv = append(kv, gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: t.addSpacePrefix})
	}
	for _, ct := range t.chatTemplates {
		key := "tokenizer.chat_template"
		if ct[0] != "" {
			key += "." + ct[0]
		}
		kv = append(kv, gguf.KV{Key: key, Value: ct[1]})
	}
	return kv
}

// BOS is the beginning-of-sequence token id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS is the end-of-sequence token id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// ChatTemplate is tokenizer_config.json's chat template (the default one
// when it lists several), or "".
func (t *Tokenizer) ChatTemplate() string {
	if len(t.chatTemplates) > 0 && t.chatTemplates[0][0] == "" {
		return t.chatTemplates[0][1]
	}
	return ""
}
