// Package gemma is Gemma 1 (GGUF architecture "gemma"): LLaMA-style
// pre-norm blocks with RMSNorm (the GGUF norm weights already hold
// Gemma's 1 + w), token embeddings scaled by √n_embd, heads of their own
// size (attention.key_length, 256 in both sizes, so that n_head·head_dim
// may differ from n_embd), multi-query or grouped-query attention, rotary
// positions on pairs (i, i+d/2) (NeoX style), a GELU-gated MLP and an
// output projection tied to the token embedding.
package gemma

import (
	"math"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

func init() { model.Register("gemma", Load) }

// Layer is one decoder block. Shapes are GGUF dims [n_in, n_out].
type Layer struct {
	AttnNorm []float32      `gguf:"blk.%d.attn_norm.weight" shape:"embd"` // 1 + w
	Wq       *kernel.Matrix `gguf:"blk.%d.attn_q.weight" shape:"embd,q"`
	Wk       *kernel.Matrix `gguf:"blk.%d.attn_k.weight" shape:"embd,kv"`
	Wv       *kernel.Matrix `gguf:"blk.%d.attn_v.weight" shape:"embd,kv"`
	Wo       *kernel.Matrix `gguf:"blk.%d.attn_output.weight" shape:"q,embd"`
	FFNNorm  []float32      `gguf:"blk.%d.ffn_norm.weight" shape:"embd"` // 1 + w
	Gate     *kernel.Matrix `gguf:"blk.%d.ffn_gate.weight" shape:"embd,ff"`
	Up       *kernel.Matrix `gguf:"blk.%d.ffn_up.weight" shape:"embd,ff"`
	Down     *kernel.Matrix `gguf:"blk.%d.ffn_down.weight" shape:"ff,embd"`
}

// Model holds the weights.
type Model struct {
	TokEmbd    *kernel.Matrix `gguf:"token_embd.weight" shape:"embd,vocab"`
	Layers     []Layer
	OutputNorm []float32      `gguf:"output_norm.weight" shape:"embd"`           // 1 + w
	Output     *kernel.Matrix `gguf:"output.weight,optional" shape:"embd,vocab"` // tied to TokEmbd when absent (always, in llama.cpp's files)

	cfg        model.Config
	rope       kernel.Rope
	embedScale float32 // √n_embd, in float32 as llama.cpp's sqrtf
}

// Load binds a gemma GGUF file.
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
	m.rope = c.Rope(true, nil)
	m.embedScale = float32(math.Sqrt(float64(c.NEmbd)))
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
		model.RMSNorm(xb, x, L.AttnNorm, c.NormEps, n)               // xb = rmsnorm(x) ⊙ (1 + w)
		b.LinearQKV(q, k, v, L.Wq, L.Wk, L.Wv, nil, nil, nil, xb, n) // q, k, v = xb W{q,k,v}ᵀ
		b.Rope(&m.rope, q, c.NHead)                                  // rotate (i, i+d/2) pairs by position
		b.Rope(&m.rope, k, c.NHeadKV)
		b.Attention(l, att, q, k, v, c.KQScale()) // att = softmax(q kᵀ/√head_dim, causal) v, per head
		b.Linear(xb, L.Wo, nil, att, n)           // xb = att Woᵀ
		kernel.Add(x, xb)                         // x += attention

		model.RMSNorm(xb, x, L.FFNNorm, c.NormEps, n) // xb = rmsnorm(x) ⊙ (1 + w)
		b.GeGLUMLP(xb, xb, L.Gate, L.Up, L.Down, n)   // xb = down(gelu(gate xb) ⊙ up xb)
		kernel.Add(x, xb)                             // x += mlp
	}
	h, nOut := b.OutputRows(x)                         // the rows that need logits
	model.RMSNorm(h, h, m.OutputNorm, c.NormEps, nOut) // h = rmsnorm(h) ⊙ (1 + w)
	b.Output(logits, m.Output, h, nOut)                // logits (nOut, vocab) = h outputᵀ
}
