package tokenizer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/slm-dev/slm/gguf"
)

// bpeFamilies are the byte-level BPE vocabularies in testdata/tokenizer/gguf.
var bpeFamilies = []string{"gpt-2", "deepseek-coder", "deepseek-llm", "falcon", "starcoder", "mpt", "refact"}

type bpeVocab struct {
	b      *bpe
	tokens []string
	types  []int32
	pre    string
	addBOS bool
	bos    int32
}

var (
	bpeVocabMu    sync.Mutex
	bpeVocabCache = map[string]*bpeVocab{}
)

func bpeTestdata(name string) string {
	return filepath.Join("..", "testdata", "tokenizer", "gguf", name)
}

// loadBPEVocab opens ggml-vocab-<family>.gguf and builds the BPE tokenizer from it.
func loadBPEVocab(tb testing.TB, family string) *bpeVocab {
	tb.Helper()
	bpeVocabMu.Lock()
	defer bpeVocabMu.Unlock()
	if v, ok := bpeVocabCache[family]; ok {
		return v
	}
	path := bpeTestdata("ggml-vocab-" + family + ".gguf")
	f, err := gguf.Open(path)
	if err != nil {
		tb.Skipf("vocab %s: %v", path, err)
	}
	defer f.Close()
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok {
		tb.Fatalf("%s: no tokenizer.ggml.tokens", family)
	}
	merges, ok := f.Strings("tokenizer.ggml.merges")
	if !ok {
		tb.Fatalf("%s: no tokenizer.ggml.merges", family)
	}
	pre, _ := f.String("tokenizer.ggml.pre")
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	v := &bpeVocab{
		tokens: slices.Clone(toks),
		types:  slices.Clone(types),
		pre:    pre,
		bos:    -1,
	}
	if x, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		v.addBOS = x
	}
	if x, ok := f.Int("tokenizer.ggml.bos_token_id"); ok {
		v.bos = int32(x)
	}
	b, err := newBPE(v.tokens, slices.Clone(merges), pre)
	if err != nil {
		tb.Fatalf("%s: newBPE: %v", family, err)
	}
	v.b = b
	bpeVocabCache[family] = v
	return v
}

type bpeCase struct {
	Name         string  `json:"name"`
	Text         string  `json:"text"`
	TextBytesHex string  `json:"text_bytes_hex"`
	AddSpecial   bool    `json:"add_special"`
	ParseSpecial bool    `json:"parse_special"`
	IDs          []int32 `json:"ids"`
	Error        string  `json:"error"`
}

func loadBPECases(tb testing.TB, family string) []bpeCase {
	tb.Helper()
	data, err := os.ReadFile(bpeTestdata(family + ".json"))
	if err != nil {
		tb.Skipf("cases: %v", err)
	}
	var file struct {
		Cases []bpeCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		tb.Fatalf("%s.json: %v", family, err)
	}
	return file.Cases
}

// specialIn reports whether text contains the text of a token that llama.cpp splits
// out before BPE: USER_DEFINED always, CONTROL when parse_special.
func (v *bpeVocab) specialIn(text string, parseSpecial bool) bool {
	for id, typ := range v.types {
		if typ == 4 || (parseSpecial && typ == 3) {
			if t := v.tokens[id]; t != "" && strings.Contains(text, t) {
				return true
			}
		}
	}
	return false
}

func (v *bpeVocab) decode(ids []int32) []byte {
	var out []byte
	for _, id := range ids {
		out = append(out, byteLevelDecode(v.tokens[id])...)
	}
	return out
}

// TestBPEConformance runs the cases that reach the BPE tokenizer unchanged: no special
// or user-defined token text, no reference error, and add_special only when it adds
// nothing but a leading BOS (which is dropped from the expected ids). Invalid UTF-8 is
// passed raw (text_bytes_hex): encode decodes it as llama.cpp does.
func TestBPEConformance(t *testing.T) {
	for _, family := range bpeFamilies {
		t.Run(family, func(t *testing.T) {
			v := loadBPEVocab(t, family)
			cases := loadBPECases(t, family)
			pass, fail, skip := 0, 0, 0
			for _, c := range cases {
				text := c.Text
				if c.TextBytesHex != "" {
					raw, err := hex.DecodeString(c.TextBytesHex)
					if err != nil {
						t.Fatalf("%s: %v", c.Name, err)
					}
					text = string(raw)
				}
				if c.Error != "" || c.IDs == nil || v.specialIn(text, c.ParseSpecial) {
					skip++
					continue
				}
				want := c.IDs
				if c.AddSpecial {
					if !v.addBOS {
						// nothing is added for these vocabs
					} else if len(want) > 0 && want[0] == v.bos {
						want = want[1:]
					} else {
						skip++
						continue
					}
				}
				got := v.b.encode(text, nil)
				if slices.Equal(got, want) {
					pass++
					continue
				}
				fail++
				t.Errorf("%s %q:\n got  %v %q\n want %v %q", c.Name, text, got, v.pieces(got), want, v.pieces(want))
			}
			t.Logf("%s (pre=%q): %d/%d passed, %d skipped", family, v.pre, pass, pass+fail, skip)
		})
	}
}

func (v *bpeVocab) pieces(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if id >= 0 && int(id) < len(v.tokens) {
			out[i] = v.tokens[id]
		} else {
			out[i] = fmt.Sprint(id)
		}
	}
	return out
}

func TestBPEUnknownPre(t *testing.T) {
	if _, err := newBPE([]string{"a"}, nil, "no-such-pre"); err == nil {
		t.Fatal("newBPE accepted an unknown pre-tokenizer")
	}
	for _, pre := range []string{"", "default", "gpt-2", "llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral",
		"dbrx", "smaug-bpe", "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon", "mpt", "starcoder",
		"refact", "command-r", "qwen2", "deepseek-r1-qwen", "stablelm2", "olmo", "poro-chat", "chatglm-bpe",
		"viking", "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "chameleon",
		"minerva-7b", "megrez", "gpt-4o", "phi-2", "roberta-bpe", "gigachat", "jina-v2-code"} {
		if _, err := newBPE([]string{"a"}, nil, pre); err != nil {
			t.Errorf("pre %q: %v", pre, err)
		}
	}
}

// A tiny hand-made vocab: merge order, ties, byte fallback and ignore_merges.
func TestBPEMergesAndFallback(t *testing.T) {
	enc := func(s string) string { // byte-level form
		var sb strings.Builder
		for _, c := range []byte(s) {
			sb.WriteRune(byteToRune[c])
		}
		return sb.String()
	}
	tokens := []string{"a", "b", "c", "ab", "bc", "abc", enc(" "), enc(" a"), "x"}
	merges := []string{"b c", "a b", "a bc", enc(" ") + " a"}
	b, err := newBPE(tokens, merges, "gpt-2")
	if err != nil {
		t.Fatal(err)
	}
	check := func(text string, want ...int32) {
		t.Helper()
		if got := b.encode(text, nil); !slices.Equal(got, want) {
			t.Errorf("%q: got %v want %v", text, got, want)
		}
	}
	check("abc", 5)          // b c first (rank 0), then a bc
	check("ab", 3)           // a b
	check("abab", 3, 3)      // leftmost first on equal ranks
	check(" a", 7)           // Ġ a
	check("ax", 0, 8)        // no merge
	check("é", []int32{}...) // bytes c3 a9 -> "Ã©": neither symbol nor its bytes are tokens: dropped
	check("xyz", 8)          // y, z are not tokens and their single bytes are not either... except none
	// ignore_merges: a whole pre-token that is a token wins even without a merge path.
	tokens2 := []string{"a", "b", "c", "abc", "ab"}
	b2, err := newBPE(tokens2, []string{"a b"}, "llama3")
	if err != nil {
		t.Fatal(err)
	}
	if got := b2.encode("abc", nil); !slices.Equal(got, []int32{3}) {
		t.Errorf("ignore_merges: got %v", got)
	}
	b3, _ := newBPE(tokens2, []string{"a b"}, "dbrx") // same regex, merges not ignored
	if got := b3.encode("abc", nil); !slices.Equal(got, []int32{4, 2}) {
		t.Errorf("no ignore_merges: got %v", got)
	}
}

func TestBPEByteLevelDecode(t *testing.T) {
	for c := 0; c < 256; c++ {
		got := byteLevelDecode(string(byteToRune[c]))
		if len(got) != 1 || got[0] != byte(c) {
			t.Fatalf("byte %#x: got %x", c, got)
		}
	}
	if got := string(byteLevelDecode("ĠHelloĊ")); got != " Hello\n" {
		t.Errorf("got %q", got)
	}
	// Characters outside the byte map pass through as UTF-8.
	if got := string(byteLevelDecode("中 ")); got != "中 " {
		t.Errorf("got %q", got)
	}
}

// TestBPERoundTrip checks that decoding the ids of assorted texts gives back the text.
func TestBPERoundTrip(t *testing.T) {
	texts := []string{
		"Hello, world! It's a test.", "  leading and trailing  ", "tab\there\r\nnewline\n\n\n",
		"數字 1234567 and ١٢٣ and ²³", "emoji 🦙🔥👍🏽 zwj 👨‍👩‍👧", "Ünïcödé àçcéñts e\u0301",
		"CamelCaseHTTPServer getHTTPResponseCode", "a\u3000b\u00a0c\u2028d\u0085e", "~~~$$$```|||",
		strings.Repeat("x", 5000), strings.Repeat(" ", 3000) + "end", strings.Repeat("1", 1000),
		"\x00\x01\x1f\x7f control", "<|endoftext|> not special here",
	}
	for _, family := range bpeFamilies {
		v := loadBPEVocab(t, family)
		for _, text := range texts {
			ids := v.b.encode(text, nil)
			if got := string(v.decode(ids)); got != v.reachable(text) {
				t.Errorf("%s %q: round trip gave %q", family, text, got)
			}
		}
	}
}

func FuzzBPEEncode(f *testing.F) {
	for _, s := range []string{"Hello world", "  \n\t x", "日本語のテキスト", "I'M SURE 123456 it's", "🦙\u0301a"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		family := bpeFamilies[int(which)%len(bpeFamilies)]
		v := loadBPEVocab(t, family)
		text := strings.ToValidUTF8(string(data), "\uFFFD")
		ids := v.b.encode(text, nil)
		for _, id := range ids {
			if id < 0 || int(id) >= len(v.tokens) {
				t.Fatalf("%s: bad id %d", family, id)
			}
		}
		if got, want := string(v.decode(ids)), v.reachable(text); got != want {
			t.Fatalf("%s %q: round trip gave %q, want %q (ids %v)", family, text, got, want, ids)
		}
	})
}

// reachable is text without the bytes whose byte-level symbol is not in the vocab
// (falcon, starcoder, mpt and refact lack a few): llama.cpp drops those.
func (v *bpeVocab) reachable(text string) string {
	b := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		if v.b.symTok[v.b.charSym[text[i]]] >= 0 {
			b = append(b, text[i])
		}
	}
	return string(b)
}

// bpeBenchText is a mix of English prose, code, numbers, whitespace runs and some
// non-Latin text.
func bpeBenchText() string {
	var sb strings.Builder
	r := rand.New(rand.NewSource(1))
	words := []string{"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "tokenizer", "llama",
		"func", "main()", "{", "}", "return", "x := 42", "if err != nil", "3.14159", "2025", "don't", "I'M",
		"naïve", "café", "Москва", "東京", "😀", "\n", "\n\n", "    ", "\t", "#include", "<stdio.h>", "...", "!!"}
	for sb.Len() < 1<<20 {
		sb.WriteString(words[r.Intn(len(words))])
		if r.Intn(4) != 0 {
			sb.WriteByte(' ')
		}
	}
	return sb.String()
}

func BenchmarkBPEEncode(b *testing.B) {
	text := bpeBenchText()
	for _, family := range []string{"gpt-2", "deepseek-llm", "falcon"} {
		b.Run(family, func(b *testing.B) {
			v := loadBPEVocab(b, family)
			var ids []int32
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ids = v.b.encode(text, ids[:0])
			}
			b.ReportMetric(float64(len(text))*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
		})
	}
}

// BenchmarkBPEEncodeUncached measures BPE without the word cache (every word new).
func BenchmarkBPEEncodeUncached(b *testing.B) {
	text := bpeBenchText()
	v := loadBPEVocab(b, "gpt-2")
	nb, err := newBPE(v.tokens, nil, "gpt-2")
	if err != nil {
		b.Fatal(err)
	}
	*nb = bpe{pre: v.b.pre, tokToID: v.b.tokToID, byteTok: v.b.byteTok, symStr: v.b.symStr,
		symTok: v.b.symTok, charSym: v.b.charSym, merges: v.b.merges}
	nb.cache.init(0)
	b.ResetTimer()
	var ids []int32
	for i := 0; i < b.N; i++ {
		ids = nb.encode(text, ids[:0])
	}
	b.ReportMetric(float64(len(text))*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
}

// A long pre-token must not be quadratic.
func TestBPELongWord(t *testing.T) {
	v := loadBPEVocab(t, "gpt-2")
	r := rand.New(rand.NewSource(2))
	var sb strings.Builder
	for sb.Len() < 200000 {
		sb.WriteByte("abcdefghij"[r.Intn(10)])
	}
	text := sb.String()
	ids := v.b.encode(text, nil)
	if got := string(v.decode(ids)); got != text {
		t.Fatal("long word does not round-trip")
	}
}

// byteLevelDecode is an independent decoder for the tests: it maps a GPT-2
// byte-level piece back to raw bytes.
func byteLevelDecode(piece string) []byte {
	out := make([]byte, 0, len(piece))
	for i := 0; i < len(piece); {
		r, size := utf8.DecodeRuneInString(piece[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			out = append(out, piece[i])
		case r < rune(len(runeToByte)) && runeToByte[r] >= 0:
			out = append(out, byte(runeToByte[r]))
		default:
			out = append(out, piece[i:i+size]...)
		}
		i += size
	}
	return out
}
