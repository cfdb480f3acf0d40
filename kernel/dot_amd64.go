//go:build !purego && !noasm

package kernel

import (
	"fmt"
	"unsafe"

	"github.com/slm-dev/slm/quant"
)

// The AVX2 kernels (dot_amd64.s). Block kernels take nb whole blocks of
// weights at w and of activations at x; the Go wrappers check the slices,
// so the assembly never reads outside them. Each assembly routine's doc
// comment there gives the equivalent Go; all are bit-identical to the
// generic versions in dot.go and actquant.go.

//go:noescape
func quantQ8_0AVX2(x *float32, dst *byte, nb int)

//go:noescape
func quantQ8_1AVX2(x *float32, dst *byte, nb int)

//go:noescape
func cvtF16AVX2(x *float32, dst *byte, n8 int)

//go:noescape
func q40x8AVX2(w *byte, nb int, x *byte, sums *int32, dst *float32)

//go:noescape
func q40x8x2AVX2(w *byte, nb int, x *byte, xstride int, sums *int32, dst *float32, dstride int)

//go:noescape
func quantQ8_KAVX2(x *float32, dst *byte, nb int)

//go:noescape
func cvtBF16AVX2(x *float32, dst *byte, n8 int)

//go:noescape
func dotBF16AVX2(w, x *byte, n32 int) float32

//go:noescape
func dotQ4_0AVX2(w, x *byte, nb int) float32

//go:noescape
func dotQ4_0x4AVX2(w *byte, stride int, x *byte, nb int, dst *float32)

//go:noescape
func dotQ8_0AVX2(w, x *byte, nb int) float32

//go:noescape
func dotQ8_0x4AVX2(w *byte, stride int, x *byte, nb int, dst *float32)

//go:noescape
func dotQ8_0x4x2AVX2(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

//go:noescape
func dotQ8_0x2x4AVX2(w *byte, stride int, x *byte, xstride int, nb int, dst *float32, dstride int)

//go:noescape
func dotQ5_0x4AVX2(w *byte, stride int, x *byte, nb int, dst *float32)

//go:noescape
func dotQ5_0x4x2AVX2(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)

//go:noescape
func dotQ5_0AVX2(w, x *byte, nb int) float32

//go:noescape
func dotQ4_1AVX2(w, x *byte, nb int) float32

//go:noescape
func dotQ5_1AVX2(w, x *byte, nb int) float32

//go:noescape
func dotF16AVX2(w, x *byte, n8 int) float32

//go:noescape
func dotF16x4AVX2(w *byte, stride int, x *byte, n8 int, dst *float32)

//go:noescape
func dotF16x4x2AVX2(w *byte, stride int, x *byte, xstride int, n8 int, dst0, dst1 *float32)

//go:noescape
func dotF32AVX2(w, x *byte, n8 int) float32

//go:noescape
func dotF32x4AVX2(w *byte, stride int, x *byte, n8 int, dst *float32)

func init() {
	if !hasAVX2 {
		return
	}
	registerAct(quant.Q8_0, TierAVX2, blockAct(quant.Q8_0, quantQ8_0AVX2))
	registerAct(quant.Q8_1, TierAVX2, blockAct(quant.Q8_1, quantQ8_1AVX2))
	registerAct(quant.F16, TierAVX2, actF16AVX2)
	registerAct(quant.Q8_K, TierAVX2, blockAct(quant.Q8_K, quantQ8_KAVX2))
	registerAct(quant.BF16, TierAVX2, actBF16AVX2)
	registerDot(quant.BF16, quant.BF16, TierAVX2, dotBF16AVX2Go)

	registerDot(quant.Q4_0, quant.Q8_0, TierAVX2, blockVecDot(quant.Q4_0, quant.Q8_0, dotQ4_0AVX2))
	registerDot(quant.Q8_0, quant.Q8_0, TierAVX2, blockVecDot(quant.Q8_0, quant.Q8_0, dotQ8_0AVX2))
	registerDot(quant.Q5_0, quant.Q8_0, TierAVX2, blockVecDot(quant.Q5_0, quant.Q8_0, dotQ5_0AVX2))
	registerDot(quant.Q4_1, quant.Q8_1, TierAVX2, blockVecDot(quant.Q4_1, quant.Q8_1, dotQ4_1AVX2))
	registerDot(quant.Q5_1, quant.Q8_1, TierAVX2, blockVecDot(quant.Q5_1, quant.Q8_1, dotQ5_1AVX2))
	registerDot(quant.F16, quant.F16, TierAVX2, dotF16AVX2Go)
	registerDot(quant.F32, quant.F32, TierAVX2, dotF32AVX2Go)

	q40Packed.tier, q40Packed.x8, q40Packed.x8x2 = TierAVX2, q40x8AVX2, q40x8x2AVX2
	registerDotRows(quant.Q4_0, TierAVX2, blockRows4(quant.Q4_0, quant.Q8_0, dotQ4_0x4AVX2, dotQ4_0AVX2))
	registerDotRows(quant.Q8_0, TierAVX2, blockRows4(quant.Q8_0, quant.Q8_0, dotQ8_0x4AVX2, dotQ8_0AVX2))
	registerDotRows2(quant.Q8_0, TierAVX2, blockRows4x2(quant.Q8_0, quant.Q8_0, dotQ8_0x4x2AVX2, dotQ8_0AVX2))
	q8Cols4 = append(q8Cols4, impl[rowsCols4Fn]{TierAVX2, q8Rows2x4AVX2})
	registerDotRows(quant.Q5_0, TierAVX2, blockRows4(quant.Q5_0, quant.Q8_0, dotQ5_0x4AVX2, dotQ5_0AVX2))
	registerDotRows2(quant.Q5_0, TierAVX2, blockRows4x2(quant.Q5_0, quant.Q8_0, dotQ5_0x4x2AVX2, dotQ5_0AVX2))
	registerDotRows(quant.F16, TierAVX2, floatRows4(2, dotF16x4AVX2, dotF16AVX2Go))
	registerDotRows2(quant.F16, TierAVX2, floatRows4x2(2, dotF16x4x2AVX2, dotF16AVX2Go))
	registerDotRows(quant.F32, TierAVX2, floatRows4(4, dotF32x4AVX2, dotF32AVX2Go))
}

// q8Rows2x4AVX2 is a rowsCols4Fn of Q8_0 weights: 2 rows × 4 activations
// a call, the single-row kernel for an odd last row.
func q8Rows2x4AVX2(n int, wq []byte, stride int, xq []byte, xstride int, dst []float32, dstStride int) {
	if nb, rows, ok := q8Cols4Check(n, wq, stride, xq, xstride, dst, dstStride); ok {
		q8Cols4Rest(0, rows, nb, wq, stride, xq, xstride, dst, dstStride)
	}
}

// q8Cols4Check validates a Q8_0 rowsCols4Fn call for the assembly (which
// reads nb blocks of every row and activation unchecked) and returns the
// block and row counts; ok is false when no kernel needs to run (no rows,
// or no whole block: the outputs are then zero).
func q8Cols4Check(n int, wq []byte, stride int, xq []byte, xstride int, dst []float32, dstStride int) (nb, rows int, ok bool) {
	nb = n / 32
	rows = len(dst) - 3*dstStride
	if rows <= 0 {
		return 0, 0, false
	}
	if nb <= 0 {
		for c := range 4 {
			clear(dst[c*dstStride : c*dstStride+rows])
		}
		return 0, 0, false
	}
	_ = xq[3*xstride+nb*34-1]
	_ = wq[(rows-1)*stride+nb*34-1]
	if nb*34 > stride || nb*34 > xstride {
		panic("kernel: rows overlap")
	}
	return nb, rows, true
}

// q8Cols4Rest computes rows r..rows-1 of a checked Q8_0 rowsCols4Fn call
// with the AVX2 kernels: two rows × four activations a call, the
// single-row kernel for an odd last row.
func q8Cols4Rest(r, rows, nb int, wq []byte, stride int, xq []byte, xstride int, dst []float32, dstStride int) {
	for ; r+2 <= rows; r += 2 {
		dotQ8_0x2x4AVX2(&wq[r*stride], stride, &xq[0], xstride, nb, &dst[r], 4*dstStride)
	}
	if r < rows {
		for c := range 4 {
			dst[c*dstStride+r] = dotQ8_0AVX2(&wq[r*stride], &xq[c*xstride], nb)
		}
	}
}

// floatRows4 is blockRows4 for the float types (size bytes an element):
// the kernels cover n&^7 elements; the tail goes to the Go wrapper.
func floatRows4(size int, fn4 blockRowsFn, dot VecDot) DotRows {
	return func(n int, wq []byte, stride int, xq []byte, dst []float32) {
		rows := len(dst)
		if rows == 0 {
			return
		}
		n8 := n / 8
		if n%8 != 0 || n8 == 0 {
			for r := range dst {
				dst[r] = dot(n, wq[r*stride:], xq)
			}
			return
		}
		_ = xq[n*size-1]
		_ = wq[(rows-1)*stride+n*size-1]
		if n*size > stride {
			panic("kernel: weight rows overlap")
		}
		r := 0
		for ; r+4 <= rows; r += 4 {
			fn4(&wq[r*stride], stride, &xq[0], n8, &dst[r])
		}
		for ; r < rows; r++ {
			dst[r] = dot(n, wq[r*stride:], xq)
		}
	}
}

// floatRows4x2 is blockRows4x2 for the float types (size bytes an
// element); the kernel covers n&^7 elements, the Go dot the rest.
func floatRows4x2(size int, fn func(w *byte, stride int, x *byte, xstride int, n8 int, dst0, dst1 *float32), dot VecDot) DotRows2 {
	return func(n int, wq []byte, stride int, x0, x1 []byte, dst0, dst1 []float32) {
		rows := len(dst0)
		if rows == 0 {
			return
		}
		n8 := n / 8
		if n%8 != 0 || n8 == 0 {
			for r := range dst0 {
				dst0[r] = dot(n, wq[r*stride:], x0)
				dst1[r] = dot(n, wq[r*stride:], x1)
			}
			return
		}
		_ = x0[n*size-1]
		_ = x1[n*size-1]
		_ = dst1[rows-1]
		_ = wq[(rows-1)*stride+n*size-1]
		if n*size > stride {
			panic("kernel: weight rows overlap")
		}
		xstride := int(uintptr(unsafe.Pointer(&x1[0])) - uintptr(unsafe.Pointer(&x0[0])))
		r := 0
		for ; r+4 <= rows; r += 4 {
			fn(&wq[r*stride], stride, &x0[0], xstride, n8, &dst0[r], &dst1[r])
		}
		for ; r < rows; r++ {
			dst0[r] = dot(n, wq[r*stride:], x0)
			dst1[r] = dot(n, wq[r*stride:], x1)
		}
	}
}

func blockAct(act quant.Type, fn func(x *float32, dst *byte, nb int)) ActQuantizer {
	qk, ab := act.BlockElems(), act.BlockBytes()
	return func(x []float32, dst []byte) {
		nb := len(x) / qk
		if nb*qk != len(x) {
			panic(fmt.Sprintf("kernel: %d activations are not a whole number of %v blocks", len(x), act))
		}
		if nb == 0 {
			return
		}
		_ = dst[nb*ab-1]
		fn(&x[0], &dst[0], nb)
	}
}

func actF16AVX2(x []float32, dst []byte) {
	dst = dst[:2*len(x)]
	n8 := len(x) / 8
	if n8 > 0 {
		cvtF16AVX2(&x[0], &dst[0], n8)
	}
	if m := 8 * n8; m < len(x) {
		actF16Generic(x[m:], dst[2*m:])
	}
}

// dotF16AVX2Go and dotF32AVX2Go run the kernel over the whole 8s and add
// the tail in float64 exactly as the generic versions do.
func dotF16AVX2Go(n int, w, x []byte) float32 {
	n8 := n / 8
	if n8 == 0 {
		return dotF16Generic(n, w, x)
	}
	_ = w[2*n-1]
	_ = x[2*n-1]
	s := dotF16AVX2(&w[0], &x[0], n8)
	m := 8 * n8
	if m == n {
		return s
	}
	t := float64(s)
	for i := m; i < n; i++ {
		t += float64(float32(h16(w[2*i:]) * h16(x[2*i:])))
	}
	return float32(t)
}

func dotF32AVX2Go(n int, w, x []byte) float32 {
	n8 := n / 8
	if n8 == 0 {
		return dotF32Generic(n, w, x)
	}
	_ = w[4*n-1]
	_ = x[4*n-1]
	s := dotF32AVX2(&w[0], &x[0], n8)
	m := 8 * n8
	if m == n {
		return s
	}
	t := float64(s)
	for i := m; i < n; i++ {
		t += float64(f32At(w, i) * f32At(x, i))
	}
	return float32(t)
}

func actBF16AVX2(x []float32, dst []byte) {
	dst = dst[:2*len(x)]
	n8 := len(x) / 8
	if n8 > 0 {
		cvtBF16AVX2(&x[0], &dst[0], n8)
	}
	if m := 8 * n8; m < len(x) {
		actBF16Generic(x[m:], dst[2*m:])
	}
}

func dotBF16AVX2Go(n int, w, x []byte) float32 {
	n32 := n / 32
	if n32 == 0 {
		return dotBF16Generic(n, w, x)
	}
	_ = w[2*n-1]
	_ = x[2*n-1]
	t := float64(dotBF16AVX2(&w[0], &x[0], n32))
	for i := 32 * n32; i < n; i++ {
		t += float64(float32(b16(w, i) * b16(x, i)))
	}
	return float32(t)
}
