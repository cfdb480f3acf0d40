package convert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
)

func tokDir(family string) string {
	return filepath.Join("..", "testdata", "tokenizer", "hf", family)
}

// randTensor makes a tensor of normal(0, scale) values, rounded to dtype so
// that the reference sees exactly what the file holds.
func randTensor(r *rand.Rand, dtype string, scale float64, shape ...int64) SafeTensorData {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		v := float32(r.NormFloat64() * scale)
		switch dtype {
		case "F16":
			v = quant.F16ToF32(quant.F32ToF16(v))
		case "BF16":
			v = quant.BF16ToF32(quant.F32ToBF16(v))
		}
		data[i] = v
	}
	return SafeTensorData{Dtype: dtype, Shape: shape, Data: data}
}

// ones makes a norm weight near 1.
func nearOne(r *rand.Rand, dtype string, n int64) SafeTensorData {
	t := randTensor(r, dtype, 0.1, n)
	for i := range t.Data {
		t.Data[i] += 1
		if dtype == "F16" {
			t.Data[i] = quant.F16ToF32(quant.F32ToF16(t.Data[i]))
		} else if dtype == "BF16" {
			t.Data[i] = quant.BF16ToF32(quant.F32ToBF16(t.Data[i]))
		}
	}
	return t
}

type llamaSpec struct {
	arch     string // LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM
	dtype    string
	vocab    int64
	tied     bool
	llama3   bool
	bias     bool // attention_bias: q/k/v/o biases on a llama
	seed     uint64
	embd, ff int64
}

func newLlama(s llamaSpec) *hfModel {
	r := rand.New(rand.NewPCG(s.seed, 1))
	const nHead, nKV, nLayer = 4, 2, 2
	embd, ff := s.embd, s.ff
	hd := embd / nHead
	cfg := map[string]any{
		"architectures":           []string{s.arch},
		"hidden_size":             int(embd),
		"intermediate_size":       int(ff),
		"num_attention_heads":     nHead,
		"num_key_value_heads":     nKV,
		"num_hidden_layers":       nLayer,
		"rms_norm_eps":            1e-5,
		"rope_theta":              10000.0,
		"max_position_embeddings": 128,
		"vocab_size":              int(s.vocab),
		"tie_word_embeddings":     s.tied,
	}
	if s.arch == "Qwen2ForCausalLM" {
		cfg["rope_theta"] = 1000000.0
		cfg["rms_norm_eps"] = 1e-6
	}
	if s.llama3 {
		cfg["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
		cfg["rope_theta"] = 500000.0
	}
	t := map[string]SafeTensorData{}
	dt := s.dtype
	t["model.embed_tokens.weight"] = randTensor(r, dt, 0.5, s.vocab, embd)
	t["model.norm.weight"] = nearOne(r, dt, embd)
	if !s.tied {
		t["lm_head.weight"] = randTensor(r, dt, 0.1, s.vocab, embd)
	}
	for l := 0; l < nLayer; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		t[p+"input_layernorm.weight"] = nearOne(r, dt, embd)
		t[p+"post_attention_layernorm.weight"] = nearOne(r, dt, embd)
		t[p+"self_attn.q_proj.weight"] = randTensor(r, dt, 0.3, nHead*hd, embd)
		t[p+"self_attn.k_proj.weight"] = randTensor(r, dt, 0.3, nKV*hd, embd)
		t[p+"self_attn.v_proj.weight"] = randTensor(r, dt, 0.2, nKV*hd, embd)
		t[p+"self_attn.o_proj.weight"] = randTensor(r, dt, 0.2, embd, nHead*hd)
		t[p+"mlp.gate_proj.weight"] = randTensor(r, dt, 0.2, ff, embd)
		t[p+"mlp.up_proj.weight"] = randTensor(r, dt, 0.2, ff, embd)
		t[p+"mlp.down_proj.weight"] = randTensor(r, dt, 0.2, embd, ff)
		if s.bias {
			t[p+"self_attn.o_proj.bias"] = randTensor(r, dt, 0.3, embd)
		}
		if s.arch == "Qwen2ForCausalLM" || s.bias {
			t[p+"self_attn.q_proj.bias"] = randTensor(r, dt, 0.3, nHead*hd)
			t[p+"self_attn.k_proj.bias"] = randTensor(r, dt, 0.3, nKV*hd)
			t[p+"self_attn.v_proj.bias"] = randTensor(r, dt, 0.3, nKV*hd)
		}
		// A buffer some older checkpoints carry; the converter drops it.
		t[p+"self_attn.rotary_emb.inv_freq"] = randTensor(r, "F32", 1, hd/2)
	}
	return &hfModel{cfg: cfg, tensors: t}
}

// newGPT2 makes a GPT-2 (prefix "transformer.", with the attention mask
// buffers) or distilgpt2 (no prefix) checkpoint.
func newGPT2(prefix string, seed uint64) *hfModel {
	r := rand.New(rand.NewPCG(seed, 2))
	const embd, nHead, nLayer, nCtx, vocab = 32, 2, 2, 64, 50257
	cfg := map[string]any{
		"architectures":      []string{"GPT2LMHeadModel"},
		"n_embd":             embd,
		"n_head":             nHead,
		"n_layer":            nLayer,
		"n_ctx":              nCtx,
		"n_positions":        nCtx,
		"n_inner":            nil,
		"layer_norm_epsilon": 1e-5,
		"vocab_size":         vocab,
		"bos_token_id":       50256,
		"eos_token_id":       50256,
	}
	t := map[string]SafeTensorData{}
	t[prefix+"wte.weight"] = randTensor(r, "F32", 0.5, vocab, embd)
	t[prefix+"wpe.weight"] = randTensor(r, "F32", 0.3, nCtx, embd)
	t[prefix+"ln_f.weight"] = nearOne(r, "F32", embd)
	t[prefix+"ln_f.bias"] = randTensor(r, "F32", 0.1, embd)
	for l := 0; l < nLayer; l++ {
		p := fmt.Sprintf("%sh.%d.", prefix, l)
		t[p+"ln_1.weight"] = nearOne(r, "F32", embd)
		t[p+"ln_1.bias"] = randTensor(r, "F32", 0.1, embd)
		t[p+"ln_2.weight"] = nearOne(r, "F32", embd)
		t[p+"ln_2.bias"] = randTensor(r, "F32", 0.1, embd)
		t[p+"attn.c_attn.weight"] = randTensor(r, "F32", 0.3, embd, 3*embd)
		t[p+"attn.c_attn.bias"] = randTensor(r, "F32", 0.1, 3*embd)
		t[p+"attn.c_proj.weight"] = randTensor(r, "F32", 0.2, embd, embd)
		t[p+"attn.c_proj.bias"] = randTensor(r, "F32", 0.1, embd)
		t[p+"mlp.c_fc.weight"] = randTensor(r, "F32", 0.2, embd, 4*embd)
		t[p+"mlp.c_fc.bias"] = randTensor(r, "F32", 0.1, 4*embd)
		t[p+"mlp.c_proj.weight"] = randTensor(r, "F32", 0.2, 4*embd, embd)
		t[p+"mlp.c_proj.bias"] = randTensor(r, "F32", 0.1, embd)
		if prefix != "" {
			t[p+"attn.bias"] = randTensor(r, "F32", 1, 1, 1, nCtx, nCtx)
			t[p+"attn.masked_bias"] = randTensor(r, "F32", 1)
		}
	}
	return &hfModel{cfg: cfg, tensors: t}
}

// writeDir writes the checkpoint into a new directory with the tokenizer
// files of tokFamily, as one safetensors file or as shards with an index.
func writeDir(t testing.TB, m *hfModel, tokFamily string, shards int) string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := json.MarshalIndent(m.cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
	for _, f := range []string{"tokenizer.json", "tokenizer.json.gz", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(tokDir(tokFamily), f))
		if os.IsNotExist(err) {
			continue
		}
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	if shards <= 1 {
		writeST(t, filepath.Join(dir, "model.safetensors"), m.tensors)
		return dir
	}
	names := make([]string, 0, len(m.tensors))
	for n := range m.tensors {
		names = append(names, n)
	}
	slices.Sort(names)
	weightMap := map[string]string{}
	for s := 0; s < shards; s++ {
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		part := map[string]SafeTensorData{}
		for i, n := range names {
			if i%shards == s {
				part[n] = m.tensors[n]
				weightMap[n] = file
			}
		}
		writeST(t, filepath.Join(dir, file), part)
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	must(t, os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644))
	return dir
}

func writeST(t testing.TB, path string, tensors map[string]SafeTensorData) {
	t.Helper()
	var buf bytes.Buffer
	must(t, WriteSafeTensors(&buf, tensors, map[string]string{"format": "pt"}))
	must(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// convertDir converts dir and opens the result with the engine.
func convertDir(t testing.TB, dir string, opt Options) (*engine.Model, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "model.gguf")
	if err := Convert(dir, out, opt); err != nil {
		t.Fatal(err)
	}
	m, err := engine.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, out
}

// compareLogits checks the engine's logits against the reference within
// tol·(1 + max |logit|) and returns the largest difference.
func compareLogits(t *testing.T, m *engine.Model, tokens []int32, want [][]float64, tol float64) float64 {
	t.Helper()
	got, err := m.Logits(tokens)
	if err != nil {
		t.Fatal(err)
	}
	worst, scale := 0.0, 0.0
	for p := range want {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("position %d: %d logits, want %d", p, len(got[p]), len(want[p]))
		}
		for i := range want[p] {
			worst = max(worst, math.Abs(float64(got[p][i])-want[p][i]))
			scale = max(scale, math.Abs(want[p][i]))
		}
	}
	if worst > tol*(1+scale) {
		t.Errorf("logits differ from the reference by %.3g (tolerance %.3g, logits up to %.3g)", worst, tol*(1+scale), scale)
	}
	return worst
}

func TestConvertLlamaLogits(t *testing.T) {
	cases := []struct {
		name   string
		spec   llamaSpec
		shards int
	}{
		{"llama-bf16-bias", llamaSpec{arch: "LlamaForCausalLM", dtype: "BF16", vocab: 32000, bias: true, seed: 1}, 1},
		{"mistral-f16-sharded", llamaSpec{arch: "MistralForCausalLM", dtype: "F16", vocab: 32000, seed: 2}, 3},
		{"llama3-rope-tied", llamaSpec{arch: "LlamaForCausalLM", dtype: "F32", vocab: 32000, tied: true, llama3: true, seed: 3}, 2},
	}
	tokens := []int32{1, 415, 2936, 9060, 31999, 17, 28705, 5}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.embd, c.spec.ff = 64, 96
			hfm := newLlama(c.spec)
			dir := writeDir(t, hfm, "mistral-spm", c.shards)
			m, path := convertDir(t, dir, Options{Type: quant.F32})
			d := compareLogits(t, m, tokens, hfm.forwardLlama(tokens), 1e-4)
			t.Logf("max |Δlogit| = %.3g", d)

			f, err := gguf.Open(path)
			must(t, err)
			defer f.Close()
			_, hasOut := f.Tensor("output.weight")
			if hasOut == c.spec.tied {
				t.Errorf("output.weight present = %v with tie_word_embeddings = %v", hasOut, c.spec.tied)
			}
			_, hasFreqs := f.Tensor("rope_freqs.weight")
			if hasFreqs != c.spec.llama3 {
				t.Errorf("rope_freqs.weight present = %v, llama3 scaling = %v", hasFreqs, c.spec.llama3)
			}
		})
	}
}

func TestConvertQwen2Logits(t *testing.T) {
	// The gpt2 tokenizer (50257 tokens) under a config that pads the
	// vocabulary to 50304, as Qwen's do: the token list gets [PAD] entries.
	hfm := newLlama(llamaSpec{arch: "Qwen2ForCausalLM", dtype: "F16", vocab: 50304, tied: true, seed: 4, embd: 64, ff: 96})
	dir := writeDir(t, hfm, "gpt2", 1)
	m, path := convertDir(t, dir, Options{Type: quant.F32})
	tokens := []int32{50256, 464, 3290, 50000, 11, 50303, 3}
	d := compareLogits(t, m, tokens, hfm.forwardLlama(tokens), 1e-4)
	t.Logf("max |Δlogit| = %.3g", d)
	f, err := gguf.Open(path)
	must(t, err)
	defer f.Close()
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	if len(toks) != 50304 || toks[50303] != "[PAD50303]" || types[50303] != 5 || types[50256] != 3 {
		t.Errorf("padded vocabulary: %d tokens, last %q type %d, <|endoftext|> type %d", len(toks), toks[len(toks)-1], types[len(types)-1], types[50256])
	}
}

func TestConvertGPT2Logits(t *testing.T) {
	for _, layout := range []struct{ name, prefix string }{{"gpt2", "transformer."}, {"distilgpt2", ""}} {
		t.Run(layout.name, func(t *testing.T) {
			hfm := newGPT2(layout.prefix, 5)
			dir := writeDir(t, hfm, "gpt2", 1)
			m, _ := convertDir(t, dir, Options{Type: quant.F32})
			tokens := []int32{50256, 464, 3290, 50000, 11, 262}
			d := compareLogits(t, m, tokens, hfm.forwardGPT2(tokens, layout.prefix), 1e-4)
			t.Logf("max |Δlogit| = %.3g", d)
		})
	}
}

// TestConvertTypes converts to F16, BF16, Q8_0 and Q4_0: 2-D weights take
// the type, 1-D tensors and norms stay F32, every tensor's bytes are
// exactly the F32 conversion's data encoded by package quant, and the logits
// stay near the reference.
func TestConvertTypes(t *testing.T) {
	hfm := newLlama(llamaSpec{arch: "LlamaForCausalLM", dtype: "F32", vocab: 32000, seed: 6, embd: 64, ff: 96})
	dir := writeDir(t, hfm, "mistral-spm", 1)
	tokens := []int32{1, 415, 2936, 9060}
	want := hfm.forwardLlama(tokens)
	_, f32Path := convertDir(t, dir, Options{Type: quant.F32})
	// Stream in small, odd-sized chunks of rows from here on.
	defer func(n int) { chunkElems = n }(chunkElems)
	chunkElems = 5000
	ref, err := gguf.Open(f32Path)
	must(t, err)
	defer ref.Close()
	for _, c := range []struct {
		typ  quant.Type
		tol  float64
		ftyp uint64
	}{{quant.F16, 1e-2, 1}, {quant.BF16, 3e-2, 32}, {quant.Q8_0, 0.1, 7}, {quant.Q4_0, 0.5, 2}} {
		t.Run(c.typ.String(), func(t *testing.T) {
			m, path := convertDir(t, dir, Options{Type: c.typ, Threads: 2})
			compareLogits(t, m, tokens, want, c.tol)
			f, err := gguf.Open(path)
			must(t, err)
			defer f.Close()
			if len(f.Tensors) != len(ref.Tensors) {
				t.Fatalf("%d tensors, the F32 file has %d", len(f.Tensors), len(ref.Tensors))
			}
			for i := range f.Tensors {
				ti, ri := &f.Tensors[i], &ref.Tensors[i]
				typ := c.typ
				if len(ti.Dims) == 1 {
					typ = quant.F32
				}
				if ti.Name != ri.Name || ti.Type != typ {
					t.Fatalf("tensor %d: %s %v, want %s %v", i, ti.Name, ti.Type, ri.Name, typ)
				}
				src := make([]float32, ri.Elems())
				for k := range src {
					src[k] = math.Float32frombits(binary.LittleEndian.Uint32(ref.Data(ri)[4*k:]))
				}
				enc := make([]byte, ti.Size)
				must(t, quant.Quantize(typ, src, enc))
				if !bytes.Equal(enc, f.Data(ti)) {
					t.Errorf("%s: data differ from quant.Quantize(%v) of the F32 conversion", ti.Name, typ)
				}
			}
			if ft, _ := f.Uint("general.file_type"); ft != c.ftyp {
				t.Errorf("general.file_type = %d, want %d", ft, c.ftyp)
			}
		})
	}
}

// TestPermutation checks the q/k permutation against its definition in
// convert_hf_to_gguf.py: reshape(n_head, 2, rows/n_head/2, cols), swap the
// two middle axes, reshape back.
func TestPermutation(t *testing.T) {
	const heads, hd, cols = 3, 8, 5
	rows := heads * hd
	data := make([]float32, rows*cols)
	for i := range data {
		data[i] = float32(i)
	}
	_, got := permuteRoPE(heads)([]int64{int64(rows), cols}, data)
	for h := 0; h < heads; h++ {
		for a := 0; a < 2; a++ {
			for b := 0; b < hd/2; b++ {
				src := h*hd + a*hd/2 + b // index in (n_head, 2, hd/2)
				dst := h*hd + b*2 + a    // index in (n_head, hd/2, 2)
				for c := 0; c < cols; c++ {
					if got[dst*cols+c] != data[src*cols+c] {
						t.Fatalf("row %d col %d = %v, want %v", dst, c, got[dst*cols+c], data[src*cols+c])
					}
				}
			}
		}
	}
}

// TestMetadata checks the keys convert_hf_to_gguf.py writes.
func TestMetadata(t *testing.T) {
	hfm := newLlama(llamaSpec{arch: "LlamaForCausalLM", dtype: "F32", vocab: 32000, seed: 7, embd: 64, ff: 96})
	dir := writeDir(t, hfm, "mistral-spm", 1)
	_, path := convertDir(t, dir, Options{Type: quant.F16, Name: "tiny"})
	f, err := gguf.Open(path)
	must(t, err)
	defer f.Close()
	want := map[string]any{
		"general.architecture":                   "llama",
		"general.name":                           "tiny",
		"llama.context_length":                   uint32(128),
		"llama.embedding_length":                 uint32(64),
		"llama.block_count":                      uint32(2),
		"llama.feed_forward_length":              uint32(96),
		"llama.attention.head_count":             uint32(4),
		"llama.attention.head_count_kv":          uint32(2),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.freq_base":                   float32(10000),
		"llama.rope.dimension_count":             uint32(16),
		"llama.vocab_size":                       uint32(32000),
		"general.file_type":                      uint32(1),
		"tokenizer.ggml.model":                   "llama",
		"tokenizer.ggml.bos_token_id":            uint32(1),
		"tokenizer.ggml.eos_token_id":            uint32(2),
		"tokenizer.ggml.unknown_token_id":        uint32(0),
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.ggml.add_eos_token":           false,
		"tokenizer.ggml.add_space_prefix":        true,
	}
	for k, v := range want {
		got, ok := f.Get(k)
		if !ok || got != v {
			t.Errorf("%s = %v (%T), want %v (%T)", k, got, got, v, v)
		}
	}
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	// <unk> is an added special token of this tokenizer.json: CONTROL, as
	// convert_hf_to_gguf.py makes it.
	if types[0] != 3 || types[1] != 3 || types[3] != 6 || types[1000] != 1 {
		t.Errorf("token types %v …, want control, control, control, byte …", types[:4])
	}
	if _, ok := f.Get("tokenizer.ggml.merges"); ok {
		t.Error("an SPM vocabulary got merges")
	}
}

// TestConvertedTokenizer checks that the converted GGUF tokenizes the
// tokenizer.json conformance cases the same as the tokenizer.json.
func TestConvertedTokenizer(t *testing.T) {
	for _, c := range []struct {
		family string
		model  *hfModel
	}{
		{"mistral-spm", newLlama(llamaSpec{arch: "LlamaForCausalLM", dtype: "F32", vocab: 32000, seed: 8, embd: 32, ff: 32})},
		{"gpt2", newGPT2("", 9)},
	} {
		t.Run(c.family, func(t *testing.T) {
			dir := writeDir(t, c.model, c.family, 1)
			m, _ := convertDir(t, dir, Options{Type: quant.F16})
			b, err := os.ReadFile(filepath.Join(tokDir(c.family), "cases.json"))
			must(t, err)
			var cf struct {
				Cases []struct {
					Name       string  `json:"name"`
					Text       string  `json:"text"`
					AddSpecial bool    `json:"add_special"`
					IDs        []int32 `json:"ids"`
				} `json:"cases"`
			}
			must(t, json.Unmarshal(b, &cf))
			same := 0
			for _, k := range cf.Cases {
				got, err := m.Tokenize(k.Text, k.AddSpecial, true)
				if err != nil || !slices.Equal(got, k.IDs) {
					t.Errorf("%s: %v %v, want %v", k.Name, got, err, k.IDs)
					continue
				}
				same++
			}
			t.Logf("%s: %d/%d cases equal", c.family, same, len(cf.Cases))
		})
	}
}

func TestConvertErrors(t *testing.T) {
	base := func() *hfModel {
		return newLlama(llamaSpec{arch: "LlamaForCausalLM", dtype: "F32", vocab: 32000, seed: 10, embd: 32, ff: 32})
	}
	tests := []struct {
		name string
		edit func(m *hfModel, dir string)
		want []string
	}{
		{"missing hidden_size", func(m *hfModel, _ string) { delete(m.cfg, "hidden_size") }, []string{"hidden_size"}},
		{"missing rms_norm_eps", func(m *hfModel, _ string) { delete(m.cfg, "rms_norm_eps") }, []string{"rms_norm_eps"}},
		{"unsupported architecture", func(m *hfModel, _ string) { m.cfg["architectures"] = []string{"FalconForCausalLM"} }, []string{"FalconForCausalLM", "not supported"}},
		{"bad heads", func(m *hfModel, _ string) { m.cfg["num_key_value_heads"] = 3 }, []string{"num_key_value_heads", "does not divide"}},
		{"unknown tensor", func(m *hfModel, _ string) {
			m.tensors["model.layers.0.mlp.extra.weight"] = m.tensors["model.norm.weight"]
		}, []string{"cannot map tensor", "mlp.extra"}},
		{"layer count", func(m *hfModel, _ string) { m.cfg["num_hidden_layers"] = 3 }, []string{"layer 2"}},
		{"no tokenizer", func(_ *hfModel, dir string) {
			if dir != "" {
				os.Remove(filepath.Join(dir, "tokenizer.json"))
			}
		}, []string{"tokenizer.json"}},
		{"no weights", func(_ *hfModel, dir string) {
			if dir != "" {
				os.Remove(filepath.Join(dir, "model.safetensors"))
			}
		}, []string{"no safetensors"}},
		{"truncated weights", func(_ *hfModel, dir string) {
			if dir == "" {
				return
			}
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-100], 0o644)
		}, []string{"outside the data section"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m, "")
			dir := writeDir(t, m, "mistral-spm", 1)
			tc.edit(m, dir)
			out := filepath.Join(t.TempDir(), "out.gguf")
			err := Convert(dir, out, Options{Type: quant.F16})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Error("a failed conversion left the output file")
			}
		})
	}
}

func TestShardIndexErrors(t *testing.T) {
	m := newLlama(llamaSpec{arch: "LlamaForCausalLM", dtype: "F32", vocab: 32000, seed: 11, embd: 32, ff: 32})
	dir := writeDir(t, m, "mistral-spm", 2)
	idxPath := filepath.Join(dir, "model.safetensors.index.json")
	b, _ := os.ReadFile(idxPath)
	var idx map[string]map[string]any
	must(t, json.Unmarshal(b, &idx))
	idx["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors"
	b, _ = json.Marshal(idx)
	must(t, os.WriteFile(idxPath, b, 0o644))
	_, err := OpenCheckpoint(dir)
	if err == nil || !strings.Contains(err.Error(), "model.layers.9.mlp.up_proj.weight") {
		t.Errorf("index naming a missing tensor: %v", err)
	}
	idx["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "../evil.safetensors"
	b, _ = json.Marshal(idx)
	must(t, os.WriteFile(idxPath, b, 0o644))
	if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "plain file name") {
		t.Errorf("index with a path: %v", err)
	}
}
