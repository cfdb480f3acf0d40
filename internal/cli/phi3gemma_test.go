package cli

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/convert"
)

// tinyDir writes a checkpoint of random weights with config cfg and the
// Mistral SentencePiece tokenizer.
func tinyDir(t *testing.T, cfg map[string]any, shapes map[string][]int64) string {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 3))
	ts := map[string]convert.SafeTensorData{}
	for name, shape := range shapes {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(r.NormFloat64() * 0.2)
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
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(testdata, "tokenizer", "hf", "mistral-spm", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	return dir
}

func TestConvertRunPhi3Gemma(t *testing.T) {
	const embd, ff, vocab = 64, 96, 32064
	phi := map[string][]int64{"model.embed_tokens.weight": {vocab, embd}, "model.norm.weight": {embd}, "lm_head.weight": {vocab, embd}}
	gem := map[string][]int64{"model.embed_tokens.weight": {vocab, embd}, "model.norm.weight": {embd}}
	for l := 0; l < 2; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, m := range []map[string][]int64{phi, gem} {
			m[p+"input_layernorm.weight"] = []int64{embd}
			m[p+"post_attention_layernorm.weight"] = []int64{embd}
			m[p+"mlp.down_proj.weight"] = []int64{embd, ff}
		}
		phi[p+"self_attn.qkv_proj.weight"] = []int64{128, embd} // 4 heads + 2·2 kv heads of 16
		phi[p+"self_attn.o_proj.weight"] = []int64{embd, embd}
		phi[p+"mlp.gate_up_proj.weight"] = []int64{2 * ff, embd}
		gem[p+"self_attn.q_proj.weight"] = []int64{128, embd} // 4 heads of 32
		gem[p+"self_attn.k_proj.weight"] = []int64{32, embd}
		gem[p+"self_attn.v_proj.weight"] = []int64{32, embd}
		gem[p+"self_attn.o_proj.weight"] = []int64{embd, 128}
		gem[p+"mlp.gate_proj.weight"] = []int64{ff, embd}
		gem[p+"mlp.up_proj.weight"] = []int64{ff, embd}
	}
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
			code, text, errs := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", "4", "--temp", "0")
			if code != 0 {
				t.Fatalf("run: exit %d: %s", code, errs)
			}
			if _, again, _ := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", "4", "--temp", "0"); again != text {
				t.Errorf("greedy runs differ: %q, %q", text, again)
			}
			if code, _, errs := slm(t, "", "logits", "-m", out, "-p", "Hello world", "--json"); code != 0 {
				t.Errorf("logits: exit %d: %s", code, errs)
			}
			q := filepath.Join(t.TempDir(), c.arch+"-q4_k_m.gguf")
			if code, _, errs := slm(t, "", "quantize", out, q, "Q4_K_M", "--allow-requantize"); code != 0 {
				t.Fatalf("quantize: exit %d: %s", code, errs)
			}
			if code, _, errs := slm(t, "", "run", "-m", q, "-p", "Hello", "-n", "4", "--temp", "0"); code != 0 {
				t.Errorf("run on Q4_K_M: exit %d: %s", code, errs)
			}
		})
	}
}
