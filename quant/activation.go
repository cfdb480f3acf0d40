package quant

import (
	"encoding/binary"
	"math"
)

// Activation quantizers: what llama.cpp's CPU backend does to the float32
// input vector of a matrix multiplication with a quantized weight (x86/AVX2
// code path). They reproduce llama.cpp bit for bit, including its handling of
// zero, infinite and NaN inputs. Layouts are those documented in simple.go
// (Q8_0, Q8_1) and kquant.go (Q8_K). Each panics if len(src) is not a
// multiple of the block size or dst is too short.

// QuantizeQ8_0 quantizes src to Q8_0 blocks as ggml's AVX2
// quantize_row_q8_0: amax = max|x| over the block, d = amax/127,
// id = 127/amax (0 if amax is 0), q = round_half_even(x*id) saturated to
// int8, stored scale fp16(d).
func QuantizeQ8_0(src []float32, dst []byte) {
	checkQuant("Q8_0", src, dst, QK, bytesQ8_0)
	var q [QK]int32
	for i := 0; i+QK <= len(src); i += QK {
		b := dst[i/QK*bytesQ8_0:][:bytesQ8_0]
		d, _ := q8Block(src[i:i+QK], &q)
		binary.LittleEndian.PutUint16(b, F32ToF16(d))
		for j, v := range q {
			b[2+j] = byte(satInt8(v))
		}
	}
}

// QuantizeQ8_1 quantizes src to Q8_1 blocks as ggml's AVX2
// quantize_row_q8_1: like QuantizeQ8_0, plus s = fp16(d * sum(q)).
func QuantizeQ8_1(src []float32, dst []byte) {
	checkQuant("Q8_1", src, dst, QK, bytesQ8_1)
	var q [QK]int32
	for i := 0; i+QK <= len(src); i += QK {
		b := dst[i/QK*bytesQ8_1:][:bytesQ8_1]
		d, sum := q8Block(src[i:i+QK], &q)
		binary.LittleEndian.PutUint16(b, F32ToF16(d))
		binary.LittleEndian.PutUint16(b[2:], F32ToF16(d*float32(sum)))
		for j, v := range q {
			b[4+j] = byte(satInt8(v))
		}
	}
}

// q8Block computes the AVX2 Q8_0/Q8_1 scale and the (not yet saturated)
// 32-bit quants of one 32-element block, and their wrapping int32 sum.
func q8Block(x []float32, q *[QK]int32) (d float32, sum int32) {
	amax := avxAbsMax32(x)
	d = amax / 127
	var id float32
	if amax != 0 {
		id = 127 / amax
	}
	for j, v := range x[:QK] {
		q[j] = cvtps2dq(roundEven32(v * id))
		sum += q[j]
	}
	return d, sum
}

// avxAbsMax32 is the AVX2 reduction max|x| over 32 elements, with the exact
// lane structure and maxps semantics (maxps(a, b) = a > b ? a : b, so a NaN
// in either operand yields b), which only matters for NaN inputs.
func avxAbsMax32(x []float32) float32 {
	maxps := func(a, b float32) float32 {
		if a > b {
			return a
		}
		return b
	}
	var m [8]float32
	for k := 0; k < 8; k++ {
		v := abs32(x[k])
		v = maxps(v, abs32(x[8+k]))
		v = maxps(v, abs32(x[16+k]))
		m[k] = maxps(v, abs32(x[24+k]))
	}
	// max4 = max(high 128, low 128)
	var t [4]float32
	for k := 0; k < 4; k++ {
		t[k] = maxps(m[4+k], m[k])
	}
	// max(max4, movehl(max4, max4)): lanes 0,1 with 2,3
	u0 := maxps(t[0], t[2])
	u1 := maxps(t[1], t[3])
	// max_ss(max4, movehdup(max4)): lane 0 with lane 1
	return maxps(u0, u1)
}

// roundEven32 rounds to the nearest integer, ties to even (roundps with
// _MM_ROUND_NEAREST); NaN and infinities pass through.
func roundEven32(v float32) float32 { return float32(math.RoundToEven(float64(v))) }

// cvtps2dq converts like cvtps2dq on an already integral value: NaN and
// values outside int32 give the "integer indefinite" value math.MinInt32.
func cvtps2dq(v float32) int32 {
	if !(v >= -2147483648 && v < 2147483648) {
		return math.MinInt32
	}
	return int32(v)
}

// satInt8 is the packs_epi32 + packs_epi16 saturation to int8.
func satInt8(v int32) int8 {
	if v > 127 {
		return 127
	}
	if v < -128 {
		return -128
	}
	return int8(v)
}

// nearestInt is ggml's nearest_int: round half to even via the 1.5*2^23
// trick, reproducing its result bits even outside the valid range.
func nearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// QuantizeQ8_K quantizes src to Q8_K super-blocks as ggml's
// quantize_row_q8_K (the reference code, which is what x86 runs): max = the
// first element of largest magnitude, iscale = -127/max,
// q = min(127, round_half_even(iscale*x)), d = 1/iscale (float32), and
// bsums[g] = sum of q over each group of 16. An all-zero block stores
// d = 0 and zero quants and sums.
func QuantizeQ8_K(src []float32, dst []byte) {
	checkQuant("Q8_K", src, dst, QKK, bytesQ8_K)
	for i := 0; i+QKK <= len(src); i += QKK {
		x := src[i : i+QKK]
		b := dst[i/QKK*bytesQ8_K:][:bytesQ8_K]
		var max, amax float32
		for _, v := range x {
			if a := abs32(v); a > amax {
				amax, max = a, v
			}
		}
		if amax == 0 {
			clear(b)
			continue
		}
		iscale := -127 / max
		qs := b[4 : 4+QKK]
		for j, v := range x {
			qs[j] = byte(int8(min(127, nearestInt(float32(iscale*v)))))
		}
		for g := 0; g < QKK/16; g++ {
			var sum int32
			for _, q := range qs[16*g : 16*g+16] {
				sum += int32(int8(q))
			}
			putI16(b[4+QKK+2*g:], int16(sum))
		}
		binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
	}
}
