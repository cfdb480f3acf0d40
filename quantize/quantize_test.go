package quantize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
)

const models = "../testdata/models"

var bases = []string{"llama", "qwen2", "gpt2"}

// siblings are the llama.cpp-made variants of each base: their file name
// suffix and the llama-quantize type argument that made them.
var siblings = []struct{ suffix, typ string }{
	{"q8_0", "Q8_0"}, {"q4_0", "Q4_0"}, {"q4_1", "Q4_1"}, {"q5_0", "Q5_0"}, {"q5_1", "Q5_1"},
	{"q2_k", "Q2_K"}, {"q3_k", "Q3_K"}, {"q4_k", "Q4_K"}, {"q5_k", "Q5_K"}, {"q6_k", "Q6_K"},
}

func openT(t testing.TB, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

var (
	cacheMu sync.Mutex
	cache   = map[string][]byte{}
	jsons   = map[string]*refFile{}
)

// quantized is the quantization of base's F32 model to typ (cached: the
// tests share the files).
func quantized(t testing.TB, base, typ string, pure bool) []byte {
	t.Helper()
	key := fmt.Sprint(base, typ, pure)
	cacheMu.Lock()
	b, ok := cache[key]
	cacheMu.Unlock()
	if ok {
		return b
	}
	f := openT(t, filepath.Join(models, base+"-f32.gguf"))
	b = quantizeBytes(t, f, Options{Type: mustType(t, typ), Pure: pure, Threads: 2})
	cacheMu.Lock()
	cache[key] = b
	cacheMu.Unlock()
	return b
}

// reference reads (once) a reference JSON.
func reference(t testing.TB, name string) *refFile {
	t.Helper()
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if r, ok := jsons[name]; ok {
		return r
	}
	r := &refFile{}
	readJSON(t, filepath.Join("../testdata/reference", name+".json"), r)
	jsons[name] = r
	return r
}

func quantizeBytes(t testing.TB, f *gguf.File, opt Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Write(f, &buf, opt); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustType(t testing.TB, name string) FileType {
	ft, err := ParseFileType(name)
	if err != nil {
		t.Fatal(err)
	}
	return ft
}

// TestPureMatchesLlamaCpp: `slm quantize --pure` of each F32 model writes
// the very file llama-quantize --pure wrote, byte for byte (metadata,
// tensor order, types, data, padding).
func TestPureMatchesLlamaCpp(t *testing.T) {
	for _, base := range bases {
		for _, s := range siblings {
			t.Run(base+"-"+s.suffix, func(t *testing.T) {
				got := quantized(t, base, s.typ, true)
				want, err := os.ReadFile(filepath.Join(models, base+"-"+s.suffix+".gguf"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					diffFiles(t, got, want)
				}
			})
		}
	}
}

// TestMixMatchesLlamaCpp: the Q4_K_M mix (no --pure) equals llama.cpp's
// q4_k_m file byte for byte, and its tensor types are the ones the
// reference JSON lists.
func TestMixMatchesLlamaCpp(t *testing.T) {
	for _, base := range bases {
		t.Run(base, func(t *testing.T) {
			f := openT(t, filepath.Join(models, base+"-f32.gguf"))
			got := quantized(t, base, "Q4_K_M", false)
			want, err := os.ReadFile(filepath.Join(models, base+"-q4_k_m.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			var ref struct {
				Model struct {
					TensorTypes map[string]string `json:"tensor_types"`
				} `json:"model"`
			}
			readJSON(t, filepath.Join("../testdata/reference", base+"-q4_k_m.json"), &ref)
			plans, err := Plan(f, Options{Type: mustType(t, "Q4_K_M")})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range plans {
				if w := ref.Model.TensorTypes[p.Name]; w != p.To.String() {
					t.Errorf("%s: type %s, llama.cpp chose %s", p.Name, p.To, w)
				}
			}
			if !bytes.Equal(got, want) {
				diffFiles(t, got, want)
			}
		})
	}
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// diffFiles reports the first differences between two GGUF files.
func diffFiles(t *testing.T, got, want []byte) {
	t.Helper()
	g, err := gguf.Parse("got", got)
	if err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	w, err := gguf.Parse("want", want)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if len(g.KVs) != len(w.KVs) {
		t.Errorf("%d metadata keys, want %d", len(g.KVs), len(w.KVs))
	}
	for i := range min(len(g.KVs), len(w.KVs)) {
		if g.KVs[i].Key != w.KVs[i].Key || fmt.Sprint(g.KVs[i].Value) != fmt.Sprint(w.KVs[i].Value) {
			t.Errorf("key %d: %s=%v, want %s=%v", i, g.KVs[i].Key, g.KVs[i].Value, w.KVs[i].Key, w.KVs[i].Value)
		}
	}
	for i := range min(len(g.Tensors), len(w.Tensors)) {
		a, b := &g.Tensors[i], &w.Tensors[i]
		if a.Name != b.Name || a.Type != b.Type {
			t.Errorf("tensor %d: %s %s, want %s %s", i, a.Name, a.Type, b.Name, b.Type)
			n++
		} else if !bytes.Equal(g.Data(a), w.Data(b)) {
			t.Errorf("tensor %s (%s): data differ", a.Name, a.Type)
			n++
		}
		if n > 5 {
			break
		}
	}
	t.Errorf("files differ (%d vs %d bytes)", len(got), len(want))
}

// TestEveryTypeRuns quantizes each F32 model to every type (with the mixes)
// and checks that the file loads and that its logits match llama.cpp's
// logits for the same weights (dequant_f32 references) where a sibling
// exists, or stay close to the F32 model's otherwise.
func TestEveryTypeRuns(t *testing.T) {
	for _, base := range bases {
		ref := reference(t, base+"-f32")
		type variant struct {
			ft   FileType
			pure bool
		}
		var variants []variant
		for _, ft := range FileTypes {
			variants = append(variants, variant{ft, false})
		}
		for _, s := range siblings {
			variants = append(variants, variant{mustType(t, s.typ), true})
		}
		for _, v := range variants {
			ft, name := v.ft, v.ft.Name
			if v.pure {
				name = "pure-" + ft.Default.String()
			}
			t.Run(base+"-"+name, func(t *testing.T) {
				data := quantized(t, base, ft.Name, v.pure)
				m, err := engine.OpenBytes(name, data)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				q, _ := gguf.Parse(name, data)
				nConverted := 0
				src := openT(t, filepath.Join(models, base+"-f32.gguf"))
				for i := range q.Tensors {
					if st, _ := src.Tensor(q.Tensors[i].Name); st.Type != q.Tensors[i].Type {
						nConverted++
					}
				}
				f := m.File()
				if id, ok := f.Uint("general.file_type"); !ok || id != uint64(ft.ID) {
					t.Errorf("general.file_type = %v, want %d", id, ft.ID)
				}
				if v, _ := f.Uint("general.quantization_version"); v != 2 {
					t.Errorf("general.quantization_version = %d", v)
				}
				if nConverted == 0 && ft.Default != quant.F32 {
					t.Error("no tensor converted")
				}
				p := ref.Prompts[1] // p7
				rows, err := m.Logits(p.Tokens)
				if err != nil {
					t.Fatal(err)
				}
				// The weights are checked with the engine's float32 numerics
				// (exactly dequantized weights, float32 activations), its
				// default run against those.
				prev := engine.UseExactFloat(true)
				exact, err := m.Logits(p.Tokens)
				engine.UseExactFloat(prev)
				if err != nil {
					t.Fatal(err)
				}
				pureName := map[quant.Type]string{quant.F16: "f16", quant.BF16: "f16", quant.Q2_K: "q2_k", quant.Q3_K: "q3_k",
					quant.Q4_K: "q4_k", quant.Q5_K: "q5_k", quant.Q6_K: "q6_k", quant.Q8_0: "q8_0",
					quant.Q4_0: "q4_0", quant.Q4_1: "q4_1", quant.Q5_0: "q5_0", quant.Q5_1: "q5_1",
					// no llama.cpp IQ4 files here: measured against Q4_0's
					// error (the same 4.5 bits per weight)
					quant.IQ4_NL: "q4_0", quant.IQ4_XS: "q4_0"}[ft.Default]
				pref := &refFile{}
				if pureName != "" {
					pref = reference(t, base+"-"+pureName)
				}
				sib := siblingOf(t, base, q)
				if v.pure && sib == "" {
					t.Fatal("--pure output matches no llama.cpp sibling")
				}
				if sib != "" {
					// llama.cpp's file has the same weights: float32 logits equal
					// its dequant_f32 reference, and the engine's logits match
					// either reference within the tolerance the file states.
					t.Logf("same tensors as %s.gguf", sib)
					sref := reference(t, sib)
					sp := sref.Prompts[1]
					tol := sref.Tolerance.VsDequantF32.MaxAbs
					if d := maxDiff(toF64(exact), sp.DequantF32()); d > tol {
						t.Errorf("float32 logits vs llama.cpp dequant_f32: max |diff| %.3g > %.3g", d, tol)
					}
					dq, nat := maxDiff(toF64(rows), sp.DequantF32()), maxDiff(toF64(rows), sp.Logits)
					if dq > tol && nat > sref.Tolerance.VsNative.MaxAbs {
						t.Errorf("engine logits: max |diff| %.3g vs dequant_f32 (tolerance %.3g), %.3g vs native (tolerance %.3g)", dq, tol, nat, sref.Tolerance.VsNative.MaxAbs)
					}
					return
				}
				// Other mixes: within 1.25 times the quantization error of the
				// pure file of their default type (llama.cpp's own error on
				// these weights) of the F32 model's logits.
				tol := ref.Tolerance.VsDequantF32.MaxAbs
				engTol := tol
				if pureName != "" {
					gap := maxDiff(pref.Prompts[1].DequantF32(), p.Logits)
					engTol = 1.5 * pref.Tolerance.VsNative.MaxAbs // mixes combine several types
					if ft.Default == quant.BF16 {
						gap *= 16 // 8 mantissa bits instead of F16's 11
						engTol *= 16
					}
					tol += 1.25 * gap
				}
				if d := maxDiff(toF64(exact), p.Logits); d > tol {
					t.Errorf("float32 logits vs the F32 model's: max |diff| %.3g > %.3g", d, tol)
				}
				if d := maxDiff(toF64(rows), toF64(exact)); d > engTol {
					t.Errorf("engine vs float32 logits: max |diff| %.3g > %.3g", d, engTol)
				}
			})
		}
	}
}

// siblingOf names the llama.cpp file (without .gguf) whose tensors are
// exactly those of path, if any.
func siblingOf(t *testing.T, base string, f *gguf.File) string {
	for _, s := range append([]string{"f16", "q4_k_m"}, sibSuffixes()...) {
		name := base + "-" + s
		g := openT(t, filepath.Join(models, name+".gguf"))
		if sameTensors(f, g) {
			return name
		}
	}
	return ""
}

func sibSuffixes() []string {
	var s []string
	for _, x := range siblings {
		s = append(s, x.suffix)
	}
	return s
}

func sameTensors(a, b *gguf.File) bool {
	if len(a.Tensors) != len(b.Tensors) {
		return false
	}
	for i := range a.Tensors {
		ta := &a.Tensors[i]
		tb, ok := b.Tensor(ta.Name)
		if !ok || ta.Type != tb.Type || !bytes.Equal(a.Data(ta), b.Data(tb)) {
			return false
		}
	}
	return true
}

func toF64(rows [][]float32) [][]float64 {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		out[i] = make([]float64, len(r))
		for j, v := range r {
			out[i][j] = float64(v)
		}
	}
	return out
}

func maxDiff(a, b [][]float64) float64 {
	var worst float64
	for i := range a {
		for j := range a[i] {
			worst = max(worst, math.Abs(a[i][j]-b[i][j]))
		}
	}
	return worst
}

type refPrompt struct {
	Name   string      `json:"name"`
	Tokens []int32     `json:"tokens"`
	Logits [][]float64 `json:"logits"`
	DQ     *struct {
		Logits [][]float64 `json:"logits"`
	} `json:"dequant_f32"`
}

func (p *refPrompt) DequantF32() [][]float64 {
	if p.DQ == nil {
		return p.Logits
	}
	return p.DQ.Logits
}

type refFile struct {
	Tolerance struct {
		LogitScale   float64 `json:"logit_scale"`
		VsDequantF32 struct {
			MaxAbs float64 `json:"max_abs"`
		} `json:"vs_dequant_f32"`
		VsNative struct {
			MaxAbs float64 `json:"max_abs"`
		} `json:"vs_native"`
	} `json:"tolerance"`
	Prompts []refPrompt `json:"prompts"`
}
