package kernel

import (
	"encoding/binary"

	"github.com/slm-dev/slm/quant"
)

// The generic IQ4 dot products, the specification of every faster tier:
// IQ4_NL weights × Q8_0 activations and IQ4_XS weights × Q8_K activations
// (ggml's vec_dot_type for these types). A 4-bit index k stands for the
// int8 value quant.IQ4NLValues[k]; the integer products are exact.
//
// IQ4_NL (blocks of 32) follows ggml_vec_dot_iq4_nl_q8_0's AVX2 branch:
// blocks are taken in pairs, the first of a pair into the 8-lane
// accumulator acc1, the second into acc2; each block's 8 lane sums (lane l:
// elements 4l..4l+3, elements 0-15 being the low nibbles) are converted to
// float32 and fused-multiply-added with d = d_x·d_w (float32):
// acc[l] = fma(d, float32(isum[l]), acc[l]). At the end
// sumf = hsum8(acc1 + acc2) (lane-wise sum, then hsum_float_8's order) and
// an odd last block adds its whole integer sum as sumf = fma(d,
// float32(isum), sumf).
//
// IQ4_XS (super-blocks of 256 = 8 sub-blocks of 32) follows
// ggml_vec_dot_iq4_xs_q8_K's AVX2 branch, the K-quant lane structure of
// dot_k.go: per super-block the 8 int32 lanes hold Σ (ls_ib-32)·w·x over the
// elements e with (e mod 32)/4 == lane, then
// acc[l] = fma(d_w·d_x, float32(isum[l]), acc[l]); the result is hsum8(acc).
//
// Any weight bytes are valid (every nibble is a table index; |lane| < 2^24
// for IQ4_NL, < 2^25 for IQ4_XS, so the int32 sums and their float32
// conversions are exact); NaN or infinite fp16 scales propagate. Only
// n/32 (IQ4_NL) or n/256 (IQ4_XS) whole blocks are dotted.

func init() {
	registerDot(quant.IQ4_NL, quant.Q8_0, TierGeneric, dotIQ4NLGeneric)
	registerDot(quant.IQ4_XS, quant.Q8_K, TierGeneric, dotIQ4XSGeneric)
}

const (
	bytesIQ4NL = 18
	bytesIQ4XS = 136
)

// unpackIQ4 looks up a 32-element block's 16 bytes of nibbles: element
// j < 16 is the low nibble of qs[j], element j+16 the high one.
func unpackIQ4(q *[32]int32, qs []byte) {
	qs = qs[:16]
	for j, b := range qs {
		q[j] = int32(quant.IQ4NLValues[b&15])
		q[j+16] = int32(quant.IQ4NLValues[b>>4])
	}
}

func dotIQ4NLGeneric(n int, w, x []byte) float32 {
	var acc1, acc2 [8]float32
	var q [32]int32
	nb := n / 32
	b := 0
	for ; b+1 < nb; b += 2 {
		w0, x0 := w[18*b:][:36], x[34*b:][:68]
		unpackIQ4(&q, w0[2:])
		laneFMA(&acc1, h16(w0)*h16(x0), &q, x0[2:])
		unpackIQ4(&q, w0[20:])
		laneFMA(&acc2, h16(w0[18:])*h16(x0[34:]), &q, x0[36:])
	}
	for l := range acc1 {
		acc1[l] += acc2[l]
	}
	sumf := hsum8(&acc1)
	if b < nb {
		wb, xb := w[18*b:][:18], x[34*b:][:34]
		unpackIQ4(&q, wb[2:])
		var s int32
		for j := range 32 {
			s += q[j] * int32(int8(xb[2+j]))
		}
		sumf = fma32(h16(wb)*h16(xb), float32(s), sumf)
	}
	return sumf
}

// iq4XSScales decodes an IQ4_XS super-block's 8 sub-block scales minus 32.
func iq4XSScales(wb []byte) (ls [8]int32) {
	sh := binary.LittleEndian.Uint16(wb[2:])
	sl := wb[4:8]
	for ib := range ls {
		lo := int32(sl[ib/2]>>(4*uint(ib&1))) & 15
		hi := int32(sh>>(2*uint(ib))) & 3
		ls[ib] = lo | hi<<4 - 32
	}
	return ls
}

func dotIQ4XSGeneric(n int, w, x []byte) float32 {
	var acc [8]float32
	var q [32]int32
	for i := range n / quant.QKK {
		wb := w[i*bytesIQ4XS:][:bytesIQ4XS]
		yd, y := q8K(x[i*bytesQ8K:])
		ls := iq4XSScales(wb)
		var isum [8]int32
		for ib := range 8 {
			unpackIQ4(&q, wb[8+16*ib:])
			kLanes(&isum, &q, y[32*ib:], ls[ib], ls[ib])
		}
		kFMA(&acc, h16(wb)*yd, &isum)
	}
	return hsum8(&acc)
}
