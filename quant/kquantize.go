package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// K-quant weight quantizers: ggml's quantize_row_q{2,3,4,5,6}_K_ref (what
// llama-quantize writes when it has no importance matrix) and the
// importance-weighted quantize_row_q*_K_impl (what it writes with one).
// Block layouts are documented in kquant.go.
//
// Bit-exactness with ggml's C: everything is computed in float32 in the
// order of the C expressions (a*b*c is (a*b)*c, an int operand is converted
// to float first). Each product that is later added to or subtracted from
// something is rounded explicitly with float32(...) so the Go compiler cannot
// fuse it into an FMA (it may on arm64, ppc64, s390x, riscv64 and
// GOAMD64=v3): llama-quantize's x86-64 output, which the tests compare
// against, is the unfused result. nearest_int is nearestInt (activation.go);
// its argument is rounded explicitly too.

// groupMaxEps is ggml's GROUP_MAX_EPS: groups whose largest magnitude is
// below it count as all zero.
const groupMaxEps = float32(1e-15)

// sqrt32 is sqrtf (the float64 square root of a float32 rounds correctly).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

func clampI32(v, lo, hi int32) int32 { return max(lo, min(hi, v)) }

// putF16 stores fp16(f) little-endian at b[off:] and returns the float32
// value it decodes to, which is what ggml computes with afterwards.
func putF16(b []byte, off int, f float32) float32 {
	h := F32ToF16(f)
	binary.LittleEndian.PutUint16(b[off:], h)
	return F16ToF32(h)
}

// ---------------------------------------------------------------------------
// Helpers (ggml-quants.c: make_qx_quants, make_q3_quants, make_qkx2_quants,
// make_qkx3_quants, make_qp_quants).

// makeQXQuants is make_qx_quants(n, nmax, x, L, rmse_type=1, qw): a signed
// scale searched over 19 candidates, minimising the weighted squared error
// with weights qw (x*x when qw is nil). L receives l+nmax in [0, 2*nmax).
func makeQXQuants(nmax int32, x []float32, L []int8, qw []float32) float32 {
	n := len(x)
	L = L[:n]
	var maxv, amax float32
	for _, v := range x {
		if ax := abs32(v); ax > amax {
			amax, maxv = ax, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	fnmax := float32(nmax)
	weight := func(i int) float32 {
		if qw != nil {
			return qw[i]
		}
		return x[i] * x[i]
	}
	iscale := -fnmax / maxv
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampI32(nearestInt(float32(iscale*v)), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w, fl := weight(i), float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := scale * sumlx
	for is := int32(-9); is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -float32(fnmax+float32(float32(0.1)*float32(is))) / maxv
		sumlx, suml2 = 0, 0
		for i, v := range x {
			l := clampI32(nearestInt(float32(iscale*v)), -nmax, nmax-1)
			w, fl := weight(i), float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i, v := range x {
				L[i] = int8(nmax + clampI32(nearestInt(float32(iscale*v)), -nmax, nmax-1))
			}
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// makeQ3Quants is make_q3_quants(n, nmax, x, L, do_rmse=true): a start from
// the absolute maximum refined by up to five rounds of coordinate descent on
// the x^2-weighted error. L receives l+nmax.
func makeQ3Quants(nmax int32, x []float32, L []int8) float32 {
	n := len(x)
	L = L[:n]
	var maxv, amax float32
	for _, v := range x {
		if ax := abs32(v); ax > amax {
			amax, maxv = ax, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	iscale := -float32(nmax) / maxv
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampI32(nearestInt(float32(iscale*v)), -nmax, nmax-1)
		L[i] = int8(l)
		w, fl := v*v, float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i, v := range x {
			w := v * v
			fl := float32(L[i])
			slx := sumlx - float32(float32(w*v)*fl)
			if slx > 0 {
				sl2 := suml2 - float32(float32(w*fl)*fl)
				newL := clampI32(nearestInt(float32(v*sl2)/slx), -nmax, nmax-1)
				if newL != int32(L[i]) {
					fn := float32(newL)
					slx += float32(float32(w*v) * fn)
					sl2 += float32(float32(w*fn) * fn)
					if sl2 > 0 && float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = int8(newL)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range L {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQKX2Quants is make_qkx2_quants: an asymmetric fit x ~ scale*L - theMin
// with L in [0, nmax], trying nstep+1 scales (rmin + rdelta*is + nmax)/range
// and solving the weighted least squares for scale and min at each. It
// returns the scale and the (non-negative) min to subtract. Laux is scratch.
func makeQKX2Quants(nmax int32, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMad bool) (scale, theMin float32) {
	return searchScaleMin(nmax, x, weights, L, Laux, rmin, rdelta, nstep, useMad, false)
}

// searchScaleMin is the search behind make_qkx2_quants and make_qkx3_quants;
// clampFirst selects qkx3's rounding of the candidate quants.
func searchScaleMin(nmax int32, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMad, clampFirst bool) (scale, theMin float32) {
	n := len(x)
	L, Laux, weights = L[:n], Laux[:n], weights[:n]
	minv, maxv := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < minv {
			minv = x[i]
		}
		if x[i] > maxv {
			maxv = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if minv > 0 {
		minv = 0
	}
	if maxv == minv {
		clear(L)
		return 0, -minv
	}
	fnmax := float32(nmax)
	iscale := fnmax / (maxv - minv)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		l := clampI32(nearestInt(float32(iscale*(v-minv))), 0, nmax)
		L[i] = uint8(l)
		diff := float32(float32(scale*float32(L[i]))+minv) - v
		if useMad {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		bestErr += float32(weights[i] * diff)
	}
	if nstep < 1 {
		return scale, -minv
	}
	for is := 0; is <= nstep; is++ {
		iscale = float32(float32(rmin+float32(rdelta*float32(is)))+fnmax) / (maxv - minv)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			var l int32
			if q := float32(iscale * (v - minv)); !clampFirst {
				l = clampI32(nearestInt(q), 0, nmax)
			} else if q > 0 {
				if !(q < fnmax) { // MIN(q, nmax)
					q = fnmax
				}
				l = nearestInt(q)
			}
			Laux[i] = uint8(l)
			w, fl := weights[i], float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(float32(w*fl) * fl)
			sumXL += float32(float32(w*fl) * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curErr float32
			for i, v := range x {
				diff := float32(float32(thisScale*float32(Laux[i]))+thisMin) - v
				if useMad {
					diff = abs32(diff)
				} else {
					diff = diff * diff
				}
				curErr += float32(weights[i] * diff)
			}
			if curErr < bestErr {
				copy(L, Laux)
				bestErr = curErr
				scale, minv = thisScale, thisMin
			}
		}
	}
	return scale, -minv
}

// makeQKX3Quants is make_qkx3_quants with explicit weights: the same search
// as makeQKX2Quants, with the candidate quants clamped before rounding so that
// a degenerate min cannot push nearest_int out of range.
func makeQKX3Quants(nmax int32, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMad bool) (scale, theMin float32) {
	return searchScaleMin(nmax, x, weights, L, Laux, rmin, rdelta, nstep, useMad, true)
}

// makeQPQuants is make_qp_quants: a non-negative scale for the (non-negative)
// x with L in [0, nmax], chosen among 9 candidates by weighted error and then
// refined by coordinate descent. Used to quantize sub-block scales and mins.
func makeQPQuants(nmax int32, x []float32, L []uint8, qw []float32) float32 {
	n := len(x)
	L = L[:n]
	var maxv float32
	for _, v := range x {
		if !(maxv > v) { // MAX(max, x[i])
			maxv = v
		}
	}
	if maxv < groupMaxEps {
		clear(L)
		return 0
	}
	fnmax := float32(nmax)
	iscale := fnmax / maxv
	for i, v := range x {
		L[i] = uint8(nearestInt(float32(iscale * v)))
	}
	scale := 1 / iscale
	var bestMse float32
	for i, v := range x {
		diff := v - float32(scale*float32(L[i]))
		bestMse += float32(float32(qw[i]*diff) * diff)
	}
	for is := int32(-4); is <= 4; is++ {
		if is == 0 {
			continue
		}
		iscaleIs := float32(float32(float32(0.1)*float32(is))+fnmax) / maxv
		scaleIs := 1 / iscaleIs
		var mse float32
		for i, v := range x {
			l := min(nmax, nearestInt(float32(iscaleIs*v)))
			diff := v - float32(scaleIs*float32(l))
			mse += float32(float32(qw[i]*diff) * diff)
		}
		if mse < bestMse {
			bestMse = mse
			iscale = iscaleIs
		}
	}
	var sumlx, suml2 float32
	for i, v := range x {
		l := min(nmax, nearestInt(float32(iscale*v)))
		L[i] = uint8(l)
		w, fl := qw[i], float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i, v := range x {
			w, fl := qw[i], float32(L[i])
			slx := sumlx - float32(float32(w*v)*fl)
			sl2 := suml2 - float32(float32(w*fl)*fl)
			if slx > 0 && sl2 > 0 {
				newL := min(nmax, nearestInt(float32(v*sl2)/slx))
				if newL != int32(L[i]) {
					fn := float32(newL)
					slx += float32(float32(w*v) * fn)
					sl2 += float32(float32(w*fn) * fn)
					if float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = uint8(newL)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// ---------------------------------------------------------------------------
// Shared block packing.

// packQ2Q3 packs 256 2-bit values: byte 32h+l holds elements 128h+l+32k at
// bits 2k.
func packQ2Q3(qs []byte, L *[QKK]uint8) {
	for j := 0; j < QKK; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// putQ3Scale stores the j-th 6-bit (biased) Q3_K scale l; scales must start
// zeroed and be filled in order j = 0..15.
func putQ3Scale(s []byte, j int, l int32) {
	if j < 8 {
		s[j] = byte(l & 0x0f)
	} else {
		s[j-8] |= byte((l & 0x0f) << 4)
	}
	l >>= 4
	s[j%4+8] |= byte(l << (2 * (j / 4)))
}

// q3Finish requantizes a Q3_K block against its stored scales (groups with a
// zero scale keep the quants already in L) and packs hmask and qs.
func q3Finish(x []float32, b []byte, L *[QKK]int8) {
	scales := b[96:108]
	d := f16At(b, 108)
	for j := 0; j < QKK/16; j++ {
		dl := d * float32(int8(q3Scale(scales, j)-32))
		if dl == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := clampI32(nearestInt(x[16*j+ii]/dl), -4, 3)
			L[16*j+ii] = int8(l + 4)
		}
	}
	hmask := b[0:32]
	clear(hmask)
	var U [QKK]uint8
	m, hm := 0, uint8(1)
	for j := 0; j < QKK; j++ {
		v := L[j]
		if v > 3 {
			hmask[m] |= hm
			v -= 4
		}
		U[j] = uint8(v)
		if m++; m == QKK/8 {
			m, hm = 0, hm<<1
		}
	}
	packQ2Q3(b[32:96], &U)
}

// putScaleMinK4 stores the j-th 6-bit scale and min of Q4_K/Q5_K as ggml
// does (entries must be written in order j = 0..7).
func putScaleMinK4(s []byte, j int, ls, lm uint8) {
	if j < 4 {
		s[j] = ls
		s[j+4] = lm
		return
	}
	s[j+4] = ls&0x0f | (lm&0x0f)<<4
	s[j-4] |= (ls >> 4) << 6
	s[j] |= (lm >> 4) << 6
}

// q45Requant requantizes a Q4_K/Q5_K block (d, dmin at b[0:4], scales at
// b[4:16]) into L with values in [0, nmax]; groups with a zero scale keep L.
func q45Requant(x []float32, b []byte, L *[QKK]uint8, nmax int32) {
	d, dmin := f16At(b, 0), f16At(b, 2)
	scales := b[4:16]
	for j := 0; j < QKK/32; j++ {
		sc, m := scaleMinK4(scales, j)
		dl := d * float32(sc)
		if dl == 0 {
			continue
		}
		dm := float32(dmin * float32(m))
		for ii := 0; ii < 32; ii++ {
			L[32*j+ii] = uint8(clampI32(nearestInt((x[32*j+ii]+dm)/dl), 0, nmax))
		}
	}
}

func packQ4K(qs []byte, L *[QKK]uint8) {
	for j := 0; j < QKK; j += 64 {
		q := qs[j/2 : j/2+32]
		for l := range q {
			q[l] = L[j+l] | L[j+l+32]<<4
		}
	}
}

func packQ5K(qh, ql []byte, L *[QKK]uint8) {
	clear(qh[:32])
	m1, m2 := uint8(1), uint8(2)
	for n := 0; n < QKK; n += 64 {
		q := ql[n/2 : n/2+32]
		for j := range q {
			l1, l2 := L[n+j], L[n+j+32]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			q[j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
	}
}

// sumSquares is ggml's "for (...) sum += x[j]*x[j]" in float32.
func sumSquares(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s
}

// ---------------------------------------------------------------------------
// Reference quantizers (no importance matrix). Each panics if len(src) is not
// a multiple of QKK or dst is too short.

// QuantizeQ2_KRef encodes src as Q2_K (quantize_row_q2_K_ref): per 16-value
// group an |x|-weighted min/scale fit (make_qkx2_quants), 4-bit scales and
// mins relative to the block maxima, then a requantization against them.
func QuantizeQ2_KRef(src []float32, dst []byte) {
	checkQuant("Q2_K", src, dst, QKK, bytesQ2_K)
	var (
		L              [QKK]uint8
		Laux           [16]uint8
		weights        [16]float32
		mins, scales   [QKK / 16]float32
		maxScale, maxM float32
	)
	for i := 0; i+QKK <= len(src); i += QKK {
		x := src[i : i+QKK]
		b := dst[i/QKK*bytesQ2_K:][:bytesQ2_K]
		maxScale, maxM = 0, 0
		for j := 0; j < QKK/16; j++ {
			xs := x[16*j : 16*j+16]
			for l, v := range xs {
				weights[l] = abs32(v)
			}
			scales[j], mins[j] = makeQKX2Quants(3, xs, weights[:], L[16*j:16*j+16], Laux[:], -0.5, 0.1, 15, true)
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxM {
				maxM = mins[j]
			}
		}
		sc := b[0:16]
		if maxScale > 0 {
			iscale := 15 / maxScale
			for j := range sc {
				sc[j] = uint8(nearestInt(float32(iscale * scales[j])))
			}
			putF16(b, 80, maxScale/15)
		} else {
			clear(sc)
			putF16(b, 80, 0)
		}
		if maxM > 0 {
			iscale := 15 / maxM
			for j := range sc {
				sc[j] |= uint8(nearestInt(float32(iscale*mins[j])) << 4)
			}
			putF16(b, 82, maxM/15)
		} else {
			putF16(b, 82, 0)
		}
		q2Finish(x, b, &L)
	}
}

// q2Finish requantizes a Q2_K block against its stored scales and mins
// (groups with a zero scale keep L) and packs qs.
func q2Finish(x []float32, b []byte, L *[QKK]uint8) {
	sc := b[0:16]
	d, dmin := f16At(b, 80), f16At(b, 82)
	for j := 0; j < QKK/16; j++ {
		dl := d * float32(sc[j]&0x0f)
		if dl == 0 {
			continue
		}
		dm := float32(dmin * float32(sc[j]>>4))
		for ii := 0; ii < 16; ii++ {
			L[16*j+ii] = uint8(clampI32(nearestInt((x[16*j+ii]+dm)/dl), 0, 3))
		}
	}
	packQ2Q3(b[16:80], L)
}

// QuantizeQ3_KRef encodes src as Q3_K (quantize_row_q3_K_ref): per 16-value
// group a symmetric scale from make_q3_quants, 6-bit scales relative to the
// one of largest magnitude, then a requantization against them.
func QuantizeQ3_KRef(src []float32, dst []byte) {
	checkQuant("Q3_K", src, dst, QKK, bytesQ3_K)
	var (
		L      [QKK]int8
		scales [QKK / 16]float32
	)
	for i := 0; i+QKK <= len(src); i += QKK {
		x := src[i : i+QKK]
		b := dst[i/QKK*bytesQ3_K:][:bytesQ3_K]
		var maxScale, amax float32
		for j := 0; j < QKK/16; j++ {
			scales[j] = makeQ3Quants(4, x[16*j:16*j+16], L[16*j:16*j+16])
			if s := abs32(scales[j]); s > amax {
				amax, maxScale = s, scales[j]
			}
		}
		sc := b[96:108]
		clear(sc)
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := 0; j < QKK/16; j++ {
				l := int8(nearestInt(float32(iscale * scales[j])))
				l = max(-32, min(31, l)) + 32
				putQ3Scale(sc, j, int32(l))
			}
			putF16(b, 108, 1/iscale)
		} else {
			putF16(b, 108, 0)
		}
		q3Finish(x, b, &L)
	}
}

// QuantizeQ4_KRef encodes src as Q4_K (quantize_row_q4_K_ref): per 32-value
// group a min/scale fit weighted by rms+|x| (make_qkx2_quants), 6-bit scales
// and mins relative to the block maxima, then a requantization.
func QuantizeQ4_KRef(src []float32, dst []byte) {
	checkQuant("Q4_K", src, dst, QKK, bytesQ4_K)
	var L [QKK]uint8
	for i := 0; i+QKK <= len(src); i += QKK {
		x := src[i : i+QKK]
		b := dst[i/QKK*bytesQ4_K:][:bytesQ4_K]
		q45RefScales(x, b, &L, 15, -1, 0.1, 20)
		q45Requant(x, b, &L, 15)
		packQ4K(b[16:144], &L)
	}
}

// QuantizeQ5_KRef encodes src as Q5_K (quantize_row_q5_K_ref); as Q4_K with
// 5-bit quants and a narrower scale search.
func QuantizeQ5_KRef(src []float32, dst []byte) {
	checkQuant("Q5_K", src, dst, QKK, bytesQ5_K)
	var L [QKK]uint8
	for i := 0; i+QKK <= len(src); i += QKK {
		x := src[i : i+QKK]
		b := dst[i/QKK*bytesQ5_K:][:bytesQ5_K]
		q45RefScales(x, b, &L, 31, -0.5, 0.1, 15)
		q45Requant(x, b, &L, 31)
		packQ5K(b[16:48], b[48:176], &L)
	}
}

// q45RefScales is the scale part of quantize_row_q{4,5}_K_ref: it fills L
// with the first-pass quants and stores d, dmin and the packed scales.
func q45RefScales(x []float32, b []byte, L *[QKK]uint8, nmax int32, rmin, rdelta float32, nstep int) {
	var (
		Laux         [32]uint8
		weights      [32]float32
		mins, scales [QKK / 32]float32
	)
	var maxScale, maxMin float32
	for j := 0; j < QKK/32; j++ {
		xs := x[32*j : 32*j+32]
		avX := sqrt32(sumSquares(xs) / 32)
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, xs, weights[:], L[32*j:32*j+32], Laux[:], rmin, rdelta, nstep, false)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	s := b[4:16]
	for j := 0; j < QKK/32; j++ {
		ls := min(63, uint8(nearestInt(float32(invScale*scales[j]))))
		lm := min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		putScaleMinK4(s, j, ls, lm)
	}
	putF16(b, 0, maxScale/63)
	putF16(b, 2, maxMin/63)
}

// QuantizeQ6_KRef encodes src as Q6_K (quantize_row_q6_K_ref): per 16-value
// group a symmetric scale from make_qx_quants (x^2-weighted), 8-bit scales
// relative to the one of largest magnitude, then a requantization.
func QuantizeQ6_KRef(src []float32, dst []byte) {
	checkQuant("Q6_K", src, dst, QKK, bytesQ6_K)
	for i := 0; i+QKK <= len(src); i += QKK {
		q6KBlock(src[i:i+QKK], dst[i/QKK*bytesQ6_K:][:bytesQ6_K], nil)
	}
}

// q6KBlock quantizes one Q6_K block; qw (nil for the reference encoder) are
// the block's importance weights (quantize_row_q6_K_impl).
func q6KBlock(x []float32, b []byte, qw []float32) {
	var (
		L      [QKK]int8
		scales [QKK / 16]float32
	)
	var maxScale, maxAbs float32
	for ib := 0; ib < QKK/16; ib++ {
		var w []float32
		if qw != nil {
			w = qw[16*ib : 16*ib+16]
		}
		scales[ib] = makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16], w)
		if a := abs32(scales[ib]); a > maxAbs {
			maxAbs, maxScale = a, scales[ib]
		}
	}
	if maxAbs < groupMaxEps {
		clear(b)
		return
	}
	iscale := -128 / maxScale
	d := putF16(b, 208, 1/iscale)
	sc := b[192:208]
	for ib := range sc {
		sc[ib] = byte(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
	}
	for j := 0; j < QKK/16; j++ {
		dl := d * float32(int8(sc[j]))
		if dl == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := clampI32(nearestInt(x[16*j+ii]/dl), -32, 31)
			L[16*j+ii] = int8(l + 32)
		}
	}
	for h := 0; h < 2; h++ {
		ql := b[64*h : 64*h+64]
		qh := b[128+32*h : 128+32*h+32]
		Lh := L[128*h : 128*h+128]
		for l := 0; l < 32; l++ {
			q1, q2, q3, q4 := uint8(Lh[l]), uint8(Lh[l+32]), uint8(Lh[l+64]), uint8(Lh[l+96])
			ql[l] = q1&0x0f | (q3&0x0f)<<4
			ql[l+32] = q2&0x0f | (q4&0x0f)<<4
			qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
		}
	}
}

// ---------------------------------------------------------------------------
// Importance-weighted quantizers (quantize_row_*_impl with quant_weights).
// x is one row and qw its importance weights (len(qw) == len(x)).

func quantQ2_KWeighted(x []float32, dst []byte, qw []float32) {
	var (
		L            [QKK]uint8
		Laux         [16]uint8
		weight       [16]float32
		mins, scales [QKK / 16]float32
		sw           [QKK / 16]float32
		Ls, Lm       [QKK / 16]uint8
	)
	for i := 0; i+QKK <= len(x); i += QKK {
		blockX, block := x[i:i+QKK], qw[i:i+QKK]
		b := dst[i/QKK*bytesQ2_K:][:bytesQ2_K]
		sigma2 := float32(sumSquares(blockX) / QKK)
		for j := 0; j < QKK/16; j++ {
			xs := blockX[16*j : 16*j+16]
			for l, v := range xs {
				weight[l] = float32(block[16*j+l] * sqrt32(sigma2+float32(v*v)))
			}
			sw[j] = 0
			for _, w := range weight {
				sw[j] += w
			}
			scales[j], mins[j] = makeQKX3Quants(3, xs, weight[:], L[16*j:16*j+16], Laux[:], -0.9, 0.05, 36, false)
		}
		dm := makeQPQuants(15, scales[:], Ls[:], sw[:])
		mm := makeQPQuants(15, mins[:], Lm[:], sw[:])
		putF16(b, 80, dm)
		putF16(b, 82, mm)
		for j := range Ls {
			b[j] = Ls[j] | Lm[j]<<4
		}
		q2Finish(blockX, b, &L)
	}
}

func quantQ3_KWeighted(x []float32, dst []byte, qw []float32) {
	var (
		L      [QKK]int8
		scales [QKK / 16]float32
		weight [16]float32
		sw     [QKK / 16]float32
		Ls     [QKK / 16]int8
	)
	for i := 0; i+QKK <= len(x); i += QKK {
		bx, bw := x[i:i+QKK], qw[i:i+QKK]
		b := dst[i/QKK*bytesQ3_K:][:bytesQ3_K]
		sigma2 := float32(2 * sumSquares(bx) / QKK)
		for j := 0; j < QKK/16; j++ {
			xs := bx[16*j : 16*j+16]
			for l, v := range xs {
				weight[l] = float32(bw[16*j+l] * sqrt32(sigma2+float32(v*v)))
			}
			var sumw float32
			for _, w := range weight {
				sumw += w
			}
			sw[j] = sumw
			scales[j] = makeQXQuants(4, xs, L[16*j:16*j+16], weight[:])
		}
		sc := b[96:108]
		clear(sc)
		dBlock := makeQXQuants(32, scales[:], Ls[:], sw[:])
		for j, l := range Ls {
			putQ3Scale(sc, j, int32(l))
		}
		putF16(b, 108, dBlock)
		q3Finish(bx, b, &L)
	}
}

// quantQ45KWeighted is quantize_row_q{4,5}_K_impl with weights. As in ggml,
// q5 clamps the 6-bit scale indices to 63 and q4 does not (they can only
// differ if a sub-block scale comes out negative).
func quantQ45KWeighted(x []float32, dst []byte, qw []float32, t Type) {
	nmax, bytes := int32(15), bytesQ4_K
	if t == Q5_K {
		nmax, bytes = 31, bytesQ5_K
	}
	var (
		L            [QKK]uint8
		Laux         [32]uint8
		Ls, Lm       [QKK / 32]uint8
		weights      [32]float32
		sw           [QKK / 32]float32
		mins, scales [QKK / 32]float32
	)
	for i := 0; i+QKK <= len(x); i += QKK {
		bx, bw := x[i:i+QKK], qw[i:i+QKK]
		b := dst[i/QKK*bytes:][:bytes]
		sigma2 := float32(2 * sumSquares(bx) / QKK)
		for j := 0; j < QKK/32; j++ {
			xs := bx[32*j : 32*j+32]
			for l, v := range xs {
				weights[l] = float32(bw[32*j+l] * sqrt32(sigma2+float32(v*v)))
			}
			var sumw float32
			for _, w := range weights {
				sumw += w
			}
			sw[j] = sumw
			scales[j], mins[j] = makeQKX3Quants(nmax, xs, weights[:], L[32*j:32*j+32], Laux[:], -0.9, 0.05, 36, false)
		}
		dBlock := makeQPQuants(63, scales[:], Ls[:], sw[:])
		mBlock := makeQPQuants(63, mins[:], Lm[:], sw[:])
		s := b[4:16]
		for j := range Ls {
			ls, lm := Ls[j], Lm[j]
			if t == Q5_K {
				ls, lm = min(63, ls), min(63, lm)
			}
			putScaleMinK4(s, j, ls, lm)
		}
		putF16(b, 0, dBlock)
		putF16(b, 2, mBlock)
		q45Requant(bx, b, &L, nmax)
		if t == Q5_K {
			packQ5K(b[16:48], b[48:176], &L)
		} else {
			packQ4K(b[16:144], &L)
		}
	}
}

func quantQ6_KWeighted(x []float32, dst []byte, qw []float32) {
	for i := 0; i+QKK <= len(x); i += QKK {
		q6KBlock(x[i:i+QKK], dst[i/QKK*bytesQ6_K:][:bytesQ6_K], qw[i:i+QKK])
	}
}

// The simple formats' weighted encoders (quantize_row_q{4,5}_{0,1}_impl).
// Unlike the K-quants they scale the weights by the whole row's variance.

func rowSigma2(x []float32) float32 { return sumSquares(x) / float32(len(x)) }

func quantQ4_0Weighted(x []float32, dst []byte, qw []float32) {
	var (
		weight [QK]float32
		L      [QK]int8
	)
	sigma2 := rowSigma2(x)
	for i := 0; i+QK <= len(x); i += QK {
		xb, wb := x[i:i+QK], qw[i:i+QK]
		b := dst[i/QK*bytesQ4_0:][:bytesQ4_0]
		for j, v := range xb {
			weight[j] = float32(wb[j] * sqrt32(sigma2+float32(v*v)))
		}
		putF16(b, 0, makeQXQuants(8, xb, L[:], weight[:]))
		for j := 0; j < 16; j++ {
			b[2+j] = uint8(L[j]) | uint8(L[j+16])<<4
		}
	}
}

func quantQ5_0Weighted(x []float32, dst []byte, qw []float32) {
	var (
		weight [QK]float32
		L      [QK]int8
	)
	sigma2 := rowSigma2(x)
	for i := 0; i+QK <= len(x); i += QK {
		xb, wb := x[i:i+QK], qw[i:i+QK]
		b := dst[i/QK*bytesQ5_0:][:bytesQ5_0]
		for j, v := range xb {
			weight[j] = float32(wb[j] * sqrt32(sigma2+float32(v*v)))
		}
		putF16(b, 0, makeQXQuants(16, xb, L[:], weight[:]))
		var qh uint32
		for j := 0; j < 16; j++ {
			q0, q1 := uint8(L[j]), uint8(L[j+16])
			b[6+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= (uint32(q0&0x10) >> 4) << j
			qh |= (uint32(q1&0x10) >> 4) << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

// quantQx1Weighted is quantize_row_q4_1_impl (nmax 15) and
// quantize_row_q5_1_impl (nmax 31).
func quantQx1Weighted(x []float32, dst []byte, qw []float32, nmax int32) {
	var (
		weight  [QK]float32
		L, Laux [QK]uint8
	)
	bytes := bytesQ4_1
	if nmax == 31 {
		bytes = bytesQ5_1
	}
	sigma2 := rowSigma2(x)
	for i := 0; i+QK <= len(x); i += QK {
		xb, wb := x[i:i+QK], qw[i:i+QK]
		b := dst[i/QK*bytes:][:bytes]
		for j, v := range xb {
			weight[j] = float32(wb[j] * sqrt32(sigma2+float32(v*v)))
		}
		d, m := makeQKX3Quants(nmax, xb, weight[:], L[:], Laux[:], -0.9, 0.05, 36, false)
		putF16(b, 0, d)
		putF16(b, 2, -m)
		if nmax == 15 {
			for j := 0; j < 16; j++ {
				b[4+j] = L[j] | L[j+16]<<4
			}
			continue
		}
		var qh uint32
		for j := 0; j < 16; j++ {
			q0, q1 := L[j], L[j+16]
			b[8+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= (uint32(q0&0x10) >> 4) << j
			qh |= (uint32(q1&0x10) >> 4) << (j + 16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// weightedQuantizers maps each type with an importance-matrix encoder to it
// (one row: x, its encoding, its weights).
var weightedQuantizers = map[Type]func(x []float32, dst []byte, qw []float32){
	Q4_0:   quantQ4_0Weighted,
	Q4_1:   func(x []float32, dst []byte, qw []float32) { quantQx1Weighted(x, dst, qw, 15) },
	Q5_0:   quantQ5_0Weighted,
	Q5_1:   func(x []float32, dst []byte, qw []float32) { quantQx1Weighted(x, dst, qw, 31) },
	Q2_K:   quantQ2_KWeighted,
	Q3_K:   quantQ3_KWeighted,
	Q4_K:   func(x []float32, dst []byte, qw []float32) { quantQ45KWeighted(x, dst, qw, Q4_K) },
	Q5_K:   func(x []float32, dst []byte, qw []float32) { quantQ45KWeighted(x, dst, qw, Q5_K) },
	Q6_K:   quantQ6_KWeighted,
	IQ4_NL: quantIQ4_NLWeighted,
	IQ4_XS: quantIQ4_XSWeighted,
}

// QuantizeWeighted encodes src as type t like Quantize, but with an
// importance matrix as llama-quantize --imatrix does (ggml's quantize_<type>
// with quant_weights). imatrix holds one weight per column: its length is
// the row length, and src is len(src)/len(imatrix) rows that all use it.
// With imatrix nil it is exactly Quantize (ggml falls back to the reference
// encoders). Types without a weighted encoder in ggml (F32, F16, BF16, Q8_0)
// ignore imatrix, as ggml does. Weights should be finite and non-negative.
//
// Note that ggml's weighted path with all-ones weights is a different
// algorithm from the reference path, not the same bytes.
func QuantizeWeighted(t Type, src []float32, dst []byte, imatrix []float32) error {
	if imatrix == nil {
		return Quantize(t, src, dst)
	}
	fn, ok := weightedQuantizers[t]
	if !ok {
		if CanQuantize(t) {
			return Quantize(t, src, dst)
		}
		return fmt.Errorf("%w: cannot quantize to %v", ErrUnsupported, t)
	}
	l := layouts[t]
	n := len(imatrix)
	if n == 0 || n%l.blockElems != 0 {
		return fmt.Errorf("%w: %v: importance matrix of %d weights is not a row of whole blocks of %d", ErrBlockMultiple, t, n, l.blockElems)
	}
	if len(src)%n != 0 {
		return fmt.Errorf("%w: %v: %d elements are not whole rows of %d", ErrBlockMultiple, t, len(src), n)
	}
	need := len(src) / l.blockElems * l.blockBytes
	if len(dst) < need {
		return fmt.Errorf("%w: %v: %d elements need %d bytes, have %d", ErrShortBuffer, t, len(src), need, len(dst))
	}
	rowBytes := n / l.blockElems * l.blockBytes
	for r := 0; r < len(src)/n; r++ {
		fn(src[r*n:(r+1)*n], dst[r*rowBytes:(r+1)*rowBytes], imatrix)
	}
	return nil
}
