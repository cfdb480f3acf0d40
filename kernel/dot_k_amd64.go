//go:build !purego && !noasm

package kernel

import "github.com/slm-dev/slm/quant"

//go:generate go run dot_k_amd64_gen.go

// The AVX2 K-quant dot products (dot_k_amd64.s, written by
// dot_k_amd64_gen.go): ggml's AVX2 ggml_vec_dot_qX_K_q8_K, giving the same
// bits as the generic versions in dot_k.go (same int32 lanes, same float32
// fused multiply-adds, same horizontal sums), and AVX512-VNNI variants of
// each. Each takes nb whole super-blocks of weights at w and of Q8_K
// activations at x; the Go wrappers check the slices first.
//
// In the Go equivalents below, y is the Q8_K block's int8 quants, yd its
// scale, bs its bsums, acc the 8 float32 lanes and isum the 8 int32 lanes
// of one super-block; lane(e) = (e%32)/4.

// dotQ2KAVX2: per super-block, with sc = w[0:16], q = w[16:80]:
//
//	for j := range 8 {
//		m := int32(sc[2j]>>4)*bs[2j] + int32(sc[2j+1]>>4)*bs[2j+1]
//		acc[j] = fma(-(yd*d_w), float32(m), acc[j])
//	}
//	for e := range 256 {
//		v := int32(q[32*(e/128)+e%32] >> (2 * (e/32%4)) & 3)
//		isum[lane(e)] += int32(sc[e/16]&15) * v * y[e]
//	}
//	for j := range 8 { acc[j] = fma(yd*d_w, float32(isum[j]), acc[j]) }
//
//go:noescape
func dotQ2KAVX2(w, x *byte, nb int) float32

// dotQ3KAVX2: per super-block, with hm = w[0:32], q = w[32:96], sc the 16
// 6-bit scales from w[96:108]:
//
//	for e := range 256 {
//		v := int32(q[32*(e/128)+e%32]>>(2*(e/32%4))&3) + 4*int32(hm[e%32]>>(e/32)&1) - 4
//		isum[lane(e)] += (sc[e/16] - 32) * v * y[e]
//	}
//	for j := range 8 { acc[j] = fma(yd*d_w, float32(isum[j]), acc[j]) }
//
// (the -4 is subtracted per element pair as maddubs(4, y), like ggml).
//
//go:noescape
func dotQ3KAVX2(w, x *byte, nb int) float32

// dotQ4KAVX2: per super-block, with sc, m the 6-bit scales and mins and
// q = w[16:144]:
//
//	for j := range 4 {
//		s := m[2j]*(bs[4j]+bs[4j+1]) + m[2j+1]*(bs[4j+2]+bs[4j+3])
//		accm[j] = fma(-(yd*dmin_w), float32(s), accm[j])
//	}
//	for e := range 256 {
//		v := int32(q[32*(e/64)+e%32] >> (4 * (e/32%2)) & 15)
//		isum[lane(e)] += sc[e/32] * v * y[e]
//	}
//	for j := range 8 { acc[j] = fma(yd*d_w, float32(isum[j]), acc[j]) }
//
// and returns hsum8(acc) + ((accm[0]+accm[2]) + (accm[1]+accm[3])).
//
//go:noescape
func dotQ4KAVX2(w, x *byte, nb int) float32

// dotQ5KAVX2 is dotQ4KAVX2 with q = w[48:176], the fifth bit
// (w[16+e%32] >> (e/32)) & 1 << 4 added to v, and one scalar min sum:
// summs = fma(-(yd*dmin_w), float32(Σ s), summs); it returns hsum8(acc) + summs.
//
//go:noescape
func dotQ5KAVX2(w, x *byte, nb int) float32

// dotQ6KAVX2: per super-block, with ql = w[0:128], qh = w[128:192],
// sc = int8 w[192:208]:
//
//	for e := range 256 {
//		h, k, l := e/128, e/32%4, e%32
//		v := int32(ql[64h+32(k%2)+l]>>(4*(k/2))&15 | (qh[32h+l]>>(2k)&3)<<4) - 32
//		isum[lane(e)] += sc[e/16] * v * y[e]
//	}
//	for j := range 8 { acc[j] = fma(yd*d_w, float32(isum[j]), acc[j]) }
//
// (the -32 is subtracted per element pair as maddubs(32, y), like ggml).
//
//go:noescape
func dotQ6KAVX2(w, x *byte, nb int) float32

// The TierAVX512VNNI kernels (AVX512-VNNI and VL, on 256-bit registers):
// the AVX2 ones with each vpmaddwd + vpaddd pair fused into one vpdpwssd
// (the same exact int32 sums, so the same bits), the sums of odd chunks
// kept apart (Y16-Y19) to hide its latency.

//go:noescape
func dotQ2KVNNI(w, x *byte, nb int) float32

//go:noescape
func dotQ3KVNNI(w, x *byte, nb int) float32

//go:noescape
func dotQ4KVNNI(w, x *byte, nb int) float32

//go:noescape
func dotQ5KVNNI(w, x *byte, nb int) float32

//go:noescape
func dotQ6KVNNI(w, x *byte, nb int) float32

//go:noescape
func dotQ2KCols4VNNI(w, x *byte, xstride, nb int, dst *float32, dstStride int)

//go:noescape
func dotQ3KCols4VNNI(w, x *byte, xstride, nb int, dst *float32, dstStride int)

//go:noescape
func dotQ4KCols4VNNI(w, x *byte, xstride, nb int, dst *float32, dstStride int)

//go:noescape
func dotQ5KCols4VNNI(w, x *byte, xstride, nb int, dst *float32, dstStride int)

//go:noescape
func dotQ6KCols4VNNI(w, x *byte, xstride, nb int, dst *float32, dstStride int)

// kDotAsm wraps a K-quant kernel in a VecDot that checks that w and
// x hold n/256 whole super-blocks of wb and 292 bytes.
func kDotAsm(wb int, fn blockDotK) VecDot {
	return func(n int, w, x []byte) float32 {
		nb := n / quant.QKK
		if nb <= 0 {
			return 0
		}
		_, _ = w[nb*wb-1], x[nb*bytesQ8K-1]
		return fn(&w[0], &x[0], nb)
	}
}

type blockDotK = func(w, x *byte, nb int) float32

// No multi-row (registerDotRows) K-quant kernels: 4-row versions of Q4_K and
// Q6_K (4 weight rows interleaved block by block against one activation
// block) took 1.0x and 1.07x the CPU time of this kernel in a loop on a
// 576×1536 matrix, and 1.35x and 3.0x on 2048×8192: every weight row needs
// the same ALU work, the activation block stays in L1 either way, and 4
// strided weight streams prefetch worse than one. Sharing a weight row's
// decoding among 4 activation rows (the Cols4 kernels below) is what pays.
func init() {
	registerDot(quant.Q2_K, quant.Q8_K, TierAVX2, kDotAsm(bytesQ2K, dotQ2KAVX2))
	registerDot(quant.Q3_K, quant.Q8_K, TierAVX2, kDotAsm(bytesQ3K, dotQ3KAVX2))
	registerDot(quant.Q4_K, quant.Q8_K, TierAVX2, kDotAsm(bytesQ4K, dotQ4KAVX2))
	registerDot(quant.Q5_K, quant.Q8_K, TierAVX2, kDotAsm(bytesQ5K, dotQ5KAVX2))
	registerDot(quant.Q6_K, quant.Q8_K, TierAVX2, kDotAsm(bytesQ6K, dotQ6KAVX2))
	registerDot(quant.Q2_K, quant.Q8_K, TierAVX512VNNI, kDotAsm(bytesQ2K, dotQ2KVNNI))
	registerDot(quant.Q3_K, quant.Q8_K, TierAVX512VNNI, kDotAsm(bytesQ3K, dotQ3KVNNI))
	registerDot(quant.Q4_K, quant.Q8_K, TierAVX512VNNI, kDotAsm(bytesQ4K, dotQ4KVNNI))
	registerDot(quant.Q5_K, quant.Q8_K, TierAVX512VNNI, kDotAsm(bytesQ5K, dotQ5KVNNI))
	registerDot(quant.Q6_K, quant.Q8_K, TierAVX512VNNI, kDotAsm(bytesQ6K, dotQ6KVNNI))
}

// The 4-column kernels: dotQXKCols4AVX2 is dotQXKAVX2 of one weight row at
// w against the 4 activation rows at x, x+xstride, x+2·xstride,
// x+3·xstride, storing the dot with activation row c at dst[c·dstStride],
// each bit for bit the single-row result (same per-column operations in the
// same order). The weight row's decoding (quants, scales, mins, scale
// shuffles) is done once for the 4 columns, so a prompt's matrix product
// runs 1.4-1.8 times as fast as with single dots (BenchmarkMatMulK).

//go:noescape
func dotQ2KCols4AVX2(w, x *byte, xstride, nb int, dst *float32, dstStride int)

//go:noescape
func dotQ3KCols4AVX2(w, x *byte, xstride, nb int, dst *float32, dstStride int)

//go:noescape
func dotQ4KCols4AVX2(w, x *byte, xstride, nb int, dst *float32, dstStride int)

//go:noescape
func dotQ5KCols4AVX2(w, x *byte, xstride, nb int, dst *float32, dstStride int)

//go:noescape
func dotQ6KCols4AVX2(w, x *byte, xstride, nb int, dst *float32, dstStride int)

// kCols4Fn computes, for c < 4, dst[c*dstStride] = the dot of the weight
// row w (n elements) with the Q8_K activation row x[c*xstride:], bit for
// bit the VecDot of each column.
type kCols4Fn = func(n int, w, x []byte, xstride int, dst []float32, dstStride int)

// kCols4Asm wraps a 4-column kernel (wb bytes a super-block) after checking
// the slices; the caller checks the tier.
func kCols4Asm(wb int, fn func(w, x *byte, xstride, nb int, dst *float32, dstStride int)) kCols4Fn {
	return func(n int, w, x []byte, xstride int, dst []float32, dstStride int) {
		if xstride < 0 || dstStride < 0 {
			panic("kernel: negative stride")
		}
		_ = dst[3*dstStride]
		nb := n / quant.QKK
		if nb <= 0 {
			dst[0], dst[dstStride], dst[2*dstStride], dst[3*dstStride] = 0, 0, 0, 0
			return
		}
		_, _ = w[nb*wb-1], x[3*xstride+nb*bytesQ8K-1]
		fn(&w[0], &x[0], xstride, nb, &dst[0], dstStride)
	}
}

// kCols4 lists the 4-column kernels by weight type and tier, for the
// matrix product of 4 or more activation rows (MatMul takes the one of its
// dot's tier through cols4For; kCols4For gives the best one this CPU runs).
var kCols4 = map[quant.Type][]impl[kCols4Fn]{
	quant.Q2_K: {{TierAVX2, kCols4Asm(bytesQ2K, dotQ2KCols4AVX2)}, {TierAVX512VNNI, kCols4Asm(bytesQ2K, dotQ2KCols4VNNI)}},
	quant.Q3_K: {{TierAVX2, kCols4Asm(bytesQ3K, dotQ3KCols4AVX2)}, {TierAVX512VNNI, kCols4Asm(bytesQ3K, dotQ3KCols4VNNI)}},
	quant.Q4_K: {{TierAVX2, kCols4Asm(bytesQ4K, dotQ4KCols4AVX2)}, {TierAVX512VNNI, kCols4Asm(bytesQ4K, dotQ4KCols4VNNI)}},
	quant.Q5_K: {{TierAVX2, kCols4Asm(bytesQ5K, dotQ5KCols4AVX2)}, {TierAVX512VNNI, kCols4Asm(bytesQ5K, dotQ5KCols4VNNI)}},
	quant.Q6_K: {{TierAVX2, kCols4Asm(bytesQ6K, dotQ6KCols4AVX2)}, {TierAVX512VNNI, kCols4Asm(bytesQ6K, dotQ6KCols4VNNI)}},
}

// kCols4For is the best 4-column kernel for weight type t (nil if none).
func kCols4For(t quant.Type) (kCols4Fn, Tier) { return pick(kCols4[t]) }

func init() {
	cols4For = func(t quant.Type, tier Tier) cols4Fn {
		if tier == TierGeneric {
			return nil
		}
		for _, im := range kCols4[t] {
			if im.tier == tier && cpuHas(tier) {
				return im.fn
			}
		}
		return nil
	}
}
