package imatrix

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
	"github.com/slm-dev/slm/quantize"
)

const models = "../testdata/models"

func open(t *testing.T, name string) *engine.Model {
	t.Helper()
	m, err := engine.Open(filepath.Join(models, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func testTokens(m *engine.Model, n int) []int32 {
	nv := m.Config().NVocab
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32((i*131 + i*i*7 + 5) % nv)
	}
	return ids
}

// TestForwardMatchesReferences: the reference forward pass that feeds the
// statistics computes the engine's logits for F32 models, llama.cpp's
// dequant_f32 logits for quantized ones, and (Native) llama.cpp's own
// logits.
func TestForwardMatchesReferences(t *testing.T) {
	for name, tol := range map[string]float64{
		"llama-f32": 1e-4, "qwen2-f32": 1e-4, "gpt2-f32": 3e-3,
		"llama-q4_k_m": 1e-4, "qwen2-q8_0": 1e-4, "gpt2-q5_1": 3e-3, "llama-f16": 1e-4, "qwen2-q4_1": 1e-4,
	} {
		t.Run(name, func(t *testing.T) {
			m := open(t, name+".gguf")
			var ref struct {
				Prompts []struct {
					Tokens []int32     `json:"tokens"`
					Logits [][]float64 `json:"logits"`
					DQ     *struct {
						Logits [][]float64 `json:"logits"`
					} `json:"dequant_f32"`
				} `json:"prompts"`
			}
			b, err := os.ReadFile("../testdata/reference/" + name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatal(err)
			}
			p := ref.Prompts[2]
			net, err := NewNet(m.File(), m.Config())
			if err != nil {
				t.Fatal(err)
			}
			calls := map[string]int{}
			got, err := net.Forward(p.Tokens, func(w string, x []float32, T, nIn int) { calls[w]++ }, true)
			if err != nil {
				t.Fatal(err)
			}
			want := p.Logits
			if p.DQ != nil {
				want = p.DQ.Logits
			} else {
				eng, err := m.Logits(p.Tokens)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(got, toF64(eng)); d > tol {
					t.Errorf("max |logit diff| vs engine %.3g > %.3g", d, tol)
				}
			}
			if d := maxDiff(got, want); d > tol {
				t.Errorf("max |logit diff| vs llama.cpp %.3g > %.3g", d, tol)
			}
			perLayer := 7 // q, k, v, output, gate, up, down
			if m.Config().Arch == "gpt2" {
				perLayer = 4 // qkv, output, up, down
			}
			if len(calls) != perLayer*m.Config().NLayer+1 {
				t.Errorf("%d matrices observed: %v", len(calls), calls)
			}
			// llama.cpp's own numerics (its tests ran with an F32 KV cache)
			net.Native = true
			nat, err := net.Forward(p.Tokens, nil, true)
			if err != nil {
				t.Fatal(err)
			}
			d := maxDiff(nat, p.Logits)
			t.Logf("native emulation vs llama.cpp: max |diff| %.3g", d)
		})
	}
}

func toF64(rows [][]float32) [][]float64 {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		for _, v := range r {
			out[i] = append(out[i], float64(v))
		}
	}
	return out
}

func maxDiff(a [][]float32, b [][]float64) float64 {
	var worst float64
	for i := range b {
		for j := range b[i] {
			worst = max(worst, math.Abs(float64(a[i][j])-b[i][j]))
		}
	}
	return worst
}

func TestCollectAndRoundTrip(t *testing.T) {
	m := open(t, "llama-f32.gguf")
	ids := testTokens(m, 100)
	tok := m.Tokenizer()
	var seen int
	mat, err := Collect(m.File(), m.Config(), ids, "text.txt", Options{NCtx: 32, BOS: tok.BOS(), AddBOS: tok.AddBOS(), OnChunk: func(int, int) { seen++ }})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 3 || mat.Chunks != 3 || len(mat.Entries) != 14 {
		t.Fatalf("%d chunks, %d entries: %v", mat.Chunks, len(mat.Entries), mat.Names())
	}
	for _, e := range mat.Entries {
		if e.NCall != 3 || len(e.Values) != 256 {
			t.Errorf("%s: ncall %d, %d values", e.Name, e.NCall, len(e.Values))
		}
		for _, v := range e.Values {
			if !(v > 0) {
				t.Fatalf("%s: value %v", e.Name, v)
			}
		}
	}
	// q, k and v see the same input
	q, k := mat.Map()["blk.1.attn_q.weight"], mat.Map()["blk.1.attn_k.weight"]
	if q[7] != k[7] {
		t.Error("attn_q and attn_k statistics differ")
	}
	var buf bytes.Buffer
	if err := mat.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Chunks != 3 || back.Dataset != "text.txt" || len(back.Entries) != len(mat.Entries) {
		t.Fatalf("round trip: %+v", back)
	}
	for i, e := range back.Entries {
		for j, v := range e.Values {
			if math.Abs(float64(v-mat.Entries[i].Values[j])) > 1e-6*float64(v) {
				t.Fatalf("%s[%d]: %v, wrote %v", e.Name, j, v, mat.Entries[i].Values[j])
			}
		}
	}
	// a file without the trailer (older llama-imatrix) reads too
	trimmed := buf.Bytes()[:buf.Len()-4-4-len("text.txt")]
	if _, err := Read(bytes.NewReader(trimmed)); err != nil {
		t.Errorf("file without trailer: %v", err)
	}
	for n := range []int{3, 20, 100} {
		if _, err := Read(bytes.NewReader(buf.Bytes()[:n])); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}

	// Quantizing with it: the weighted encoders run and lower the
	// activation-weighted error of the weights.
	dir := t.TempDir()
	path := filepath.Join(dir, "imatrix.dat")
	if err := mat.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	im, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ft, _ := quantize.ParseFileType("Q4_K_M")
	var plain, weighted bytes.Buffer
	if _, err := quantize.Write(m.File(), &plain, quantize.Options{Type: ft}); err != nil {
		t.Fatal(err)
	}
	res, err := quantize.Write(m.File(), &weighted, quantize.Options{Type: ft, Imatrix: im})
	if err != nil {
		t.Fatal(err)
	}
	if res.NImatrixTensors != 14 {
		t.Errorf("%d tensors used the imatrix", res.NImatrixTensors)
	}
	name := "blk.0.ffn_down.weight"
	e1 := weightedErr(t, m.File(), plain.Bytes(), name, im[name])
	e2 := weightedErr(t, m.File(), weighted.Bytes(), name, im[name])
	if !(e2 < e1) {
		t.Errorf("%s: weighted error with imatrix %g, without %g", name, e2, e1)
	}
	t.Logf("%s: importance-weighted squared error %.4g without imatrix, %.4g with", name, e1, e2)

	if _, err := ReadFile(filepath.Join(models, "llama-f32.gguf")); err == nil || !strings.Contains(err.Error(), "GGUF") {
		t.Errorf("a GGUF file as imatrix: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "bad.dat"), []byte{1, 0, 0, 0, 255, 255, 255, 255}, 0o644)
	if _, err := ReadFile(filepath.Join(dir, "bad.dat")); err == nil {
		t.Error("a corrupt imatrix was accepted")
	}
}

func weightedErr(t *testing.T, src *gguf.File, out []byte, name string, w []float32) float64 {
	q, err := gguf.Parse("q", out)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := src.Tensor(name)
	tq, _ := q.Tensor(name)
	a := make([]float32, ts.Elems())
	b := make([]float32, tq.Elems())
	quant.Dequantize(ts.Type, src.Data(ts), a)
	quant.Dequantize(tq.Type, q.Data(tq), b)
	var e float64
	for i := range a {
		d := float64(a[i] - b[i])
		e += float64(w[i%len(w)]) * d * d
	}
	return e
}
