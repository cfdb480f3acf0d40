package hf

import (
	"encoding/json"
	"fmt"
	"strings"
)

// fileJSON is the part of a tokenizer.json that matters here.
type fileJSON struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         modelJSON       `json:"model"`
}

type addedToken struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type          string           `json:"type"`
	Vocab         map[string]int64 `json:"vocab"`
	Merges        json.RawMessage  `json:"merges"`
	UnkToken      *string          `json:"unk_token"`
	ByteFallback  bool             `json:"byte_fallback"`
	IgnoreMerges  bool             `json:"ignore_merges"`
	FuseUnk       bool             `json:"fuse_unk"`
	ContPrefix    *string          `json:"continuing_subword_prefix"`
	EndWordSuffix *string          `json:"end_of_word_suffix"`
	Dropout       *float64         `json:"dropout"`
}

// component is one normalizer, pre-tokenizer, post-processor or decoder
// node: its type plus the fields the supported types use.
type component struct {
	Type string `json:"type"`

	// Sequence children (the key depends on the kind of component).
	Normalizers   []component `json:"normalizers"`
	PreTokenizers []component `json:"pretokenizers"`
	Processors    []component `json:"processors"`
	Decoders      []component `json:"decoders"`

	// Replace, Split, Prepend, Strip, Metaspace, ByteLevel, Digits.
	Pattern          *pattern `json:"pattern"`
	Content          *string  `json:"content"`
	Prepend          *string  `json:"prepend"`
	Behavior         string   `json:"behavior"`
	Invert           bool     `json:"invert"`
	Start            int      `json:"start"`
	Stop             int      `json:"stop"`
	Replacement      *string  `json:"replacement"`
	PrependScheme    string   `json:"prepend_scheme"`
	AddPrefixSpace   *bool    `json:"add_prefix_space"`
	UseRegex         *bool    `json:"use_regex"`
	IndividualDigits bool     `json:"individual_digits"`

	// TemplateProcessing.
	Single []templatePiece `json:"single"`
}

type pattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type templatePiece struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

// parseComponent decodes an optional component ("null" or absent is nil).
func parseComponent(raw json.RawMessage, what string) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %s: %w", what, err)
	}
	return &c, nil
}

// flatten lists a component and, for a Sequence, its children in order.
func (c *component) flatten() []component {
	if c == nil {
		return nil
	}
	if c.Type != "Sequence" {
		return []component{*c}
	}
	var out []component
	for _, list := range [][]component{c.Normalizers, c.PreTokenizers, c.Processors, c.Decoders} {
		for i := range list {
			out = append(out, list[i].flatten()...)
		}
	}
	return out
}

// parseMerges reads model.merges in either of its two spellings: "a b"
// strings or ["a", "b"] pairs. Pairs whose parts contain a space are written
// with the space as U+0120 ('Ġ'), as gguf-py does, so that "a b" stays
// unambiguous.
func parseMerges(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.merges: %w", err)
	}
	out := make([]string, len(list))
	for i, m := range list {
		if len(m) > 0 && m[0] == '"' {
			if err := json.Unmarshal(m, &out[i]); err != nil {
				return nil, fmt.Errorf("tokenizer.json: model.merges[%d]: %w", i, err)
			}
			if strings.Count(out[i], " ") != 1 {
				return nil, fmt.Errorf("tokenizer.json: model.merges[%d] = %q is not two symbols separated by one space", i, out[i])
			}
			continue
		}
		var pair []string
		if err := json.Unmarshal(m, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("tokenizer.json: model.merges[%d] is neither \"a b\" nor a pair of strings", i)
		}
		out[i] = strings.ReplaceAll(pair[0], " ", "\u0120") + " " + strings.ReplaceAll(pair[1], " ", "\u0120")
	}
	return out, nil
}

// configJSON is the part of a tokenizer_config.json that matters here.
type configJSON struct {
	AddBOS       *bool           `json:"add_bos_token"`
	AddEOS       *bool           `json:"add_eos_token"`
	ChatTemplate json.RawMessage `json:"chat_template"`
	CleanUp      *bool           `json:"clean_up_tokenization_spaces"`
	BOS          json.RawMessage `json:"bos_token"`
	EOS          json.RawMessage `json:"eos_token"`
	UNK          json.RawMessage `json:"unk_token"`
	SEP          json.RawMessage `json:"sep_token"`
	PAD          json.RawMessage `json:"pad_token"`
	CLS          json.RawMessage `json:"cls_token"`
	MASK         json.RawMessage `json:"mask_token"`
	AddedDecoder map[string]struct {
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens_decoder"`
}

// tokenText reads a special-token entry of tokenizer_config.json: a string,
// an object with "content", or null.
func tokenText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, s != ""
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Content != "" {
		return o.Content, true
	}
	return "", false
}

// chatTemplates reads chat_template: a string, or a list of {name, template}.
// The template named "default" (or the string) is returned first with an
// empty name.
func chatTemplates(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return [][2]string{{"", s}}, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("tokenizer_config.json: chat_template is neither a string nor a list of {name, template}: %w", err)
	}
	var out [][2]string
	for _, t := range list {
		if t.Name == "default" {
			out = append([][2]string{{"", t.Template}}, out...)
		} else {
			out = append(out, [2]string{t.Name, t.Template})
		}
	}
	return out, nil
}
