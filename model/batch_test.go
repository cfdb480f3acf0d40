package model_test

import (
	"testing"

	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

// batchCase is one sequence of a batched step: the tokens already in its
// cache, then the step's tokens and the logits it asks for.
type batchCase struct {
	ctx     int
	history []int32
	step    []int32
	want    model.Want
}

// evalAlone evaluates c on a state of its own: history first, then the
// step's tokens, and returns the step's logits rows.
func evalAlone(t *testing.T, m model.Model, c batchCase) []float32 {
	t.Helper()
	nv := m.Config().NVocab
	s := newState(t, m, c.ctx)
	if len(c.history) > 0 {
		evalAll(t, m, s, c.history)
	}
	switch c.want {
	case model.AllLogits:
		return evalAll(t, m, s, c.step)
	case model.LastLogits:
		out := make([]float32, nv)
		if err := m.Eval(s, c.step, out, false); err != nil {
			t.Fatal(err)
		}
		return out
	}
	return nil
}

func rows(c batchCase) int {
	switch c.want {
	case model.AllLogits:
		return len(c.step)
	case model.LastLogits:
		return 1
	}
	return 0
}

// Sequences of different lengths, positions and contexts, some prefilling
// and some decoding, evaluated in one batch give the logits each gives
// alone; then they keep decoding together.
func TestEvalBatchEqualsAlone(t *testing.T) {
	for _, mode := range []string{"fast", "exact"} {
		prev := kernel.SetExactFloat(mode == "exact")
		for _, name := range familyModels {
			t.Run(mode+"/"+name, func(t *testing.T) { testEvalBatchEqualsAlone(t, name) })
		}
		kernel.SetExactFloat(prev)
	}
}

func testEvalBatchEqualsAlone(t *testing.T, name string) {
	_, m := openModel(t, modelPath(name))
	nv := m.Config().NVocab
	cases := []batchCase{
		{ctx: 64, step: randomTokens(7, nv, 10), want: model.AllLogits},                        // a fresh prompt, scored
		{ctx: 64, history: randomTokens(20, nv, 11), step: []int32{5}, want: model.LastLogits}, // decoding
		{ctx: 48, history: randomTokens(5, nv, 12), step: randomTokens(9, nv, 13)},             // a middle prompt chunk
		{ctx: 96, history: randomTokens(33, nv, 14), step: []int32{9}, want: model.LastLogits}, // decoding further on
		{ctx: 64, history: randomTokens(3, nv, 15), step: randomTokens(6, nv, 16), want: model.LastLogits},
	}
	b, err := m.NewBatch(32)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []model.Seq
	nOut := 0
	for _, c := range cases {
		s, err := m.NewBatchState(c.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.history) > 0 {
			evalAll(t, m, s, c.history) // Eval works on a batch state too
		}
		seqs = append(seqs, model.Seq{State: s, Tokens: c.step, Logits: c.want})
		nOut += rows(c)
	}
	logits := make([]float32, nOut*nv)
	if err := m.EvalBatch(b, seqs, logits); err != nil {
		t.Fatal(err)
	}
	var worst float64
	off := 0
	for i, c := range cases {
		want := evalAlone(t, m, c)
		got := logits[off : off+rows(c)*nv]
		off += len(got)
		worst = max(worst, maxDiff(got, want))
		if n := len(c.history) + len(c.step); seqs[i].State.Len() != n {
			t.Errorf("sequence %d: Len %d, want %d", i, seqs[i].State.Len(), n)
		}
	}

	// Three decode steps of every sequence together.
	for step := range 3 {
		for i := range seqs {
			seqs[i].Tokens = []int32{int32(17*i + step)}
			seqs[i].Logits = model.LastLogits
		}
		logits := make([]float32, len(seqs)*nv)
		if err := m.EvalBatch(b, seqs, logits); err != nil {
			t.Fatal(err)
		}
		for i := range cases {
			cases[i].history = append(cases[i].history, cases[i].step...)
			cases[i].step, cases[i].want = seqs[i].Tokens, model.LastLogits
			worst = max(worst, maxDiff(logits[i*nv:(i+1)*nv], evalAlone(t, m, cases[i])))
		}
	}
	t.Logf("max |batched - alone| = %.3g", worst)
	// Exactly: a sequence's rows must not depend on what else is in the
	// batch, or greedy outputs would change with the server's load.
	if worst != 0 {
		t.Errorf("batched and separate logits differ by %.3g: a row's result depends on the batch", worst)
	}
}

func TestEvalBatchErrors(t *testing.T) {
	_, m := openModel(t, modelPath("llama-q4_0"))
	nv := m.Config().NVocab
	b, err := m.NewBatch(8)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := m.NewBatchState(16)
	s2, _ := m.NewBatchState(4)
	evalAll(t, m, s2, []int32{1, 2})
	one := make([]float32, nv)
	two := make([]float32, 2*nv)
	seq := func(s *model.State, n int, w model.Want) model.Seq {
		return model.Seq{State: s, Tokens: randomTokens(n, nv, 20), Logits: w}
	}
	wantErr(t, m.EvalBatch(b, []model.Seq{seq(s1, 1, model.LastLogits), seq(s1, 1, model.LastLogits)}, two), "already in the batch")
	wantErr(t, m.EvalBatch(b, []model.Seq{seq(s1, 1, model.LastLogits), seq(s2, 3, model.LastLogits)}, two), "sequence 1", "overflow")
	wantErr(t, m.EvalBatch(b, []model.Seq{seq(s1, 6, model.NoLogits), seq(s2, 2, model.LastLogits), seq(nil, 1, 0)}, one), "sequence 2", "state")
	wantErr(t, m.EvalBatch(b, []model.Seq{seq(s1, 7, model.NoLogits), seq(s2, 2, model.LastLogits)}, one), "room for 8")
	wantErr(t, m.EvalBatch(b, []model.Seq{seq(s1, 1, model.LastLogits), seq(s2, 1, model.LastLogits)}, one), "want 640")
	wantErr(t, m.EvalBatch(b, []model.Seq{{State: s1, Tokens: []int32{int32(nv)}}}, nil), "vocabulary")
	wantErr(t, m.EvalBatch(b, []model.Seq{{State: s1}}, nil), "no tokens")
	wantErr(t, m.EvalBatch(b, nil, nil), "no sequences")
	_, other := openModel(t, modelPath("llama-q4_1"))
	ob, _ := other.NewBatch(8)
	wantErr(t, m.EvalBatch(ob, []model.Seq{seq(s1, 1, model.LastLogits)}, one), "batch")
	wantErr(t, m.EvalBatch(nil, []model.Seq{seq(s1, 1, model.LastLogits)}, one), "batch")
	if s1.Len() != 0 || s2.Len() != 2 {
		t.Errorf("failed batches changed the states: Len %d and %d", s1.Len(), s2.Len())
	}
	_, err = m.NewBatch(0)
	wantErr(t, err, "0")
	// After the errors the batch still works.
	if err := m.EvalBatch(b, []model.Seq{seq(s1, 1, model.LastLogits), seq(s2, 2, model.AllLogits)}, make([]float32, 3*nv)); err != nil {
		t.Fatal(err)
	}
	if s1.Len() != 1 || s2.Len() != 4 {
		t.Errorf("Len %d and %d", s1.Len(), s2.Len())
	}
}

// A decode step of several sequences allocates nothing.
func TestEvalBatchAllocs(t *testing.T) {
	for _, name := range []string{"llama-q8_0", "qwen2-f16", "gpt2-q4_k"} {
		t.Run(name, func(t *testing.T) {
			_, m := openModel(t, modelPath(name))
			nv := m.Config().NVocab
			b, _ := m.NewBatch(16)
			seqs := make([]model.Seq, 4)
			for i := range seqs {
				s, _ := m.NewBatchState(64)
				evalAll(t, m, s, randomTokens(10+5*i, nv, uint64(30+i)))
				seqs[i] = model.Seq{State: s, Tokens: []int32{int32(i + 1)}, Logits: model.LastLogits}
			}
			logits := make([]float32, len(seqs)*nv)
			allocs := testing.AllocsPerRun(20, func() {
				for i := range seqs {
					seqs[i].State.Truncate(10 + 5*i)
				}
				if err := m.EvalBatch(b, seqs, logits); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per batched decode step", allocs)
			}
		})
	}
}

// CopyPrefix hands a cached prefix to another state: continuing from it
// gives the logits of evaluating everything there.
func TestCopyPrefix(t *testing.T) {
	_, m := openModel(t, modelPath("qwen2-q8_0"))
	nv := m.Config().NVocab
	tokens := randomTokens(30, nv, 40)
	src := newState(t, m, 64)
	want := evalAll(t, m, src, tokens)

	dst, _ := m.NewBatchState(32)
	evalAll(t, m, dst, randomTokens(12, nv, 41)) // something else first
	if err := dst.CopyPrefix(src, 20); err != nil {
		t.Fatal(err)
	}
	if dst.Len() != 20 {
		t.Fatalf("Len %d after CopyPrefix(20)", dst.Len())
	}
	got := evalAll(t, m, dst, tokens[20:])
	if d := maxDiff(got, want[20*nv:]); d != 0 {
		t.Errorf("after CopyPrefix: logits differ by %.3g", d)
	}
	dst.CopyPrefix(src, 100) // clamped to the source's Len
	if dst.Len() != 30 {
		t.Errorf("CopyPrefix(100) of 30 positions: Len %d", dst.Len())
	}
	_, other := openModel(t, modelPath("qwen2-q4_0"))
	o, _ := other.NewBatchState(8)
	wantErr(t, o.CopyPrefix(src, 1), "different models")
}
