package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// Gemma 2 and Gemma 3 checkpoints convert, inspect, run (beyond their tiny
// sliding windows), give logits and quantize through the CLI.
func TestConvertRunGemma23(t *testing.T) {
	const embd, ff, vocab, hd = 64, 96, 32000, 32
	shapes := func(layers int, qk bool) map[string][]int64 {
		m := map[string][]int64{"model.embed_tokens.weight": {vocab, embd}, "model.norm.weight": {embd}}
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			for _, n := range []string{"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
				m[p+n+".weight"] = []int64{embd}
			}
			if qk {
				m[p+"self_attn.q_norm.weight"] = []int64{hd}
				m[p+"self_attn.k_norm.weight"] = []int64{hd}
			}
			m[p+"self_attn.q_proj.weight"] = []int64{4 * hd, embd}
			m[p+"self_attn.k_proj.weight"] = []int64{hd, embd}
			m[p+"self_attn.v_proj.weight"] = []int64{hd, embd}
			m[p+"self_attn.o_proj.weight"] = []int64{embd, 4 * hd}
			m[p+"mlp.gate_proj.weight"] = []int64{ff, embd}
			m[p+"mlp.up_proj.weight"] = []int64{ff, embd}
			m[p+"mlp.down_proj.weight"] = []int64{embd, ff}
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
			dir := tinyDir(t, c.cfg, c.shapes)
			out := filepath.Join(t.TempDir(), c.arch+".gguf")
			if code, _, errs := slm(t, "", "convert", dir, out, "--type", "q8_0", "-q"); code != 0 {
				t.Fatalf("convert: exit %d: %s", code, errs)
			}
			code, js, errs := slm(t, "", "inspect", out, "--json")
			if code != 0 {
				t.Fatalf("inspect: exit %d: %s", code, errs)
			}
			for _, want := range c.keys {
				if !strings.Contains(js, want) {
					t.Errorf("inspect output lacks %s", want)
				}
			}
			code, text, errs := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", "12", "--temp", "0")
			if code != 0 {
				t.Fatalf("run: exit %d: %s", code, errs)
			}
			if _, again, _ := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", "12", "--temp", "0"); again != text {
				t.Errorf("greedy runs differ: %q, %q", text, again)
			}
			if code, _, errs := slm(t, "", "logits", "-m", out, "-p", "Hello world, once upon a time there was", "--json"); code != 0 {
				t.Errorf("logits: exit %d: %s", code, errs)
			}
			q := filepath.Join(t.TempDir(), c.arch+"-q4_k_m.gguf")
			if code, _, errs := slm(t, "", "quantize", out, q, "Q4_K_M", "--allow-requantize"); code != 0 {
				t.Fatalf("quantize: exit %d: %s", code, errs)
			}
			if code, _, errs := slm(t, "", "run", "-m", q, "-p", "Hello", "-n", "12", "--temp", "0"); code != 0 {
				t.Errorf("run on Q4_K_M: exit %d: %s", code, errs)
			}
		})
	}
}
