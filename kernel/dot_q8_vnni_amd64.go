//go:build !purego && !noasm

package kernel

import "github.com/slm-dev/slm/quant"

// The TierAVX512VNNI Q8_0 × Q8_0 prefill kernel (dot_q8_vnni_amd64.s):
// 4 weight rows × 4 activation rows a call, on 256-bit registers with
// AVX512-VNNI (VPDPBUSD) and AVX512-VL (16 more registers, so all 16
// accumulators stay in registers). Per block pair it needs one VPDPBUSD,
// one conversion and one fused multiply-add, against the AVX2 kernel's
// sign, two multiply-adds, conversion, broadcast and fma; the signed ×
// signed product is made unsigned × signed by adding 128 to the weights
// and starting the int32 lanes at -128·Σx, which is exact for every int8
// (the sign trick is not for -128). The float part is the generic one:
// the same float32 scale products, the same per-lane fmas in block order
// and the same horizontal sum, so the results are bit-identical to
// dotQ8_0Generic and to the AVX2 kernels.
//
// Q8_0 gets a TierAVX512VNNI route so that the prefill kernel is chosen
// (a route's kernels are all of its dot's tier); its dot, rows and rows2
// kernels at that tier are the AVX2 ones, which give the same bits.

//go:noescape
func dotQ8_0x4x4VNNI(w *byte, stride int, x *byte, xstride int, nb int, dst *float32, dstride int)

func init() {
	if !hasAVX2 || !hasAVX512VNNI {
		return
	}
	registerDot(quant.Q8_0, quant.Q8_0, TierAVX512VNNI, blockVecDot(quant.Q8_0, quant.Q8_0, dotQ8_0AVX2))
	registerDotRows(quant.Q8_0, TierAVX512VNNI, blockRows4(quant.Q8_0, quant.Q8_0, dotQ8_0x4AVX2, dotQ8_0AVX2))
	registerDotRows2(quant.Q8_0, TierAVX512VNNI, blockRows4x2(quant.Q8_0, quant.Q8_0, dotQ8_0x4x2AVX2, dotQ8_0AVX2))
	q8Cols4 = append(q8Cols4, impl[rowsCols4Fn]{TierAVX512VNNI, q8Rows4x4VNNI})
}

// q8Rows4x4VNNI is a rowsCols4Fn of Q8_0 weights: 4 rows × 4 activations
// a call, then the AVX2 2-row and single-row kernels for the last
// rows%4 rows.
func q8Rows4x4VNNI(n int, wq []byte, stride int, xq []byte, xstride int, dst []float32, dstStride int) {
	nb, rows, ok := q8Cols4Check(n, wq, stride, xq, xstride, dst, dstStride)
	if !ok {
		return
	}
	r := 0
	for ; r+4 <= rows; r += 4 {
		dotQ8_0x4x4VNNI(&wq[r*stride], stride, &xq[0], xstride, nb, &dst[r], 4*dstStride)
	}
	q8Cols4Rest(r, rows, nb, wq, stride, xq, xstride, dst, dstStride)
}
