package cli

import (
	"fmt"
	"testing"
)

func TestConvertRunPhi3Gemma(t *testing.T) {
	const embd, ff, vocab = 64, 96, 32064
	phi := map[string][]int64{"model.embed_tokens.weight": {vocab, embd}, "model.norm.weight": {embd}, "lm_head.weight": {vocab, embd}}
	for l := 0; l < 2; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		phi[p+"input_layernorm.weight"] = []int64{embd}
		phi[p+"post_attention_layernorm.weight"] = []int64{embd}
		phi[p+"self_attn.qkv_proj.weight"] = []int64{128, embd} // 4 heads + 2·2 kv heads of 16
		phi[p+"self_attn.o_proj.weight"] = []int64{embd, embd}
		phi[p+"mlp.gate_up_proj.weight"] = []int64{2 * ff, embd}
		phi[p+"mlp.down_proj.weight"] = []int64{embd, ff}
	}
	gem := llamaShapes(2, vocab, embd, ff, 4, 1, 32) // 4 heads of 32, one kv head
	for _, c := range []struct {
		arch   string
		cfg    map[string]any
		shapes map[string][]int64
		keys   []string
	}{
		{"phi3", map[string]any{
			"architectures": []string{"Phi3ForCausalLM"}, "hidden_size": embd, "intermediate_size": ff,
			"num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "rms_norm_eps": 1e-5,
			"rope_theta": 10000.0, "max_position_embeddings": 64, "original_max_position_embeddings": 64,
			"sliding_window": 63, "vocab_size": vocab,
		}, phi, []string{`"architecture": "phi3"`, "blk.0.attn_qkv.weight", `"phi3.attention.sliding_window"`}},
		{"gemma", map[string]any{
			"architectures": []string{"GemmaForCausalLM"}, "hidden_size": embd, "intermediate_size": ff,
			"num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 32, "num_hidden_layers": 2,
			"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 64, "vocab_size": vocab,
			"hidden_activation": "gelu_pytorch_tanh",
		}, gem, []string{`"architecture": "gemma"`, `"gemma.attention.key_length"`, "blk.1.ffn_gate.weight"}},
	} {
		t.Run(c.arch, func(t *testing.T) {
			checkConvertRun(t, tinyDir(t, c.cfg, c.shapes), cliFlow{name: c.arch, keys: c.keys, n: "4", logitsPrompt: "Hello world"})
		})
	}
}
