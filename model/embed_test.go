package model_test

import (
	"math"
	"testing"

	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

// The hidden rows of EvalHidden times the output matrix are the logits of
// the same tokens, row for row; and a sequence's hidden rows do not depend
// on what else is in the batch.
func TestEvalHiddenReproducesLogits(t *testing.T) {
	prev := kernel.SetExactFloat(true) // float32 activations: logits = h·outputᵀ exactly as computed
	defer kernel.SetExactFloat(prev)
	for _, name := range familyModels {
		t.Run(name, func(t *testing.T) {
			_, m := openModel(t, modelPath(name))
			c := m.Config()
			d, nv := c.NEmbd, c.NVocab
			toks := randomTokens(11, nv, 21)
			logits := evalAll(t, m, newState(t, m, 32), toks)

			b, err := m.NewBatch(32)
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.NewBatchState(32)
			if err != nil {
				t.Fatal(err)
			}
			other, err := m.NewBatchState(32)
			if err != nil {
				t.Fatal(err)
			}
			hm := m.(model.Hidden)
			hidden := make([]float32, (len(toks)+1)*d)
			seqs := []model.Seq{
				{State: other, Tokens: randomTokens(5, nv, 22), Logits: model.LastLogits},
				{State: s, Tokens: toks, Logits: model.AllLogits},
			}
			if err := hm.EvalHidden(b, seqs, hidden); err != nil {
				t.Fatal(err)
			}
			if s.Len() != len(toks) {
				t.Fatalf("Len %d, want %d", s.Len(), len(toks))
			}
			hidden = hidden[d:]
			out := model.OutputMatrix(m)
			row := make([]float32, d)
			var worst float64
			for i := range toks {
				h := hidden[i*d : (i+1)*d]
				for v := range nv {
					out.Row(v, row)
					var dot float64
					for j := range d {
						dot += float64(h[j]) * float64(row[j])
					}
					diff := math.Abs(dot-float64(logits[i*nv+v])) / max(1, math.Abs(dot))
					worst = max(worst, diff)
				}
			}
			t.Logf("max |h·outputᵀ - logits| (relative above 1) = %.3g", worst)
			if worst > 1e-5 {
				t.Errorf("hidden rows times the output matrix differ from the logits by %.3g", worst)
			}

			// Alone: the same rows, bit for bit.
			s2, _ := m.NewBatchState(32)
			alone := make([]float32, len(toks)*d)
			if err := hm.EvalHidden(b, []model.Seq{{State: s2, Tokens: toks, Logits: model.AllLogits}}, alone); err != nil {
				t.Fatal(err)
			}
			if diff := maxDiff(alone, hidden); diff != 0 {
				t.Errorf("hidden rows alone and batched differ by %.3g", diff)
			}

			// Logits passes afterwards are unaffected.
			s3, _ := m.NewBatchState(32)
			lg := make([]float32, len(toks)*nv)
			if err := m.EvalBatch(b, []model.Seq{{State: s3, Tokens: toks, Logits: model.AllLogits}}, lg); err != nil {
				t.Fatal(err)
			}
			if diff := maxDiff(lg, logits); diff != 0 {
				t.Errorf("logits after EvalHidden differ by %.3g", diff)
			}
			if err := hm.EvalHidden(b, []model.Seq{{State: s3, Tokens: toks[:2], Logits: model.AllLogits}}, make([]float32, 3)); err == nil {
				t.Error("EvalHidden with a wrong-sized output: no error")
			}
		})
	}
}
