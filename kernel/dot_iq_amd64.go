//go:build !purego && !noasm

package kernel

import "github.com/slm-dev/slm/quant"

// The AVX2 IQ4 dot products (dot_iq_amd64.s), bit-identical to the generic
// versions in dot_iq.go. The wrappers (blockVecDot) check the slices, so the
// assembly reads only the nb whole blocks they hold.

//go:noescape
func dotIQ4NLAVX2(w, x *byte, nb int) float32

//go:noescape
func dotIQ4XSAVX2(w, x *byte, nb int) float32

func init() {
	if !hasAVX2 {
		return
	}
	registerDot(quant.IQ4_NL, quant.Q8_0, TierAVX2, blockVecDot(quant.IQ4_NL, quant.Q8_0, dotIQ4NLAVX2))
	registerDot(quant.IQ4_XS, quant.Q8_K, TierAVX2, blockVecDot(quant.IQ4_XS, quant.Q8_K, dotIQ4XSAVX2))
}
