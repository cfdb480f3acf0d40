// Package llama is the LLaMA family (Llama 2 and 3, TinyLlama, SmolLM,
// Mistral, ...): pre-norm decoder blocks with RMSNorm, rotary positions on
// pairs (2i, 2i+1), grouped-query attention and a SwiGLU MLP.
package llama

import (
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

func init() { model.Register("llama", Load) }

// Layer is one decoder block. Shapes are GGUF dims [n_in, n_out].
type Layer struct {
	AttnNorm []float32      `gguf:"blk.%d.attn_norm.weight" shape:"embd"`
	Wq       *kernel.Matrix `gguf:"blk.%d.attn_q.weight" shape:"embd,q"`
	Wk       *kernel.Matrix `gguf:"blk.%d.attn_k.weight" shape:"embd,kv"`
	Wv       *kernel.Matrix `gguf:"blk.%d.attn_v.weight" shape:"embd,kv"`
	Wo       *kernel.Matrix `gguf:"blk.%d.attn_output.weight" shape:"q,embd"`
	Bq       []float32      `gguf:"blk.%d.attn_q.bias,optional" shape:"q"`
	Bk       []float32      `gguf:"blk.%d.attn_k.bias,optional" shape:"kv"`
	Bv       []float32      `gguf:"blk.%d.attn_v.bias,optional" shape:"kv"`
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
	RopeFreqs  []float32      `gguf:"rope_freqs.weight,optional" shape:"rot/2"`  // Llama 3.1 frequency factors

	cfg  model.Config
	rope kernel.Rope
}

// Load binds a llama GGUF file.
func Load(f *gguf.File) (model.Model, error) {
	c, err := model.ReadConfig(f, model.RMSNormEps)
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: c}
	if err := model.Bind(f, &c, m); err != nil {
		return nil, err
	}
	if m.Output == nil {
		m.Output = m.TokEmbd
	}
	m.rope = c.Rope(false, m.RopeFreqs)
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
		b.LinearQKV(q, k, v, L.Wq, L.Wk, L.Wv, L.Bq, L.Bk, L.Bv, xb, n) // q, k, v = xb W{q,k,v}ᵀ (+ b{q,k,v})
		b.Rope(&m.rope, q, c.NHead)                                     // rotate q, k by position
		b.Rope(&m.rope, k, c.NHeadKV)
		b.Attention(l, att, q, k, v, c.KQScale()) // att = softmax(q kᵀ/√d, causal) v, per head
		b.Linear(xb, L.Wo, L.Bo, att, n)          // xb = att Woᵀ (+ bo)
		kernel.Add(x, xb)                         // x += attention

		model.RMSNorm(xb, x, L.FFNNorm, c.NormEps, n) // xb = rmsnorm(x) ⊙ ffn_norm
		b.GatedMLP(xb, xb, L.Gate, L.Up, L.Down, n)   // xb = down(silu(gate xb) ⊙ up xb)
		kernel.Add(x, xb)                             // x += mlp
	}
	h, nOut := b.OutputRows(x)                         // the rows that need logits
	model.RMSNorm(h, h, m.OutputNorm, c.NormEps, nOut) // h = rmsnorm(h) ⊙ output_norm
	b.Output(logits, m.Output, h, nOut)                // logits (nOut, vocab) = h outputᵀ
}
