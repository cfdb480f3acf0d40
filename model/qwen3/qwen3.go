// Package qwen3 is the dense Qwen3 family (Qwen3-0.6B, 1.7B, 4B, ...; GGUF
// architecture "qwen3"): Qwen2's blocks (RMSNorm, SwiGLU, grouped-query
// attention, rotary positions on pairs (i, i+d/2), NeoX style) without the
// q/k/v biases, and with a per-head RMSNorm of the queries and keys
// (attn_q_norm, attn_k_norm: one weight of head_dim shared by all heads)
// between their projections and RoPE. The heads are attention.key_length
// wide (128), so n_head·head_dim need not equal n_embd. The output
// projection is tied to the token embedding when the file has none.
package qwen3

import (
	"fmt"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

func init() { model.Register("qwen3", Load) }

// Layer is one decoder block. Shapes are GGUF dims [n_in, n_out].
type Layer struct {
	AttnNorm []float32      `gguf:"blk.%d.attn_norm.weight" shape:"embd"`
	Wq       *kernel.Matrix `gguf:"blk.%d.attn_q.weight" shape:"embd,q"`
	Wk       *kernel.Matrix `gguf:"blk.%d.attn_k.weight" shape:"embd,kv"`
	Wv       *kernel.Matrix `gguf:"blk.%d.attn_v.weight" shape:"embd,kv"`
	Bq       []float32      `gguf:"blk.%d.attn_q.bias,optional" shape:"q"` // attention_bias checkpoints only
	Bk       []float32      `gguf:"blk.%d.attn_k.bias,optional" shape:"kv"`
	Bv       []float32      `gguf:"blk.%d.attn_v.bias,optional" shape:"kv"`
	QNorm    []float32      `gguf:"blk.%d.attn_q_norm.weight" shape:"head"` // per-head RMSNorm of q
	KNorm    []float32      `gguf:"blk.%d.attn_k_norm.weight" shape:"head"` // per-head RMSNorm of k
	Wo       *kernel.Matrix `gguf:"blk.%d.attn_output.weight" shape:"q,embd"`
	Bo       []float32      `gguf:"blk.%d.attn_output.bias,optional" shape:"embd"`
	FFNNorm  []float32      `gguf:"blk.%d.ffn_norm.weight" shape:"embd"`
	Gate     *kernel.Matrix `gguf:"blk.%d.ffn_gate.weight" shape:"embd,ff"`
	Up       *kernel.Matrix `gguf:"blk.%d.ffn_up.weight" shape:"embd,ff"`
	Down     *kernel.Matrix `gguf:"blk.%d.ffn_down.weight" shape:"ff,embd"`
}

// Model holds the weights.
type Model struct {
	TokEmbd    *kernel.Matrix `gguf:"token_embd.weight" shape:"embd,vocab"`
	Layers     []Layer
	OutputNorm []float32      `gguf:"output_norm.weight" shape:"embd"`
	Output     *kernel.Matrix `gguf:"output.weight,optional" shape:"embd,vocab"` // tied to TokEmbd when absent

	cfg  model.Config
	rope kernel.Rope
}

// Load binds a qwen3 GGUF file.
func Load(f *gguf.File) (model.Model, error) {
	c, err := model.ReadConfig(f, model.RMSNormEps)
	if err != nil {
		return nil, err
	}
	if c.RopeDims != c.HeadDim { // llama.cpp requires it too
		return nil, fmt.Errorf("qwen3.rope.dimension_count = %d differs from the head size %d (partial rotary is not supported)", c.RopeDims, c.HeadDim)
	}
	m := &Model{cfg: c}
	if err := model.Bind(f, &c, m); err != nil {
		return nil, err
	}
	if m.Output == nil {
		m.Output = m.TokEmbd
	}
	m.rope = c.Rope(true, nil)
	return model.New(c, m), nil
}

// Forward runs one batch of n tokens, from one or several sequences.
func (m *Model) Forward(b *model.Batch, logits []float32) {
	c, n, buf := &m.cfg, b.Len(), &b.Buf
	x, xb := buf.X[:n*c.NEmbd], buf.XB[:n*c.NEmbd]     // (n, embd)
	q, att := buf.Q[:n*c.QDim()], buf.Att[:n*c.QDim()] // (n, n_head·head_dim)
	k, v := buf.K[:n*c.KVDim()], buf.V[:n*c.KVDim()]   // (n, n_head_kv·head_dim)

	model.Embed(x, m.TokEmbd, b.Tokens()) // x = token_embd[tokens]
	for l := range m.Layers {
		L := &m.Layers[l]
		model.RMSNorm(xb, x, L.AttnNorm, c.NormEps, n)                  // xb = rmsnorm(x) ⊙ attn_norm
		b.LinearQKV(q, k, v, L.Wq, L.Wk, L.Wv, L.Bq, L.Bk, L.Bv, xb, n) // q, k, v = xb W{q,k,v}ᵀ
		model.HeadRMSNorm(q, L.QNorm, c.NormEps, n, c.NHead)            // q[i,h] = rmsnorm(q[i,h]) ⊙ attn_q_norm, each head
		model.HeadRMSNorm(k, L.KNorm, c.NormEps, n, c.NHeadKV)          // k[i,h] = rmsnorm(k[i,h]) ⊙ attn_k_norm, before RoPE
		b.Rope(&m.rope, q, c.NHead)                                     // rotate (i, i+d/2) pairs by position
		b.Rope(&m.rope, k, c.NHeadKV)
		b.Attention(l, att, q, k, v, c.KQScale()) // att = softmax(q kᵀ/√head_dim, causal) v, per head
		b.Linear(xb, L.Wo, L.Bo, att, n)          // xb = att Woᵀ
		kernel.Add(x, xb)                         // x += attention

		model.RMSNorm(xb, x, L.FFNNorm, c.NormEps, n) // xb = rmsnorm(x) ⊙ ffn_norm
		b.GatedMLP(xb, xb, L.Gate, L.Up, L.Down, n)   // xb = down(silu(gate xb) ⊙ up xb)
		kernel.Add(x, xb)                             // x += mlp
	}
	h, nOut := b.OutputRows(x)                         // the rows that need logits
	model.RMSNorm(h, h, m.OutputNorm, c.NormEps, nOut) // h = rmsnorm(h) ⊙ output_norm
	b.Output(logits, m.Output, h, nOut)                // logits (nOut, vocab) = h outputᵀ
}
