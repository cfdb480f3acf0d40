// Package gpt2 is the GPT-2 family: pre-norm blocks with LayerNorm (weight
// and bias), learned position embeddings, a fused q/k/v projection with
// bias, and a GELU MLP with biases; the output projection has no bias.
package gpt2

import (
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

func init() { model.Register("gpt2", Load) }

// Layer is one decoder block. Shapes are GGUF dims [n_in, n_out].
type Layer struct {
	AttnNorm  []float32      `gguf:"blk.%d.attn_norm.weight" shape:"embd"`
	AttnNormB []float32      `gguf:"blk.%d.attn_norm.bias" shape:"embd"`
	QKV       *kernel.Matrix `gguf:"blk.%d.attn_qkv.weight" shape:"embd,qkv"` // rows: q, then k, then v
	QKVB      []float32      `gguf:"blk.%d.attn_qkv.bias" shape:"qkv"`
	Wo        *kernel.Matrix `gguf:"blk.%d.attn_output.weight" shape:"q,embd"`
	Bo        []float32      `gguf:"blk.%d.attn_output.bias" shape:"embd"`
	FFNNorm   []float32      `gguf:"blk.%d.ffn_norm.weight" shape:"embd"`
	FFNNormB  []float32      `gguf:"blk.%d.ffn_norm.bias" shape:"embd"`
	Up        *kernel.Matrix `gguf:"blk.%d.ffn_up.weight" shape:"embd,ff"`
	UpB       []float32      `gguf:"blk.%d.ffn_up.bias" shape:"ff"`
	Down      *kernel.Matrix `gguf:"blk.%d.ffn_down.weight" shape:"ff,embd"`
	DownB     []float32      `gguf:"blk.%d.ffn_down.bias" shape:"embd"`

	wq, wk, wv *kernel.Matrix // the q, k, v row blocks of QKV
	bq, bk, bv []float32
}

// Model holds the weights.
type Model struct {
	TokEmbd     *kernel.Matrix `gguf:"token_embd.weight" shape:"embd,vocab"`
	PosEmbd     *kernel.Matrix `gguf:"position_embd.weight" shape:"embd,ctx"`
	Layers      []Layer
	OutputNorm  []float32      `gguf:"output_norm.weight" shape:"embd"`
	OutputNormB []float32      `gguf:"output_norm.bias" shape:"embd"`
	Output      *kernel.Matrix `gguf:"output.weight,optional" shape:"embd,vocab"` // tied to TokEmbd when absent

	cfg model.Config
}

// Load binds a gpt2 GGUF file.
func Load(f *gguf.File) (model.Model, error) {
	c, err := model.ReadConfig(f, model.LayerNormEps)
	if err != nil {
		return nil, err
	}
	c.MaxPos = c.NCtxTrain // one learned embedding per position
	m := &Model{cfg: c}
	if err := model.Bind(f, &c, m); err != nil {
		return nil, err
	}
	if m.Output == nil {
		m.Output = m.TokEmbd
	}
	q, kv := c.QDim(), c.KVDim()
	for l := range m.Layers {
		L := &m.Layers[l]
		L.wq, L.wk, L.wv = L.QKV.Slice(0, q), L.QKV.Slice(q, q+kv), L.QKV.Slice(q+kv, q+2*kv)
		L.bq, L.bk, L.bv = L.QKVB[:q], L.QKVB[q:q+kv], L.QKVB[q+kv:]
	}
	return model.New(c, m), nil
}

// Forward runs one batch of n tokens, from one or several sequences.
func (m *Model) Forward(b *model.Batch, logits []float32) {
	c, n, buf := &m.cfg, b.Len(), &b.Buf
	d := c.NEmbd
	x, xb := buf.X[:n*d], buf.XB[:n*d]                 // (n, embd)
	q, att := buf.Q[:n*c.QDim()], buf.Att[:n*c.QDim()] // (n, n_head·head_dim)
	k, v := buf.K[:n*c.KVDim()], buf.V[:n*c.KVDim()]   // (n, n_head_kv·head_dim)

	model.Embed(x, m.TokEmbd, b.Tokens()) // x = token_embd[tokens] + position_embd[positions]
	for i := range n {
		m.PosEmbd.Row(b.Pos(i), xb[i*d:(i+1)*d])
	}
	kernel.Add(x, xb)
	for l := range m.Layers {
		L := &m.Layers[l]
		model.LayerNorm(xb, x, L.AttnNorm, L.AttnNormB, c.NormEps, n) // xb = layernorm(x)
		b.Observe(L.QKV, xb, n)                                       // one product with attn_qkv, in three row blocks
		model.Linear(q, L.wq, L.bq, xb, n)                            // [q k v] = xb Wqkvᵀ + bqkv
		model.Linear(k, L.wk, L.bk, xb, n)
		model.Linear(v, L.wv, L.bv, xb, n)
		b.Attention(l, att, q, k, v, c.KQScale()) // att = softmax(q kᵀ/√d, causal) v, per head
		b.Linear(xb, L.Wo, L.Bo, att, n)          // xb = att Woᵀ + bo
		kernel.Add(x, xb)                         // x += attention

		model.LayerNorm(xb, x, L.FFNNorm, L.FFNNormB, c.NormEps, n) // xb = layernorm(x)
		b.GELUMLP(xb, xb, L.Up, L.UpB, L.Down, L.DownB, n)          // xb = down(gelu(up xb + bu)) + bd
		kernel.Add(x, xb)                                           // x += mlp
	}
	h, nOut := b.OutputRows(x)                                          // the rows that need logits
	model.LayerNorm(h, h, m.OutputNorm, m.OutputNormB, c.NormEps, nOut) // h = layernorm(h)
	b.Output(logits, m.Output, h, nOut)                                 // logits (nOut, vocab) = h outputᵀ
}
