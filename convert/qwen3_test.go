package convert

// Qwen3: tiny random Hugging Face checkpoints with the real Qwen3
// tokenizer, converted, loaded with model.Load and compared with a float64
// forward pass written from transformers' modeling_qwen3.py: q, k, v
// projections (biases only when attention_bias), q_norm and k_norm
// (RMSNorm over each head of head_dim values) applied to the projections
// before the rotate-half RoPE, attention scaled by head_dim^-0.5, SwiGLU
// MLP, tied or separate lm_head. head_dim is 32 with 4 heads over a
// hidden size of 64: n_head·head_dim ≠ hidden_size, as in the real models.

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/model"
	"github.com/slm-dev/slm/quant"
)

type qwen3Spec struct {
	dtype string
	tied  bool
	bias  bool // attention_bias: q, k, v and o biases
	seed  uint64
}

const (
	qwen3Embd, qwen3Heads, qwen3KV, qwen3HeadDim, qwen3FF, qwen3Layers = 64, 4, 2, 32, 96, 2
	qwen3Vocab                                                         = 151936 // the tokenizer's 151669, padded as Qwen's configs do
)

// qwen3Tokens has ordinary tokens, special ones (<|endoftext|>,
// <|im_start|>, <think>) and one of the padding rows.
var qwen3Tokens = []int32{151644, 872, 198, 9707, 11, 1879, 0, 151667, 151643, 151900}

func newQwen3(s qwen3Spec) *hfModel {
	r := rand.New(rand.NewPCG(s.seed, 5))
	cfg := map[string]any{
		"architectures":           []string{"Qwen3ForCausalLM"},
		"model_type":              "qwen3",
		"hidden_size":             qwen3Embd,
		"intermediate_size":       qwen3FF,
		"num_attention_heads":     qwen3Heads,
		"num_key_value_heads":     qwen3KV,
		"head_dim":                qwen3HeadDim,
		"num_hidden_layers":       qwen3Layers,
		"rms_norm_eps":            1e-6,
		"rope_theta":              1000000.0,
		"max_position_embeddings": 256,
		"vocab_size":              qwen3Vocab,
		"tie_word_embeddings":     s.tied,
		"attention_bias":          s.bias,
		"hidden_act":              "silu",
		"use_sliding_window":      false,
		"sliding_window":          nil,
		"max_window_layers":       qwen3Layers,
		"bos_token_id":            151643,
		"eos_token_id":            151645,
	}
	t := map[string]SafeTensorData{}
	dt := s.dtype
	q, kv := int64(qwen3Heads*qwen3HeadDim), int64(qwen3KV*qwen3HeadDim)
	t["model.embed_tokens.weight"] = randTensor(r, dt, 0.5, qwen3Vocab, qwen3Embd)
	t["model.norm.weight"] = nearOne(r, dt, qwen3Embd)
	if !s.tied {
		t["lm_head.weight"] = randTensor(r, dt, 0.1, qwen3Vocab, qwen3Embd)
	}
	for l := 0; l < qwen3Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		t[p+"input_layernorm.weight"] = nearOne(r, dt, qwen3Embd)
		t[p+"post_attention_layernorm.weight"] = nearOne(r, dt, qwen3Embd)
		t[p+"self_attn.q_proj.weight"] = randTensor(r, dt, 0.3, q, qwen3Embd)
		t[p+"self_attn.k_proj.weight"] = randTensor(r, dt, 0.3, kv, qwen3Embd)
		t[p+"self_attn.v_proj.weight"] = randTensor(r, dt, 0.2, kv, qwen3Embd)
		t[p+"self_attn.o_proj.weight"] = randTensor(r, dt, 0.2, qwen3Embd, q)
		// The norms' weights spread widely, so that a norm applied over the
		// wrong span, after RoPE or not at all shows in the logits.
		t[p+"self_attn.q_norm.weight"] = randTensor(r, dt, 1, qwen3HeadDim)
		t[p+"self_attn.k_norm.weight"] = randTensor(r, dt, 1, qwen3HeadDim)
		if s.bias {
			t[p+"self_attn.q_proj.bias"] = randTensor(r, dt, 0.5, q)
			t[p+"self_attn.k_proj.bias"] = randTensor(r, dt, 0.5, kv)
			t[p+"self_attn.v_proj.bias"] = randTensor(r, dt, 0.5, kv)
			t[p+"self_attn.o_proj.bias"] = randTensor(r, dt, 0.5, qwen3Embd)
		}
		t[p+"mlp.gate_proj.weight"] = randTensor(r, dt, 0.3, qwen3FF, qwen3Embd)
		t[p+"mlp.up_proj.weight"] = randTensor(r, dt, 0.3, qwen3FF, qwen3Embd)
		t[p+"mlp.down_proj.weight"] = randTensor(r, dt, 0.2, qwen3Embd, qwen3FF)
	}
	return &hfModel{cfg: cfg, tensors: t}
}

// forwardQwen3 is Qwen3ForCausalLM (modeling_qwen3.py): in Qwen3Attention,
// q = q_norm(q_proj(x).view(..., head_dim)), k likewise with k_norm, then
// apply_rotary_pos_emb(q, k); Qwen3RMSNorm is x·rsqrt(mean(x²) + eps)·w.
func (m *hfModel) forwardQwen3(tokens []int32) [][]float64 {
	embd := int(m.num("hidden_size"))
	nHead := int(m.num("num_attention_heads"))
	nKV := int(m.num("num_key_value_heads"))
	nLayer := int(m.num("num_hidden_layers"))
	hd := int(m.num("head_dim"))
	eps := m.num("rms_norm_eps")
	base := m.num("rope_theta")
	inv := make([]float64, hd/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(base, float64(2*i)/float64(hd))
	}
	emb := m.w("model.embed_tokens.weight")
	head := emb
	if m.has("lm_head.weight") {
		head = m.w("lm_head.weight")
	}
	bias := func(name string) *SafeTensorData {
		if t, ok := m.tensors[name]; ok {
			return &t
		}
		return nil
	}
	headNorm := func(x []float64, heads int, w SafeTensorData) {
		for h := 0; h < heads; h++ {
			copy(x[h*hd:(h+1)*hd], rmsNorm(x[h*hd:(h+1)*hd], w, eps))
		}
	}
	ks := make([][][]float64, nLayer)
	vs := make([][][]float64, nLayer)
	var out [][]float64
	for p, tok := range tokens {
		x := make([]float64, embd)
		for i := range x {
			x[i] = float64(emb.Data[int(tok)*embd+i])
		}
		for l := 0; l < nLayer; l++ {
			pre := fmt.Sprintf("model.layers.%d.", l)
			h := rmsNorm(x, m.w(pre+"input_layernorm.weight"), eps)
			q := linear(m.w(pre+"self_attn.q_proj.weight"), bias(pre+"self_attn.q_proj.bias"), h)
			k := linear(m.w(pre+"self_attn.k_proj.weight"), bias(pre+"self_attn.k_proj.bias"), h)
			v := linear(m.w(pre+"self_attn.v_proj.weight"), bias(pre+"self_attn.v_proj.bias"), h)
			headNorm(q, nHead, m.w(pre+"self_attn.q_norm.weight"))
			headNorm(k, nKV, m.w(pre+"self_attn.k_norm.weight"))
			ropeHF(q, nHead, hd, p, inv)
			ropeHF(k, nKV, hd, p, inv)
			ks[l] = append(ks[l], k)
			vs[l] = append(vs[l], v)
			a := attend(q, ks[l], vs[l], nHead, nKV, hd) // scaling head_dim^-0.5
			o := linear(m.w(pre+"self_attn.o_proj.weight"), bias(pre+"self_attn.o_proj.bias"), a)
			for i := range x {
				x[i] += o[i]
			}
			h = rmsNorm(x, m.w(pre+"post_attention_layernorm.weight"), eps)
			g := linear(m.w(pre+"mlp.gate_proj.weight"), nil, h)
			u := linear(m.w(pre+"mlp.up_proj.weight"), nil, h)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := linear(m.w(pre+"mlp.down_proj.weight"), nil, g)
			for i := range x {
				x[i] += d[i]
			}
		}
		out = append(out, linear(head, nil, rmsNorm(x, m.w("model.norm.weight"), eps)))
	}
	return out
}

func TestConvertQwen3Logits(t *testing.T) {
	for _, c := range []struct {
		name string
		spec qwen3Spec
	}{
		{"f32-tied", qwen3Spec{dtype: "F32", tied: true, seed: 1}},
		{"f32-separate-output-biases", qwen3Spec{dtype: "F32", bias: true, seed: 2}},
		{"bf16-tied", qwen3Spec{dtype: "BF16", tied: true, seed: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hfm := newQwen3(c.spec)
			dir := writeDir(t, hfm, "qwen3", 1)
			m, path := loadNet(t, dir, Options{Type: quant.F32})
			want := hfm.forwardQwen3(qwen3Tokens)
			got := netLogits(t, m, 32, qwen3Tokens)
			worst := checkRows(t, "F32 file", got, want, 1e-4)
			_, scale := diffRows(got, want)
			t.Logf("relative to the largest logit: %.3g", worst/scale)

			f, err := gguf.Open(path)
			must(t, err)
			defer f.Close()
			if f.Arch() != "qwen3" {
				t.Errorf("architecture %q, want qwen3", f.Arch())
			}
			if _, ok := f.Tensor("output.weight"); ok == c.spec.tied {
				t.Errorf("output.weight present = %v with tie_word_embeddings = %v", ok, c.spec.tied)
			}
			if _, ok := f.Tensor("blk.1.attn_o.bias"); ok {
				t.Error("unexpected tensor name")
			}
			if _, ok := f.Tensor("blk.0.attn_output.bias"); ok != c.spec.bias {
				t.Errorf("attn_output.bias present = %v with attention_bias = %v", ok, c.spec.bias)
			}
			for _, name := range []string{"blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"} {
				ti, ok := f.Tensor(name)
				if !ok || ti.Type != quant.F32 || len(ti.Dims) != 1 || ti.Dims[0] != qwen3HeadDim {
					t.Errorf("%s: %+v (present %v), want F32 [%d]", name, ti, ok, qwen3HeadDim)
				}
			}
			for k, v := range map[string]any{
				"qwen3.attention.key_length":   uint32(qwen3HeadDim),
				"qwen3.attention.value_length": uint32(qwen3HeadDim),
				"qwen3.attention.head_count":   uint32(qwen3Heads),
				"qwen3.embedding_length":       uint32(qwen3Embd),
				"qwen3.rope.freq_base":         float32(1e6),
				"tokenizer.ggml.pre":           "qwen2",
				"tokenizer.ggml.model":         "gpt2",
			} {
				if got, _ := f.Get(k); got != v {
					t.Errorf("%s = %v (%T), want %v (%T)", k, got, got, v, v)
				}
			}
			if _, ok := f.Get("qwen3.rope.dimension_count"); ok {
				t.Error("qwen3.rope.dimension_count written (convert_hf_to_gguf.py writes none for qwen3)")
			}
			if tmpl, _ := f.String("tokenizer.chat_template"); !strings.Contains(tmpl, "<think>") {
				t.Errorf("chat template without <think>: %.80q", tmpl)
			}
			if toks, _ := f.Strings("tokenizer.ggml.tokens"); len(toks) != qwen3Vocab || toks[151667] != "<think>" {
				t.Errorf("%d tokens, want %d with <think> at 151667", len(toks), qwen3Vocab)
			}
		})
	}
}

// The reference without the q/k norms (or with them after RoPE) is far from
// the engine: the test above would see a missing or misplaced norm.
func TestQwen3NormMatters(t *testing.T) {
	hfm := newQwen3(qwen3Spec{dtype: "F32", tied: true, seed: 4})
	dir := writeDir(t, hfm, "qwen3", 1)
	m, _ := loadNet(t, dir, Options{Type: quant.F32})
	got := netLogits(t, m, 32, qwen3Tokens)
	for l := 0; l < qwen3Layers; l++ {
		for _, n := range []string{"q_norm", "k_norm"} {
			name := fmt.Sprintf("model.layers.%d.self_attn.%s.weight", l, n)
			w := hfm.tensors[name]
			ones := SafeTensorData{Dtype: w.Dtype, Shape: w.Shape, Data: make([]float32, len(w.Data))}
			for i := range ones.Data {
				ones.Data[i] = 1
			}
			hfm.tensors[name] = ones
			worst, scale := diffRows(got, hfm.forwardQwen3(qwen3Tokens))
			hfm.tensors[name] = w
			if worst < 1e-2*(1+scale) {
				t.Errorf("%s replaced by ones: logits change by only %.3g", name, worst)
			}
		}
	}
}

// Quantized and F16 conversions load and stay near the reference.
func TestConvertQwen3Quantized(t *testing.T) {
	hfm := newQwen3(qwen3Spec{dtype: "F32", seed: 5})
	dir := writeDir(t, hfm, "qwen3", 1)
	want := hfm.forwardQwen3(qwen3Tokens)
	for _, typ := range []quant.Type{quant.Q8_0, quant.F16} {
		m, path := loadNet(t, dir, Options{Type: typ})
		checkRows(t, typ.String(), netLogits(t, m, 32, qwen3Tokens), want, map[quant.Type]float64{quant.Q8_0: 0.1, quant.F16: 1e-2}[typ])
		f, err := gguf.Open(path)
		must(t, err)
		for _, ti := range f.Tensors {
			switch {
			case len(ti.Dims) == 2 && ti.Type != typ:
				t.Errorf("%s is %v, want %v", ti.Name, ti.Type, typ)
			case len(ti.Dims) == 1 && ti.Type != quant.F32:
				t.Errorf("%s is %v, want F32", ti.Name, ti.Type)
			}
		}
		f.Close()
	}
}

// A prompt evaluated in one pass, token by token, and together with another
// sequence in one EvalBatch gives the same logits; decoding allocates
// nothing.
func TestQwen3BatchAndAllocs(t *testing.T) {
	dir := writeDir(t, newQwen3(qwen3Spec{dtype: "F32", tied: true, seed: 6}), "qwen3", 1)
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0, quant.Q4_0} {
		t.Run(typ.String(), func(t *testing.T) {
			m, _ := loadNet(t, dir, Options{Type: typ})
			nv := m.Config().NVocab
			tokens := qwen3Tokens[:8]

			all := netLogits(t, m, 32, tokens)
			s, err := m.NewState(32)
			must(t, err)
			one := make([]float32, nv)
			worst := 0.0
			for i, tok := range tokens {
				must(t, m.Eval(s, []int32{tok}, one, false))
				for j := range one {
					worst = max(worst, math.Abs(float64(one[j]-all[i*nv+j])))
				}
			}
			t.Logf("token by token vs one pass: max |Δ| = %.3g", worst)
			if worst > 1e-5 {
				t.Errorf("token by token differs from one pass by %.3g", worst)
			}

			// A 200-token prompt in one pass (its q and k heads are split
			// over the worker pool) and in chunks of 40 (each on the caller).
			long := make([]int32, 200)
			for i := range long {
				long[i] = int32((i * 7919) % 151669)
			}
			last := make([]float32, nv)
			s2, err := m.NewState(256)
			must(t, err)
			must(t, m.Eval(s2, long, last, false))
			s3, err := m.NewState(256)
			must(t, err)
			chunked := make([]float32, nv)
			for i := 0; i < len(long); i += 40 {
				must(t, m.Eval(s3, long[i:i+40], chunked, false))
			}
			worst = 0
			for j := range last {
				worst = max(worst, math.Abs(float64(last[j]-chunked[j])))
			}
			t.Logf("200 tokens in one pass vs in chunks of 40: max |Δ| = %.3g", worst)
			if worst > 1e-5 {
				t.Errorf("200 tokens in one pass differ from chunks of 40 by %.3g", worst)
			}

			alone := append(netLogits(t, m, 32, tokens), netLogits(t, m, 64, tokens[3:8])...)
			b, err := m.NewBatch(16)
			must(t, err)
			s0, _ := m.NewBatchState(32)
			s1, _ := m.NewBatchState(64)
			seqs := []model.Seq{{State: s0, Tokens: tokens, Logits: model.AllLogits}, {State: s1, Tokens: tokens[3:8], Logits: model.AllLogits}}
			got := make([]float32, 13*nv)
			must(t, m.EvalBatch(b, seqs, got))
			worst = 0
			for i, v := range alone {
				worst = max(worst, math.Abs(float64(v-got[i])))
			}
			t.Logf("EvalBatch vs alone: max |Δ| = %.3g", worst)
			if worst > 1e-5 {
				t.Errorf("EvalBatch differs from the sequences alone by %.3g", worst)
			}

			logits := make([]float32, nv)
			must(t, m.Eval(s, tokens, logits, false)) // s holds 16 tokens now
			tok := []int32{7}
			if a := testing.AllocsPerRun(20, func() {
				s.Truncate(16)
				if err := m.Eval(s, tok, logits, false); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("%v allocations per decoded token", a)
			}
			seqs[0].Tokens, seqs[1].Tokens = []int32{3}, []int32{4}
			seqs[0].Logits, seqs[1].Logits = model.LastLogits, model.LastLogits
			two := make([]float32, 2*nv)
			if a := testing.AllocsPerRun(20, func() {
				s0.Truncate(8)
				s1.Truncate(5)
				if err := m.EvalBatch(b, seqs, two); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("%v allocations per batched decode step", a)
			}
		})
	}
}

// Truncated and damaged files give errors, never a panic.
func TestQwen3HostileFiles(t *testing.T) {
	dir := writeDir(t, newQwen3(qwen3Spec{dtype: "F32", tied: true, seed: 7}), "qwen3", 1)
	out := filepath.Join(t.TempDir(), "m.gguf")
	must(t, Convert(dir, out, Options{Type: quant.Q8_0}))
	data, err := os.ReadFile(out)
	must(t, err)
	load := func(data []byte) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
				t.Errorf("panic loading a damaged file: %v", r)
			}
		}()
		f, err := gguf.Parse("damaged.gguf", data)
		if err != nil {
			return err
		}
		_, err = model.Load(f)
		return err
	}
	if err := load(data); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	rename := func(old, new string) []byte {
		d := bytes.Clone(data)
		i := bytes.Index(d, []byte(old))
		if i < 0 {
			t.Fatalf("%q not in the file", old)
		}
		copy(d[i:], new)
		return d
	}
	for _, e := range []struct{ old, new, want string }{
		{"blk.1.attn_q_norm.weight", "blk.1.attn_q_norm.weighx", "missing tensor blk.1.attn_q_norm.weight"},
		{"blk.0.attn_k_norm.weight", "blk.0.attn_k_norm.weighx", "missing tensor blk.0.attn_k_norm.weight"},
		{"qwen3.attention.key_length", "qwen3.attention.key_lengtx", "value_length"}, // the head size falls back to embd/heads
		{"qwen3.feed_forward_length", "qwen3.feed_forward_lengtx", "qwen3.feed_forward_length"},
	} {
		if err := load(rename(e.old, e.new)); err == nil || !strings.Contains(err.Error(), e.want) {
			t.Errorf("%s renamed: error %v, want one mentioning %q", e.old, err, e.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := r.IntN(len(data))
		if err := load(data[:n]); err == nil {
			t.Errorf("a file truncated to %d of %d bytes loaded", n, len(data))
		}
	}
	for range 100 { // random byte damage: any error is fine, a panic is not
		d := bytes.Clone(data)
		for range 8 {
			d[r.IntN(len(d)/4)] ^= byte(1 + r.IntN(255))
		}
		load(d)
	}
}

func TestConvertQwen3Errors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m *hfModel)
		want string
	}{
		{"norm shape", func(m *hfModel) {
			m.tensors["model.layers.1.self_attn.k_norm.weight"] = SafeTensorData{Dtype: "F32", Shape: []int64{16}, Data: make([]float32, 16)}
		}, "k_norm"},
		{"odd head_dim", func(m *hfModel) { m.cfg["head_dim"] = 33 }, "head_dim"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newQwen3(qwen3Spec{dtype: "F32", tied: true, seed: 8})
			c.edit(m)
			dir := writeDir(t, m, "qwen3", 1)
			err := Convert(dir, filepath.Join(t.TempDir(), "o.gguf"), Options{Type: quant.F16})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
