package model_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/slm-dev/slm/model"
	"github.com/slm-dev/slm/quant"
)

type countObs struct{ calls, rows map[string]int }

func (o *countObs) ObserveMatMul(name string, x []float32, n, cols int) {
	if len(x) != n*cols {
		panic(fmt.Sprintf("%s: %d values for %d×%d", name, len(x), n, cols))
	}
	o.calls[name]++
	o.rows[name] += n
}

// An observer set on a State sees Eval's weight products by tensor name;
// decoding with one allocates nothing beyond what the observer does, and
// observing changes no logit.
func TestStateObserver(t *testing.T) {
	for _, name := range []string{"llama-q4_k", "gpt2-q8_0"} {
		t.Run(name, func(t *testing.T) {
			_, m := openModel(t, modelPath(name))
			c := m.Config()
			toks := randomTokens(9, c.NVocab, 3)
			want := evalAll(t, m, newState(t, m, 16), toks)
			s := newState(t, m, 16)
			o := &countObs{calls: map[string]int{}, rows: map[string]int{}}
			s.SetObserver(o)
			got := evalAll(t, m, s, toks)
			if d := maxDiff(got, want); d != 0 {
				t.Errorf("logits moved by %g with an observer", d)
			}
			down := "blk.0.ffn_down.weight"
			if o.calls[down] != 1 || o.rows[down] != len(toks) {
				t.Errorf("%s: %d calls, %d rows", down, o.calls[down], o.rows[down])
			}
			if c.Arch == "gpt2" && o.calls["blk.1.attn_qkv.weight"] != 1 {
				t.Errorf("attn_qkv: %d calls", o.calls["blk.1.attn_qkv.weight"])
			}
			s.SetObserver(nil)
			n := len(o.calls)
			evalAll(t, m, s, toks[:1])
			if len(o.calls) != n || o.calls[down] != 1 {
				t.Error("observed after SetObserver(nil)")
			}
		})
	}
}

// An F16 cache holds fp16 values, moves the logits only a little, and
// decodes without allocating.
func TestKVF16(t *testing.T) {
	for _, name := range []string{"llama-f32", "qwen2-f16", "gpt2-q8_0"} {
		t.Run(name, func(t *testing.T) {
			_, m := openModel(t, modelPath(name))
			nv := m.Config().NVocab
			toks := randomTokens(20, nv, 5)
			ref := evalAll(t, m, newState(t, m, 64), toks)
			s := newState(t, m, 64)
			s.SetKVF16(true)
			if !s.KVF16() {
				t.Fatal("KVF16 not set")
			}
			got := evalAll(t, m, s, toks)
			var scale float64
			for _, v := range ref {
				scale = max(scale, math.Abs(float64(v)))
			}
			d := maxDiff(got, ref)
			if d == 0 || d > 2e-2*scale {
				t.Errorf("F16 cache moved the logits by %g (largest %g), want a little", d, scale)
			}
			t.Logf("max |logit diff| F16 vs F32 cache: %.3g (largest logit %.3g)", d, scale)
			for i, v := range model.KeyCache(s, 1) {
				if r := quant.F16ToF32(quant.F32ToF16(v)); r != v {
					t.Fatalf("key %d = %v is not an fp16 value", i, v)
				}
			}
			logits := make([]float32, nv)
			tok := []int32{7}
			allocs := testing.AllocsPerRun(20, func() {
				s.Truncate(20)
				if err := m.Eval(s, tok, logits, false); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per decoded token", allocs)
			}
		})
	}
}
