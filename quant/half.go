package quant

import "math"

// F16ToF32 widens an IEEE half-precision value exactly (signaling NaNs
// become quiet, as in ggml on x86).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	a := uint32(h & 0x7fff)
	if a >= 0x7c00 {
		if a == 0x7c00 { // inf
			return math.Float32frombits(sign | 0x7f800000)
		}
		// NaN: payload kept, made quiet as x86 (F16C or SSE) does
		return math.Float32frombits(sign | 0x7fc00000 | (a&0x3ff)<<13)
	}
	// Placed at the top of a float32, the half's exponent and mantissa bits
	// read as the value times 2^-112 (subnormal halves become float32
	// subnormals); the power-of-two product is exact.
	v := math.Float32frombits(a<<13) * 0x1p112
	return math.Float32frombits(sign | math.Float32bits(v))
}

// F32ToF16 rounds to the nearest half, ties to even, as ggml's conversion does.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff { // inf or NaN
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		rem := man & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the correct rounding
	}
	return sign | uint16(r)
}

// BF16ToF32 widens a bfloat16 value exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds to nearest even, keeping NaNs quiet, as ggml does.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 64
	}
	return uint16((b + 0x7fff + (b >> 16 & 1)) >> 16)
}
