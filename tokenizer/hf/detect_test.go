package hf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyJSON builds a small byte-level tokenizer.json around a pre_tokenizer.
func tinyJSON(t *testing.T, pre any, model map[string]any, normalizer any) []byte {
	t.Helper()
	m := map[string]any{
		"type":   "BPE",
		"vocab":  map[string]int{"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4, "1": 5, "<|end|>": 6},
		"merges": []string{"a b", "Ġ ab"},
	}
	for k, v := range model {
		m[k] = v
	}
	js, err := json.Marshal(map[string]any{
		"added_tokens":  []any{map[string]any{"id": 6, "content": "<|end|>", "special": true}},
		"normalizer":    normalizer,
		"pre_tokenizer": pre,
		"decoder":       map[string]any{"type": "ByteLevel"},
		"model":         m,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func split(regex string) map[string]any {
	return map[string]any{"type": "Split", "pattern": map[string]any{"Regex": regex}, "behavior": "Isolated", "invert": false}
}

func byteLevel(useRegex bool) map[string]any {
	return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": useRegex}
}

func seq(parts ...any) map[string]any {
	return map[string]any{"type": "Sequence", "pretokenizers": parts}
}

func TestDetectPre(t *testing.T) {
	digits := map[string]any{"type": "Digits", "individual_digits": true}
	tests := []struct {
		name   string
		pre    any
		model  map[string]any
		config string
		want   string
	}{
		{"gpt-2", byteLevel(true), nil, "", "gpt-2"},
		{"llama-bpe", seq(split(regexLlama3), byteLevel(false)), map[string]any{"ignore_merges": true}, "", "llama-bpe"},
		{"smaug-bpe", seq(split(regexLlama3), byteLevel(false)), nil, "", "smaug-bpe"},
		{"qwen2", seq(split(regexQwen2), byteLevel(false)), nil, "", "qwen2"},
		{"smollm", seq(digits, byteLevel(true)), nil, `{"clean_up_tokenization_spaces": false}`, "smollm"},
		{"starcoder", seq(digits, byteLevel(true)), nil, `{"clean_up_tokenization_spaces": true}`, "starcoder"},
		{"tekken", seq(split(regexTekken), byteLevel(false)), nil, "", "tekken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := Parse(tinyJSON(t, tc.pre, tc.model, nil), []byte(tc.config), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tk.Kind != KindBPE || tk.Pre != tc.want {
				t.Errorf("kind %s pre %q, want gpt2 %q", tk.Kind, tk.Pre, tc.want)
			}
			ids, err := tk.Encode("ab<|end|> ab", false)
			if err != nil || !slices.Equal(ids, []int32{2, 6, 4}) {
				t.Errorf("Encode = %v %v", ids, err)
			}
			if got := tk.Decode(ids); got != "ab<|end|> ab" {
				t.Errorf("Decode = %q", got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		js   []byte
		opt  Options
		want string
	}{
		{"unknown regex", tinyJSON(t, seq(split(`\w+`), byteLevel(false)), nil, nil), Options{}, "unrecognised byte-level pre_tokenizer"},
		{"whitespace pre", tinyJSON(t, map[string]any{"type": "Whitespace"}, nil, nil), Options{}, "--pre"},
		{"lowercase", tinyJSON(t, byteLevel(true), nil, map[string]any{"type": "Lowercase"}), Options{}, "Lowercase"},
		{"wordpiece", tinyJSON(t, byteLevel(true), map[string]any{"type": "WordPiece"}, nil), Options{}, "WordPiece"},
		{"unigram", tinyJSON(t, byteLevel(true), map[string]any{"type": "Unigram"}, nil), Options{}, "not supported"},
		{"bad pre override", tinyJSON(t, byteLevel(true), nil, nil), Options{Pre: "nonsense"}, "nonsense"},
		{"bad id", tinyJSON(t, byteLevel(true), map[string]any{"vocab": map[string]int{"a": -1}}, nil), Options{}, "id -1"},
		{"dup id", tinyJSON(t, byteLevel(true), map[string]any{"vocab": map[string]int{"a": 0, "b": 0}}, nil), Options{}, "used by both"},
		{"bad merge", tinyJSON(t, byteLevel(true), map[string]any{"merges": []string{"abc"}}, nil), Options{}, "merges[0]"},
		{"not json", []byte("{"), Options{}, "tokenizer.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.js, nil, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// An explicit --pre names an unrecognised pre-tokenizer.
	tk, err := Parse(tinyJSON(t, seq(split(`\w+`), byteLevel(false)), nil, nil), nil, Options{Pre: "qwen2"})
	if err != nil || tk.Pre != "qwen2" {
		t.Errorf("Pre override: %v %v", tk, err)
	}
}

func TestLossyUTF8(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abc", "abc"},
		{"a\xffb", "a\uFFFDb"},
		{"\xe4\xbd", "\uFFFD"},                 // truncated 3-byte sequence: one maximal subpart
		{"\xe4\xbd\xe5\xa5\xbd", "\uFFFD好"},    // as the WHATWG decoder
		{"\xf0\x9f\x98", "\uFFFD"},             // truncated 4-byte sequence
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: each byte
		{"\xc0\xaf", "\uFFFD\uFFFD"},           // overlong
	} {
		if got := lossyUTF8([]byte(c.in)); got != c.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestChatTemplateFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tokenizer.json", string(tinyJSON(t, byteLevel(true), nil, nil)))
	write("chat_template.json", `{"chat_template": "from json"}`)
	tk, err := Load(dir, Options{})
	if err != nil || tk.ChatTemplate() != "from json" {
		t.Fatalf("chat_template.json: %q %v", tk.ChatTemplate(), err)
	}
	write("chat_template.jinja", "from jinja")
	write("additional_chat_templates/tool_use.jinja", "tools")
	tk, err = Load(dir, Options{})
	if err != nil || tk.ChatTemplate() != "from jinja" {
		t.Fatalf("chat_template.jinja: %q %v", tk.ChatTemplate(), err)
	}
	meta := map[string]any{}
	for _, kv := range tk.Metadata(0) {
		meta[kv.Key] = kv.Value
	}
	if meta["tokenizer.chat_template.tool_use"] != "tools" {
		t.Errorf("named template: %v", meta)
	}
	write("tokenizer_config.json", `{"chat_template": "from config"}`)
	if tk, err = Load(dir, Options{}); err != nil || tk.ChatTemplate() != "from config" {
		t.Fatalf("tokenizer_config.json: %q %v", tk.ChatTemplate(), err)
	}
}
