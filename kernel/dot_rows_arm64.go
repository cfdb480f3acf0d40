//go:build !purego && !noasm

package kernel

import "github.com/slm-dev/slm/quant"

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
	registerDotRows(quant.Q4_0, TierNEON, blockRows4(quant.Q4_0, quant.Q8_0, dotQ4_0x4NEON, dotQ4_0Q8_0NEON))
	registerDotRows(quant.Q4_0, TierDotProd, blockRows4(quant.Q4_0, quant.Q8_0, dotQ4_0x4DotProd, dotQ4_0Q8_0DotProd))
	registerDot(quant.Q4_0, quant.Q8_0, TierI8MM, blockVecDot(quant.Q4_0, quant.Q8_0, dotQ4_0Q8_0DotProd))
	registerDotRows(quant.Q4_0, TierI8MM, blockRows4(quant.Q4_0, quant.Q8_0, dotQ4_0x4DotProd, dotQ4_0Q8_0DotProd))
	registerDotRows(quant.Q8_0, TierNEON, blockRows4(quant.Q8_0, quant.Q8_0, dotQ8_0x4NEON, dotQ8_0Q8_0NEON))
	registerDotRows(quant.Q8_0, TierDotProd, blockRows4(quant.Q8_0, quant.Q8_0, dotQ8_0x4DotProd, dotQ8_0Q8_0DotProd))
	registerDotRows2(quant.Q8_0, TierNEON, blockRows4x2(quant.Q8_0, quant.Q8_0, dotQ8_0x4x2NEON, dotQ8_0Q8_0NEON))
	registerDotRows2(quant.Q8_0, TierDotProd, blockRows4x2(quant.Q8_0, quant.Q8_0, dotQ8_0x4x2DotProd, dotQ8_0Q8_0DotProd))
	registerDotRows2(quant.Q4_0, TierNEON, blockRows4x2(quant.Q4_0, quant.Q8_0, dotQ4_0x4x2NEON, dotQ4_0Q8_0NEON))
	registerDotRows2(quant.Q4_0, TierDotProd, blockRows4x2(quant.Q4_0, quant.Q8_0, dotQ4_0x4x2DotProd, dotQ4_0Q8_0DotProd))
	registerDotRows2(quant.Q4_0, TierI8MM, blockRows4x2(quant.Q4_0, quant.Q8_0, dotQ4_0x4x2I8MM, dotQ4_0Q8_0DotProd))
}
