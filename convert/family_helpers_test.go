package convert

// What the model-family conversion tests (phi3gemma_test.go, qwen3_test.go,
// gemma23_test.go) share: converting and loading a checkpoint as a bare
// model.Model, comparing its logits with a float64 reference, one pass vs
// token by token, EvalBatch vs the sequences alone, allocation-free
// decoding, damaged files, refused configs and the metadata, tensor types
// and (1 + w) norms of the written file. Each family's file keeps its
// checkpoint, its reference formulas and its own checks.

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/model"
	"github.com/slm-dev/slm/quant"
)

// loadNet converts dir and loads the GGUF as a bare model.Model.
func loadNet(t testing.TB, dir string, opt Options) (model.Model, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "model.gguf")
	must(t, Convert(dir, out, opt))
	f, err := gguf.Open(out)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	must(t, err)
	return m, out
}

// openFile opens a GGUF file until the end of the test.
func openFile(t testing.TB, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// netLogits evaluates tokens in a state of nCtx positions, all rows.
func netLogits(t testing.TB, m model.Model, nCtx int, tokens []int32) []float32 {
	t.Helper()
	s, err := m.NewState(nCtx)
	must(t, err)
	out := make([]float32, len(tokens)*m.Config().NVocab)
	must(t, m.Eval(s, tokens, out, true))
	return out
}

// diffRows is the largest |got - want| and the largest |want|.
func diffRows(got []float32, want [][]float64) (worst, scale float64) {
	nv := len(want[0])
	for p := range want {
		for i := range want[p] {
			worst = max(worst, math.Abs(float64(got[p*nv+i])-want[p][i]))
			scale = max(scale, math.Abs(want[p][i]))
		}
	}
	return worst, scale
}

func checkRows(t *testing.T, label string, got []float32, want [][]float64, tol float64) float64 {
	t.Helper()
	worst, scale := diffRows(got, want)
	t.Logf("%s: max |Δlogit| = %.3g (logits up to %.3g)", label, worst, scale)
	if worst > tol*(1+scale) {
		t.Errorf("%s: logits differ from the reference by %.3g (tolerance %.3g)", label, worst, tol*(1+scale))
	}
	return worst
}

// checkKeys checks metadata values (and their Go types) of f.
func checkKeys(t *testing.T, f *gguf.File, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got, _ := f.Get(k); got != v {
			t.Errorf("%s = %v (%T), want %v (%T)", k, got, got, v, v)
		}
	}
	t.Logf("checkKeys: %d metadata values", len(want))
}

// checkTensorTypes checks that every 2-D tensor of the file at path is of
// typ and, with vectorsF32, that every 1-D tensor is F32.
func checkTensorTypes(t *testing.T, path string, typ quant.Type, vectorsF32 bool) {
	t.Helper()
	f, err := gguf.Open(path)
	must(t, err)
	defer f.Close()
	t.Logf("checkTensorTypes: %d tensors, matrices %v, vectors F32 %v", len(f.Tensors), typ, vectorsF32)
	for _, ti := range f.Tensors {
		switch {
		case len(ti.Dims) == 2 && ti.Type != typ:
			t.Errorf("%s is %v, want %v", ti.Name, ti.Type, typ)
		case vectorsF32 && len(ti.Dims) == 1 && ti.Type != quant.F32:
			t.Errorf("%s is %v, want F32", ti.Name, ti.Type)
		}
	}
}

// checkNormPlusOne checks that the norm name of f holds 1 + src, the
// checkpoint's weights, exactly (Gemma's RMSNorms scale by 1 + w).
func checkNormPlusOne(t *testing.T, f *gguf.File, name string, src []float32) {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Errorf("no %s", name)
		return
	}
	w := make([]float32, len(src))
	must(t, quant.Dequantize(ti.Type, f.Data(ti), w))
	for i := range w {
		if w[i] != src[i]+1 {
			t.Fatalf("%s[%d] = %v, want 1 + %v", name, i, w[i], src[i])
		}
	}
	t.Logf("checkNormPlusOne: %s, %d values", name, len(w))
}

// oneByOneDiff evaluates tokens one at a time on s and returns the largest
// difference from all, their logits (every row) from one pass.
func oneByOneDiff(t testing.TB, m model.Model, s *model.State, tokens []int32, all []float32) float64 {
	t.Helper()
	nv := m.Config().NVocab
	one := make([]float32, nv)
	worst := 0.0
	for i, tok := range tokens {
		must(t, m.Eval(s, []int32{tok}, one, false))
		for j := range one {
			worst = max(worst, math.Abs(float64(one[j]-all[i*nv+j])))
		}
	}
	t.Logf("oneByOneDiff: %d tokens one at a time vs one pass: max |Δ| = %.3g", len(tokens), worst)
	return worst
}

// batchSeq is one sequence of an EvalBatch check: tokens in a state of
// nCtx positions.
type batchSeq struct {
	nCtx   int
	tokens []int32
}

// checkBatchAndDecode evaluates two sequences together in one EvalBatch (a
// batch of nBatch tokens) and checks every row of logits against the
// sequences evaluated alone; then that decoding one more token after
// prompt on s allocates nothing, and that neither does a batched decode
// step of the two sequences.
func checkBatchAndDecode(t *testing.T, m model.Model, nBatch int, seq [2]batchSeq, s *model.State, prompt []int32) {
	t.Helper()
	nv := m.Config().NVocab
	alone := append(netLogits(t, m, seq[0].nCtx, seq[0].tokens), netLogits(t, m, seq[1].nCtx, seq[1].tokens)...)
	b, err := m.NewBatch(nBatch)
	must(t, err)
	s0, _ := m.NewBatchState(seq[0].nCtx)
	s1, _ := m.NewBatchState(seq[1].nCtx)
	seqs := []model.Seq{{State: s0, Tokens: seq[0].tokens, Logits: model.AllLogits}, {State: s1, Tokens: seq[1].tokens, Logits: model.AllLogits}}
	got := make([]float32, len(alone))
	must(t, m.EvalBatch(b, seqs, got))
	worst := 0.0
	for i, v := range alone {
		worst = max(worst, math.Abs(float64(v-got[i])))
	}
	t.Logf("checkBatchAndDecode: EvalBatch of %d+%d tokens vs alone: max |Δ| = %.3g", len(seq[0].tokens), len(seq[1].tokens), worst)
	if worst > 1e-5 {
		t.Errorf("EvalBatch differs from the sequences alone by %.3g", worst)
	}

	logits := make([]float32, nv)
	must(t, m.Eval(s, prompt, logits, false))
	n := s.Len()
	tok := []int32{7}
	if a := testing.AllocsPerRun(20, func() {
		s.Truncate(n)
		if err := m.Eval(s, tok, logits, false); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per decoded token", a)
	} else {
		t.Logf("checkBatchAndDecode: no allocations per decoded token after %d", n)
	}
	seqs[0].Tokens, seqs[1].Tokens = []int32{3}, []int32{4}
	seqs[0].Logits, seqs[1].Logits = model.LastLogits, model.LastLogits
	two := make([]float32, 2*nv)
	n0, n1 := len(seq[0].tokens), len(seq[1].tokens)
	if a := testing.AllocsPerRun(20, func() {
		s0.Truncate(n0)
		s1.Truncate(n1)
		if err := m.EvalBatch(b, seqs, two); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per batched decode step", a)
	} else {
		t.Logf("checkBatchAndDecode: no allocations per batched decode step")
	}
}

// fileEdit overwrites old (a tensor name or metadata key) with new in a
// converted file: loading it must then fail with an error mentioning want,
// or succeed when want is "".
type fileEdit struct{ old, new, want string }

// checkHostileFile converts dir to Q8_0 and checks that the file loads,
// that each edit of it fails or loads as the edit says, that 200
// truncations of it give errors and that 100 random damages of its first
// quarter never panic.
func checkHostileFile(t *testing.T, dir string, edits []fileEdit) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "m.gguf")
	must(t, Convert(dir, out, Options{Type: quant.Q8_0}))
	data, err := os.ReadFile(out)
	must(t, err)
	load := func(data []byte) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
				t.Errorf("panic loading a damaged file: %v", r)
			}
		}()
		f, err := gguf.Parse("damaged.gguf", data)
		if err != nil {
			return err
		}
		_, err = model.Load(f)
		return err
	}
	if err := load(data); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	rename := func(old, new string) []byte {
		d := bytes.Clone(data)
		i := bytes.Index(d, []byte(old))
		if i < 0 {
			t.Fatalf("%q not in the file", old)
		}
		copy(d[i:], new)
		return d
	}
	for _, e := range edits {
		err := load(rename(e.old, e.new))
		switch {
		case e.want == "" && err != nil:
			t.Errorf("%s renamed: %v", e.old, err)
		case e.want != "" && (err == nil || !strings.Contains(err.Error(), e.want)):
			t.Errorf("%s renamed: error %v, want one mentioning %q", e.old, err, e.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := r.IntN(len(data))
		if err := load(data[:n]); err == nil {
			t.Errorf("a file truncated to %d of %d bytes loaded", n, len(data))
		}
	}
	for range 100 { // random byte damage: any error is fine, a panic is not
		d := bytes.Clone(data)
		for range 8 {
			d[r.IntN(len(d)/4)] ^= byte(1 + r.IntN(255))
		}
		load(d)
	}
	t.Logf("checkHostileFile: %d edits, 200 truncations and 100 damaged copies of %d bytes", len(edits), len(data))
}

// checkConvertError writes m with tokFamily's tokenizer and checks that
// converting it fails with an error mentioning want.
func checkConvertError(t *testing.T, m *hfModel, tokFamily, want string) {
	t.Helper()
	dir := writeDir(t, m, tokFamily, 1)
	err := Convert(dir, filepath.Join(t.TempDir(), "o.gguf"), Options{Type: quant.F16})
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one mentioning %q", err, want)
	}
	t.Logf("checkConvertError: %v", err)
}
