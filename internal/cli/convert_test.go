package cli

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/convert"
)

// tinyGPT2Dir writes a distilgpt2-layout checkpoint with random weights and
// the GPT-2 tokenizer.
func tinyGPT2Dir(t *testing.T) string {
	t.Helper()
	const embd, layers, ctx, vocab = 32, 1, 32, 50257
	r := rand.New(rand.NewPCG(1, 1))
	tensor := func(shape ...int64) convert.SafeTensorData { return randomTensor(r, "F16", shape...) }
	ts := map[string]convert.SafeTensorData{
		"wte.weight": tensor(vocab, embd), "wpe.weight": tensor(ctx, embd),
		"ln_f.weight": tensor(embd), "ln_f.bias": tensor(embd),
	}
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("h.%d.", l)
		for _, n := range []string{"ln_1", "ln_2"} {
			ts[p+n+".weight"], ts[p+n+".bias"] = tensor(embd), tensor(embd)
		}
		ts[p+"attn.c_attn.weight"], ts[p+"attn.c_attn.bias"] = tensor(embd, 3*embd), tensor(3*embd)
		ts[p+"attn.c_proj.weight"], ts[p+"attn.c_proj.bias"] = tensor(embd, embd), tensor(embd)
		ts[p+"mlp.c_fc.weight"], ts[p+"mlp.c_fc.bias"] = tensor(embd, 4*embd), tensor(4*embd)
		ts[p+"mlp.c_proj.weight"], ts[p+"mlp.c_proj.bias"] = tensor(4*embd, embd), tensor(embd)
	}
	cfg := map[string]any{
		"architectures": []string{"GPT2LMHeadModel"}, "n_embd": embd, "n_head": 2, "n_layer": layers,
		"n_ctx": ctx, "n_positions": ctx, "layer_norm_epsilon": 1e-5, "vocab_size": vocab,
	}
	return writeCheckpoint(t, cfg, ts, "gpt2", "tokenizer.json", "tokenizer_config.json")
}

func TestConvertCommand(t *testing.T) {
	dir := tinyGPT2Dir(t)
	out := filepath.Join(t.TempDir(), "tiny.gguf")
	code, _, errs := slm(t, "", "convert", dir, out, "--type", "q8_0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "attn_qkv.weight") || !strings.Contains(errs, "wrote "+out) {
		t.Errorf("no progress output: %q", errs)
	}
	code, js, errs := slm(t, "", "inspect", out, "--json")
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errs)
	}
	for _, want := range []string{`"architecture": "gpt2"`, `"Q8_0"`, `"tokenizer.ggml.pre"`} {
		if !strings.Contains(js, want) {
			t.Errorf("inspect output lacks %s", want)
		}
	}
	code, ids, errs := slm(t, "", "tokenize", "-m", out, "--json", "Hello world")
	if code != 0 || !strings.Contains(ids, "[15496,995]") {
		t.Errorf("tokenize: exit %d %s %s", code, ids, errs)
	}
	if code, _, errs := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", "3", "--temp", "0"); code != 0 {
		t.Errorf("run: exit %d: %s", code, errs)
	}
}

func TestConvertCommandErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"convert", dir}, "accepts 2 arg"},
		{[]string{"convert", dir, filepath.Join(dir, "o.gguf"), "--type", "q9"}, "unknown --type"},
		{[]string{"convert", filepath.Join(dir, "missing"), filepath.Join(dir, "o.gguf")}, "config.json"},
	} {
		code, _, errs := slm(t, "", c.args...)
		if code == 0 || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q (want one line mentioning %q)", c.args, code, errs, c.want)
		}
	}
}
