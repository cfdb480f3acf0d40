package imatrix

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/model"
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

// observer records what a model.Observer is shown.
type observer struct {
	calls map[string]int
	rows  map[string]int
	first map[string][]float32 // the first input seen per weight
}

func (o *observer) ObserveMatMul(name string, x []float32, n, cols int) {
	if len(x) != n*cols {
		panic(fmt.Sprintf("%s: %d values for %d×%d", name, len(x), n, cols))
	}
	o.calls[name]++
	o.rows[name] += n
	if o.first[name] == nil {
		o.first[name] = append([]float32(nil), x...)
	}
}

// TestObserverSeesEveryWeight: the engine's forward pass shows every
// weight product once per pass, under its tensor name, with its input
// (the fused qkv of gpt2 once, not per row block), and observing changes
// no logit.
func TestObserverSeesEveryWeight(t *testing.T) {
	for _, name := range []string{"llama-f32", "qwen2-f32", "gpt2-f32", "llama-q4_k_m", "qwen2-q8_0", "gpt2-q5_1", "llama-f16", "qwen2-q4_1"} {
		t.Run(name, func(t *testing.T) {
			m := open(t, name+".gguf")
			c := m.Config()
			ids := testTokens(m, 24)
			plain, err := m.Logits(ids)
			if err != nil {
				t.Fatal(err)
			}
			net := m.Net()
			b, err := net.NewBatch(len(ids))
			if err != nil {
				t.Fatal(err)
			}
			st, err := net.NewBatchState(len(ids))
			if err != nil {
				t.Fatal(err)
			}
			o := &observer{calls: map[string]int{}, rows: map[string]int{}, first: map[string][]float32{}}
			b.SetObserver(o)
			logits := make([]float32, len(ids)*c.NVocab)
			if err := net.EvalBatch(b, []model.Seq{{State: st, Tokens: ids, Logits: model.AllLogits}}, logits); err != nil {
				t.Fatal(err)
			}
			for i := range plain {
				for j, v := range plain[i] {
					if logits[i*c.NVocab+j] != v {
						t.Fatalf("logit [%d][%d] %v with an observer, %v without", i, j, logits[i*c.NVocab+j], v)
					}
				}
			}
			want := []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}
			if c.Arch == "gpt2" {
				want = []string{"attn_qkv", "attn_output", "ffn_up", "ffn_down"}
			}
			out := "output.weight"
			if _, ok := m.File().Tensor(out); !ok {
				out = "token_embd.weight" // tied
			}
			names := []string{out}
			for l := range c.NLayer {
				for _, w := range want {
					names = append(names, fmt.Sprintf("blk.%d.%s.weight", l, w))
				}
			}
			if len(o.calls) != len(names) {
				t.Errorf("%d matrices observed, want %d: %v", len(o.calls), len(names), o.calls)
			}
			for _, w := range names {
				if o.calls[w] != 1 || o.rows[w] != len(ids) {
					t.Errorf("%s: %d calls, %d rows; want 1, %d", w, o.calls[w], o.rows[w], len(ids))
				}
			}
			// the first block's attention input, computed here from the
			// file: the normed token embeddings
			if c.Arch != "gpt2" {
				x := o.first["blk.0.attn_q.weight"]
				emb := tensor(t, m.File(), "token_embd.weight")
				norm := tensor(t, m.File(), "blk.0.attn_norm.weight")
				d := c.NEmbd
				for i, id := range ids {
					row := emb[int(id)*d : (int(id)+1)*d]
					var ss float64
					for _, v := range row {
						ss += float64(v) * float64(v)
					}
					r := 1 / math.Sqrt(ss/float64(d)+float64(c.NormEps))
					for j := range d {
						w := float64(row[j]) * r * float64(norm[j])
						if g := float64(x[i*d+j]); math.Abs(g-w) > 1e-4*(1+math.Abs(w)) {
							t.Fatalf("blk.0.attn_q input [%d][%d] = %v, want %v", i, j, g, w)
						}
					}
				}
				for _, w := range []string{"attn_k", "attn_v"} {
					if !slices.Equal(o.first["blk.0."+w+".weight"], x) {
						t.Errorf("blk.0.%s saw another input than attn_q", w)
					}
				}
			}
		})
	}
}

func tensor(t *testing.T, f *gguf.File, name string) []float32 {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	v := make([]float32, ti.Elems())
	if err := quant.Dequantize(ti.Type, f.Data(ti), v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCollectAndRoundTrip(t *testing.T) {
	m := open(t, "llama-f32.gguf")
	ids := testTokens(m, 100)
	tok := m.Tokenizer()
	var seen int
	mat, err := Collect(m, ids, "text.txt", Options{NCtx: 32, BOS: tok.BOS(), AddBOS: tok.AddBOS(), OnChunk: func(int, int) { seen++ }})
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
