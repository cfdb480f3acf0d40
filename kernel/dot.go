package kernel

import (
	"encoding/binary"
	"math"

	"github.com/slm-dev/slm/quant"
)

// The generic dot products: the specification of every faster tier.
//
// Quantized weights (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) are dotted with
// activations quantized once per product (Q8_0, or Q8_1 for the "_1" types
// whose min term needs the activation block sum), in integers, as ggml's
// AVX2 ggml_vec_dot_*_q8_* compute it: each block of 32 is split into 8
// lanes of 4 consecutive elements, each lane's integer sum is converted to
// float32 and fused-multiply-added with the block's scale
// d = d_w·d_x (float32) into that lane's accumulator; the 8 lanes are summed
// at the end in hsum_float_8's order. For the "_1" types the min terms
// m_w·s_x are summed separately (a scalar FMA chain) and added last.
//
// Float weights follow the routines llama.cpp runs on AVX2: F32 (× F32) and
// F16 (× F16 activations) as tinyBLAS does, one 8-lane FMA accumulator then
// hsum_float_8; BF16 (× BF16 activations) as ggml_vec_dot_bf16, four 8-lane
// accumulators over steps of 32, combined (c1+c3)+(c2+c4). Elements past the
// last whole 8 (32 for BF16) are summed in float64 as ggml's tails are.
//
// (llama.cpp runs one-token F16 products through ggml_vec_dot_f16 instead,
// four 8-lane accumulators over steps of 32: its one-token and batched
// results differ. We keep one order for every batch size, so that a
// sequence gives the same logits however it is split into Evals.)
//
// Precondition for the int8 dots: activation and Q8_0 weight quants lie in
// [-127, 127] (ggml's quantizers never produce -128 from finite input); the
// AVX2 kernels use vpmaddubsw's sign trick, which differs for -128·-128.

func init() {
	registerDot(quant.Q4_0, quant.Q8_0, TierGeneric, dotQ4_0Generic)
	registerDot(quant.Q5_0, quant.Q8_0, TierGeneric, dotQ5_0Generic)
	registerDot(quant.Q8_0, quant.Q8_0, TierGeneric, dotQ8_0Generic)
	registerDot(quant.Q4_1, quant.Q8_1, TierGeneric, dotQ4_1Generic)
	registerDot(quant.Q5_1, quant.Q8_1, TierGeneric, dotQ5_1Generic)
	registerDot(quant.F32, quant.F32, TierGeneric, dotF32Generic)
	registerDot(quant.F16, quant.F16, TierGeneric, dotF16Generic)
	registerDot(quant.BF16, quant.BF16, TierGeneric, dotBF16Generic)
}

func h16(b []byte) float32 { return quant.F16ToF32(binary.LittleEndian.Uint16(b)) }

// laneFMA adds one block's 8 lane sums, scaled by d, to acc.
func laneFMA(acc *[8]float32, d float32, w *[32]int32, x []byte) {
	x = x[:32]
	for l := range 8 {
		var s int32
		for k := 4 * l; k < 4*l+4; k++ {
			s += w[k] * int32(int8(x[k]))
		}
		acc[l] = fma32(d, float32(s), acc[l])
	}
}

// unpack4 spreads a 4-bit block's nibbles: element j < 16 is the low nibble
// of qs[j], element j+16 the high one. hi, if not nil, supplies each
// element's fifth bit (Q5 qh); off is subtracted.
func unpack4(q *[32]int32, qs []byte, qh []byte, off int32) {
	qs = qs[:16]
	var h uint32
	if qh != nil {
		h = binary.LittleEndian.Uint32(qh)
	}
	for j := range 16 {
		q[j] = int32(qs[j]&15) | int32(h>>j&1)<<4 - off
		q[j+16] = int32(qs[j]>>4) | int32(h>>(j+16)&1)<<4 - off
	}
}

func dotQ4_0Generic(n int, w, x []byte) float32 {
	var acc float32
	var q [32]int32
	for b := range n / 32 {
		wb, xb := w[18*b:18*b+18], x[34*b:34*b+34]
		unpack4(&q, wb[2:], nil, 8)
		var s int32
		for j := range 32 {
			s += q[j] * int32(int8(xb[2+j]))
		}
		acc = fma32(float32(s), h16(wb)*h16(xb), acc)
	}
	return acc
}

func dotQ5_0Generic(n int, w, x []byte) float32 {
	var acc [8]float32
	var q [32]int32
	for b := range n / 32 {
		wb, xb := w[22*b:22*b+22], x[34*b:34*b+34]
		unpack4(&q, wb[6:], wb[2:6], 16)
		laneFMA(&acc, h16(wb)*h16(xb), &q, xb[2:])
	}
	return hsum8(&acc)
}

func dotQ8_0Generic(n int, w, x []byte) float32 {
	var acc [8]float32
	var q [32]int32
	for b := range n / 32 {
		wb, xb := w[34*b:34*b+34], x[34*b:34*b+34]
		for j, v := range wb[2:34] {
			q[j] = int32(int8(v))
		}
		laneFMA(&acc, h16(wb)*h16(xb), &q, xb[2:])
	}
	return hsum8(&acc)
}

func dotQ4_1Generic(n int, w, x []byte) float32 {
	var acc [8]float32
	var q [32]int32
	var summs float32
	for b := range n / 32 {
		wb, xb := w[20*b:20*b+20], x[36*b:36*b+36]
		summs = fma32(h16(wb[2:]), h16(xb[2:]), summs)
		unpack4(&q, wb[4:], nil, 0)
		laneFMA(&acc, h16(wb)*h16(xb), &q, xb[4:])
	}
	return hsum8(&acc) + summs
}

func dotQ5_1Generic(n int, w, x []byte) float32 {
	var acc [8]float32
	var q [32]int32
	var summs float32
	for b := range n / 32 {
		wb, xb := w[24*b:24*b+24], x[36*b:36*b+36]
		summs = fma32(h16(wb[2:]), h16(xb[2:]), summs)
		unpack4(&q, wb[8:], wb[4:8], 0)
		laneFMA(&acc, h16(wb)*h16(xb), &q, xb[4:])
	}
	return hsum8(&acc) + summs
}

func f32At(b []byte, i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])) }

func dotF32Generic(n int, w, x []byte) float32 {
	var acc [8]float32
	m := n &^ 7
	for i := 0; i < m; i += 8 {
		for l := range 8 {
			acc[l] = fma32(f32At(w, i+l), f32At(x, i+l), acc[l])
		}
	}
	s := hsum8(&acc)
	if m == n {
		return s
	}
	t := float64(s)
	for i := m; i < n; i++ {
		t += float64(f32At(w, i) * f32At(x, i))
	}
	return float32(t)
}

func dotF16Generic(n int, w, x []byte) float32 {
	var acc [8]float32
	m := n &^ 7
	for i := 0; i < m; i += 8 {
		for l := range 8 {
			// fp16·fp16 is exact in float32, so the FMA is a plain add.
			acc[l] += float32(h16(w[2*(i+l):]) * h16(x[2*(i+l):]))
		}
	}
	s := hsum8(&acc)
	if m == n {
		return s
	}
	t := float64(s)
	for i := m; i < n; i++ {
		t += float64(h16(w[2*i:]) * h16(x[2*i:]))
	}
	return float32(t)
}

func b16(b []byte, i int) float32 { return quant.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:])) }

func dotBF16Generic(n int, w, x []byte) float32 {
	var c [4][8]float32
	m := n &^ 31
	for i := 0; i < m; i += 32 {
		for k := range 4 {
			for l := range 8 {
				j := i + 8*k + l
				c[k][l] += float32(b16(w, j) * b16(x, j)) // mul then add, never fused
			}
		}
	}
	var t float64
	if m > 0 {
		var v [8]float32
		for l := range 8 {
			v[l] = (c[0][l] + c[2][l]) + (c[1][l] + c[3][l])
		}
		t = float64(hsum8(&v))
	}
	for i := m; i < n; i++ {
		t += float64(b16(w, i) * b16(x, i))
	}
	return float32(t)
}
