package model

import (
	"math"

	"github.com/slm-dev/slm/internal/parallel"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/quant"
)

// The blocks below work on n rows at once (a batch of n tokens), each
// row-major with the width given in the comments.

// Embed looks the tokens up: x (n, embd) = table[tokens], dequantizing each
// row of the (vocab, embd) table.
func Embed(x []float32, table *kernel.Matrix, tokens []int32) {
	d := table.Cols
	for i, id := range tokens {
		table.Row(int(id), x[i*d:(i+1)*d])
	}
}

// RMSNorm normalizes each of the n rows: out[i] = x[i]/rms(x[i]) * w.
func RMSNorm(out, x, w []float32, eps float32, n int) {
	d := len(w)
	for i := range n {
		kernel.RMSNorm(out[i*d:(i+1)*d], x[i*d:(i+1)*d], w, eps)
	}
}

// LayerNorm normalizes each of the n rows: out[i] = (x[i]-mean)/std * w + b.
func LayerNorm(out, x, w, b []float32, eps float32, n int) {
	d := len(w)
	for i := range n {
		kernel.LayerNorm(out[i*d:(i+1)*d], x[i*d:(i+1)*d], w, b, eps)
	}
}

// Linear is a fully connected layer: out (n, rows) = x (n, cols) @ Wᵀ + b.
// b may be nil.
func Linear(out []float32, w *kernel.Matrix, b []float32, x []float32, n int) {
	w.MatMul(out, x, n)
	if b != nil {
		AddBias(out, b, n)
	}
}

// AddBias adds b to each of the n rows of x.
func AddBias(x, b []float32, n int) {
	d := len(b)
	for i := range n {
		kernel.Add(x[i*d:(i+1)*d], b)
	}
}

// LinearQKV is three Linears of the same input x (n, cols) in one product:
// q = x Wqᵀ + bq, k = x Wkᵀ + bk, v = x Wvᵀ + bv, biases optional (nil).
// The results are those of the three Linears.
func (b *Batch) LinearQKV(q, k, v []float32, wq, wk, wv *kernel.Matrix, bq, bk, bv []float32, x []float32, n int) {
	b.Observe(wq, x, n)
	b.Observe(wk, x, n)
	b.Observe(wv, x, n)
	kernel.MatMul3(wq, wk, wv, q, k, v, x, n)
	for _, o := range [...]struct {
		out, bias []float32
	}{{q, bq}, {k, bk}, {v, bv}} {
		if o.bias != nil {
			AddBias(o.out, o.bias, n)
		}
	}
}

// GatedMLP is the SwiGLU feed-forward block of LLaMA-style models:
//
//	out (n, embd) = down @ (silu(gate @ x) ⊙ (up @ x)),  gate/up: (ff, embd), down: (embd, ff)
//
// out may be x.
func (b *Batch) GatedMLP(out, x []float32, gate, up, down *kernel.Matrix, n int) {
	ff := gate.Rows
	h, g := b.Buf.H[:n*ff], b.Buf.H2[:n*ff]
	b.Observe(up, x, n)
	b.Observe(gate, x, n)
	kernel.MatMul2(up, gate, h, g, x, n) // h = x upᵀ, g = x gateᵀ
	b.siluMul(g, h, ff, n)
	b.Observe(down, g, n)
	down.MatMul(out, g, n)
}

// siluMul computes g = silu(g) ⊙ h over n rows of ff values, split over
// the worker pool when there are many values (the operation is elementwise,
// so every value is the same either way).
func (b *Batch) siluMul(g, h []float32, ff, n int) {
	p, total := parallel.Default(), n*ff
	if total < parallelElementwise || p.Size() == 1 {
		kernel.SiLUMul(g, h)
		return
	}
	j := &b.silu
	j.g, j.h = g, h
	p.Do(total, max(256, total/(8*p.Size())), j)
	j.g, j.h = nil, nil
}

// parallelElementwise is the number of values below which an elementwise
// operation (with an exponential) runs on the calling goroutine.
const parallelElementwise = 1024

// siluJob is siluMul's loop; it lives in the Batch so that handing it to the
// pool allocates nothing.
type siluJob struct {
	g, h []float32
}

func (j *siluJob) Run(_, i0, i1 int) {
	kernel.SiLUMul(j.g[i0:i1], j.h[i0:i1])
}

// GELUMLP is the feed-forward block of GPT-2-style models:
//
//	out (n, embd) = down @ gelu(up @ x + bUp) + bDown,  up: (ff, embd), down: (embd, ff)
//
// with GELU evaluated through ggml's fp16 table (kernel.GELUFP16), as
// llama.cpp does. Biases may be nil; out may be x.
func (b *Batch) GELUMLP(out, x []float32, up *kernel.Matrix, bUp []float32, down *kernel.Matrix, bDown []float32, n int) {
	h := b.Buf.H[:n*up.Rows]
	b.Linear(h, up, bUp, x, n)
	kernel.GELUFP16(h)
	b.Linear(out, down, bDown, h, n)
}

// Attention is causal multi-head attention with grouped KV heads, each
// sequence of the batch over its own cache. It first stores the keys and
// values k, v (n, kv) of every sequence's tokens at their positions in layer
// l of that sequence's cache, then for every token i (at position pᵢ of its
// sequence) and head h (query head h reads KV head h/(NHead/NHeadKV)):
//
//	out[i,h] (head_dim) = Σₜ softmax(scale · q[i,h]·K[t])ₜ V[t],  t ≤ pᵢ
//
// q and out are (n, q). Queries and keys must already carry their positions
// (RoPE). The work is spread over the worker pool when it is large.
func (b *Batch) Attention(l int, out, q, k, v []float32, scale float32) {
	b.AttentionOpts(l, out, q, k, v, AttnOpts{Scale: scale})
}

// AttnOpts are the options of AttentionOpts.
type AttnOpts struct {
	// Scale is the factor of q·k (llama.cpp's kq_scale).
	Scale float32
	// SoftCap, when not 0, caps the scaled scores before the softmax as
	// llama.cpp's attn_soft_cap does (Gemma 2), in float32:
	// s = SoftCap · tanh(s · (1/SoftCap)) (see SoftCap).
	SoftCap float32
	// Window, when not 0, is a sliding window: a query at position p sees
	// the keys at positions max(0, p−Window+1) … p, Window of them counting
	// its own. It is llama.cpp's LLAMA_SWA_TYPE_STANDARD mask (a key at p0
	// is masked when p − p0 ≥ n_swa), which Gemma 2 and Gemma 3 both use.
	// Keys out of the window are skipped: the softmax of the row with
	// them masked to −∞ (their exp is 0; ggml's summation order over the
	// full masked row may differ in the last bits).
	Window int
}

// AttentionOpts is Attention with a soft-cap of the scores and a sliding
// window (both off at zero, where the results are Attention's, bit for bit).
func (b *Batch) AttentionOpts(l int, out, q, k, v []float32, o AttnOpts) {
	c := b.cfg
	kvd := c.KVDim()
	r := 0
	for _, sq := range b.seqs {
		s, n := sq.State, len(sq.Tokens)
		dk, dv := s.k[l][s.n*kvd:(s.n+n)*kvd], s.v[l][s.n*kvd:(s.n+n)*kvd]
		copy(dk, k[r*kvd:(r+n)*kvd])
		copy(dv, v[r*kvd:(r+n)*kvd])
		if s.kvF16 {
			roundF16(dk)
			roundF16(dv)
		}
		r += n
	}

	j := &b.attn
	j.b, j.l, j.q, j.out, j.scale, j.softCap, j.window = b, l, q, out, o.Scale, o.SoftCap, o.Window
	units := b.n * c.NHead
	if b.work < attnParallelWork || units < 2 {
		j.Run(0, 0, units)
	} else {
		parallel.Default().Do(units, max(1, units/(8*parallel.Default().Size())), j)
	}
	j.b, j.q, j.out = nil, nil, nil
}

// attnParallelWork is the multiply-add count below which attention runs on
// the calling goroutine.
const attnParallelWork = 1 << 15

// attnJob computes attention for (token, head) units; it lives in the Batch
// so that handing it to the pool allocates nothing.
type attnJob struct {
	b      *Batch
	l      int       // layer
	q, out []float32 // (n, q)
	scale  float32   // factor of q·k
	// softCap caps the scaled scores (0: no cap); window is the sliding
	// window (0: none). See AttnOpts.
	softCap float32
	window  int
	scores  [][]float32 // per worker, (nCtx)
	qh      [][]float32 // per worker, (head_dim): a query rounded to fp16
}

func (j *attnJob) Run(worker, u0, u1 int) {
	c := j.b.cfg
	hd, qd, kvd := c.HeadDim, c.QDim(), c.KVDim()
	group := c.NHead / c.NHeadKV
	last := j.b.n*c.NHead - 1
	for u := u0; u < u1; u++ {
		// Units run last token first: under causal masking a token's cost
		// grows with its position, and the pool hands out chunks in order,
		// so the long rows go first and the chunks left at the end, when
		// workers run out of work, are the short ones.
		i, h := (last-u)/c.NHead, (last-u)%c.NHead
		s := j.b.seqs[j.b.seq[i]].State
		keys, vals := s.k[j.l], s.v[j.l]
		kvOff := (h / group) * hd
		q := j.q[i*qd+h*hd : i*qd+(h+1)*hd]
		if s.kvF16 {
			q = j.qh[worker][:hd]
			copy(q, j.q[i*qd+h*hd:i*qd+(h+1)*hd])
			roundF16(q)
		}
		// Causal: positions lo..pos, lo = 0 without a sliding window. The
		// head's keys and values are the rows kvd apart from lo·kvd+kvOff
		// on; the row kernels take them all at once (the same sums as Dot
		// and Axpy per key, faster).
		pos := int(j.b.pos[i])
		lo := 0
		if j.window > 0 && pos-j.window+1 > 0 {
			lo = pos - j.window + 1
		}
		att := j.scores[worker][:pos+1-lo]
		kernel.DotRows32(q, keys[lo*kvd+kvOff:], kvd, att)
		kernel.Scale(att, j.scale)
		if j.softCap != 0 {
			SoftCap(att, j.softCap)
		}
		kernel.Softmax(att)
		if s.kvF16 {
			roundF16(att)
		}
		o := j.out[i*qd+h*hd : i*qd+(h+1)*hd]
		clear(o)
		kernel.AxpyRows(o, att, vals[lo*kvd+kvOff:], kvd)
	}
}

// roundF16 rounds x to fp16 values in place.
func roundF16(x []float32) {
	for i, v := range x {
		x[i] = quant.F16ToF32(quant.F32ToF16(v))
	}
}

// SoftCap caps x in place as llama.cpp's soft-capping does (Gemma 2's
// attention scores and final logits: ggml_scale by 1/c, ggml_tanh,
// ggml_scale by c), each step rounded to float32:
//
//	x[i] = c · tanh(x[i] · (1/c))
//
// The tanh is math.Tanh of the float32 argument, rounded to float32 (ggml
// calls tanhf; the two agree but for rare last-bit differences of tanhf's
// rounding). Nothing is allocated.
func SoftCap(x []float32, c float32) {
	inv := 1 / c
	for i, v := range x {
		t := float32(math.Tanh(float64(v * inv)))
		x[i] = c * t
	}
}
