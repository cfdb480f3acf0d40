package kernel

import (
	"encoding/binary"
	"math"

	"github.com/slm-dev/slm/quant"
)

// The generic K-quant dot products: Q2_K, Q3_K, Q4_K, Q5_K and Q6_K weights
// × Q8_K activations, the specification of every faster tier.
//
// Each follows ggml's ggml_vec_dot_qX_K_q8_K: integer sums per sub-block
// with the sub-block's 4- or 6-bit scale, the min terms (Q2_K, Q4_K, Q5_K)
// from the activation's 16-element block sums (bsums), then one float32
// multiply-add per super-block of 256. The float32 part is that of ggml's
// AVX2 branch, so every tier gives the bits of llama.cpp's x86 (AVX2 build)
// ggml_vec_dot_qX_K_q8_K:
//
//   - A super-block's products are summed into 8 int32 lanes: lane j holds
//     the elements e with (e mod 32)/4 == j (vpmaddubsw pairs neighbours,
//     vpmaddwd pairs those pairs, 32 elements to a register), each
//     product already multiplied by its sub-block scale. Integer sums are
//     exact, so their order is free.
//   - Each lane is fused-multiply-added into a float32 accumulator:
//     acc[j] = fma(d, float32(isum[j]), acc[j]) with d = d_x·d_w (float32),
//     and the 8 lanes are summed at the end in hsum_float_8's order.
//   - The min terms, with dmin = -(d_x·dmin_w): Q2_K adds
//     fma(dmin, float32(m[j]), acc[j]) before the scale term, m[j] the
//     mins of sub-blocks 2j and 2j+1 times their bsums; Q4_K keeps 4 lanes
//     accm[j] = fma(dmin, m[j], accm[j]), m[j] covering 64 elements, summed
//     (0+2)+(1+3) and added after hsum; Q5_K keeps one scalar
//     summs = fma(dmin, float32(Σm), summs) added last.
//
// Differences from ggml, none reachable from QuantizeQ8_K's output: Q4_K
// and Q5_K min terms use exact int32 sums of bsums pairs where ggml's
// vphaddw wraps at int16, and all quants (including -128 activations) are
// multiplied exactly. Weight bytes need no validity: any bit pattern gives
// exact int32 sums (|lane| < 2^25), and NaN or infinite scales propagate.
//
// Lengths: n/256 whole super-blocks are dotted; w and x must hold them.

func init() {
	registerDot(quant.Q2_K, quant.Q8_K, TierGeneric, dotQ2KGeneric)
	registerDot(quant.Q3_K, quant.Q8_K, TierGeneric, dotQ3KGeneric)
	registerDot(quant.Q4_K, quant.Q8_K, TierGeneric, dotQ4KGeneric)
	registerDot(quant.Q5_K, quant.Q8_K, TierGeneric, dotQ5KGeneric)
	registerDot(quant.Q6_K, quant.Q8_K, TierGeneric, dotQ6KGeneric)
}

// Super-block sizes in bytes (see quant/kquant.go for the layouts).
const (
	bytesQ2K = 84
	bytesQ3K = 110
	bytesQ4K = 144
	bytesQ5K = 176
	bytesQ6K = 210
	bytesQ8K = 292 // float32 d, int8 qs[256], int16 bsums[16]
)

// q8K splits a Q8_K super-block into its scale and quants.
func q8K(b []byte) (d float32, qs []byte) {
	b = b[:bytesQ8K]
	return math.Float32frombits(binary.LittleEndian.Uint32(b)), b[4:260]
}

// q8KBsums reads a Q8_K super-block's 16 block sums.
func q8KBsums(b []byte) (s [16]int32) {
	b = b[260:bytesQ8K]
	for g := range s {
		s[g] = int32(int16(binary.LittleEndian.Uint16(b[2*g:])))
	}
	return s
}

// kLanes adds the products of one 32-element chunk into the 8 lanes:
// lane l/4 gets scale·q[l]·y[l] for the element l of the chunk, with the
// scale s0 for elements 0-15 and s1 for 16-31.
func kLanes(isum *[8]int32, q *[32]int32, y []byte, s0, s1 int32) {
	y = y[:32]
	for j := range 8 {
		a, b := q[4*j:4*j+4], y[4*j:4*j+4]
		p := a[0]*int32(int8(b[0])) + a[1]*int32(int8(b[1])) + a[2]*int32(int8(b[2])) + a[3]*int32(int8(b[3]))
		if j < 4 {
			isum[j] += s0 * p
		} else {
			isum[j] += s1 * p
		}
	}
}

// kFMA is acc[j] = fma(d, float32(isum[j]), acc[j]) for the 8 lanes.
func kFMA(acc *[8]float32, d float32, isum *[8]int32) {
	for j := range acc {
		acc[j] = fma32(d, float32(isum[j]), acc[j])
	}
}

// scalesK4 decodes Q4_K/Q5_K's 12 scale bytes into 8 6-bit scales and 8
// 6-bit mins (ggml's get_scale_min_k4).
func scalesK4(s []byte) (sc, m [8]int32) {
	s = s[:12]
	for j := range 4 {
		sc[j] = int32(s[j] & 63)
		m[j] = int32(s[j+4] & 63)
		sc[j+4] = int32(s[j+8]&15 | (s[j]>>6)<<4)
		m[j+4] = int32(s[j+8]>>4 | (s[j+4]>>6)<<4)
	}
	return sc, m
}

// minsK4 is the Q4_K/Q5_K min sums: lane j (0-3) covers the sub-blocks 2j
// and 2j+1 (elements 64j to 64j+63), each min times its two bsums.
func minsK4(m *[8]int32, bs *[16]int32) (ms [4]int32) {
	for j := range ms {
		ms[j] = m[2*j]*(bs[4*j]+bs[4*j+1]) + m[2*j+1]*(bs[4*j+2]+bs[4*j+3])
	}
	return ms
}

func dotQ2KGeneric(n int, w, x []byte) float32 {
	var acc [8]float32
	var q [32]int32
	for i := range n / quant.QKK {
		wb := w[i*bytesQ2K:][:bytesQ2K]
		xb := x[i*bytesQ8K:]
		yd, y := q8K(xb)
		bs := q8KBsums(xb)
		sc := wb[0:16]
		d := yd * h16(wb[80:])
		dmin := -yd * h16(wb[82:])

		var ms [8]int32
		for j := range ms {
			ms[j] = int32(sc[2*j]>>4)*bs[2*j] + int32(sc[2*j+1]>>4)*bs[2*j+1]
		}
		for j := range acc {
			acc[j] = fma32(dmin, float32(ms[j]), acc[j])
		}

		var isum [8]int32
		for c := range 8 { // chunk c: bits 2(c%4) of qs[32(c/4):][:32]
			qs := wb[16+32*(c/4):][:32]
			shift := uint(2*c) & 7
			for l, v := range qs {
				q[l] = int32(v>>shift) & 3
			}
			kLanes(&isum, &q, y[32*c:], int32(sc[2*c]&15), int32(sc[2*c+1]&15))
		}
		kFMA(&acc, d, &isum)
	}
	return hsum8(&acc)
}

func dotQ3KGeneric(n int, w, x []byte) float32 {
	var acc [8]float32
	var q [32]int32
	for i := range n / quant.QKK {
		wb := w[i*bytesQ3K:][:bytesQ3K]
		yd, y := q8K(x[i*bytesQ8K:])
		hm := wb[0:32]
		s := wb[96:108]
		d := yd * h16(wb[108:])

		var sc [16]int32 // 6-bit scales minus 32
		for j := range 16 {
			lo := s[j%8] >> (4 * uint(j/8)) & 15
			hi := s[8+j%4] >> (2 * uint(j/4)) & 3
			sc[j] = int32(lo|hi<<4) - 32
		}

		var isum [8]int32
		for c := range 8 { // chunk c: bits 2(c%4) of qs, high bit c of hmask
			qs := wb[32+32*(c/4):][:32]
			shift, bit := uint(2*c)&7, uint(c)&7
			for l, v := range qs {
				q[l] = int32(v>>shift)&3 - 4 + 4*int32(hm[l]>>bit&1)
			}
			kLanes(&isum, &q, y[32*c:], sc[2*c], sc[2*c+1])
		}
		kFMA(&acc, d, &isum)
	}
	return hsum8(&acc)
}

func dotQ4KGeneric(n int, w, x []byte) float32 {
	var acc [8]float32
	var accm [4]float32
	var q [32]int32
	for i := range n / quant.QKK {
		wb := w[i*bytesQ4K:][:bytesQ4K]
		xb := x[i*bytesQ8K:]
		yd, y := q8K(xb)
		bs := q8KBsums(xb)
		d := yd * h16(wb[0:])
		dmin := -yd * h16(wb[2:])
		sc, m := scalesK4(wb[4:16])

		ms := minsK4(&m, &bs)
		for j := range accm {
			accm[j] = fma32(dmin, float32(ms[j]), accm[j])
		}

		var isum [8]int32
		for c := range 8 { // chunk c: low (even c) or high nibbles of qs[32(c/2):][:32]
			qs := wb[16+32*(c/2):][:32]
			shift := uint(4*c) & 4
			for l, v := range qs {
				q[l] = int32(v>>shift) & 15
			}
			kLanes(&isum, &q, y[32*c:], sc[c], sc[c])
		}
		kFMA(&acc, d, &isum)
	}
	return hsum8(&acc) + ((accm[0] + accm[2]) + (accm[1] + accm[3]))
}

func dotQ5KGeneric(n int, w, x []byte) float32 {
	var acc [8]float32
	var summs float32
	var q [32]int32
	for i := range n / quant.QKK {
		wb := w[i*bytesQ5K:][:bytesQ5K]
		xb := x[i*bytesQ8K:]
		yd, y := q8K(xb)
		bs := q8KBsums(xb)
		d := yd * h16(wb[0:])
		dmin := -yd * h16(wb[2:])
		sc, m := scalesK4(wb[4:16])
		qh := wb[16:48]

		ms := minsK4(&m, &bs)
		summs = fma32(dmin, float32(ms[0]+ms[1]+ms[2]+ms[3]), summs)

		var isum [8]int32
		for c := range 8 { // chunk c: nibbles as Q4_K, fifth bit c of qh
			qs := wb[48+32*(c/2):][:32]
			shift, bit := uint(4*c)&4, uint(c)&7
			for l, v := range qs {
				q[l] = int32(v>>shift)&15 | int32(qh[l]>>bit&1)<<4
			}
			kLanes(&isum, &q, y[32*c:], sc[c], sc[c])
		}
		kFMA(&acc, d, &isum)
	}
	return hsum8(&acc) + summs
}

func dotQ6KGeneric(n int, w, x []byte) float32 {
	var acc [8]float32
	var q [32]int32
	for i := range n / quant.QKK {
		wb := w[i*bytesQ6K:][:bytesQ6K]
		yd, y := q8K(x[i*bytesQ8K:])
		d := yd * h16(wb[208:])

		var isum [8]int32
		for c := range 8 { // chunk c = 4h+k: nibble k/2 of ql[64h+32(k%2):], bits 2k of qh[32h:]
			h, k := c/4, c%4
			ql := wb[64*h+32*(k%2):][:32]
			qh := wb[128+32*h:][:32]
			lshift, hshift := uint(4*(k/2))&7, uint(2*k)&7
			for l := range q {
				q[l] = int32(ql[l]>>lshift&15|(qh[l]>>hshift&3)<<4) - 32
			}
			kLanes(&isum, &q, y[32*c:], int32(int8(wb[192+2*c])), int32(int8(wb[192+2*c+1])))
		}
		kFMA(&acc, d, &isum)
	}
	return hsum8(&acc)
}
