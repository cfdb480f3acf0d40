package synth_test

import (
	"math"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
	"github.com/slm-dev/slm/synth"
)

// TestQwen3Shapes checks the Qwen3 plans: the parameter counts of the real
// models (model cards: 0.6B with 0.44B non-embedding, 1.7B with 1.4B, 4.0B
// with 3.6B; the embedding is tied) and a shrunken file's per-head norms
// and head-size metadata.
func TestQwen3Shapes(t *testing.T) {
	for _, c := range []struct {
		like          string
		params, nonEm float64 // millions
	}{
		{"qwen3-0.6b", 596.0, 440.5},
		{"qwen3-1.7b", 1720.6, 1409.3},
		{"qwen3-4b", 4022.5, 3633.5},
	} {
		s, err := synth.Lookup(c.like)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := synth.Plan(synth.Options{Shape: s, Type: "q8_0"})
		if err != nil {
			t.Fatal(err)
		}
		var params, emb float64
		for _, tn := range ts {
			params += float64(tn.Elems())
			if tn.Name == "token_embd.weight" {
				emb = float64(tn.Elems())
			}
			if tn.Name == "output.weight" {
				t.Errorf("%s: an output.weight (the embedding is tied)", c.like)
			}
		}
		if math.Abs(params/1e6-c.params) > 0.001*c.params || math.Abs((params-emb)/1e6-c.nonEm) > 0.001*c.nonEm {
			t.Errorf("%s: %.1fM parameters (%.1fM non-embedding), want %.1fM (%.1fM)", c.like, params/1e6, (params-emb)/1e6, c.params, c.nonEm)
		}
	}

	s := tiny(t, "qwen3-0.6b")
	path, _ := write(t, synth.Options{Shape: s, Type: "q4_k_m", Vocab: 300, Seed: 2})
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight"} {
		ti, ok := f.Tensor(name)
		if !ok || ti.Type != quant.F32 || len(ti.Dims) != 1 || ti.Dims[0] != 128 {
			t.Errorf("%s: %+v (present %v), want F32 [128]", name, ti, ok)
		}
	}
	if ti, _ := f.Tensor("blk.0.attn_q.weight"); len(ti.Dims) != 2 || ti.Dims[0] != 256 || ti.Dims[1] != 4*128 {
		t.Errorf("attn_q.weight dims %v, want [256 512]", ti.Dims)
	}
	for k, want := range map[string]uint64{"qwen3.attention.key_length": 128, "qwen3.attention.value_length": 128} {
		if v, ok := f.Uint(k); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %d", k, v, ok, want)
		}
	}
	if pre, _ := f.String("tokenizer.ggml.pre"); pre != "qwen2" {
		t.Errorf("tokenizer.ggml.pre = %q, want qwen2", pre)
	}
}
