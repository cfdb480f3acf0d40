//go:build !purego && !noasm

package kernel

import "github.com/slm-dev/slm/quant"

// The arm64 IQ4 dot products (dot_iq_arm64.s), bit-identical to the
// generic versions in dot_iq.go; wrapBlockDot checks the slices.

//go:noescape
func dotIQ4NLNEON(w, x *byte, nb int) float32

//go:noescape
func dotIQ4NLDotProd(w, x *byte, nb int) float32

//go:noescape
func dotIQ4XSNEON(w, x *byte, nb int) float32

//go:noescape
func dotIQ4XSDotProd(w, x *byte, nb int) float32

func init() {
	for _, d := range []struct {
		w, act quant.Type
		tier   Tier
		fn     blockDotFn
	}{
		{quant.IQ4_NL, quant.Q8_0, TierNEON, dotIQ4NLNEON},
		{quant.IQ4_NL, quant.Q8_0, TierDotProd, dotIQ4NLDotProd},
		{quant.IQ4_XS, quant.Q8_K, TierNEON, dotIQ4XSNEON},
		{quant.IQ4_XS, quant.Q8_K, TierDotProd, dotIQ4XSDotProd},
	} {
		registerDot(d.w, d.act, d.tier, blockVecDot(d.w, d.act, d.fn))
	}
}
