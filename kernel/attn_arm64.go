//go:build !purego && !noasm

package kernel

// The NEON attention kernels (attn_arm64.s), bit-identical to the generic
// ones in attn.go.

//go:noescape
func dotRows32NEON(q *float32, n8 int, k *float32, stride int, dst *float32, nt int)

//go:noescape
func axpyRows64NEON(o, a *float32, nt int, v *float32, stride int)

//go:noescape
func axpyRows16NEON(o, a *float32, nt int, v *float32, stride int)

func init() {
	registerAttn(TierNEON, dotRows32NEONGo, axpyRowsNEONGo)
}

// dotRows32NEONGo is DotRows32 on NEON; rows whose length is not a multiple
// of 8 (the tail goes into s0 before the reduction) are left to the generic
// code. The caller has checked that k holds every row.
func dotRows32NEONGo(q, k []float32, stride int, dst []float32) {
	n := len(q)
	if n == 0 || n%8 != 0 || len(dst) == 0 {
		dotRows32Generic(q, k, stride, dst)
		return
	}
	dotRows32NEON(&q[0], n/8, &k[0], 4*stride, &dst[0], len(dst))
}

// axpyRowsNEONGo is AxpyRows on NEON: o in column strips of 64 and 16
// outputs, each kept in registers over all the rows; the outputs are
// independent, so the generic code takes the last len(o)%16. The caller
// has checked that v holds every row.
func axpyRowsNEONGo(o, a, v []float32, stride int) {
	n, nt := len(o), len(a)
	if nt == 0 {
		return
	}
	c := 0
	for ; c+64 <= n; c += 64 {
		axpyRows64NEON(&o[c], &a[0], nt, &v[c], 4*stride)
	}
	for ; c+16 <= n; c += 16 {
		axpyRows16NEON(&o[c], &a[0], nt, &v[c], 4*stride)
	}
	if c < n {
		axpyRowsGeneric(o[c:], a, v[c:], stride)
	}
}
