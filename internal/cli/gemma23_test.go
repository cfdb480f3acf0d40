package cli

import (
	"fmt"
	"testing"
)

// Gemma 2 and Gemma 3 checkpoints convert, inspect, run (beyond their tiny
// sliding windows), give logits and quantize through the CLI.
func TestConvertRunGemma23(t *testing.T) {
	const embd, ff, vocab, hd = 64, 96, 32000, 32
	shapes := func(layers int, qk bool) map[string][]int64 {
		m := llamaShapes(layers, vocab, embd, ff, 4, 1, hd) // 4 heads, one kv head
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			m[p+"pre_feedforward_layernorm.weight"] = []int64{embd}
			m[p+"post_feedforward_layernorm.weight"] = []int64{embd}
			if qk {
				m[p+"self_attn.q_norm.weight"] = []int64{hd}
				m[p+"self_attn.k_norm.weight"] = []int64{hd}
			}
		}
		return m
	}
	base := func(arch string, layers int) map[string]any {
		return map[string]any{
			"architectures": []string{arch}, "hidden_size": embd, "intermediate_size": ff,
			"num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": hd, "num_hidden_layers": layers,
			"rms_norm_eps": 1e-6, "max_position_embeddings": 64, "vocab_size": vocab,
			"hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": hd, "sliding_window": 4,
		}
	}
	g2 := base("Gemma2ForCausalLM", 2)
	g2["rope_theta"], g2["attn_logit_softcapping"], g2["final_logit_softcapping"] = 10000.0, 50.0, 30.0
	g3 := base("Gemma3ForCausalLM", 6)
	g3["rope_theta"], g3["rope_local_base_freq"] = 1e6, 10000.0
	for _, c := range []struct {
		arch   string
		cfg    map[string]any
		shapes map[string][]int64
		keys   []string
	}{
		{"gemma2", g2, shapes(2, false), []string{`"architecture": "gemma2"`, `"gemma2.attn_logit_softcapping"`, `"gemma2.attention.sliding_window"`, "blk.1.post_ffw_norm.weight"}},
		{"gemma3", g3, shapes(6, true), []string{`"architecture": "gemma3"`, `"gemma3.attention.sliding_window"`, "blk.5.attn_q_norm.weight", "blk.0.post_attention_norm.weight"}},
	} {
		t.Run(c.arch, func(t *testing.T) {
			// 12 tokens and a long prompt: beyond the sliding window of 4.
			checkConvertRun(t, tinyDir(t, c.cfg, c.shapes), cliFlow{name: c.arch, keys: c.keys, n: "12", logitsPrompt: "Hello world, once upon a time there was"})
		})
	}
}
