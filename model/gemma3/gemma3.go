// Package gemma3 is the Gemma 3 text decoder (GGUF architecture "gemma3":
// gemma-3-270m, 1b, and the language model of the larger ones), as
// llama.cpp's llm_build_gemma3 (iswa) computes it: Gemma 2's blocks (1 + w
// RMSNorms before and after attention and MLP, √n_embd embedding scale,
// NeoX RoPE, GELU-gated MLP, output tied to the token embedding, queries
// scaled by 1/√head_dim before q·k, 1/√(n_embd/n_head) for the 27B of 62
// layers) without attention soft-capping, and with
//
//   - a per-head RMSNorm of the queries and keys (attn_q_norm, attn_k_norm,
//     1 + w, one weight of head_dim shared by the heads) before RoPE;
//   - local layers, 5 of every 6 (layer l is local unless l%6 == 5:
//     llama.cpp's swa pattern 6), that see a sliding window of
//     attention.sliding_window positions and rotate with
//     rope.freq_base_swa (10000 when absent) and no position scaling;
//   - global layers that see the whole context and rotate with
//     rope.freq_base (1e6) and the file's linear rope.scaling.factor, if
//     any.
//
// Gemma 3 checkpoints have no final_logit_softcapping; a file that carries
// one gets it applied (as transformers and current llama.cpp do).
//
// The KV cache keeps every position of every layer (no ring buffer for the
// windowed layers).
package gemma3

import (
	"fmt"
	"math"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

func init() { model.Register("gemma3", Load) }

// Layer is one decoder block. Shapes are GGUF dims [n_in, n_out].
type Layer struct {
	AttnNorm     []float32      `gguf:"blk.%d.attn_norm.weight" shape:"embd"` // 1 + w
	Wq           *kernel.Matrix `gguf:"blk.%d.attn_q.weight" shape:"embd,q"`
	Wk           *kernel.Matrix `gguf:"blk.%d.attn_k.weight" shape:"embd,kv"`
	Wv           *kernel.Matrix `gguf:"blk.%d.attn_v.weight" shape:"embd,kv"`
	QNorm        []float32      `gguf:"blk.%d.attn_q_norm.weight" shape:"head"` // 1 + w, per head
	KNorm        []float32      `gguf:"blk.%d.attn_k_norm.weight" shape:"head"` // 1 + w, per head
	Wo           *kernel.Matrix `gguf:"blk.%d.attn_output.weight" shape:"q,embd"`
	PostAttnNorm []float32      `gguf:"blk.%d.post_attention_norm.weight" shape:"embd"` // 1 + w
	FFNNorm      []float32      `gguf:"blk.%d.ffn_norm.weight" shape:"embd"`            // 1 + w
	Gate         *kernel.Matrix `gguf:"blk.%d.ffn_gate.weight" shape:"embd,ff"`
	Up           *kernel.Matrix `gguf:"blk.%d.ffn_up.weight" shape:"embd,ff"`
	Down         *kernel.Matrix `gguf:"blk.%d.ffn_down.weight" shape:"ff,embd"`
	PostFFWNorm  []float32      `gguf:"blk.%d.post_ffw_norm.weight" shape:"embd"` // 1 + w
}

// Model holds the weights.
type Model struct {
	TokEmbd    *kernel.Matrix `gguf:"token_embd.weight" shape:"embd,vocab"`
	Layers     []Layer
	OutputNorm []float32      `gguf:"output_norm.weight" shape:"embd"`           // 1 + w
	Output     *kernel.Matrix `gguf:"output.weight,optional" shape:"embd,vocab"` // tied to TokEmbd when absent

	cfg        model.Config
	global     kernel.Rope // full-attention layers: rope.freq_base, rope.scaling
	local      kernel.Rope // sliding-window layers: rope.freq_base_swa (10000), no scaling
	embedScale float32     // √n_embd, in float32 as llama.cpp's sqrtf
	qScale     float32     // f_attention_scale
	window     int         // attention.sliding_window
	swaPattern int         // layer l is global when l%swaPattern == swaPattern-1
	finalCap   float32     // final_logit_softcapping; 0 = none
}

// swaPattern is llama.cpp's hparams.set_swa_pattern(6) for gemma3.
const swaPattern = 6

// Load binds a gemma3 GGUF file.
func Load(f *gguf.File) (model.Model, error) {
	c, err := model.ReadConfig(f, model.RMSNormEps)
	if err != nil {
		return nil, err
	}
	if c.RopeDims != c.HeadDim {
		return nil, fmt.Errorf("gemma3.rope.dimension_count = %d differs from the head size %d (partial rotary is not supported)", c.RopeDims, c.HeadDim)
	}
	switch c.RopeScaling {
	case "", "none", "linear":
	default:
		return nil, fmt.Errorf("gemma3.rope.scaling.type %q is not supported (none, linear)", c.RopeScaling)
	}
	m := &Model{cfg: c, swaPattern: swaPattern}
	if m.window, err = model.ReadUint(f, "gemma3.attention.sliding_window", -1); err != nil {
		return nil, err
	}
	if m.window == 0 {
		return nil, fmt.Errorf("gemma3.attention.sliding_window is 0")
	}
	if m.finalCap, err = model.ReadPositive(f, "gemma3.final_logit_softcapping", 0); err != nil {
		return nil, err
	}
	if err := model.Bind(f, &c, m); err != nil {
		return nil, err
	}
	if m.Output == nil {
		m.Output = m.TokEmbd
	}
	m.global = c.Rope(true, nil)
	m.local = m.global
	// llama.cpp: rope_freq_base_train_swa (rope.freq_base_swa, which
	// convert_hf_to_gguf.py writes from the sliding layers' rope_theta;
	// 10000 when absent) and rope_freq_scale_train_swa (1).
	if m.local.Base, err = model.ReadPositive(f, "gemma3.rope.freq_base_swa", 10000); err != nil {
		return nil, err
	}
	m.local.FreqScale = 1
	m.embedScale = float32(math.Sqrt(float64(c.NEmbd)))
	m.qScale = model.GemmaQueryScale(&c, c.NLayer == 62) // 62 layers: llama.cpp's LLM_TYPE_27B
	return model.New(c, m), nil
}

// Forward runs one batch of n tokens, from one or several sequences.
func (m *Model) Forward(b *model.Batch, logits []float32) {
	c, n, buf := &m.cfg, b.Len(), &b.Buf
	x, xb := buf.X[:n*c.NEmbd], buf.XB[:n*c.NEmbd]     // (n, embd)
	q, att := buf.Q[:n*c.QDim()], buf.Att[:n*c.QDim()] // (n, n_head·head_dim)
	k, v := buf.K[:n*c.KVDim()], buf.V[:n*c.KVDim()]   // (n, n_head_kv·head_dim)

	model.Embed(x, m.TokEmbd, b.Tokens()) // x = token_embd[tokens] · √n_embd
	kernel.Scale(x, m.embedScale)
	for l := range m.Layers {
		L := &m.Layers[l]
		rope, opts := &m.global, model.AttnOpts{Scale: 1}
		if l%m.swaPattern < m.swaPattern-1 { // local layer
			rope, opts.Window = &m.local, m.window
		}
		model.RMSNorm(xb, x, L.AttnNorm, c.NormEps, n)               // xb = rmsnorm(x) ⊙ (1 + w)
		b.LinearQKV(q, k, v, L.Wq, L.Wk, L.Wv, nil, nil, nil, xb, n) // q, k, v = xb W{q,k,v}ᵀ
		model.HeadRMSNorm(q, L.QNorm, c.NormEps, n, c.NHead)         // q[i,h] = rmsnorm(q[i,h]) ⊙ (1 + w_q), each head
		model.HeadRMSNorm(k, L.KNorm, c.NormEps, n, c.NHeadKV)       // k[i,h] = rmsnorm(k[i,h]) ⊙ (1 + w_k)
		b.Rope(rope, q, c.NHead)                                     // rotate (i, i+d/2) pairs by position
		b.Rope(rope, k, c.NHeadKV)
		kernel.Scale(q, m.qScale)                           // q *= 1/√head_dim, before q·k as llama.cpp
		b.AttentionOpts(l, att, q, k, v, opts)              // att = softmax(q kᵀ, causal, windowed on local layers) v
		b.Linear(xb, L.Wo, nil, att, n)                     // xb = att Woᵀ
		model.RMSNorm(xb, xb, L.PostAttnNorm, c.NormEps, n) // xb = rmsnorm(xb) ⊙ (1 + w)
		kernel.Add(x, xb)                                   // x += attention
		model.RMSNorm(xb, x, L.FFNNorm, c.NormEps, n)       // xb = rmsnorm(x) ⊙ (1 + w)
		b.GeGLUMLP(xb, xb, L.Gate, L.Up, L.Down, n)         // xb = down(gelu(gate xb) ⊙ up xb)
		model.RMSNorm(xb, xb, L.PostFFWNorm, c.NormEps, n)  // xb = rmsnorm(xb) ⊙ (1 + w)
		kernel.Add(x, xb)                                   // x += mlp
	}
	h, nOut := b.OutputRows(x)                         // the rows that need logits
	model.RMSNorm(h, h, m.OutputNorm, c.NormEps, nOut) // h = rmsnorm(h) ⊙ (1 + w)
	b.Output(logits, m.Output, h, nOut)                // logits (nOut, vocab) = h outputᵀ
	if m.finalCap != 0 {
		b.SoftCapOutput(logits, nOut, m.finalCap) // logits = cap·tanh(logits/cap)
	}
}
