//go:build !purego && !noasm

package kernel

// The AVX2 attention kernels (attn_amd64.s), bit-identical to the generic
// ones in attn.go.

//go:noescape
func dotRows32AVX2(q *float32, n8 int, k *float32, stride int, dst *float32, nt int)

//go:noescape
func axpyRows64AVX2(o, a *float32, nt int, v *float32, stride int)

//go:noescape
func axpyRows32AVX2(o, a *float32, nt int, v *float32, stride int)

//go:noescape
func axpyRows8AVX2(o, a *float32, nt int, v *float32, stride int)

func init() {
	registerAttn(TierAVX2, dotRows32AVX2Go, axpyRowsAVX2Go)
}

// dotRows32AVX2Go is DotRows32 on AVX2; rows whose length is not a multiple
// of 8 (the tail goes into s0 before the reduction) are left to the generic
// code, head dimensions being multiples of 8 in practice. The caller has
// checked that k holds every row.
func dotRows32AVX2Go(q, k []float32, stride int, dst []float32) {
	n := len(q)
	if n == 0 || n%8 != 0 || len(dst) == 0 {
		dotRows32Generic(q, k, stride, dst)
		return
	}
	dotRows32AVX2(&q[0], n/8, &k[0], 4*stride, &dst[0], len(dst))
}

// axpyRowsAVX2Go is AxpyRows on AVX2: o in column strips of 64, 32 and 8
// outputs, each kept in registers over all the rows; the outputs are
// independent, so the generic code takes the last len(o)%8. The caller has
// checked that v holds every row.
func axpyRowsAVX2Go(o, a, v []float32, stride int) {
	n, nt := len(o), len(a)
	if nt == 0 {
		return
	}
	c := 0
	for ; c+64 <= n; c += 64 {
		axpyRows64AVX2(&o[c], &a[0], nt, &v[c], 4*stride)
	}
	if c+32 <= n {
		axpyRows32AVX2(&o[c], &a[0], nt, &v[c], 4*stride)
		c += 32
	}
	for ; c+8 <= n; c += 8 {
		axpyRows8AVX2(&o[c], &a[0], nt, &v[c], 4*stride)
	}
	if c < n {
		axpyRowsGeneric(o[c:], a, v[c:], stride)
	}
}
