//go:build !purego && !noasm

package kernel

import "github.com/slm-dev/slm/quant"

// The arm64 dot products (dot_*_arm64.s). Each takes nb whole blocks of
// weights at w and of activations at x; the Go wrappers check the slices.

//go:noescape
func dotQ8_0Q8_0NEON(w, x *byte, nb int) float32

//go:noescape
func dotQ8_0Q8_0DotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ4_0Q8_0NEON(w, x *byte, nb int) float32

//go:noescape
func dotQ4_0Q8_0DotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ4_1Q8_1NEON(w, x *byte, nb int) float32

//go:noescape
func dotQ4_1Q8_1DotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ5_0Q8_0NEON(w, x *byte, nb int) float32

//go:noescape
func dotQ5_0Q8_0DotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ5_1Q8_1NEON(w, x *byte, nb int) float32

//go:noescape
func dotQ5_1Q8_1DotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ4_KQ8_KNEON(w, x *byte, nb int) float32

//go:noescape
func dotQ4_KQ8_KDotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ6_KQ8_KNEON(w, x *byte, nb int) float32

//go:noescape
func dotQ6_KQ8_KDotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ2_KQ8_KNEON(w, x *byte, nb int) float32

//go:noescape
func dotQ2_KQ8_KDotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ3_KQ8_KNEON(w, x *byte, nb int) float32

//go:noescape
func dotQ3_KQ8_KDotProd(w, x *byte, nb int) float32

//go:noescape
func dotQ5_KQ8_KNEON(w, x *byte, nb int) float32

//go:noescape
func dotQ5_KQ8_KDotProd(w, x *byte, nb int) float32

// arm64Dots lists every arm64 kernel: weight type, activation type, tier.
var arm64Dots = []struct {
	w, act quant.Type
	tier   Tier
	fn     blockDotFn
}{
	{quant.Q8_0, quant.Q8_0, TierNEON, dotQ8_0Q8_0NEON},
	{quant.Q8_0, quant.Q8_0, TierDotProd, dotQ8_0Q8_0DotProd},
	{quant.Q4_0, quant.Q8_0, TierNEON, dotQ4_0Q8_0NEON},
	{quant.Q4_0, quant.Q8_0, TierDotProd, dotQ4_0Q8_0DotProd},
	{quant.Q4_1, quant.Q8_1, TierNEON, dotQ4_1Q8_1NEON},
	{quant.Q4_1, quant.Q8_1, TierDotProd, dotQ4_1Q8_1DotProd},
	{quant.Q5_0, quant.Q8_0, TierNEON, dotQ5_0Q8_0NEON},
	{quant.Q5_0, quant.Q8_0, TierDotProd, dotQ5_0Q8_0DotProd},
	{quant.Q5_1, quant.Q8_1, TierNEON, dotQ5_1Q8_1NEON},
	{quant.Q5_1, quant.Q8_1, TierDotProd, dotQ5_1Q8_1DotProd},
	{quant.Q4_K, quant.Q8_K, TierNEON, dotQ4_KQ8_KNEON},
	{quant.Q4_K, quant.Q8_K, TierDotProd, dotQ4_KQ8_KDotProd},
	{quant.Q6_K, quant.Q8_K, TierNEON, dotQ6_KQ8_KNEON},
	{quant.Q6_K, quant.Q8_K, TierDotProd, dotQ6_KQ8_KDotProd},
	{quant.Q2_K, quant.Q8_K, TierNEON, dotQ2_KQ8_KNEON},
	{quant.Q2_K, quant.Q8_K, TierDotProd, dotQ2_KQ8_KDotProd},
	{quant.Q3_K, quant.Q8_K, TierNEON, dotQ3_KQ8_KNEON},
	{quant.Q3_K, quant.Q8_K, TierDotProd, dotQ3_KQ8_KDotProd},
	{quant.Q5_K, quant.Q8_K, TierNEON, dotQ5_KQ8_KNEON},
	{quant.Q5_K, quant.Q8_K, TierDotProd, dotQ5_KQ8_KDotProd},
}

func init() {
	for _, d := range arm64Dots {
		registerDot(d.w, d.act, d.tier, blockVecDot(d.w, d.act, d.fn))
	}
}
