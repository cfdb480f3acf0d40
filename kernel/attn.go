package kernel

import "sync/atomic"

// Attention kernels. Attention over a KV cache does, per (token, head), one
// short dot product per cached key and one short axpy per cached value
// (head_dim elements each, 64 or 128 in practice). Called one key at a time
// through Dot and Axpy, the function call, the reduction and, for Axpy, the
// load and store of the whole output row dominate; these kernels take all
// the keys (values) of one head at once, so that the assembly tiers can keep
// several keys in flight and the output row in registers.
//
// The generic versions are the specification: every tier computes the same
// float32 operations in the same order, so the tier in use never moves a
// logit. Each product is rounded to float32 before it is added (the explicit
// float32 conversions below forbid the compiler to fuse it into an FMA, as
// it otherwise may on arm64 or with GOAMD64=v3); on amd64 without FMA fusion
// that is exactly what Dot and Axpy compute.

// dotRows32Fn is DotRows32 for one tier.
type dotRows32Fn func(q, k []float32, stride int, dst []float32)

// axpyRowsFn is AxpyRows for one tier.
type axpyRowsFn func(o, a, v []float32, stride int)

var (
	dotRows32Impls []impl[dotRows32Fn]
	axpyRowsImpls  []impl[axpyRowsFn]
)

func init() {
	registerAttn(TierGeneric, dotRows32Generic, axpyRowsGeneric)
}

// registerAttn adds a tier's attention kernels (either may be nil). Called
// from init.
func registerAttn(tier Tier, dot dotRows32Fn, axpy axpyRowsFn) {
	if dot != nil {
		dotRows32Impls = append(dotRows32Impls, impl[dotRows32Fn]{tier, dot})
		sortImpls(dotRows32Impls)
	}
	if axpy != nil {
		axpyRowsImpls = append(axpyRowsImpls, impl[axpyRowsFn]{tier, axpy})
		sortImpls(axpyRowsImpls)
	}
}

// attnKernels is the resolved choice of attention kernels for one setting
// of the forced tier; it is cached because attention calls them once per
// (token, head).
type attnKernels struct {
	forced Tier
	dot    dotRows32Fn
	axpy   axpyRowsFn
}

var attnCur atomic.Pointer[attnKernels]

func attn() *attnKernels {
	k := attnCur.Load()
	if k != nil && k.forced == forcedTier {
		return k
	}
	k = &attnKernels{forced: forcedTier}
	k.dot, _ = pick(dotRows32Impls)
	k.axpy, _ = pick(axpyRowsImpls)
	attnCur.Store(k)
	return k
}

// DotRows32 sets dst[t] to the dot product of q with the key row
// k[t*stride : t*stride+len(q)] for every t < len(dst): attention scores
// of one query against consecutive cached keys. Each dst[t] is computed as
// Dot computes it: eight lane sums s0..s7 over i%8, each product rounded
// before it is added, the tail (len(q)%8 elements) added into s0, and then
// ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)); that is Dot bit for bit where the
// compiler does not fuse Dot's multiply-adds (amd64 below GOAMD64=v3). It
// panics if k is too short.
func DotRows32(q, k []float32, stride int, dst []float32) {
	if len(q) == 0 {
		clear(dst)
		return
	}
	if len(dst) == 0 {
		return
	}
	checkRows(len(k), len(dst), stride, len(q))
	attn().dot(q, k, stride, dst)
}

// AxpyRows adds the rows of v weighted by a to o: o[d] += a[t]*v[t*stride+d]
// for t = 0, 1, … len(a)-1 in that order and every d < len(o), each product
// rounded before it is added: what len(a) calls of Axpy compute where the
// compiler does not fuse (as for DotRows32). It is the value half of
// attention (o = Σₜ aₜ·Vₜ). It panics if v is too short.
func AxpyRows(o, a, v []float32, stride int) {
	if len(a) == 0 || len(o) == 0 {
		return
	}
	checkRows(len(v), len(a), stride, len(o))
	attn().axpy(o, a, v, stride)
}

// checkRows panics unless a slice of have elements holds rows rows of width
// elements stride apart, so that the assembly never reads outside it.
func checkRows(have, rows, stride, width int) {
	if stride < 0 || rows < 0 || width < 0 {
		panic("kernel: negative row stride or length")
	}
	if width == 0 {
		return
	}
	if have < width || stride > 0 && rows-1 > (have-width)/stride {
		panic("kernel: row slice too short")
	}
}

// dot32 is Dot with every product explicitly rounded: the specification of
// one DotRows32 score.
func dot32(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i <= len(x)-8; i += 8 {
		a := x[i : i+8 : i+8]
		b := y[i : i+8 : i+8]
		s0 += float32(a[0] * b[0])
		s1 += float32(a[1] * b[1])
		s2 += float32(a[2] * b[2])
		s3 += float32(a[3] * b[3])
		s4 += float32(a[4] * b[4])
		s5 += float32(a[5] * b[5])
		s6 += float32(a[6] * b[6])
		s7 += float32(a[7] * b[7])
	}
	for ; i < len(x); i++ {
		s0 += float32(x[i] * y[i])
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

func dotRows32Generic(q, k []float32, stride int, dst []float32) {
	n := len(q)
	for t := range dst {
		dst[t] = dot32(q, k[t*stride:t*stride+n])
	}
}

// axpyRowsGeneric keeps eight outputs in locals over all the rows, so that
// each is loaded and stored once; the per-output order of the additions
// is the specified one (row by row).
func axpyRowsGeneric(o, a, v []float32, stride int) {
	n := len(o)
	d := 0
	for ; d+8 <= n; d += 8 {
		os := o[d : d+8 : d+8]
		o0, o1, o2, o3, o4, o5, o6, o7 := os[0], os[1], os[2], os[3], os[4], os[5], os[6], os[7]
		for t, at := range a {
			r := v[t*stride+d : t*stride+d+8 : t*stride+d+8]
			o0 += float32(at * r[0])
			o1 += float32(at * r[1])
			o2 += float32(at * r[2])
			o3 += float32(at * r[3])
			o4 += float32(at * r[4])
			o5 += float32(at * r[5])
			o6 += float32(at * r[6])
			o7 += float32(at * r[7])
		}
		os[0], os[1], os[2], os[3], os[4], os[5], os[6], os[7] = o0, o1, o2, o3, o4, o5, o6, o7
	}
	for ; d < n; d++ {
		od := o[d]
		for t, at := range a {
			od += float32(at * v[t*stride+d])
		}
		o[d] = od
	}
}
