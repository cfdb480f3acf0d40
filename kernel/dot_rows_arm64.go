//go:build !purego && !noasm

package kernel

import (
	"unsafe"

	"github.com/slm-dev/slm/quant"
)

//go:noescape
func dotQ4_0x4NEON(w *byte, stride int, x *byte, nb int, dst *float32)

//go:noescape
func dotQ4_0x4DotProd(w *byte, stride int, x *byte, nb int, dst *float32)

//go:noescape
func dotQ8_0x4NEON(w *byte, stride int, x *byte, nb int, dst *float32)

//go:noescape
func dotQ8_0x4DotProd(w *byte, stride int, x *byte, nb int, dst *float32)

//go:noescape
func dotQ8_0x4x2NEON(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

//go:noescape
func dotQ8_0x4x2DotProd(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

//go:noescape
func dotQ4_0x4x2NEON(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

//go:noescape
func dotQ4_0x4x2DotProd(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

//go:noescape
func dotQ4_0x4x2I8MM(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

// The i8mm tier: SMMLA pays off only with two activation rows (the prefill
// GEMM, DotRows2); the one-row dots on i8mm cores are the dotprod ones,
// registered again at TierI8MM so that the route's tier is i8mm.
func init() {
	registerDotRows(quant.Q4_0, TierNEON, a64Rows4(quant.Q4_0, quant.Q8_0, dotQ4_0x4NEON, dotQ4_0Q8_0NEON))
	registerDotRows(quant.Q4_0, TierDotProd, a64Rows4(quant.Q4_0, quant.Q8_0, dotQ4_0x4DotProd, dotQ4_0Q8_0DotProd))
	registerDot(quant.Q4_0, quant.Q8_0, TierI8MM, wrapBlockDot(quant.Q4_0, quant.Q8_0, dotQ4_0Q8_0DotProd))
	registerDotRows(quant.Q4_0, TierI8MM, a64Rows4(quant.Q4_0, quant.Q8_0, dotQ4_0x4DotProd, dotQ4_0Q8_0DotProd))
	registerDotRows(quant.Q8_0, TierNEON, a64Rows4(quant.Q8_0, quant.Q8_0, dotQ8_0x4NEON, dotQ8_0Q8_0NEON))
	registerDotRows(quant.Q8_0, TierDotProd, a64Rows4(quant.Q8_0, quant.Q8_0, dotQ8_0x4DotProd, dotQ8_0Q8_0DotProd))
	registerDotRows2(quant.Q8_0, TierNEON, a64Rows4x2(quant.Q8_0, quant.Q8_0, dotQ8_0x4x2NEON, dotQ8_0Q8_0NEON))
	registerDotRows2(quant.Q8_0, TierDotProd, a64Rows4x2(quant.Q8_0, quant.Q8_0, dotQ8_0x4x2DotProd, dotQ8_0Q8_0DotProd))
	registerDotRows2(quant.Q4_0, TierNEON, a64Rows4x2(quant.Q4_0, quant.Q8_0, dotQ4_0x4x2NEON, dotQ4_0Q8_0NEON))
	registerDotRows2(quant.Q4_0, TierDotProd, a64Rows4x2(quant.Q4_0, quant.Q8_0, dotQ4_0x4x2DotProd, dotQ4_0Q8_0DotProd))
	registerDotRows2(quant.Q4_0, TierI8MM, a64Rows4x2(quant.Q4_0, quant.Q8_0, dotQ4_0x4x2I8MM, dotQ4_0Q8_0DotProd))
}

type a64Rows4Fn func(w *byte, stride int, x *byte, nb int, dst *float32)

type a64Rows4x2Fn func(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

// a64Rows4 makes a DotRows of a 4-row kernel, the last rows by the
// one-row kernel fn1.
func a64Rows4(w, act quant.Type, fn4 a64Rows4Fn, fn1 blockDot) DotRows {
	qk, wb, xb := w.BlockElems(), w.BlockBytes(), act.BlockBytes()
	return func(n int, wq []byte, stride int, xq []byte, dst []float32) {
		nb, rows := n/qk, len(dst)
		if nb <= 0 || rows == 0 {
			clear(dst)
			return
		}
		_ = xq[nb*xb-1]
		_ = wq[(rows-1)*stride+nb*wb-1]
		if nb*wb > stride {
			panic("kernel: weight rows overlap")
		}
		r := 0
		for ; r+4 <= rows; r += 4 {
			fn4(&wq[r*stride], stride, &xq[0], nb, &dst[r])
		}
		for ; r < rows; r++ {
			dst[r] = fn1(&wq[r*stride], &xq[0], nb)
		}
	}
}

// a64Rows4x2 makes a DotRows2 of a 4-row x 2-activation kernel.
func a64Rows4x2(w, act quant.Type, fn a64Rows4x2Fn, fn1 blockDot) DotRows2 {
	qk, wb, xb := w.BlockElems(), w.BlockBytes(), act.BlockBytes()
	return func(n int, wq []byte, stride int, x0, x1 []byte, dst0, dst1 []float32) {
		nb, rows := n/qk, len(dst0)
		if nb <= 0 || rows == 0 {
			clear(dst0)
			clear(dst1[:rows])
			return
		}
		_ = x0[nb*xb-1]
		_ = x1[nb*xb-1]
		_ = dst1[rows-1]
		_ = wq[(rows-1)*stride+nb*wb-1]
		if nb*wb > stride {
			panic("kernel: weight rows overlap")
		}
		xstride := int(uintptr(unsafe.Pointer(&x1[0])) - uintptr(unsafe.Pointer(&x0[0])))
		r := 0
		for ; r+4 <= rows; r += 4 {
			fn(&wq[r*stride], stride, &x0[0], xstride, nb, &dst0[r], &dst1[r])
		}
		for ; r < rows; r++ {
			dst0[r] = fn1(&wq[r*stride], &x0[0], nb)
			dst1[r] = fn1(&wq[r*stride], &x1[0], nb)
		}
	}
}
