package cli

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/chat"
	"github.com/slm-dev/slm/convert"
	"github.com/slm-dev/slm/gguf"
)

// TestConvertRunQwen3 converts a tiny random Qwen3 checkpoint with the real
// Qwen3 tokenizer (heads of 32 over a hidden size of 64, per-head q/k
// norms), inspects it, runs it greedily, quantizes it, and renders the
// chat template the file carries (with its <think> block).
func TestConvertRunQwen3(t *testing.T) {
	const embd, ff, vocab, heads, kv, hd = 64, 96, 151936, 4, 2, 32
	shapes := map[string][]int64{"model.embed_tokens.weight": {vocab, embd}, "model.norm.weight": {embd}}
	for l := 0; l < 2; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		shapes[p+"input_layernorm.weight"] = []int64{embd}
		shapes[p+"post_attention_layernorm.weight"] = []int64{embd}
		shapes[p+"self_attn.q_proj.weight"] = []int64{heads * hd, embd}
		shapes[p+"self_attn.k_proj.weight"] = []int64{kv * hd, embd}
		shapes[p+"self_attn.v_proj.weight"] = []int64{kv * hd, embd}
		shapes[p+"self_attn.o_proj.weight"] = []int64{embd, heads * hd}
		shapes[p+"self_attn.q_norm.weight"] = []int64{hd}
		shapes[p+"self_attn.k_norm.weight"] = []int64{hd}
		shapes[p+"mlp.gate_proj.weight"] = []int64{ff, embd}
		shapes[p+"mlp.up_proj.weight"] = []int64{ff, embd}
		shapes[p+"mlp.down_proj.weight"] = []int64{embd, ff}
	}
	cfg := map[string]any{
		"architectures": []string{"Qwen3ForCausalLM"}, "hidden_size": embd, "intermediate_size": ff,
		"num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd, "num_hidden_layers": 2,
		"rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 128, "vocab_size": vocab,
		"tie_word_embeddings": true, "attention_bias": false,
	}

	dir := t.TempDir()
	r := rand.New(rand.NewPCG(4, 4))
	ts := map[string]convert.SafeTensorData{}
	for name, shape := range shapes {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(r.NormFloat64() * 0.2)
			if strings.HasSuffix(name, "norm.weight") {
				d[i] += 1
			}
		}
		ts[name] = convert.SafeTensorData{Dtype: "BF16", Shape: shape, Data: d}
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := convert.WriteSafeTensors(f, ts, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	for _, name := range []string{"tokenizer.json.gz", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(testdata, "tokenizer", "hf", "qwen3", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}

	out := filepath.Join(t.TempDir(), "qwen3.gguf")
	if code, _, errs := slm(t, "", "convert", dir, out, "--type", "q8_0", "-q"); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errs)
	}
	code, js, errs := slm(t, "", "inspect", out, "--json")
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errs)
	}
	for _, want := range []string{`"architecture": "qwen3"`, `"qwen3.attention.key_length"`, "blk.1.attn_q_norm.weight", "blk.0.attn_k_norm.weight"} {
		if !strings.Contains(js, want) {
			t.Errorf("inspect output lacks %s", want)
		}
	}
	code, text, errs := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", "4", "--temp", "0")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	if strings.TrimSpace(text) == "" {
		t.Errorf("run printed %q", text)
	}
	if _, again, _ := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", "4", "--temp", "0"); again != text {
		t.Errorf("greedy runs differ: %q, %q", text, again)
	}
	if code, _, errs := slm(t, "", "logits", "-m", out, "-p", "Hello world", "--json"); code != 0 {
		t.Errorf("logits: exit %d: %s", code, errs)
	}
	q := filepath.Join(t.TempDir(), "qwen3-q4_k_m.gguf")
	if code, _, errs := slm(t, "", "quantize", out, q, "Q4_K_M", "--allow-requantize"); code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, errs)
	}
	if code, _, errs := slm(t, "", "run", "-m", q, "-p", "Hello", "-n", "4", "--temp", "0"); code != 0 {
		t.Errorf("run on Q4_K_M: exit %d: %s", code, errs)
	}

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
