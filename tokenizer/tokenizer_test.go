package tokenizer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/slm-dev/slm/gguf"
)

const (
	ggufCaseDir  = "../testdata/tokenizer/gguf"
	modelDir     = "../testdata/models"
	referenceDir = "../testdata/reference"
)

// loaded tokenizers are shared between tests (loading the larger vocabularies
// takes a few tens of milliseconds).
var (
	loadMu sync.Mutex
	loaded = map[string]*Tokenizer{}
)

func loadTokenizer(tb testing.TB, path string) *Tokenizer {
	tb.Helper()
	loadMu.Lock()
	defer loadMu.Unlock()
	if tk, ok := loaded[path]; ok {
		return tk
	}
	f, err := gguf.Open(path)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	tk, err := FromGGUF(f)
	if err != nil {
		tb.Fatalf("FromGGUF(%s): %v", path, err)
	}
	loaded[path] = tk
	return tk
}

type caseFile struct {
	Family string     `json:"family"`
	Vocab  string     `json:"vocab_file"`
	Flags  string     `json:"llama_cpp_vocab_flags"`
	Cases  []caseJSON `json:"cases"`
}

type caseJSON struct {
	Name         string  `json:"name"`
	Text         string  `json:"text"`
	TextHex      string  `json:"text_bytes_hex"`
	AddSpecial   bool    `json:"add_special"`
	ParseSpecial bool    `json:"parse_special"`
	IDs          []int32 `json:"ids"`
	Error        any     `json:"error"`
	Decoded      string  `json:"decoded"`
	DecodedHex   string  `json:"decoded_bytes_hex"`
}

func (c caseJSON) input(tb testing.TB) []byte {
	if c.TextHex != "" {
		b, err := hex.DecodeString(c.TextHex)
		if err != nil {
			tb.Fatalf("%s: bad text_bytes_hex: %v", c.Name, err)
		}
		return b
	}
	return []byte(c.Text)
}

func readCaseFile(tb testing.TB, path string) caseFile {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var cf caseFile
	if err := json.Unmarshal(data, &cf); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return cf
}

// checkCase runs one conformance case and returns what failed ("" on success).
func checkCase(tk *Tokenizer, c caseJSON, in []byte) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprintf("panic: %v", r)
		}
	}()
	ids, err := tk.Encode(in, c.AddSpecial, c.ParseSpecial)
	if c.Error != nil || c.IDs == nil {
		// The reference throws; any non-crashing outcome is accepted, an
		// error is the closest match.
		if err == nil {
			return "" // accepted, but see TestConformanceErrorCases
		}
		return ""
	}
	if err != nil {
		return fmt.Sprintf("Encode error: %v", err)
	}
	if !slices.Equal(ids, c.IDs) {
		return fmt.Sprintf("ids\n got  %v\n want %v", ids, c.IDs)
	}
	want := []byte(c.Decoded)
	if c.DecodedHex != "" {
		want, _ = hex.DecodeString(c.DecodedHex)
	}
	if got := tk.Decode(ids); !bytes.Equal(got, want) {
		return fmt.Sprintf("decoded\n got  %q\n want %q", got, want)
	}
	return ""
}

// TestConformanceGGUF runs every case of every testdata/tokenizer/gguf/*.json
// file against llama.cpp's expected ids and detokenization, and logs the pass
// count per family.
func TestConformanceGGUF(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(ggufCaseDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files in %s (%v)", ggufCaseDir, err)
	}
	sort.Strings(files)
	var summary []string
	for _, path := range files {
		cf := readCaseFile(t, path)
		pass, total := 0, 0
		t.Run(cf.Family, func(t *testing.T) {
			tk := loadTokenizer(t, filepath.Join(ggufCaseDir, filepath.Base(cf.Vocab)))
			for _, c := range cf.Cases {
				total++
				if msg := checkCase(tk, c, c.input(t)); msg != "" {
					t.Errorf("%s %q (add_special=%v parse_special=%v): %s", c.Name, truncate(c.Text, 60), c.AddSpecial, c.ParseSpecial, msg)
					continue
				}
				pass++
			}
		})
		summary = append(summary, fmt.Sprintf("%-15s %3d/%3d", cf.Family, pass, total))
	}
	t.Logf("conformance per family:\n%s", strings.Join(summary, "\n"))
}

// TestConformanceErrorCases checks that the inputs llama.cpp throws on (a
// codepoint above U+10FFFF for BPE/WordPiece) give an error here.
func TestConformanceErrorCases(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(ggufCaseDir, "*.json"))
	n := 0
	for _, path := range files {
		cf := readCaseFile(t, path)
		tk := loadTokenizer(t, filepath.Join(ggufCaseDir, filepath.Base(cf.Vocab)))
		for _, c := range cf.Cases {
			if c.Error == nil && c.IDs != nil {
				continue
			}
			n++
			_, err := tk.Encode(c.input(t), c.AddSpecial, c.ParseSpecial)
			if !errors.Is(err, ErrInvalidUTF8) {
				t.Errorf("%s/%s: Encode error = %v, want ErrInvalidUTF8", cf.Family, c.Name, err)
			}
		}
	}
	if n == 0 {
		t.Log("no error cases in the case files")
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type referenceFile struct {
	Model struct {
		BOS    int32 `json:"bos"`
		EOS    int32 `json:"eos"`
		AddBOS bool  `json:"add_bos"`
		NVocab int   `json:"n_vocab"`
	} `json:"model"`
	Tokenize []struct {
		Name               string   `json:"name"`
		TextHex            string   `json:"text_hex"`
		Tokens             []int32  `json:"tokens"`
		TokensNoSpecial    []int32  `json:"tokens_no_special"`
		TokensParseSpecial []int32  `json:"tokens_parse_special"`
		PiecesHex          []string `json:"pieces_hex"`
		DetokHex           string   `json:"detok_no_special_hex"`
	} `json:"tokenize"`
	Prompts []struct {
		Name   string `json:"name"`
		Greedy struct {
			Tokens    []int32  `json:"tokens"`
			PiecesHex []string `json:"pieces_hex"`
		} `json:"greedy"`
	} `json:"prompts"`
}

// TestReferenceModels checks the `tokenize` data of the two real-tokenizer
// models against llama.cpp: ids with and without special handling, pieces,
// detokenization, and the pieces of generated tokens.
func TestReferenceModels(t *testing.T) {
	// The synthetic models have no tokenize section; their vocabulary flags
	// and the pieces of their generated tokens are still checked.
	for _, name := range []string{"llama-vocab-spm-f16", "gpt2-vocab-gpt2-q8_0", "llama-f32", "qwen2-f32", "gpt2-f32"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(referenceDir, name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var ref referenceFile
			if err := json.Unmarshal(data, &ref); err != nil {
				t.Fatal(err)
			}
			tk := loadTokenizer(t, filepath.Join(modelDir, name+".gguf"))
			if tk.NVocab() != ref.Model.NVocab || tk.BOS() != ref.Model.BOS || tk.EOS() != ref.Model.EOS || tk.AddBOS() != ref.Model.AddBOS {
				t.Errorf("vocab: n=%d bos=%d eos=%d add_bos=%v, want %d %d %d %v", tk.NVocab(), tk.BOS(), tk.EOS(), tk.AddBOS(),
					ref.Model.NVocab, ref.Model.BOS, ref.Model.EOS, ref.Model.AddBOS)
			}
			pass := 0
			for _, c := range ref.Tokenize {
				text, _ := hex.DecodeString(c.TextHex)
				ok := true
				for _, v := range []struct {
					what                     string
					addSpecial, parseSpecial bool
					want                     []int32
				}{
					{"tokens", true, false, c.Tokens},
					{"tokens_no_special", false, false, c.TokensNoSpecial},
					{"tokens_parse_special", true, true, c.TokensParseSpecial},
				} {
					got, err := tk.Encode(text, v.addSpecial, v.parseSpecial)
					if err != nil || !slices.Equal(got, v.want) {
						t.Errorf("%s %s: got %v (err %v), want %v", c.Name, v.what, got, err, v.want)
						ok = false
					}
				}
				for i, id := range c.Tokens {
					if i < len(c.PiecesHex) {
						if got := hex.EncodeToString(tk.Piece(id)); got != c.PiecesHex[i] {
							t.Errorf("%s: piece of %d = %s, want %s", c.Name, id, got, c.PiecesHex[i])
							ok = false
						}
					}
				}
				if got := hex.EncodeToString(tk.Decode(c.TokensNoSpecial)); got != c.DetokHex {
					t.Errorf("%s: detok = %s, want %s", c.Name, got, c.DetokHex)
					ok = false
				}
				if ok {
					pass++
				}
			}
			for _, p := range ref.Prompts {
				for i, id := range p.Greedy.Tokens {
					if i < len(p.Greedy.PiecesHex) {
						if got := hex.EncodeToString(tk.Piece(id)); got != p.Greedy.PiecesHex[i] {
							t.Errorf("prompt %s: piece of %d = %s, want %s", p.Name, id, got, p.Greedy.PiecesHex[i])
						}
					}
				}
			}
			t.Logf("%s: %d/%d tokenize cases pass", name, pass, len(ref.Tokenize))
		})
	}
}

// metaMap is an in-memory stand-in for GGUF metadata.
type metaMap map[string]any

func (m metaMap) get(key string) (any, bool) {
	v, ok := m[key]
	return v, ok
}

func (m metaMap) with(kv ...any) metaMap {
	out := metaMap{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// spmMeta is a tiny SPM vocabulary: <unk> <s> </s>, 256 byte tokens, then
// the given pieces with the given scores.
func spmMeta(pieces []string, scores []float32) metaMap {
	toks := []string{"<unk>", "<s>", "</s>"}
	sc := []float32{0, 0, 0}
	ty := []int32{ggufTypeUnknown, ggufTypeControl, ggufTypeControl}
	for b := range 256 {
		toks = append(toks, fmt.Sprintf("<0x%02X>", b))
		sc = append(sc, 0)
		ty = append(ty, ggufTypeByte)
	}
	for i, p := range pieces {
		toks = append(toks, p)
		sc = append(sc, scores[i])
		ty = append(ty, ggufTypeNormal)
	}
	return metaMap{
		keyModel: "llama", keyTokens: toks, keyScores: sc, keyTokenType: ty,
		keyBOS: uint32(1), keyEOS: uint32(2), keyUNK: uint32(0),
	}
}

func TestFromGGUFValidation(t *testing.T) {
	good := spmMeta([]string{"▁", "a"}, []float32{-1, -2})
	if _, err := fromMetadata(good.get); err != nil {
		t.Fatalf("good vocabulary: %v", err)
	}
	bad := []struct {
		name string
		m    metaMap
		want string
	}{
		{"no model", good.with(keyModel, nil), "missing"},
		{"model not string", good.with(keyModel, uint32(3)), "want string"},
		{"unknown model", good.with(keyModel, "sentencepiece2"), "unknown tokenizer model"},
		{"no vocab", good.with(keyModel, "no_vocab"), "no vocabulary"},
		{"t5", good.with(keyModel, "t5"), "not supported"},
		{"no tokens", good.with(keyTokens, nil), "missing"},
		{"empty tokens", good.with(keyTokens, []string{}, keyScores, nil, keyTokenType, nil), "empty"},
		{"tokens wrong type", good.with(keyTokens, []int32{1, 2}), "want an array of strings"},
		{"scores length", good.with(keyScores, []float32{1, 2, 3}), "entries"},
		{"scores wrong type", good.with(keyScores, []string{"x"}), "float32"},
		{"types length", good.with(keyTokenType, []int32{1}), "entries"},
		{"types overflow", good.with(keyTokenType, []int64{1 << 40}), "int32"},
		{"add_bos wrong type", good.with(keyAddBOS, uint8(1)), "want bool"},
		{"bos wrong type", good.with(keyBOS, "1"), "integer"},
		{"gpt2 without merges", good.with(keyModel, "gpt2", keyPre, "gpt-2"), "merges"},
		{"gpt2 unknown pre", good.with(keyModel, "gpt2", keyPre, "no-such-pre", keyMerges, []string{}), "pre-tokenizer"},
	}
	for _, c := range bad {
		_, err := fromMetadata(c.m.get)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
		}
	}

	// Out-of-range special ids are ignored (llama.cpp warns and keeps the default).
	tk, err := fromMetadata(good.with(keyBOS, uint32(1<<30), keyEOS, int32(-5), keyUNK, uint64(1<<63)).get)
	if err != nil {
		t.Fatal(err)
	}
	if tk.BOS() != 1 || tk.EOS() != 2 {
		t.Errorf("bos/eos = %d/%d, want defaults 1/2", tk.BOS(), tk.EOS())
	}
	// Defaults that do not exist in a small vocabulary become "none".
	tk, err = fromMetadata(metaMap{keyModel: "bert", keyTokens: []string{"[PAD]", "▁a"}}.get)
	if err != nil {
		t.Fatal(err)
	}
	if tk.BOS() != -1 {
		t.Errorf("bert default BOS in a 2-token vocab = %d, want -1", tk.BOS())
	}
	if _, err := tk.Encode([]byte("a"), true, false); err == nil {
		t.Error("Encode with add_special and no [CLS]: no error")
	}
	if ids, err := tk.Encode([]byte("a"), false, false); err != nil || !slices.Equal(ids, []int32{1}) {
		t.Errorf("Encode(a) = %v, %v", ids, err)
	}
	// Empty token texts are renamed like llama.cpp does.
	tk, err = fromMetadata(spmMeta([]string{"", "a"}, []float32{0, 0}).get)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tk.ID(fmt.Sprintf("[EMPTY_%d]", 259)); !ok || id != 259 {
		t.Errorf("empty token not renamed: %v %v", id, ok)
	}
}

// TestInvalidCodepoint: a 4-byte sequence above U+10FFFF makes llama.cpp throw
// for BPE and WordPiece vocabularies; SPM byte-falls it back.
func TestInvalidCodepoint(t *testing.T) {
	in := []byte("ok \xf4\x90\x80\x80 x")
	for _, fam := range []string{"gpt-2", "bert-bge", "deepseek-llm"} {
		tk := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-"+fam+".gguf"))
		if _, err := tk.Encode(in, false, false); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("%s: err = %v, want ErrInvalidUTF8", fam, err)
		}
	}
	tk := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-llama-spm.gguf"))
	ids, err := tk.Encode(in, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Decode(ids); !bytes.Equal(got, in) {
		t.Errorf("SPM round trip: %q", got)
	}
}

func TestLcppDecodeRune(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []rune
	}{
		{"\xe4\xbd\xe5\xa5\xbd", []rune{0xFFFD, 0xFFFD, '好'}},
		{"\xff", []rune{0xFFFD}},
		{"\x80abc", []rune{0xFFFD, 'a', 'b', 'c'}},
		{"caf\xc3", []rune{'c', 'a', 'f', 0xFFFD}},
		{"\xc0\x80", []rune{0}},                // overlong NUL is accepted
		{"\xed\xa0\x80", []rune{0xD800}},       // surrogates too
		{"\xf4\x90\x80\x80", []rune{0x110000}}, // above U+10FFFF: the caller errors
		{"\xf0\x9f\xa6\x99", []rune{0x1F999}},  // 🦙
		{"\xf0\x9f\xa6", []rune{0xFFFD, 0xFFFD, 0xFFFD}},
	} {
		var got []rune
		for i := 0; i < len(c.in); {
			r, n := lcppDecodeRune(c.in, i)
			got = append(got, r)
			i += n
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %U, want %U", c.in, got, c.want)
		}
	}
	s, err := lcppReplaceInvalid("a\xe4\xbd\xe5\xa5\xbd\xed\xa0\x80")
	if err != nil || s != "a\uFFFD\uFFFD好\xed\xa0\x80" {
		t.Errorf("lcppReplaceInvalid = %q, %v", s, err)
	}
}

// naiveSPM is the textbook definition of SPM BPE: repeatedly merge the
// adjacent pair with the best score (leftmost on ties) until none is a token.
func naiveSPM(tk *Tokenizer, text string) []int32 {
	var syms []string
	for i := 0; i < len(text); {
		n := min(spmSeqLen(text[i]), len(text)-i)
		syms = append(syms, text[i:i+n])
		i += n
	}
	for {
		best := -1
		var bestScore float32
		for i := 0; i+1 < len(syms); i++ {
			if id, ok := tk.toID[syms[i]+syms[i+1]]; ok && (best < 0 || tk.scores[id] > bestScore) {
				best, bestScore = i, tk.scores[id]
			}
		}
		if best < 0 {
			break
		}
		syms[best] += syms[best+1]
		syms = slices.Delete(syms, best+1, best+2)
	}
	var out []int32
	for _, s := range syms {
		if id, ok := tk.toID[s]; ok {
			out = append(out, id)
			continue
		}
		for i := 0; i < len(s); i++ {
			out = append(out, tk.byteTok[s[i]])
		}
	}
	return out
}

// TestSPMAgainstNaive checks the priority-queue SPM against the quadratic
// definition on random text over a small vocabulary with many tied scores.
func TestSPMAgainstNaive(t *testing.T) {
	alpha := []string{"a", "b", "c", "▁", "é"}
	var pieces []string
	var scores []float32
	seen := map[string]bool{}
	rnd := uint64(12345)
	next := func(n int) int {
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return int(rnd % uint64(n))
	}
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, a := range alpha {
			s := prefix + a
			if !seen[s] && next(4) != 0 {
				seen[s] = true
				pieces = append(pieces, s)
				scores = append(scores, -float32(next(5))) // few distinct scores: many ties
			}
			gen(s, depth-1)
		}
	}
	gen("", 3)
	tk, err := fromMetadata(spmMeta(pieces, scores).get)
	if err != nil {
		t.Fatal(err)
	}
	sc := new(scratch)
	for iter := range 3000 {
		var b strings.Builder
		for range next(40) {
			switch next(10) {
			case 0:
				b.WriteByte(' ')
			case 1:
				b.WriteString("\xff")
			default:
				b.WriteString(alpha[next(len(alpha))])
			}
		}
		frag := b.String()
		got, err := tk.spmEncode(frag, iter%2 == 0, nil, sc)
		if err != nil {
			t.Fatal(err)
		}
		esc := strings.ReplaceAll(frag, " ", "▁")
		if iter%2 == 0 {
			esc = "▁" + esc
		}
		if want := naiveSPM(tk, esc); !slices.Equal(got, want) {
			t.Fatalf("%q: got %v, want %v", frag, got, want)
		}
	}
}

// TestPartition covers the special-token splitting rules: priority by length,
// CONTROL only with parseSpecial, LSTRIP/RSTRIP.
func TestPartition(t *testing.T) {
	m := spmMeta([]string{"▁", "a", "b", "c", "x"}, []float32{-1, -1, -1, -1, -1})
	toks := m[keyTokens].([]string)
	types := m[keyTokenType].([]int32)
	add := func(s string, ty int32) int32 {
		toks = append(toks, s)
		types = append(types, ty)
		m[keyScores] = append(m[keyScores].([]float32), 0)
		return int32(len(toks) - 1)
	}
	ab := add("ab", ggufTypeUserDefined)
	bcx := add("bcx", ggufTypeUserDefined)
	ctl := add("<c>", ggufTypeControl)
	m[keyTokens], m[keyTokenType] = toks, types
	tk, err := fromMetadata(m.get)
	if err != nil {
		t.Fatal(err)
	}
	render := func(s string, parse bool) string {
		var parts []string
		for _, f := range tk.partition(s, parse, new(scratch)) {
			if f.tok >= 0 {
				parts = append(parts, fmt.Sprintf("[%d]", f.tok))
			} else {
				parts = append(parts, fmt.Sprintf("%q", s[f.start:f.end]))
			}
		}
		return strings.Join(parts, " ")
	}
	for _, c := range []struct {
		in    string
		parse bool
		want  string
	}{
		// "bcx" is longer, so it wins over the overlapping "ab" that starts first.
		{"abcx", false, fmt.Sprintf(`"a" [%d]`, bcx)},
		{"ab ab", false, fmt.Sprintf(`[%d] " " [%d]`, ab, ab)},
		{"a<c>b", false, `"a<c>b"`},
		{"a<c>b", true, fmt.Sprintf(`"a" [%d] "b"`, ctl)},
		{"", true, ``},
	} {
		if got := render(c.in, c.parse); got != c.want {
			t.Errorf("partition(%q, %v) = %s, want %s", c.in, c.parse, got, c.want)
		}
	}
	tk.attrs[ctl] |= attrLStrip | attrRStrip
	if got, want := render("a \t<c> \nb", true), fmt.Sprintf(`"a" [%d] "b"`, ctl); got != want {
		t.Errorf("strip: got %s, want %s", got, want)
	}
	if got, want := render("  <c>  ", true), fmt.Sprintf(`[%d]`, ctl); got != want {
		t.Errorf("strip all: got %s, want %s", got, want)
	}
}

func TestIsEOG(t *testing.T) {
	phi := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-phi-3.gguf"))
	end, _ := phi.ID("<|end|>")
	eot, _ := phi.ID("<|endoftext|>")
	user, _ := phi.ID("<|user|>")
	if !phi.IsEOG(end) || !phi.IsEOG(eot) || !phi.IsEOG(phi.EOS()) || phi.IsEOG(user) || phi.IsEOG(phi.BOS()) || phi.IsEOG(-1) || phi.IsEOG(1<<30) {
		t.Errorf("phi-3 EOG set = %v", phi.eogIDs())
	}
	if phi.EOT() != end {
		t.Errorf("phi-3 EOT = %d, want %d", phi.EOT(), end)
	}
	g := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-gpt-2.gguf"))
	if ids := g.eogIDs(); !slices.Equal(ids, []int32{50256}) {
		t.Errorf("gpt-2 EOG set = %v", ids)
	}
	// deepseek-coder's FIM tokens are USER_DEFINED in the file and become
	// CONTROL through llama.cpp's text-based FIM detection.
	dc := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-deepseek-coder.gguf"))
	hole, _ := dc.ID("<｜fim▁hole｜>")
	eotDC, _ := dc.ID("<|EOT|>")
	if !dc.IsControl(hole) || dc.IsControl(eotDC) {
		t.Errorf("deepseek-coder control: fim_hole %v, <|EOT|> %v", dc.IsControl(hole), dc.IsControl(eotDC))
	}
}

// TestBytePiecesAgainstByteLevelDecode cross-checks the piece cache of a BPE
// vocabulary with the BPE code's byte-level decoder, for tokens made only of
// byte-level symbols (the two differ on purpose elsewhere: llama.cpp renders
// unmapped codepoints as [UNK_BYTE_…]).
func TestBytePiecesAgainstByteLevelDecode(t *testing.T) {
	tk := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-gpt-2.gguf"))
	n := 0
	for id, s := range tk.tokens {
		if tk.attrs[id]&attrNormal == 0 {
			continue
		}
		mapped := true
		for _, r := range s {
			if _, ok := pieceByteOf(r); !ok {
				mapped = false
			}
		}
		if !mapped {
			continue
		}
		n++
		if got, want := tk.Piece(int32(id)), byteLevelDecode(s); !bytes.Equal(got, want) {
			t.Fatalf("token %d %q: piece %q, byteLevelDecode %q", id, s, got, want)
		}
	}
	if n < 50000 {
		t.Errorf("only %d tokens checked", n)
	}
	buf, err := appendByteLevelText(nil, "a\u4e00")
	if err != nil || string(buf) != "a[UNK_BYTE_0xe4b880a\u4e00]" {
		t.Errorf("unmapped codepoint: %q %v", buf, err)
	}
}

func TestCleanUpSpaces(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{" ", " "},
		{"a , b . c ? d !", "a, b. c? d!"},
		{"x ' y", "x'y"},
		{"it 's I 'm we 're you 've they 'll he 'd don 't", "it's I'm we're you've they 'll he 'd don 't"},
		{" ...", "..."},
		{"' '", "' '"},
		{" ' ' ", "'' "}, // the second apostrophe sees the NUL pass 2 writes
	} {
		if got := string(cleanUpSpaces([]byte(c.in))); got != c.want {
			t.Errorf("cleanUpSpaces(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPieceAndDecode(t *testing.T) {
	tk := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-llama-spm.gguf"))
	if got := string(tk.Piece(1)); got != "<s>" {
		t.Errorf("Piece(<s>) = %q", got)
	}
	nl, _ := tk.ID("<0x0A>")
	if got := string(tk.Piece(nl)); got != "\n" {
		t.Errorf("Piece(<0x0A>) = %q", got)
	}
	if tk.Piece(-1) != nil || tk.Piece(int32(tk.NVocab())) != nil {
		t.Error("Piece of an out-of-range id is not nil")
	}
	if got := string(tk.Decode([]int32{-3, 1, 15043, 1 << 30})); got != "<s> Hello" {
		t.Errorf("Decode = %q", got)
	}
	if got := tk.Token(15043); got != "▁Hello" {
		t.Errorf("Token(15043) = %q", got)
	}
	if got := string(tk.AppendPiece([]byte("x"), 15043)); got != "x Hello" {
		t.Errorf("AppendPiece = %q", got)
	}
}

// TestConcurrentEncode exercises the pooled scratch buffers from several
// goroutines (run with -race).
func TestConcurrentEncode(t *testing.T) {
	tk := loadTokenizer(t, filepath.Join(ggufCaseDir, "ggml-vocab-phi-3.gguf"))
	want, err := tk.Encode([]byte(mixedText), true, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got, err := tk.Encode([]byte(mixedText), true, true)
				if err != nil || !slices.Equal(got, want) {
					t.Error("concurrent Encode differs")
					return
				}
			}
		}()
	}
	wg.Wait()
}
