package quant

import (
	"encoding/binary"
	"math"
)

// The simple formats: blocks of QK = 32 elements with one fp16 scale (and
// for the "_1" variants an fp16 offset). All multi-byte fields are
// little-endian; "half" is IEEE binary16.
//
//	block_q4_0 (18 bytes)       block_q4_1 (20 bytes)
//	  half  d                     half  d
//	  uint8 qs[16]                half  m
//	                              uint8 qs[16]
//
//	block_q5_0 (22 bytes)       block_q5_1 (24 bytes)
//	  half  d                     half  d
//	  uint8 qh[4]                 half  m
//	  uint8 qs[16]                uint8 qh[4]
//	                              uint8 qs[16]
//
//	block_q8_0 (34 bytes)       block_q8_1 (36 bytes)
//	  half  d                     half  d
//	  int8  qs[32]                half  s   (= d * sum(qs))
//	                              int8  qs[32]
//
// Element j < 16 of a 4/5-bit block lives in the low nibble of qs[j], element
// j+16 in the high nibble of qs[j]. For Q5, bit j of the little-endian uint32
// qh is the fifth bit of element j (j = 0..31). Values:
//
//	Q4_0: (q-8)*d    Q4_1: q*d + m    Q5_0: (q-16)*d    Q5_1: q*d + m
//	Q8_0, Q8_1: q*d
//
// Every product is rounded to float32 before the addition, as in ggml's C
// (Go would otherwise be allowed to fuse a*b+c).

const (
	bytesQ4_0 = 2 + QK/2
	bytesQ4_1 = 4 + QK/2
	bytesQ5_0 = 6 + QK/2
	bytesQ5_1 = 8 + QK/2
	bytesQ8_0 = 2 + QK
	bytesQ8_1 = 4 + QK
)

func dequantQ4_0(src []byte, dst []float32) {
	for i := 0; i+QK <= len(dst); i += QK {
		b := src[i/QK*bytesQ4_0:][:bytesQ4_0]
		y := dst[i : i+QK]
		d := f16At(b, 0)
		qs := b[2:18]
		for j, q := range qs {
			y[j] = float32(int32(q&0x0f)-8) * d
			y[j+16] = float32(int32(q>>4)-8) * d
		}
	}
}

func dequantQ4_1(src []byte, dst []float32) {
	for i := 0; i+QK <= len(dst); i += QK {
		b := src[i/QK*bytesQ4_1:][:bytesQ4_1]
		y := dst[i : i+QK]
		d := f16At(b, 0)
		m := f16At(b, 2)
		qs := b[4:20]
		for j, q := range qs {
			y[j] = float32(float32(q&0x0f)*d) + m
			y[j+16] = float32(float32(q>>4)*d) + m
		}
	}
}

func dequantQ5_0(src []byte, dst []float32) {
	for i := 0; i+QK <= len(dst); i += QK {
		b := src[i/QK*bytesQ5_0:][:bytesQ5_0]
		y := dst[i : i+QK]
		d := f16At(b, 0)
		qh := binary.LittleEndian.Uint32(b[2:])
		qs := b[6:22]
		for j, q := range qs {
			hi0 := (int32(qh>>uint(j)) & 1) << 4
			hi1 := (int32(qh>>uint(j+16)) & 1) << 4
			y[j] = float32((int32(q&0x0f)|hi0)-16) * d
			y[j+16] = float32((int32(q>>4)|hi1)-16) * d
		}
	}
}

func dequantQ5_1(src []byte, dst []float32) {
	for i := 0; i+QK <= len(dst); i += QK {
		b := src[i/QK*bytesQ5_1:][:bytesQ5_1]
		y := dst[i : i+QK]
		d := f16At(b, 0)
		m := f16At(b, 2)
		qh := binary.LittleEndian.Uint32(b[4:])
		qs := b[8:24]
		for j, q := range qs {
			hi0 := (int32(qh>>uint(j)) & 1) << 4
			hi1 := (int32(qh>>uint(j+16)) & 1) << 4
			y[j] = float32(float32(int32(q&0x0f)|hi0)*d) + m
			y[j+16] = float32(float32(int32(q>>4)|hi1)*d) + m
		}
	}
}

func dequantQ8_0(src []byte, dst []float32) {
	for i := 0; i+QK <= len(dst); i += QK {
		b := src[i/QK*bytesQ8_0:][:bytesQ8_0]
		y := dst[i : i+QK]
		d := f16At(b, 0)
		for j, q := range b[2:34] {
			y[j] = float32(int8(q)) * d
		}
	}
}

// dequantQ8_1 ignores s: ggml has no Q8_1 to_float, q*d is the natural
// decoding.
func dequantQ8_1(src []byte, dst []float32) {
	for i := 0; i+QK <= len(dst); i += QK {
		b := src[i/QK*bytesQ8_1:][:bytesQ8_1]
		y := dst[i : i+QK]
		d := f16At(b, 0)
		for j, q := range b[4:36] {
			y[j] = float32(int8(q)) * d
		}
	}
}

// ---------------------------------------------------------------------------
// Reference weight quantizers (ggml's quantize_row_<type>_ref). These are the
// deterministic encoders llama-quantize uses for these types when no
// importance matrix is given, so a file written with them is byte-identical.
// They panic if len(src) is not a multiple of QK or dst is too short.

func checkQuant(name string, src []float32, dst []byte, blockElems, blockBytes int) {
	if len(src)%blockElems != 0 {
		panic("quant: " + name + ": source length is not a multiple of the block size")
	}
	if len(dst) < len(src)/blockElems*blockBytes {
		panic("quant: " + name + ": destination too short")
	}
}

// absMaxSigned returns the first element of largest magnitude (0 for an
// all-zero block): ggml's "if (amax < fabsf(v)) { amax = fabsf(v); max = v; }".
func absMaxSigned(x []float32) float32 {
	var amax, max float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, max = a, v
		}
	}
	return max
}

// minMax is ggml's min/max scan starting from +FLT_MAX / -FLT_MAX.
func minMax(x []float32) (min, max float32) {
	min, max = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < min {
			min = v
		}
		if v > max {
			max = v
		}
	}
	return min, max
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// truncInt converts like C's float-to-integer cast (toward zero) for values in
// range; out-of-range values (only reachable with NaN/Inf input) give an
// unspecified but harmless result.
func truncInt(v float32) int32 {
	if !(v > -2147483648 && v < 2147483648) {
		return 0
	}
	return int32(v)
}

// QuantizeQ4_0Ref encodes src as Q4_0 (quantize_row_q4_0_ref): d = max/-8
// where max is the element of largest magnitude, q = min(15, trunc(x/d + 8.5)).
func QuantizeQ4_0Ref(src []float32, dst []byte) {
	checkQuant("Q4_0", src, dst, QK, bytesQ4_0)
	for i := 0; i+QK <= len(src); i += QK {
		x := src[i : i+QK]
		b := dst[i/QK*bytesQ4_0:][:bytesQ4_0]
		d := absMaxSigned(x) / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(b, F32ToF16(d))
		for j := 0; j < QK/2; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+QK/2] * id)
			q0 := min(15, int8(truncInt(x0+8.5)))
			q1 := min(15, int8(truncInt(x1+8.5)))
			b[2+j] = uint8(q0) | uint8(q1)<<4
		}
	}
}

// QuantizeQ4_1Ref encodes src as Q4_1 (quantize_row_q4_1_ref): m = min,
// d = (max-min)/15, q = min(15, trunc((x-m)/d + 0.5)).
func QuantizeQ4_1Ref(src []float32, dst []byte) {
	checkQuant("Q4_1", src, dst, QK, bytesQ4_1)
	for i := 0; i+QK <= len(src); i += QK {
		x := src[i : i+QK]
		b := dst[i/QK*bytesQ4_1:][:bytesQ4_1]
		lo, hi := minMax(x)
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(b, F32ToF16(d))
		binary.LittleEndian.PutUint16(b[2:], F32ToF16(lo))
		for j := 0; j < QK/2; j++ {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[j+QK/2] - lo) * id)
			q0 := min(15, int8(truncInt(x0+0.5)))
			q1 := min(15, int8(truncInt(x1+0.5)))
			b[4+j] = uint8(q0) | uint8(q1)<<4
		}
	}
}

// QuantizeQ5_0Ref encodes src as Q5_0 (quantize_row_q5_0_ref): d = max/-16,
// q = min(31, trunc(x/d + 16.5)).
func QuantizeQ5_0Ref(src []float32, dst []byte) {
	checkQuant("Q5_0", src, dst, QK, bytesQ5_0)
	for i := 0; i+QK <= len(src); i += QK {
		x := src[i : i+QK]
		b := dst[i/QK*bytesQ5_0:][:bytesQ5_0]
		d := absMaxSigned(x) / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(b, F32ToF16(d))
		var qh uint32
		for j := 0; j < QK/2; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+QK/2] * id)
			q0 := uint8(min(31, int8(truncInt(x0+16.5))))
			q1 := uint8(min(31, int8(truncInt(x1+16.5))))
			b[6+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= (uint32(q0&0x10) >> 4) << j
			qh |= (uint32(q1&0x10) >> 4) << (j + QK/2)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

// QuantizeQ5_1Ref encodes src as Q5_1 (quantize_row_q5_1_ref): m = min,
// d = (max-min)/31, q = trunc((x-m)/d + 0.5) (no clamp, as in ggml).
func QuantizeQ5_1Ref(src []float32, dst []byte) {
	checkQuant("Q5_1", src, dst, QK, bytesQ5_1)
	for i := 0; i+QK <= len(src); i += QK {
		x := src[i : i+QK]
		b := dst[i/QK*bytesQ5_1:][:bytesQ5_1]
		lo, hi := minMax(x)
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(b, F32ToF16(d))
		binary.LittleEndian.PutUint16(b[2:], F32ToF16(lo))
		var qh uint32
		for j := 0; j < QK/2; j++ {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[j+QK/2] - lo) * id)
			q0 := uint8(truncInt(x0 + 0.5))
			q1 := uint8(truncInt(x1 + 0.5))
			b[8+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= (uint32(q0&0x10) >> 4) << j
			qh |= (uint32(q1&0x10) >> 4) << (j + QK/2)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// QuantizeQ8_0Ref encodes src as Q8_0 the way ggml writes Q8_0 weights
// (quantize_row_q8_0_ref): d = amax/127, id = 1/d, q = roundf(x*id) (ties
// away from zero). Activations are quantized differently, see QuantizeQ8_0.
func QuantizeQ8_0Ref(src []float32, dst []byte) {
	checkQuant("Q8_0", src, dst, QK, bytesQ8_0)
	for i := 0; i+QK <= len(src); i += QK {
		x := src[i : i+QK]
		b := dst[i/QK*bytesQ8_0:][:bytesQ8_0]
		var amax float32
		for _, v := range x {
			if a := abs32(v); a > amax {
				amax = a
			}
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(b, F32ToF16(d))
		for j, v := range x {
			b[2+j] = uint8(int8(truncInt(float32(math.Round(float64(v * id))))))
		}
	}
}
