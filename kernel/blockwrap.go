//go:build !purego && !noasm

package kernel

import (
	"unsafe"

	"github.com/slm-dev/slm/quant"
)

// The Go side of the assembly block kernels, the same on every
// architecture: each wrapper checks the slices once (the assembly reads nb
// whole blocks of every row unchecked) and hands whole blocks over.
//
//	blockDotFn   one weight row · one activation row
//	blockRowsFn  four weight rows (stride apart) · one activation row
//	blockRows2Fn four weight rows · two activation rows (xstride apart)

type blockDotFn func(w, x *byte, nb int) float32
type blockRowsFn func(w *byte, stride int, x *byte, nb int, dst *float32)
type blockRows2Fn func(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

// blockVecDot makes a VecDot of a block kernel: n/blockElems whole blocks
// are dotted, after a bounds check of both slices.
func blockVecDot(w, act quant.Type, fn blockDotFn) VecDot {
	qk, wb, xb := w.BlockElems(), w.BlockBytes(), act.BlockBytes()
	return func(n int, wq, xq []byte) float32 {
		nb := n / qk
		if nb <= 0 {
			return 0
		}
		_ = wq[nb*wb-1]
		_ = xq[nb*xb-1]
		return fn(&wq[0], &xq[0], nb)
	}
}

// blockRows4 makes a DotRows of a 4-row block kernel, with the single-row
// kernel for the last len(dst)%4 rows.
func blockRows4(w, act quant.Type, fn4 blockRowsFn, fn1 blockDotFn) DotRows {
	qk, wb, xb := w.BlockElems(), w.BlockBytes(), act.BlockBytes()
	return func(n int, wq []byte, stride int, xq []byte, dst []float32) {
		nb := n / qk
		rows := len(dst)
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

// blockRows4x2 makes a DotRows2 of a 4-row × 2-activation block kernel.
func blockRows4x2(w, act quant.Type, fn blockRows2Fn, fn1 blockDotFn) DotRows2 {
	qk, wb, xb := w.BlockElems(), w.BlockBytes(), act.BlockBytes()
	return func(n int, wq []byte, stride int, x0, x1 []byte, dst0, dst1 []float32) {
		nb := n / qk
		rows := len(dst0)
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
