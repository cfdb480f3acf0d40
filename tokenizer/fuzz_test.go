package tokenizer

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slm-dev/slm/gguf"
)

// mixedText is about 4 KB of mixed prose, code, numbers and non-Latin text.
var mixedText = strings.Repeat(`The quick brown fox jumps over the lazy dog. In 2023, 42% of 1,000 respondents said "yes"; the rest (58%) didn't answer.
func main() {
	for i := 0; i < 10; i++ {
		fmt.Printf("%d: %s\n", i, strings.Repeat("ab", i))
	}
}
Führer, naïve café, Straße — Привет мир, γειά σου κόσμε, 日本語のテキスト 中文 한국어 🦙🚀 <|end|> <s>
`, 12)

var fuzzFamilies = []string{"llama-spm", "phi-3", "gpt-2", "bert-bge", "deepseek-llm"}

// FuzzEncode feeds random bytes and flags to SPM, BPE and WordPiece
// vocabularies. Nothing may panic, ids must be in range, and where llama.cpp's
// SPM guarantees it (plain llama vocabulary, no special handling, valid UTF-8
// without the "▁" escape character itself) decoding must give the text back.
func FuzzEncode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(ggufCaseDir, "*.json"))
	for _, path := range files {
		cf := readCaseFile(f, path)
		for i, c := range cf.Cases {
			if i%4 == 0 {
				f.Add(c.input(f), uint8(i))
			}
		}
	}
	f.Add([]byte("a\xf4\x90\x80\x80b"), uint8(2))
	f.Add([]byte("<s>\xff <|end|> \xe4\xbd"), uint8(0x31))

	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		fam := fuzzFamilies[int(sel&0x0F)%len(fuzzFamilies)]
		addSpecial, parseSpecial := sel&0x10 != 0, sel&0x20 != 0
		tk := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-"+fam+".gguf"))
		ids, err := tk.Encode(data, addSpecial, parseSpecial)
		if err != nil {
			if tk.typ == vocabSPM || !errors.Is(err, ErrInvalidUTF8) {
				t.Fatalf("%s: unexpected error %v", fam, err)
			}
			return
		}
		for _, id := range ids {
			if id < 0 || int(id) >= tk.NVocab() {
				t.Fatalf("%s: id %d out of range", fam, id)
			}
		}
		dec := tk.Decode(ids)
		if fam == "llama-spm" && !addSpecial && !parseSpecial && utf8.Valid(data) && !bytes.Contains(data, []byte("\u2581")) {
			if !bytes.Equal(dec, data) {
				t.Fatalf("round trip: %q -> %v -> %q", data, ids, dec)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	for _, fam := range []string{"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "bert-bge"} {
		b.Run(fam, func(b *testing.B) {
			tk := loadTokenizer(b, filepath.Join(ggufCaseDir, "ggml-vocab-"+fam+".gguf"))
			text := []byte(mixedText)
			ids, err := tk.Encode(text, true, true)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				tk.Encode(text, true, true)
				n++
			}
			b.ReportMetric(float64(len(ids)*n)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkEncodeLongWord is one 64 KB fragment without spaces: SPM merges
// over the whole fragment, so this shows the priority queue's O(n log n).
func BenchmarkEncodeLongWord(b *testing.B) {
	tk := loadTokenizer(b, filepath.Join(ggufCaseDir, "ggml-vocab-llama-spm.gguf"))
	text := []byte(strings.Repeat("supercalifragilistic", 64<<10/20))
	ids, _ := tk.Encode(text, false, false)
	b.SetBytes(int64(len(text)))
	n := 0
	for b.Loop() {
		tk.Encode(text, false, false)
		n++
	}
	b.ReportMetric(float64(len(ids)*n)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkDecode(b *testing.B) {
	for _, fam := range []string{"llama-spm", "gpt-2"} {
		b.Run(fam, func(b *testing.B) {
			tk := loadTokenizer(b, filepath.Join(ggufCaseDir, "ggml-vocab-"+fam+".gguf"))
			ids, _ := tk.Encode([]byte(mixedText), false, false)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				tk.Decode(ids)
				n++
			}
			b.ReportMetric(float64(len(ids)*n)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkFromGGUF measures building a tokenizer from already parsed
// metadata (maps, special-token trie, piece cache and, for BPE, merges).
func BenchmarkFromGGUF(b *testing.B) {
	for _, fam := range []string{"llama-spm", "gpt-2", "deepseek-llm"} {
		b.Run(fam, func(b *testing.B) {
			f, err := gguf.Open(filepath.Join(ggufCaseDir, "ggml-vocab-"+fam+".gguf"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FromGGUF(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
