package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const testdata = "../../testdata"

// slm runs the CLI in-process and returns its exit code, stdout and stderr.
func slm(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunEmbeddedModel(t *testing.T) {
	code, out1, errs := slm(t, "", "run", "-p", "Once upon a time", "-n", "12", "--seed", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.TrimSpace(out1) == "" {
		t.Fatal("run printed no text")
	}
	_, out2, _ := slm(t, "", "run", "-p", "Once upon a time", "-n", "12", "--seed", "7")
	if out1 != out2 {
		t.Errorf("the same seed gave different text:\n%q\n%q", out1, out2)
	}
	_, g1, _ := slm(t, "", "run", "-p", "Once upon a time", "-n", "12", "--temp", "0")
	_, g2, _ := slm(t, "", "run", "-p", "Once upon a time", "-n", "12", "--temp", "0", "--seed", "99")
	if g1 != g2 {
		t.Errorf("greedy output depends on the seed:\n%q\n%q", g1, g2)
	}
}

func TestRunStopString(t *testing.T) {
	_, full, _ := slm(t, "", "run", "-p", "Hello", "-n", "24", "--temp", "0")
	full = strings.TrimSuffix(full, "\n")
	if len(full) < 6 {
		t.Skipf("greedy text %q too short to cut", full)
	}
	stop := full[3:5]
	code, cut, errs := slm(t, "", "run", "-p", "Hello", "-n", "24", "--temp", "0", "--stop", stop)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	cut = strings.TrimSuffix(cut, "\n")
	if want := full[:strings.Index(full, stop)]; cut != want {
		t.Errorf("with --stop %q got %q, want %q", stop, cut, want)
	}
}

func TestTokenizeJSON(t *testing.T) {
	vocab := filepath.Join(testdata, "tokenizer/gguf/ggml-vocab-llama-spm.gguf")
	code, out, errs := slm(t, "", "tokenize", "-m", vocab, "--json", "Hello world")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got struct {
		IDs    []int32  `json:"ids"`
		Pieces []string `json:"pieces"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("bad JSON %q: %v", out, err)
	}
	// llama.cpp: BOS, "▁Hello", "▁world".
	want := []int32{1, 15043, 3186}
	if !equalIDs(got.IDs, want) {
		t.Errorf("ids %v, want %v", got.IDs, want)
	}
	if len(got.Pieces) != 3 || got.Pieces[1] != " Hello" {
		t.Errorf("pieces %q", got.Pieces)
	}
	_, out, _ = slm(t, "", "tokenize", "-m", vocab, "--json", "--add-special=false", "Hello world")
	if !strings.HasPrefix(out, `{"ids":[15043,3186]`) {
		t.Errorf("--add-special=false: %s", out)
	}
}

// TestTokenizeCases runs the reference cases of every shipped vocabulary
// through the command, a sample of each, to cover the CLI's flag handling.
func TestTokenizeCases(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testdata, "tokenizer/gguf/*.json"))
	if len(files) == 0 {
		t.Fatal("no tokenizer cases")
	}
	for _, cf := range files {
		var cs struct {
			VocabFile string `json:"vocab_file"`
			Cases     []struct {
				Name         string  `json:"name"`
				Text         string  `json:"text"`
				TextHex      string  `json:"text_bytes_hex"`
				AddSpecial   bool    `json:"add_special"`
				ParseSpecial bool    `json:"parse_special"`
				IDs          []int32 `json:"ids"`
				Decoded      string  `json:"decoded"`
				DecodedHex   string  `json:"decoded_bytes_hex"`
			} `json:"cases"`
		}
		b, err := os.ReadFile(cf)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &cs); err != nil {
			t.Fatalf("%s: %v", cf, err)
		}
		vocab := filepath.Join(testdata, "tokenizer", cs.VocabFile)
		for i, c := range cs.Cases {
			if i%16 != 0 && c.TextHex == "" { // a sample, plus every invalid-UTF-8 case
				continue
			}
			text := []byte(c.Text)
			if c.TextHex != "" {
				text = mustHex(t, c.TextHex)
			}
			in := filepath.Join(t.TempDir(), "in.txt")
			os.WriteFile(in, text, 0o644)
			args := []string{"tokenize", "-m", vocab, "--json", "--file", in, "--add-special=" + boolStr(c.AddSpecial)}
			if c.ParseSpecial {
				args = append(args, "--parse-special")
			}
			code, out, errs := slm(t, "", args...)
			if c.IDs == nil { // the reference throws; an error is the right answer
				continue
			}
			if code != 0 {
				t.Errorf("%s/%s: exit %d: %s", filepath.Base(cf), c.Name, code, errs)
				continue
			}
			var got struct {
				IDs        []int32 `json:"ids"`
				DecodedHex string  `json:"decoded_hex"`
			}
			json.Unmarshal([]byte(out), &got)
			if !equalIDs(got.IDs, c.IDs) {
				t.Errorf("%s/%s: ids %v, want %v", filepath.Base(cf), c.Name, got.IDs, c.IDs)
			}
			wantHex := hex.EncodeToString([]byte(c.Decoded))
			if c.DecodedHex != "" {
				wantHex = c.DecodedHex
			}
			if got.DecodedHex != wantHex {
				t.Errorf("%s/%s: decoded %s, want %s", filepath.Base(cf), c.Name, got.DecodedHex, wantHex)
			}
		}
	}
}

func TestDetokenize(t *testing.T) {
	vocab := filepath.Join(testdata, "tokenizer/gguf/ggml-vocab-llama-spm.gguf")
	code, out, errs := slm(t, "", "detokenize", "-m", vocab, "--tokens", "1 15043 3186")
	if code != 0 || out != "<s> Hello world" {
		t.Errorf("exit %d, out %q, err %q", code, out, errs)
	}
	if code, _, errs = slm(t, "", "detokenize", "-m", vocab, "--tokens", "1 99999999"); code == 0 || !strings.Contains(errs, "99999999") {
		t.Errorf("out-of-range id: exit %d, %q", code, errs)
	}
}

func TestTokenizeStdinRawBytes(t *testing.T) {
	vocab := filepath.Join(testdata, "tokenizer/gguf/ggml-vocab-gpt-2.gguf")
	code, out, errs := slm(t, "ab\xff\xfecd", "tokenize", "-m", vocab, "--json", "--file", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.HasPrefix(out, `{"ids":[`) {
		t.Errorf("output %q", out)
	}
}

// TestLogitsMatchReference checks both numerics of `slm logits`: the
// default (llama.cpp's quantized activations) against llama.cpp's native
// logits, and --exact against the F32-dequantized reference.
func TestLogitsMatchReference(t *testing.T) {
	for _, name := range []string{"llama-f32", "qwen2-q4_k_m", "gpt2-q8_0", "llama-q5_1"} {
		ref := loadRef(t, name)
		p := ref.Prompts[1] // p7
		exactWant := p.Logits
		if p.DequantF32 != nil {
			exactWant = p.DequantF32.Logits
		}
		for _, mode := range []struct {
			flag string
			want [][]float64
			tol  float64
		}{
			{"", p.Logits, ref.Tolerance.VsNative.MaxAbs},
			{"--exact", exactWant, ref.Tolerance.VsDequantF32.MaxAbs},
		} {
			args := []string{"logits", "-m", filepath.Join(testdata, "models", name+".gguf"), "--tokens", joinIDs(p.Tokens), "--json"}
			if mode.flag != "" {
				args = append(args, mode.flag)
			}
			code, out, errs := slm(t, "", args...)
			if code != 0 {
				t.Fatalf("%s %s: exit %d: %s", name, mode.flag, code, errs)
			}
			var got struct {
				NVocab int         `json:"n_vocab"`
				Logits [][]float64 `json:"logits"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%s: bad JSON: %v", name, err)
			}
			if got.NVocab != ref.Model.NVocab || len(got.Logits) != len(p.Tokens) {
				t.Fatalf("%s: n_vocab %d, %d rows; want %d, %d", name, got.NVocab, len(got.Logits), ref.Model.NVocab, len(p.Tokens))
			}
			worst := 0.0
			for i := range mode.want {
				for j := range mode.want[i] {
					worst = math.Max(worst, math.Abs(got.Logits[i][j]-mode.want[i][j]))
				}
			}
			t.Logf("%s %s: max |diff| %.3g (tolerance %.3g)", name, mode.flag, worst, mode.tol)
			if worst > mode.tol {
				t.Errorf("%s %s: max |diff| %.3g > tolerance %.3g", name, mode.flag, worst, mode.tol)
			}
		}
	}
}

func TestInspect(t *testing.T) {
	model := filepath.Join(testdata, "models/qwen2-q4_k_m.gguf")
	code, out, errs := slm(t, "", "inspect", model)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"architecture: qwen2", "Q4_K", "Q6_K", "blk.0.attn_q.weight", "qwen2.rope.freq_base"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q", want)
		}
	}
	code, out, _ = slm(t, "", "inspect", "--json", model)
	var js struct {
		Architecture string         `json:"architecture"`
		Tensors      []any          `json:"tensors"`
		TypeCounts   map[string]int `json:"tensor_type_counts"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil {
		t.Fatalf("inspect --json: exit %d, %q", code, out)
	}
	if js.Architecture != "qwen2" || len(js.Tensors) == 0 || js.TypeCounts["Q6_K"] == 0 {
		t.Errorf("inspect --json: %+v", js)
	}
}

// TestErrors checks that failures are one line on stderr, a non-zero exit
// and never a stack trace.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.gguf")
	full, _ := os.ReadFile(filepath.Join(testdata, "models/llama-q8_0.gguf"))
	os.WriteFile(truncated, full[:len(full)/2], 0o644)
	garbage := filepath.Join(dir, "garbage.gguf")
	os.WriteFile(garbage, []byte("this is not a model"), 0o644)
	vocabOnly := filepath.Join(testdata, "tokenizer/gguf/ggml-vocab-gpt-2.gguf")
	llama := filepath.Join(testdata, "models/llama-f32.gguf")

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"run", "-m", filepath.Join(dir, "nope.gguf")}, "no such file"},
		{"truncated file", []string{"run", "-m", truncated}, "truncated.gguf"},
		{"not gguf", []string{"inspect", garbage}, "magic"},
		{"vocab only for run", []string{"run", "-m", vocabOnly}, "ggml-vocab-gpt-2.gguf"},
		{"bad token ids", []string{"logits", "-m", llama, "--tokens", "1 x 3"}, "bad token id"},
		{"token out of range", []string{"logits", "-m", llama, "--tokens", "1 99999"}, "99999"},
		{"prompt too long", []string{"run", "-m", llama, "-c", "8", "-p", strings.Repeat("a b c d ", 10)}, "context"},
		{"unknown flag", []string{"run", "--bogus"}, "bogus"},
		{"unknown command", []string{"fly"}, "unknown command"},
		{"tokenize without text", []string{"tokenize", "-m", vocabOnly}, "no text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := slm(t, "", c.args...)
			if code == 0 {
				t.Fatalf("exit 0, want an error")
			}
			if !strings.HasPrefix(errs, "slm: ") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
				t.Errorf("stderr is not one 'slm: …' line: %q", errs)
			}
			if strings.Contains(errs, "goroutine") || strings.Contains(errs, "panic") {
				t.Errorf("stack trace on stderr: %q", errs)
			}
			if !strings.Contains(errs, c.want) {
				t.Errorf("stderr %q does not mention %q", errs, c.want)
			}
		})
	}
}

type reference struct {
	Model struct {
		NVocab int `json:"n_vocab"`
	} `json:"model"`
	Tolerance struct {
		VsDequantF32 struct {
			MaxAbs float64 `json:"max_abs"`
		} `json:"vs_dequant_f32"`
		VsNative struct {
			MaxAbs float64 `json:"max_abs"`
		} `json:"vs_native"`
	} `json:"tolerance"`
	Prompts []struct {
		Tokens     []int32     `json:"tokens"`
		Logits     [][]float64 `json:"logits"`
		DequantF32 *struct {
			Logits [][]float64 `json:"logits"`
		} `json:"dequant_f32"`
	} `json:"prompts"`
}

func loadRef(t *testing.T, name string) *reference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "reference", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func joinIDs(ids []int32) string {
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(strconv.Itoa(int(id)))
	}
	return sb.String()
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
