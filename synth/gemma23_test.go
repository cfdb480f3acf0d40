package synth_test

import (
	"math"
	"testing"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
	"github.com/slm-dev/slm/synth"
)

// TestGemma23Shapes writes shrunken Gemma 2 and Gemma 3 files (seven
// layers, so that both kinds of layer are there) and checks their
// post-norms, q/k norms, metadata and that the engine runs them.
func TestGemma23Shapes(t *testing.T) {
	for _, c := range []struct {
		like string
		keys map[string]any
		qk   bool
	}{
		{"gemma-2-2b", map[string]any{"gemma2.attention.sliding_window": uint32(4096), "gemma2.attn_logit_softcapping": float32(50),
			"gemma2.final_logit_softcapping": float32(30), "gemma2.attention.key_length": uint32(256)}, false},
		{"gemma-3-1b", map[string]any{"gemma3.attention.sliding_window": uint32(512), "gemma3.rope.freq_base": float32(1e6),
			"gemma3.attention.key_length": uint32(256)}, true},
		{"gemma-3-270m", map[string]any{"gemma3.attention.sliding_window": uint32(512), "gemma3.rope.freq_base": float32(1e6)}, true},
	} {
		t.Run(c.like, func(t *testing.T) {
			s := tiny(t, c.like)
			s.NLayer = 7
			path, _ := write(t, synth.Options{Shape: s, Type: "q8_0", Vocab: 300, Seed: 3})
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if a := f.Arch(); a != s.Arch {
				t.Errorf("architecture %q, want %q", a, s.Arch)
			}
			for k, want := range c.keys {
				if v, _ := f.Get(k); v != want {
					t.Errorf("%s = %v (%T), want %v", k, v, v, want)
				}
			}
			names := []string{"blk.6.post_attention_norm.weight", "blk.6.post_ffw_norm.weight", "blk.0.ffn_norm.weight"}
			if c.qk {
				names = append(names, "blk.5.attn_q_norm.weight", "blk.5.attn_k_norm.weight")
			}
			for _, n := range names {
				if ti, ok := f.Tensor(n); !ok || ti.Type != quant.F32 {
					t.Errorf("%s: %+v (present %v), want F32", n, ti, ok)
				}
			}
			if _, ok := f.Tensor("output.weight"); ok {
				t.Error("an output.weight (the embedding is tied)")
			}
			m, err := engine.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			logits, err := m.Logits([]int32{1, 2, 3, 4, 5})
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range logits {
				for _, v := range row {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("a logit is %v", v)
					}
				}
			}
		})
	}
}
