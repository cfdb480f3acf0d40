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
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

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
	d := m.dims()
	return m.forwardLlamaLike(tokens, llamaRef{
		inv:  ropeInvFreq(m.num("rope_theta"), d.hd, 1),
		norm: rmsNorm, embScale: 1, act: silu,
		qkNorm: func(pre string, q, k []float64) {
			normHeads(q, d.nHead, d.hd, m.w(pre+"self_attn.q_norm.weight"), d.eps, rmsNorm)
			normHeads(k, d.nKV, d.hd, m.w(pre+"self_attn.k_norm.weight"), d.eps, rmsNorm)
		},
	})
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

			f := openFile(t, path)
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
			checkKeys(t, f, map[string]any{
				"qwen3.attention.key_length":   uint32(qwen3HeadDim),
				"qwen3.attention.value_length": uint32(qwen3HeadDim),
				"qwen3.attention.head_count":   uint32(qwen3Heads),
				"qwen3.embedding_length":       uint32(qwen3Embd),
				"qwen3.rope.freq_base":         float32(1e6),
				"tokenizer.ggml.pre":           "qwen2",
				"tokenizer.ggml.model":         "gpt2",
			})
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
		checkTensorTypes(t, path, typ, true)
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
			worst := oneByOneDiff(t, m, s, tokens, all)
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

			// The decode check continues s: 16 tokens.
			checkBatchAndDecode(t, m, 16, [2]batchSeq{{32, tokens}, {64, tokens[3:8]}}, s, tokens)
		})
	}
}

// Truncated and damaged files give errors, never a panic.
func TestQwen3HostileFiles(t *testing.T) {
	dir := writeDir(t, newQwen3(qwen3Spec{dtype: "F32", tied: true, seed: 7}), "qwen3", 1)
	checkHostileFile(t, dir, []fileEdit{
		{"blk.1.attn_q_norm.weight", "blk.1.attn_q_norm.weighx", "missing tensor blk.1.attn_q_norm.weight"},
		{"blk.0.attn_k_norm.weight", "blk.0.attn_k_norm.weighx", "missing tensor blk.0.attn_k_norm.weight"},
		{"qwen3.attention.key_length", "qwen3.attention.key_lengtx", "value_length"}, // the head size falls back to embd/heads
		{"qwen3.feed_forward_length", "qwen3.feed_forward_lengtx", "qwen3.feed_forward_length"},
	})
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
			checkConvertError(t, m, "qwen3", c.want)
		})
	}
}
