// Package phi3 is the Phi-3 family (Phi-3-mini, Phi-3.5-mini; GGUF
// architecture "phi3"): LLaMA-style pre-norm blocks with RMSNorm and
// grouped-query attention, a fused q/k/v projection (rows q, then k, then
// v; some files hold separate attn_q/k/v), rotary positions on pairs
// (i, i+d/2) (NeoX style), and a SwiGLU MLP whose gate and up projections
// are one fused ffn_up matrix (gate rows first). The 128k-context files
// add LongRoPE: per-pair frequency divisors for short and long contexts
// (rope_factors_short/long) and a magnitude factor
// (rope.scaling.attn_factor); as in llama.cpp, a sequence whose context
// size exceeds rope.scaling.original_context_length uses the long factors.
package phi3

import (
	"fmt"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

func init() { model.Register("phi3", Load) }

// Layer is one decoder block. Shapes are GGUF dims [n_in, n_out].
type Layer struct {
	AttnNorm []float32      `gguf:"blk.%d.attn_norm.weight" shape:"embd"`
	QKV      *kernel.Matrix `gguf:"blk.%d.attn_qkv.weight,optional" shape:"embd,qkv"` // rows: q, then k, then v
	Wq       *kernel.Matrix `gguf:"blk.%d.attn_q.weight,optional" shape:"embd,q"`     // when there is no attn_qkv
	Wk       *kernel.Matrix `gguf:"blk.%d.attn_k.weight,optional" shape:"embd,kv"`
	Wv       *kernel.Matrix `gguf:"blk.%d.attn_v.weight,optional" shape:"embd,kv"`
	Bq       []float32      `gguf:"blk.%d.attn_q.bias,optional" shape:"q"`
	Bk       []float32      `gguf:"blk.%d.attn_k.bias,optional" shape:"kv"`
	Bv       []float32      `gguf:"blk.%d.attn_v.bias,optional" shape:"kv"`
	Wo       *kernel.Matrix `gguf:"blk.%d.attn_output.weight" shape:"q,embd"`
	FFNNorm  []float32      `gguf:"blk.%d.ffn_norm.weight" shape:"embd"`
	Up       *kernel.Matrix `gguf:"blk.%d.ffn_up.weight" shape:"embd,2ff"` // rows: gate, then up
	Down     *kernel.Matrix `gguf:"blk.%d.ffn_down.weight" shape:"ff,embd"`

	wq, wk, wv *kernel.Matrix // the row blocks of QKV, or Wq, Wk, Wv
	gate, up   *kernel.Matrix // the row blocks of Up
}

// Model holds the weights.
type Model struct {
	TokEmbd    *kernel.Matrix `gguf:"token_embd.weight" shape:"embd,vocab"`
	Layers     []Layer
	OutputNorm []float32      `gguf:"output_norm.weight" shape:"embd"`
	Output     *kernel.Matrix `gguf:"output.weight,optional" shape:"embd,vocab"` // tied to TokEmbd when absent
	RopeLong   []float32      `gguf:"rope_factors_long.weight,optional" shape:"rot/2"`
	RopeShort  []float32      `gguf:"rope_factors_short.weight,optional" shape:"rot/2"`

	cfg         model.Config
	short, long kernel.Rope // the rotations of contexts up to and beyond RopeOrigCtx
	longRope    bool        // the two differ
}

// maxMixedRopeDims bounds the rotated dimensions of a LongRoPE model, whose
// angles a pass that mixes short and long contexts computes on the stack.
const maxMixedRopeDims = 1024

// Load binds a phi3 GGUF file.
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
	q, kv := c.QDim(), c.KVDim()
	for l := range m.Layers {
		L := &m.Layers[l]
		switch {
		case L.QKV != nil:
			L.wq, L.wk, L.wv = L.QKV.Slice(0, q), L.QKV.Slice(q, q+kv), L.QKV.Slice(q+kv, q+2*kv)
		case L.Wq == nil || L.Wk == nil || L.Wv == nil:
			return nil, fmt.Errorf("missing tensor blk.%d.attn_qkv.weight (or blk.%d.attn_q/k/v.weight)", l, l)
		default:
			L.wq, L.wk, L.wv = L.Wq, L.Wk, L.Wv
		}
		L.gate, L.up = L.Up.Slice(0, c.NFF), L.Up.Slice(c.NFF, 2*c.NFF)
	}
	m.short = c.Rope(true, m.RopeShort)
	m.long = c.Rope(true, m.RopeLong)
	m.longRope = m.RopeLong != nil || m.RopeShort != nil
	if m.longRope && c.RopeDims > maxMixedRopeDims {
		return nil, fmt.Errorf("rope factors for %d rotated dimensions: at most %d are supported", c.RopeDims, maxMixedRopeDims)
	}
	return model.New(c, m), nil
}

// Forward runs one batch of n tokens, from one or several sequences.
func (m *Model) Forward(b *model.Batch, logits []float32) {
	c, n, buf := &m.cfg, b.Len(), &b.Buf
	x, xb := buf.X[:n*c.NEmbd], buf.XB[:n*c.NEmbd]     // (n, embd)
	q, att := buf.Q[:n*c.QDim()], buf.Att[:n*c.QDim()] // (n, n_head·head_dim)
	k, v := buf.K[:n*c.KVDim()], buf.V[:n*c.KVDim()]   // (n, n_head_kv·head_dim)
	rope := m.ropeOf(b)                                // short or long factors (nil: per sequence)

	model.Embed(x, m.TokEmbd, b.Tokens()) // x = token_embd[tokens]
	for l := range m.Layers {
		L := &m.Layers[l]
		model.RMSNorm(xb, x, L.AttnNorm, c.NormEps, n) // xb = rmsnorm(x) ⊙ attn_norm
		if L.QKV != nil {
			b.Observe(L.QKV, xb, n)                          // one product with attn_qkv, in three row blocks
			kernel.MatMul3(L.wq, L.wk, L.wv, q, k, v, xb, n) // [q k v] = xb Wqkvᵀ
		} else {
			b.LinearQKV(q, k, v, L.Wq, L.Wk, L.Wv, L.Bq, L.Bk, L.Bv, xb, n) // q, k, v = xb W{q,k,v}ᵀ (+ b{q,k,v})
		}
		m.rotate(b, rope, q, c.NHead) // rotate (i, i+d/2) pairs by position
		m.rotate(b, rope, k, c.NHeadKV)
		b.Attention(l, att, q, k, v, c.KQScale()) // att = softmax(q kᵀ/√d, causal) v, per head
		b.Linear(xb, L.Wo, nil, att, n)           // xb = att Woᵀ
		kernel.Add(x, xb)                         // x += attention

		model.RMSNorm(xb, x, L.FFNNorm, c.NormEps, n)          // xb = rmsnorm(x) ⊙ ffn_norm
		b.FusedGatedMLP(xb, xb, L.Up, L.gate, L.up, L.Down, n) // xb = down(silu(gate xb) ⊙ up xb), [gate up] = ffn_up
		kernel.Add(x, xb)                                      // x += mlp
	}
	h, nOut := b.OutputRows(x)                         // the rows that need logits
	model.RMSNorm(h, h, m.OutputNorm, c.NormEps, nOut) // h = rmsnorm(h) ⊙ output_norm
	b.Output(logits, m.Output, h, nOut)                // logits (nOut, vocab) = h outputᵀ
}

// ropeOf is the rotation of every token of the pass: the long factors for
// sequences whose context exceeds the original training context, else the
// short ones (llama.cpp's choice by n_ctx_per_seq); nil when the pass mixes
// both.
func (m *Model) ropeOf(b *model.Batch) *kernel.Rope {
	if !m.longRope {
		return &m.short
	}
	long := b.SeqCap(0) > m.cfg.RopeOrigCtx
	for i := 1; i < b.Len(); i++ {
		if (b.SeqCap(i) > m.cfg.RopeOrigCtx) != long {
			return nil
		}
	}
	if long {
		return &m.long
	}
	return &m.short
}

// rotate applies rope to the rows of x (nHead heads each), or, when rope is
// nil, each row's own sequence's rotation.
func (m *Model) rotate(b *model.Batch, rope *kernel.Rope, x []float32, nHead int) {
	if rope != nil {
		b.Rope(rope, x, nHead)
		return
	}
	var cs [maxMixedRopeDims]float32
	hd := m.cfg.HeadDim
	w := nHead * hd
	for i := range b.Len() {
		r := &m.short
		if b.SeqCap(i) > m.cfg.RopeOrigCtx {
			r = &m.long
		}
		r.Angles(cs[:r.Dims], b.Pos(i))
		r.Apply(x[i*w:(i+1)*w], hd, cs[:r.Dims])
	}
}
