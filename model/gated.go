package model

import "github.com/slm-dev/slm/kernel"

// FusedGatedMLP is GatedMLP for a model whose gate and up projections are
// one fused matrix gateUp (2·ff, embd): rows [0, ff) are the gate, rows
// [ff, 2·ff) the up projection (Phi-3's ffn_up, llama.cpp's LLM_FFN_SWIGLU
// split). gate and up are those row blocks of gateUp (Matrix.Slice, made
// once at load):
//
//	out (n, embd) = down @ (silu(gate @ x) ⊙ (up @ x))
//
// The observer sees one product with gateUp. out may be x.
func (b *Batch) FusedGatedMLP(out, x []float32, gateUp, gate, up, down *kernel.Matrix, n int) {
	ff := gate.Rows
	h, g := b.Buf.H[:n*ff], b.Buf.H2[:n*ff]
	b.Observe(gateUp, x, n)
	kernel.MatMul2(up, gate, h, g, x, n) // h = x upᵀ, g = x gateᵀ
	b.siluMul(g, h, ff, n)
	b.Observe(down, g, n)
	down.MatMul(out, g, n)
}

// GeGLUMLP is the GELU-gated feed-forward block of Gemma:
//
//	out (n, embd) = down @ (gelu(gate @ x) ⊙ (up @ x)),  gate/up: (ff, embd), down: (embd, ff)
//
// with GELU (tanh approximation) evaluated through ggml's fp16 table and the
// product taken in float32, as ggml's CPU geglu does (kernel.GELUFP16, so
// that results follow llama.cpp). out may be x.
func (b *Batch) GeGLUMLP(out, x []float32, gate, up, down *kernel.Matrix, n int) {
	ff := gate.Rows
	h, g := b.Buf.H[:n*ff], b.Buf.H2[:n*ff]
	b.Observe(up, x, n)
	b.Observe(gate, x, n)
	kernel.MatMul2(up, gate, h, g, x, n) // h = x upᵀ, g = x gateᵀ
	kernel.GELUFP16(g)                   // g = gelu(g), through the fp16 table
	kernel.Mul(g, h)                     // g ⊙= h
	b.Observe(down, g, n)
	down.MatMul(out, g, n)
}

// SeqCap is the context size (the positions its cache holds) of the
// sequence that token i of the current pass belongs to. llama.cpp picks
// some per-context choices by it, such as Phi-3's long or short LongRoPE
// factors.
func (b *Batch) SeqCap(i int) int { return b.seqs[b.seq[i]].State.nCtx }
