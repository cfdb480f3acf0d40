package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/slm-dev/slm/chat"
	"github.com/slm-dev/slm/gguf"
)

// TestConvertRunQwen3 converts a tiny random Qwen3 checkpoint with the real
// Qwen3 tokenizer (heads of 32 over a hidden size of 64, per-head q/k
// norms), inspects it, runs it greedily, quantizes it, and renders the
// chat template the file carries (with its <think> block).
func TestConvertRunQwen3(t *testing.T) {
	const embd, ff, vocab, heads, kv, hd = 64, 96, 151936, 4, 2, 32
	shapes := llamaShapes(2, vocab, embd, ff, heads, kv, hd)
	for l := 0; l < 2; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		shapes[p+"self_attn.q_norm.weight"] = []int64{hd}
		shapes[p+"self_attn.k_norm.weight"] = []int64{hd}
	}
	cfg := map[string]any{
		"architectures": []string{"Qwen3ForCausalLM"}, "hidden_size": embd, "intermediate_size": ff,
		"num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd, "num_hidden_layers": 2,
		"rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 128, "vocab_size": vocab,
		"tie_word_embeddings": true, "attention_bias": false,
	}
	dir := writeCheckpoint(t, cfg, randomTensors(4, shapes, true), "qwen3", "tokenizer.json.gz", "tokenizer_config.json")
	out := checkConvertRun(t, dir, cliFlow{
		name: "qwen3",
		keys: []string{`"architecture": "qwen3"`, `"qwen3.attention.key_length"`, "blk.1.attn_q_norm.weight", "blk.0.attn_k_norm.weight"},
		n:    "4", logitsPrompt: "Hello world",
		checkText: func(t *testing.T, text string) {
			if strings.TrimSpace(text) == "" {
				t.Errorf("run printed %q", text)
			}
		},
	})

	// The file's chat template (Qwen3's, from tokenizer_config.json).
	g, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tmpl, ok := g.String("tokenizer.chat_template")
	if !ok {
		t.Fatal("no tokenizer.chat_template in the converted file")
	}
	if !chat.SupportsThinkingSwitch(tmpl) {
		t.Error("the Qwen3 template is not seen to read enable_thinking")
	}
	msgs := []chat.Message{{Role: "user", Content: "Hi"}}
	on, err := chat.Render(tmpl, msgs, chat.Options{AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"; on != want {
		t.Errorf("rendered %q, want %q", on, want)
	}
	off, err := chat.Render(tmpl, msgs, chat.Options{AddGenerationPrompt: true, Extra: map[string]any{"enable_thinking": false}})
	if err != nil {
		t.Fatal(err)
	}
	if want := on + "<think>\n\n</think>\n\n"; off != want {
		t.Errorf("enable_thinking false: rendered %q, want %q", off, want)
	}
}
