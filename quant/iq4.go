package quant

import "encoding/binary"

// The 4-bit non-linear formats IQ4_NL and IQ4_XS (ggml-common.h). Their
// 4-bit indices select one of 16 non-uniformly spaced int8 values (IQ4NLValues,
// ggml's kvalues_iq4nl), denser near zero, which is then scaled:
//
//	block_iq4_nl (18 bytes, 32 values)
//	  half  d
//	  uint8 qs[16]       value j < 16: low nibble of qs[j]; j+16: high nibble
//	  value = d * IQ4NLValues[nibble]
//
//	block_iq4_xs (136 bytes, 256 values = 8 sub-blocks of 32)
//	  half   d
//	  uint16 scales_h    bits 2ib, 2ib+1: high 2 bits of sub-block ib's scale
//	  uint8  scales_l[4] sub-block ib's low 4 bits: nibble ib%2 of scales_l[ib/2]
//	  uint8  qs[128]     16 bytes per sub-block, nibbles as IQ4_NL
//	  ls = 6-bit scale (0..63)
//	  value = (d * float(ls-32)) * IQ4NLValues[nibble]
//
// Dequantization rounds as ggml's dequantize_row_iq4_nl/_xs: IQ4_XS's
// sub-block scale dl = d*(ls-32) is a float32 before it multiplies.

// IQ4NLValues is ggml's kvalues_iq4nl: the 16 values a 4-bit IQ4 index
// stands for, in increasing order.
var IQ4NLValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

const (
	bytesIQ4NL = 2 + QK/2
	bytesIQ4XS = 2 + 2 + QKK/64 + QKK/2
)

func dequantIQ4_NL(src []byte, dst []float32) {
	for i := 0; i+QK <= len(dst); i += QK {
		b := src[i/QK*bytesIQ4NL:][:bytesIQ4NL]
		y := dst[i : i+QK]
		d := f16At(b, 0)
		for j, q := range b[2:18] {
			y[j] = d * float32(IQ4NLValues[q&15])
			y[j+16] = d * float32(IQ4NLValues[q>>4])
		}
	}
}

// iq4XSScale is sub-block ib's 6-bit scale (0..63) of an IQ4_XS block.
func iq4XSScale(b []byte, ib int) int32 {
	sh := binary.LittleEndian.Uint16(b[2:])
	lo := b[4+ib/2] >> (4 * uint(ib&1)) & 15
	hi := byte(sh>>(2*uint(ib))) & 3
	return int32(lo | hi<<4)
}

func dequantIQ4_XS(src []byte, dst []float32) {
	for i := 0; i+QKK <= len(dst); i += QKK {
		b := src[i/QKK*bytesIQ4XS:][:bytesIQ4XS]
		d := f16At(b, 0)
		for ib := range QKK / 32 {
			dl := d * float32(iq4XSScale(b, ib)-32)
			y := dst[i+32*ib:][:32]
			for j, q := range b[8+16*ib:][:16] {
				y[j] = dl * float32(IQ4NLValues[q&15])
				y[j+16] = dl * float32(IQ4NLValues[q>>4])
			}
		}
	}
}

// bestIndexIQ4 is ggml's best_index_int8 on IQ4NLValues: the index of the
// value nearest x (ties to the upper one; x below/above the table gives
// 0/15; NaN gives 15), by binary search as in ggml.
func bestIndexIQ4(x float32) uint8 {
	v := &IQ4NLValues
	if x <= float32(v[0]) {
		return 0
	}
	if x >= float32(v[15]) {
		return 15
	}
	lo, hi := 0, 15
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if x < float32(v[mid]) {
			hi = mid
		} else {
			lo = mid
		}
	}
	if float32(x-float32(v[hi-1])) < float32(float32(v[hi])-x) {
		return uint8(hi - 1)
	}
	return uint8(hi)
}

// iq4NTry is the number of scale candidates either side of the first guess
// that llama-quantize's quantize_iq4_nl / quantize_iq4_xs search (ntry = 7,
// with or without an importance matrix).
const iq4NTry = 7

// iq4Block32 fits one block of 32 values (quantize_row_iq4_nl_impl's
// per-block part with ntry = 7): the first guess d = max/127 (max the value
// of largest magnitude, so that it maps to -127), then the 15 candidate
// inverse scales (itry-127)/max for itry in -7..7; each assigns every value
// its nearest table entry and the weighted least-squares scale
// sumqx/sumq2 of the best candidate (largest sumqx²/sumq2) is returned.
// L receives the first guess's indices. weight must be filled.
func iq4Block32(xb, weight []float32, L []uint8) float32 {
	xb, weight, L = xb[:32], weight[:32], L[:32]
	var amax, maxv float32
	for _, v := range xb {
		if ax := abs32(v); ax > amax {
			amax, maxv = ax, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	v0 := float32(IQ4NLValues[0])
	d := -maxv / v0
	id := 1 / d
	var sumqx, sumq2 float32
	for j, x := range xb {
		l := bestIndexIQ4(float32(id * x))
		L[j] = l
		q, w := float32(IQ4NLValues[l]), weight[j]
		sumqx += float32(float32(w*q) * x)
		sumq2 += float32(float32(w*q) * q)
	}
	d = 0
	if sumq2 > 0 {
		d = sumqx / sumq2
	}
	best := d * sumqx
	for itry := -iq4NTry; itry <= iq4NTry; itry++ {
		id = float32(itry+int(IQ4NLValues[0])) / maxv
		sumqx, sumq2 = 0, 0
		for j, x := range xb {
			q, w := float32(IQ4NLValues[bestIndexIQ4(float32(id*x))]), weight[j]
			sumqx += float32(float32(w*q) * x)
			sumq2 += float32(float32(w*q) * q)
		}
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			d = sumqx / sumq2
			best = d * sumqx
		}
	}
	return d
}

// iq4Weights fills weight for the block xb: qw·sqrt(sigma2 + x²) with
// importance weights qw, else x².
func iq4Weights(weight, xb, qw []float32, sigma2 float32) {
	for j, x := range xb {
		if qw != nil {
			weight[j] = float32(qw[j] * sqrt32(sigma2+float32(x*x)))
		} else {
			weight[j] = float32(x * x)
		}
	}
}

// iq4Sigma2 is 2·Σx²/n over a (super-)block, as ggml computes it.
func iq4Sigma2(x []float32) float32 {
	return sumSquares(x) * (2 / float32(len(x)))
}

func packIQ4(qs []byte, L []uint8) {
	for j := range 16 {
		qs[j] = L[j] | L[j+16]<<4
	}
}

// QuantizeIQ4_NLRef encodes src as IQ4_NL as llama-quantize does without an
// importance matrix (ggml's quantize_iq4_nl with quant_weights NULL, ntry 7;
// not quantize_row_iq4_nl_ref, whose ntry is -1): per block of 32 the best
// scale d of iq4Block32 with weights x², stored as fp16, and each value's
// nearest table index for 1/d (the float32 d, not its fp16 rounding).
func QuantizeIQ4_NLRef(src []float32, dst []byte) { quantIQ4_NLWeighted(src, dst, nil) }

func quantIQ4_NLWeighted(src []float32, dst []byte, qw []float32) {
	var (
		weight [QK]float32
		L      [QK]uint8
	)
	for i := 0; i+QK <= len(src); i += QK {
		xb := src[i : i+QK]
		b := dst[i/QK*bytesIQ4NL:][:bytesIQ4NL]
		var w []float32
		if qw != nil {
			w = qw[i:][:QK]
		}
		iq4Weights(weight[:], xb, w, iq4Sigma2(xb))
		d := iq4Block32(xb, weight[:], L[:])
		putF16(b, 0, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for j, x := range xb {
			L[j] = bestIndexIQ4(float32(id * x))
		}
		packIQ4(b[2:18], L[:])
	}
}

// QuantizeIQ4_XSRef encodes src as IQ4_XS as llama-quantize does without an
// importance matrix (ggml's quantize_iq4_xs, which its quantize_row_iq4_xs_ref
// also calls): each sub-block of 32 gets iq4Block32's scale s_ib; the
// super-block scale is d = -s_max/32 (s_max the s_ib of largest magnitude),
// stored as fp16; each sub-block's 6-bit scale is
// l = clamp(nearest_int(s_ib/d), -32, 31) + 32 and its values the nearest
// table indices for 1/(d·(l-32)), with the float32 d.
func QuantizeIQ4_XSRef(src []float32, dst []byte) { quantIQ4_XSWeighted(src, dst, nil) }

func quantIQ4_XSWeighted(src []float32, dst []byte, qw []float32) {
	var (
		weight [32]float32
		L      [QKK]uint8
		scales [QKK / 32]float32
	)
	for i := 0; i+QKK <= len(src); i += QKK {
		x := src[i : i+QKK]
		b := dst[i/QKK*bytesIQ4XS:][:bytesIQ4XS]
		sigma2 := iq4Sigma2(x)
		var maxScale, amaxScale float32
		for ib := range QKK / 32 {
			xb := x[32*ib:][:32]
			var w []float32
			if qw != nil {
				w = qw[i+32*ib:][:32]
			}
			iq4Weights(weight[:], xb, w, sigma2)
			s := iq4Block32(xb, weight[:], L[32*ib:])
			scales[ib] = s
			if as := abs32(s); as > amaxScale {
				amaxScale, maxScale = as, s
			}
		}
		d := -maxScale / 32
		putF16(b, 0, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var sh uint16
		clear(b[4:8])
		for ib := range QKK / 32 {
			l := clampI32(nearestInt(float32(id*scales[ib])), -32, 31)
			dl := d * float32(l)
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			for j, v := range x[32*ib:][:32] {
				L[32*ib+j] = bestIndexIQ4(float32(idl * v))
			}
			l += 32
			b[4+ib/2] |= byte(l&15) << (4 * uint(ib&1))
			sh |= uint16(l>>4) << (2 * uint(ib))
		}
		binary.LittleEndian.PutUint16(b[2:], sh)
		for ib := range QKK / 32 {
			packIQ4(b[8+16*ib:][:16], L[32*ib:][:32])
		}
	}
}
