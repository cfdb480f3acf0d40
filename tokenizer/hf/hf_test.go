package hf

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/tokenizer"
)

var families = []string{"gpt2", "qwen3", "llama3", "mistral-spm", "gemma3"}

type hfCase struct {
	Name           string  `json:"name"`
	Text           string  `json:"text"`
	AddSpecial     bool    `json:"add_special"`
	IDs            []int32 `json:"ids"`
	Decoded        string  `json:"decoded"`
	Error          string  `json:"error"`
	Disagreement   string  `json:"reference_disagreement"`
	DecodedBytesHx string  `json:"decoded_bytes_hex"`
}

func dataDir(family string) string {
	return filepath.Join("..", "..", "testdata", "tokenizer", "hf", family)
}

var (
	loadMu sync.Mutex
	loaded = map[string]*Tokenizer{}
)

// load parses a family's tokenizer once per test binary.
func load(t testing.TB, family string) *Tokenizer {
	t.Helper()
	loadMu.Lock()
	defer loadMu.Unlock()
	if tk, ok := loaded[family]; ok {
		return tk
	}
	tk, err := Load(dataDir(family), Options{})
	if err != nil {
		t.Fatal(err)
	}
	loaded[family] = tk
	return tk
}

func loadCases(t testing.TB, family string) []hfCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir(family), "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []hfCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Cases
}

// TestCases runs every tokenizer.json conformance case: ids and decoded text.
func TestCases(t *testing.T) {
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			tk := load(t, fam)
			cases := loadCases(t, fam)
			pass := 0
			for _, c := range cases {
				got, err := tk.Encode(c.Text, c.AddSpecial)
				if c.Error != "" {
					pass++
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", c.Name, err)
					continue
				}
				ok := true
				if !slices.Equal(got, c.IDs) {
					t.Errorf("%s: %q add_special=%v:\n got %v\nwant %v", c.Name, c.Text, c.AddSpecial, got, c.IDs)
					ok = false
				}
				want := c.Decoded
				if c.DecodedBytesHx != "" {
					b, _ := hex.DecodeString(c.DecodedBytesHx)
					want = string(b)
				}
				if dec := tk.Decode(c.IDs); dec != want {
					t.Errorf("%s: decode %v:\n got %q\nwant %q", c.Name, c.IDs, dec, want)
					ok = false
				}
				if ok {
					pass++
				}
			}
			t.Logf("%s: %d/%d cases pass", fam, pass, len(cases))
		})
	}
}

// TestGGUFEquivalence writes each tokenizer's metadata to a GGUF file, reads
// it back with the GGUF tokenizer and checks that it tokenizes every case
// like the tokenizer.json; the only differences allowed are the cases the
// reference marks as NFC disagreements (llama.cpp's GGUF path skips NFC).
func TestGGUFEquivalence(t *testing.T) {
	for _, fam := range families {
		t.Run(fam, func(t *testing.T) {
			tk := load(t, fam)
			var buf bytes.Buffer
			w := gguf.NewWriter(&buf)
			w.AddKV("general.architecture", "llama")
			for _, kv := range tk.Metadata(0) {
				w.AddKV(kv.Key, kv.Value)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Parse(fam+".gguf", buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			gt, err := tokenizer.FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			same, nfc := 0, 0
			for _, c := range loadCases(t, fam) {
				if c.Error != "" {
					continue
				}
				got, err := gt.Encode([]byte(c.Text), c.AddSpecial, true)
				if err != nil {
					t.Errorf("%s: %v", c.Name, err)
					continue
				}
				if slices.Equal(got, c.IDs) {
					same++
					continue
				}
				if tk.nfc && c.Disagreement != "" {
					nfc++
					continue
				}
				t.Errorf("%s: GGUF gives %v, tokenizer.json %v", c.Name, got, c.IDs)
			}
			t.Logf("%s: %d cases equal, %d NFC differences", fam, same, nfc)
		})
	}
}

// TestMetadataSpecials checks the special tokens, flags and chat template
// each family's metadata carries.
func TestMetadataSpecials(t *testing.T) {
	want := map[string]struct {
		kind           Kind
		pre            string
		bos, eos       int32
		addBOS         bool
		hasChat        bool
		addSpacePrefix any
	}{
		"gpt2":        {KindBPE, "gpt-2", 50256, 50256, false, false, nil},
		"qwen3":       {KindBPE, "qwen2", -1, 151645, false, true, nil},
		"llama3":      {KindBPE, "llama-bpe", 128000, 128009, true, true, nil},
		"mistral-spm": {KindSPM, "", 1, 2, true, false, true},
		"gemma3":      {KindSPM, "", 2, 106, true, true, false},
	}
	for _, fam := range families {
		w := want[fam]
		tk := load(t, fam)
		meta := map[string]any{}
		for _, kv := range tk.Metadata(0) {
			meta[kv.Key] = kv.Value
		}
		if tk.Kind != w.kind || tk.Pre != w.pre || tk.BOS() != w.bos || tk.EOS() != w.eos {
			t.Errorf("%s: kind %s pre %q bos %d eos %d, want %s %q %d %d", fam, tk.Kind, tk.Pre, tk.BOS(), tk.EOS(), w.kind, w.pre, w.bos, w.eos)
		}
		if meta["tokenizer.ggml.add_bos_token"] != w.addBOS {
			t.Errorf("%s: add_bos_token = %v", fam, meta["tokenizer.ggml.add_bos_token"])
		}
		if meta["tokenizer.ggml.add_space_prefix"] != w.addSpacePrefix {
			t.Errorf("%s: add_space_prefix = %v", fam, meta["tokenizer.ggml.add_space_prefix"])
		}
		ct, _ := meta["tokenizer.chat_template"].(string)
		if (ct != "") != w.hasChat || ct != tk.ChatTemplate() {
			t.Errorf("%s: chat template of %d bytes", fam, len(ct))
		}
	}
}

// TestNFC: qwen3 normalizes with NFC before tokenizing, between added tokens
// only, so decomposed and composed spellings give the same ids.
func TestNFC(t *testing.T) {
	tk := load(t, "qwen3")
	for _, c := range []struct{ raw, nfc string }{
		{"e\u0301t\u00e9", "\u00e9t\u00e9"},
		{"\u212b ngstr\u00f6m", "\u00c5 ngstr\u00f6m"},
		{"\u2126hm", "\u03a9hm"},
		{"\u1100\u1161\u11a8", "\uac01"},
		{"a\u2000b\u2001c", "a\u2002b\u2003c"},
		{"<|im_start|>n\u0303<|im_end|>", "<|im_start|>\u00f1<|im_end|>"},
	} {
		got, err := tk.Encode(c.raw, false)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tk.Encode(c.nfc, false)
		if !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v (as %q)", c.raw, got, want, c.nfc)
		}
		if dec := tk.Decode(got); dec != c.nfc {
			t.Errorf("%q decodes to %q, want %q", c.raw, dec, c.nfc)
		}
	}
	// gpt2 has no normalizer: the decomposed form stays as it is.
	g := load(t, "gpt2")
	a, _ := g.Encode("e\u0301", false)
	b, _ := g.Encode("\u00e9", false)
	if slices.Equal(a, b) {
		t.Error("gpt2 normalized its input")
	}
}
