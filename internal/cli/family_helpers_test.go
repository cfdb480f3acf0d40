package cli

// What the model-family CLI tests (phi3gemma_test.go, qwen3_test.go,
// gemma23_test.go, convert_test.go) share: writing a tiny Hugging Face
// checkpoint directory and the convert → inspect → run → logits → quantize
// → run flow. Each family's file keeps its config, tensor shapes and own
// checks.

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

// writeCheckpoint writes a checkpoint directory: ts as model.safetensors,
// cfg as config.json and the files tokFiles of the tokenizer family
// tokFamily (testdata/tokenizer/hf).
func writeCheckpoint(t *testing.T, cfg map[string]any, ts map[string]convert.SafeTensorData, tokFamily string, tokFiles ...string) string {
	t.Helper()
	dir := t.TempDir()
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
	for _, name := range tokFiles {
		b, err := os.ReadFile(filepath.Join(testdata, "tokenizer", "hf", tokFamily, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	return dir
}

// randomTensor is a tensor of dtype and shape holding normal(0, 0.2)
// values drawn from r.
func randomTensor(r *rand.Rand, dtype string, shape ...int64) convert.SafeTensorData {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(r.NormFloat64() * 0.2)
	}
	return convert.SafeTensorData{Dtype: dtype, Shape: shape, Data: d}
}

// randomTensors are BF16 random tensors (randomTensor) of the given shapes
// from a PCG seeded (seed, seed); with normsNearOne, 1 is added to the
// tensors whose names end in norm.weight.
func randomTensors(seed uint64, shapes map[string][]int64, normsNearOne bool) map[string]convert.SafeTensorData {
	r := rand.New(rand.NewPCG(seed, seed))
	ts := map[string]convert.SafeTensorData{}
	for name, shape := range shapes {
		ts[name] = randomTensor(r, "BF16", shape...)
		if normsNearOne && strings.HasSuffix(name, "norm.weight") {
			for i := range ts[name].Data {
				ts[name].Data[i] += 1
			}
		}
	}
	return ts
}

// tinyDir writes a checkpoint of random weights with config cfg and the
// Mistral SentencePiece tokenizer.
func tinyDir(t *testing.T, cfg map[string]any, shapes map[string][]int64) string {
	t.Helper()
	return writeCheckpoint(t, cfg, randomTensors(3, shapes, false), "mistral-spm", "tokenizer.json", "tokenizer_config.json")
}

// llamaShapes are the tensor shapes of a llama-layout checkpoint: the
// embeddings, the final norm and per layer the two norms, q/k/v/o
// projections (heads and kv heads of hd values) and a gate/up/down MLP.
func llamaShapes(layers int, vocab, embd, ff, heads, kv, hd int64) map[string][]int64 {
	m := map[string][]int64{"model.embed_tokens.weight": {vocab, embd}, "model.norm.weight": {embd}}
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		m[p+"input_layernorm.weight"] = []int64{embd}
		m[p+"post_attention_layernorm.weight"] = []int64{embd}
		m[p+"self_attn.q_proj.weight"] = []int64{heads * hd, embd}
		m[p+"self_attn.k_proj.weight"] = []int64{kv * hd, embd}
		m[p+"self_attn.v_proj.weight"] = []int64{kv * hd, embd}
		m[p+"self_attn.o_proj.weight"] = []int64{embd, heads * hd}
		m[p+"mlp.gate_proj.weight"] = []int64{ff, embd}
		m[p+"mlp.up_proj.weight"] = []int64{ff, embd}
		m[p+"mlp.down_proj.weight"] = []int64{embd, ff}
	}
	return m
}

// cliFlow is what checkConvertRun checks of one family.
type cliFlow struct {
	name         string   // the GGUF files' name stem
	keys         []string // what inspect --json mentions
	n            string   // tokens to generate (-n)
	logitsPrompt string
	// checkText, when set, checks the text of the first greedy run.
	checkText func(t *testing.T, text string)
}

// checkConvertRun converts dir to Q8_0 (-q), checks that inspect --json
// mentions each of c.keys, runs the file greedily twice (the same text),
// takes the logits of a prompt, quantizes the file to Q4_K_M and runs that.
// It returns the Q8_0 file.
func checkConvertRun(t *testing.T, dir string, c cliFlow) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), c.name+".gguf")
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
	code, text, errs := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", c.n, "--temp", "0")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	if c.checkText != nil {
		c.checkText(t, text)
	}
	if _, again, _ := slm(t, "", "run", "-m", out, "-p", "Hello", "-n", c.n, "--temp", "0"); again != text {
		t.Errorf("greedy runs differ: %q, %q", text, again)
	}
	if code, _, errs := slm(t, "", "logits", "-m", out, "-p", c.logitsPrompt, "--json"); code != 0 {
		t.Errorf("logits: exit %d: %s", code, errs)
	}
	q := filepath.Join(t.TempDir(), c.name+"-q4_k_m.gguf")
	if code, _, errs := slm(t, "", "quantize", out, q, "Q4_K_M", "--allow-requantize"); code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, errs)
	}
	if code, _, errs := slm(t, "", "run", "-m", q, "-p", "Hello", "-n", c.n, "--temp", "0"); code != 0 {
		t.Errorf("run on Q4_K_M: exit %d: %s", code, errs)
	}
	t.Logf("checkConvertRun: %s converted, inspected (%d keys), run twice (-n %s), logits, Q4_K_M quantized and run", c.name, len(c.keys), c.n)
	return out
}
