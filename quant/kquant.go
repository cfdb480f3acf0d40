package quant

import "encoding/binary"

// K-quants: super-blocks of QKK = 256 elements split into sub-blocks of 16
// or 32, each sub-block with its own small integer scale (and min) that is
// multiplied by the super-block's fp16 d (and dmin). Little-endian fields.
//
//	block_q2_K (84 bytes)
//	  uint8 scales[16]   sub-block j (16 elements): low nibble scale, high nibble min
//	  uint8 qs[64]       2-bit quants
//	  half  d            scale of the scales
//	  half  dmin         scale of the mins
//	  value = (d*sc)*q - (dmin*m)
//
//	block_q3_K (110 bytes)
//	  uint8 hmask[32]    high (third) bit, inverted: set means no -4
//	  uint8 qs[64]       low 2 bits
//	  uint8 scales[12]   16 6-bit scales, biased by 32
//	  half  d
//	  value = (d*(sc-32)) * (q - (hbit ? 0 : 4))
//
//	block_q4_K (144 bytes)
//	  half  d
//	  half  dmin
//	  uint8 scales[12]   8 6-bit scales + 8 6-bit mins (see scaleMinK4)
//	  uint8 qs[128]      4-bit quants
//	  value = (d*sc)*q - (dmin*m)
//
//	block_q5_K (176 bytes)
//	  half  d
//	  half  dmin
//	  uint8 scales[12]   as Q4_K
//	  uint8 qh[32]       fifth bits
//	  uint8 qs[128]      low 4 bits
//	  value = (d*sc)*q - (dmin*m)
//
//	block_q6_K (210 bytes)
//	  uint8 ql[128]      low 4 bits
//	  uint8 qh[64]       high 2 bits
//	  int8  scales[16]   one per 16 elements
//	  half  d
//	  value = (d*sc) * (q-32)
//
//	block_q8_K (292 bytes; only used for activations)
//	  float32 d
//	  int8    qs[256]
//	  int16   bsums[16]  sum of each group of 16 qs
//	  value = d*q
//
// Bit placement, for element e of a super-block (h = e/128, r = e%128,
// k = r/32, l = r%32, c = e/64, s = e%64):
//
//	Q2_K, Q3_K: low bits (qs[32h+l] >> 2k) & 3; scale index e/16;
//	            Q3_K high bit: hmask[l] bit 4h+k
//	Q4_K, Q5_K: qs[32c + s%32], low nibble if s < 32 else high; scale/min
//	            index 2c + s/32; Q5_K fifth bit: qh[s%32] bit 2c + s/32
//	Q6_K:       ql[64h + 32(k&1) + l], low nibble if k < 2 else high;
//	            high bits (qh[32h+l] >> 2k) & 3; scale index e/16

const (
	bytesQ2_K = 84
	bytesQ3_K = 110
	bytesQ4_K = 144
	bytesQ5_K = 176
	bytesQ6_K = 210
	bytesQ8_K = 292
)

func dequantQ2_K(src []byte, dst []float32) {
	for i := 0; i+QKK <= len(dst); i += QKK {
		b := src[i/QKK*bytesQ2_K:][:bytesQ2_K]
		y := dst[i : i+QKK]
		scales := b[0:16]
		qs := b[16:80]
		d := f16At(b, 80)
		dmin := f16At(b, 82)
		for e := 0; e < QKK; e += 16 {
			sc := scales[e/16]
			dl := d * float32(sc&0x0f)
			ml := float32(dmin * float32(sc>>4)) // explicit rounding: no fusing into the subtraction
			h, k, l0 := e/128, (e%128)/32, e%32
			q := qs[32*h+l0 : 32*h+l0+16]
			shift := uint(2 * k)
			out := y[e : e+16]
			for l := range out {
				out[l] = float32(dl*float32((q[l]>>shift)&3)) - ml
			}
		}
	}
}

// q3Scale decodes the j-th 6-bit scale (0..63, still biased by 32) of Q3_K.
func q3Scale(s []byte, j int) int32 {
	var lo byte
	if j < 8 {
		lo = s[j] & 0x0f
	} else {
		lo = s[j-8] >> 4
	}
	hi := (s[8+j%4] >> uint(2*(j/4))) & 3
	return int32(lo | hi<<4)
}

func dequantQ3_K(src []byte, dst []float32) {
	for i := 0; i+QKK <= len(dst); i += QKK {
		b := src[i/QKK*bytesQ3_K:][:bytesQ3_K]
		y := dst[i : i+QKK]
		hmask := b[0:32]
		qs := b[32:96]
		scales := b[96:108]
		d := f16At(b, 108)
		for e := 0; e < QKK; e += 16 {
			dl := d * float32(q3Scale(scales, e/16)-32)
			h, k, l0 := e/128, (e%128)/32, e%32
			q := qs[32*h+l0 : 32*h+l0+16]
			hm := hmask[l0 : l0+16]
			shift := uint(2 * k)
			bit := byte(1) << uint(4*h+k)
			out := y[e : e+16]
			for l := range out {
				v := int32((q[l] >> shift) & 3)
				if hm[l]&bit == 0 {
					v -= 4
				}
				out[l] = dl * float32(v)
			}
		}
	}
}

// scaleMinK4 decodes the j-th (0..7) 6-bit scale and min of Q4_K/Q5_K.
func scaleMinK4(s []byte, j int) (sc, m byte) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&0x0f | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

func dequantQ4_K(src []byte, dst []float32) {
	for i := 0; i+QKK <= len(dst); i += QKK {
		b := src[i/QKK*bytesQ4_K:][:bytesQ4_K]
		y := dst[i : i+QKK]
		d := f16At(b, 0)
		dmin := f16At(b, 2)
		scales := b[4:16]
		qs := b[16:144]
		for c := 0; c < 4; c++ {
			sc, m := scaleMinK4(scales, 2*c)
			d1, m1 := d*float32(sc), float32(dmin*float32(m))
			sc, m = scaleMinK4(scales, 2*c+1)
			d2, m2 := d*float32(sc), float32(dmin*float32(m))
			q := qs[32*c : 32*c+32]
			lo := y[64*c : 64*c+32]
			hi := y[64*c+32 : 64*c+64]
			for l := range q {
				lo[l] = float32(d1*float32(q[l]&0x0f)) - m1
			}
			for l := range q {
				hi[l] = float32(d2*float32(q[l]>>4)) - m2
			}
		}
	}
}

func dequantQ5_K(src []byte, dst []float32) {
	for i := 0; i+QKK <= len(dst); i += QKK {
		b := src[i/QKK*bytesQ5_K:][:bytesQ5_K]
		y := dst[i : i+QKK]
		d := f16At(b, 0)
		dmin := f16At(b, 2)
		scales := b[4:16]
		qh := b[16:48]
		qs := b[48:176]
		for c := 0; c < 4; c++ {
			sc, m := scaleMinK4(scales, 2*c)
			d1, m1 := d*float32(sc), float32(dmin*float32(m))
			sc, m = scaleMinK4(scales, 2*c+1)
			d2, m2 := d*float32(sc), float32(dmin*float32(m))
			u1, u2 := byte(1)<<uint(2*c), byte(2)<<uint(2*c)
			q := qs[32*c : 32*c+32]
			lo := y[64*c : 64*c+32]
			hi := y[64*c+32 : 64*c+64]
			for l := range q {
				v := q[l] & 0x0f
				if qh[l]&u1 != 0 {
					v += 16
				}
				lo[l] = float32(d1*float32(v)) - m1
			}
			for l := range q {
				v := q[l] >> 4
				if qh[l]&u2 != 0 {
					v += 16
				}
				hi[l] = float32(d2*float32(v)) - m2
			}
		}
	}
}

func dequantQ6_K(src []byte, dst []float32) {
	for i := 0; i+QKK <= len(dst); i += QKK {
		b := src[i/QKK*bytesQ6_K:][:bytesQ6_K]
		y := dst[i : i+QKK]
		d := f16At(b, 208)
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			sc := b[192+8*h : 192+8*h+8]
			out := y[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(ql[l]&0x0f|(qh[l]&3)<<4) - 32
				q2 := int32(ql[l+32]&0x0f|((qh[l]>>2)&3)<<4) - 32
				q3 := int32(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				out[l] = d * float32(int8(sc[is])) * float32(q1)
				out[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				out[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				out[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
	}
}

func dequantQ8_K(src []byte, dst []float32) {
	for i := 0; i+QKK <= len(dst); i += QKK {
		b := src[i/QKK*bytesQ8_K:][:bytesQ8_K]
		y := dst[i : i+QKK]
		d := f32At(b, 0)
		for j, q := range b[4 : 4+QKK] {
			y[j] = d * float32(int8(q))
		}
	}
}

// putI16 stores a little-endian int16.
func putI16(b []byte, v int16) { binary.LittleEndian.PutUint16(b, uint16(v)) }
