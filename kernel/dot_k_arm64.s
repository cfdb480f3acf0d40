//go:build !purego && !noasm

#include "textflag.h"
#include "neon_arm64.h"

// K-quant dot products with Q8_K activations, bit for bit the generic ones
// (dot_k.go): per super-block of 256, 8 int32 lanes (V10: lanes 0..3, the
// elements e with e%32 < 16; V11: lanes 4..7, e%32 >= 16), lane j summing
// the products of the elements with (e%32)/4 == j times their sub-block
// scale; then acc = fma(d, float32(lane), acc) in V30, V31 and hsum8 at the
// end. A 16-byte SDOT's 4 lanes are exactly 4 such lanes (DOTZ_D), and
// DOTZ_N computes the same lanes without dotprod. Each routine exists for
// both tiers: the body is a macro taking the DOTZ macro.
//
// Registers: R0 w, R1 x, R2 super-blocks left; V28, V29 scratch of DOTZ_N.

#define DOTZD(p, a, b) DOTZ_D(p, a, b)
#define DOTZN(p, a, b) DOTZ_N(p, a, b)

// KCHUNK: one 32-element chunk with quants in Vqa (elements 0..15) and Vqb
// (16..31), activations in Vya, Vyb: V10 += dot lanes * Vs.S[la], V11 +=
// dot lanes * Vs.S[lb]. Clobbers V12, V13.
#define KCHUNK(DOTZ, qa, qb, ya, yb, s, la, lb) \
	DOTZ(12, qa, ya); \
	DOTZ(13, qb, yb); \
	MLA_ELEM_4S(10, 12, s, la); \
	MLA_ELEM_4S(11, 13, s, lb)

// KFMA: V30, V31 = fma(F20, float32(V10, V11), V30, V31).
#define KFMA \
	SCVTF_4S(10, 10); \
	SCVTF_4S(11, 11); \
	VDUP  V20.S[0], V8.S4; \
	VFMLA V10.S4, V8.S4, V30.S4; \
	VFMLA V11.S4, V8.S4, V31.S4

// Q4K_PAIR: 32 bytes of Q4_K quants (the chunks 2j, 2j+1: low, high
// nibbles) against 64 activations, chunk scales Vs.S[l0], Vs.S[l1].
#define Q4K_PAIR(DOTZ, s, l0, l1) \
	VLD1.P 32(R0), [V0.B16, V1.B16]; \
	VLD1.P 64(R1), [V2.B16, V3.B16, V4.B16, V5.B16]; \
	VAND  V9.B16, V0.B16, V6.B16; \
	VAND  V9.B16, V1.B16, V7.B16; \
	VUSHR $4, V0.B16, V0.B16; \
	VUSHR $4, V1.B16, V1.B16; \
	KCHUNK(DOTZ, 6, 7, 2, 3, s, l0, l0); \
	KCHUNK(DOTZ, 0, 1, 4, 5, s, l1, l1)

// Q4_K x Q8_K (dotQ4KGeneric):
//
//	for each super-block: d = x.d*w.d, dmin = -x.d*w.dmin
//		sc, m = the 6-bit scales and mins of the 8 chunks of 32
//		accm[j] = fma(dmin, float32(m[2j]*(bs[4j]+bs[4j+1]) + m[2j+1]*(bs[4j+2]+bs[4j+3])), accm[j])
//		lane[l] = Σ_c sc[c] * Σ_{e in chunk c, (e%32)/4 == l} q[e]*y[e]
//		acc[l] = fma(d, float32(lane[l]), acc[l])
//	return hsum8(acc) + ((accm[0]+accm[2]) + (accm[1]+accm[3]))
//
// Extra registers: V9 = 15, V23 accm, V24, V25 scales 0..3, 4..7.
#define DOT_Q4_K(DOTZ) \
	VEOR V30.B16, V30.B16, V30.B16; \
	VEOR V31.B16, V31.B16, V31.B16; \
	VEOR V23.B16, V23.B16, V23.B16; \
	VMOVI $15, V9.B16; \
	CBZ  R2, done; \
loop: \
	MOVHU.P 2(R0), R3; \
	MOVHU.P 2(R0), R4; \
	MOVWU.P 4(R1), R5; \
	FMOVS   R3, F16; \
	FMOVS   R4, F17; \
	FMOVS   R5, F19; \
	FCVTHS  F16, F16; \
	FCVTHS  F17, F17; \
	FMULS   F16, F19, F20; \
	FNMULS  F17, F19, F21; \
	MOVWU.P 4(R0), R7; \
	MOVWU.P 4(R0), R8; \
	MOVWU.P 4(R0), R9; \
	ANDW    $0x3f3f3f3f, R7, R10; \
	ANDW    $0x0f0f0f0f, R9, R11; \
	LSRW    $6, R7, R14; \
	ANDW    $0x03030303, R14, R14; \
	ORRW    R14<<4, R11, R11; \
	ANDW    $0x3f3f3f3f, R8, R12; \
	LSRW    $4, R9, R13; \
	ANDW    $0x0f0f0f0f, R13, R13; \
	LSRW    $6, R8, R14; \
	ANDW    $0x03030303, R14, R14; \
	ORRW    R14<<4, R13, R13; \
	VMOV    R10, V24.S[0]; \
	VMOV    R11, V24.S[1]; \
	UXTL_8H(24, 24); \
	UXTL2_4S(25, 24); \
	UXTL_4S(24, 24); \
	VMOV    R12, V26.S[0]; \
	VMOV    R13, V26.S[1]; \
	UXTL_8H(26, 26); \
	UXTL2_4S(27, 26); \
	UXTL_4S(26, 26); \
	ADD     $256, R1, R6; \
	VLD1    (R6), [V6.H8, V7.H8]; \
	SADDLP_4S(6, 6); \
	SADDLP_4S(7, 7); \
	MUL_4S(6, 26, 6); \
	MUL_4S(7, 27, 7); \
	ADDP_4S(6, 6, 7); \
	SCVTF_4S(6, 6); \
	VDUP  V21.S[0], V8.S4; \
	VFMLA V6.S4, V8.S4, V23.S4; \
	VEOR V10.B16, V10.B16, V10.B16; \
	VEOR V11.B16, V11.B16, V11.B16; \
	Q4K_PAIR(DOTZ, 24, 0, 1); \
	Q4K_PAIR(DOTZ, 24, 2, 3); \
	Q4K_PAIR(DOTZ, 25, 0, 1); \
	Q4K_PAIR(DOTZ, 25, 2, 3); \
	KFMA; \
	ADD  $32, R1; \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE8; \
	VDUP V23.D[1], V29.D2; \
	FADD_4S(23, 23, 29); \
	FADDP_4S(23, 23, 23); \
	FADDS F23, F30, F30

// func dotQ4_KQ8_KNEON(w, x *byte, nb int) float32
TEXT ·dotQ4_KQ8_KNEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q4_K(DOTZN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ4_KQ8_KDotProd(w, x *byte, nb int) float32
TEXT ·dotQ4_KQ8_KDotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q4_K(DOTZD)
	FMOVS F30, ret+24(FP)
	RET

// Q6K_CHUNK: the chunk k of the current half: q = (Vlo | Vhb&0x30) - 32 with
// the nibbles in V14, V15 and the shifted high bits in V16, V17, against
// the next 32 activations, scales Vs.S[l0] and Vs.S[l1].
#define Q6K_CHUNK(DOTZ, s, l0, l1) \
	VAND  V18.B16, V16.B16, V16.B16; \
	VAND  V18.B16, V17.B16, V17.B16; \
	VORR  V16.B16, V14.B16, V14.B16; \
	VORR  V17.B16, V15.B16, V15.B16; \
	VSUB  V21.B16, V14.B16, V14.B16; \
	VSUB  V21.B16, V15.B16, V15.B16; \
	VLD1.P 32(R1), [V6.B16, V7.B16]; \
	KCHUNK(DOTZ, 14, 15, 6, 7, s, l0, l1)

// Q6K_HALF: 128 elements: ql[64] from R0, qh[32] from R4, chunks k = 0..3
// with the scales sA.S[0..3], sB.S[0..3] (two per chunk).
#define Q6K_HALF(DOTZ, sA, sB) \
	VLD1.P 64(R0), [V0.B16, V1.B16, V2.B16, V3.B16]; \
	VLD1.P 32(R4), [V4.B16, V5.B16]; \
	VAND  V9.B16, V0.B16, V14.B16; \
	VAND  V9.B16, V1.B16, V15.B16; \
	VSHL  $4, V4.B16, V16.B16; \
	VSHL  $4, V5.B16, V17.B16; \
	Q6K_CHUNK(DOTZ, sA, 0, 1); \
	VAND  V9.B16, V2.B16, V14.B16; \
	VAND  V9.B16, V3.B16, V15.B16; \
	VSHL  $2, V4.B16, V16.B16; \
	VSHL  $2, V5.B16, V17.B16; \
	Q6K_CHUNK(DOTZ, sA, 2, 3); \
	VUSHR $4, V0.B16, V14.B16; \
	VUSHR $4, V1.B16, V15.B16; \
	VORR  V4.B16, V4.B16, V16.B16; \
	VORR  V5.B16, V5.B16, V17.B16; \
	Q6K_CHUNK(DOTZ, sB, 0, 1); \
	VUSHR $4, V2.B16, V14.B16; \
	VUSHR $4, V3.B16, V15.B16; \
	VUSHR $2, V4.B16, V16.B16; \
	VUSHR $2, V5.B16, V17.B16; \
	Q6K_CHUNK(DOTZ, sB, 2, 3)

// Q6_K x Q8_K (dotQ6KGeneric):
//
//	for each super-block: d = x.d*w.d
//		q[e] = (4 low bits | 2 high bits << 4) - 32, sc = the 16 int8 scales
//		lane[l] = Σ_e sc[e/16] * q[e]*y[e] over the e with (e%32)/4 == l
//		acc[l] = fma(d, float32(lane[l]), acc[l])
//	return hsum8(acc)
//
// Extra registers: R4 qh, V9 = 0x0f, V18 = 0x30, V21 = 32, V24-V27 the
// scales as int32.
#define DOT_Q6_K(DOTZ) \
	VEOR V30.B16, V30.B16, V30.B16; \
	VEOR V31.B16, V31.B16, V31.B16; \
	VMOVI $0x0f, V9.B16; \
	VMOVI $0x30, V18.B16; \
	VMOVI $32, V21.B16; \
	CBZ  R2, done; \
loop: \
	MOVWU.P 4(R1), R5; \
	MOVHU   208(R0), R3; \
	FMOVS   R5, F19; \
	FMOVS   R3, F16; \
	FCVTHS  F16, F16; \
	FMULS   F16, F19, F20; \
	ADD     $192, R0, R6; \
	VLD1    (R6), [V22.B16]; \
	SXTL_8H(23, 22); \
	SXTL2_8H(22, 22); \
	SXTL_4S(24, 23); \
	SXTL2_4S(25, 23); \
	SXTL_4S(26, 22); \
	SXTL2_4S(27, 22); \
	ADD     $128, R0, R4; \
	VEOR V10.B16, V10.B16, V10.B16; \
	VEOR V11.B16, V11.B16, V11.B16; \
	Q6K_HALF(DOTZ, 24, 25); \
	Q6K_HALF(DOTZ, 26, 27); \
	KFMA; \
	ADD  $82, R0; \
	ADD  $32, R1; \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE8

// func dotQ6_KQ8_KNEON(w, x *byte, nb int) float32
TEXT ·dotQ6_KQ8_KNEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q6_K(DOTZN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ6_KQ8_KDotProd(w, x *byte, nb int) float32
TEXT ·dotQ6_KQ8_KDotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q6_K(DOTZD)
	FMOVS F30, ret+24(FP)
	RET

// Q5K_PAIR: as Q4K_PAIR, with the fifth bits b0 (chunk 2j) and b1 (2j+1)
// of qh (V16, V17) added as 16.
#define Q5K_PAIR(DOTZ, s, l0, l1, b0, b1) \
	VLD1.P 32(R0), [V0.B16, V1.B16]; \
	VLD1.P 64(R1), [V2.B16, V3.B16, V4.B16, V5.B16]; \
	VAND   V9.B16, V0.B16, V6.B16; \
	VAND   V9.B16, V1.B16, V7.B16; \
	VUSHR  $4, V0.B16, V0.B16; \
	VUSHR  $4, V1.B16, V1.B16; \
	VMOVI  $b0, V18.B16; \
	VCMTST V18.B16, V16.B16, V14.B16; \
	VCMTST V18.B16, V17.B16, V15.B16; \
	VAND   V22.B16, V14.B16, V14.B16; \
	VAND   V22.B16, V15.B16, V15.B16; \
	VORR   V14.B16, V6.B16, V6.B16; \
	VORR   V15.B16, V7.B16, V7.B16; \
	VMOVI  $b1, V18.B16; \
	VCMTST V18.B16, V16.B16, V14.B16; \
	VCMTST V18.B16, V17.B16, V15.B16; \
	VAND   V22.B16, V14.B16, V14.B16; \
	VAND   V22.B16, V15.B16, V15.B16; \
	VORR   V14.B16, V0.B16, V0.B16; \
	VORR   V15.B16, V1.B16, V1.B16; \
	KCHUNK(DOTZ, 6, 7, 2, 3, s, l0, l0); \
	KCHUNK(DOTZ, 0, 1, 4, 5, s, l1, l1)

// K4_SCALES decodes the 12 scale bytes at R0 (advancing it) of Q4_K/Q5_K:
// the 8 scales as int32 into V24, V25, the 8 mins into V26, V27.
#define K4_SCALES \
	MOVWU.P 4(R0), R7; \
	MOVWU.P 4(R0), R8; \
	MOVWU.P 4(R0), R9; \
	ANDW    $0x3f3f3f3f, R7, R10; \
	ANDW    $0x0f0f0f0f, R9, R11; \
	LSRW    $6, R7, R14; \
	ANDW    $0x03030303, R14, R14; \
	ORRW    R14<<4, R11, R11; \
	ANDW    $0x3f3f3f3f, R8, R12; \
	LSRW    $4, R9, R13; \
	ANDW    $0x0f0f0f0f, R13, R13; \
	LSRW    $6, R8, R14; \
	ANDW    $0x03030303, R14, R14; \
	ORRW    R14<<4, R13, R13; \
	VMOV    R10, V24.S[0]; \
	VMOV    R11, V24.S[1]; \
	UXTL_8H(24, 24); \
	UXTL2_4S(25, 24); \
	UXTL_4S(24, 24); \
	VMOV    R12, V26.S[0]; \
	VMOV    R13, V26.S[1]; \
	UXTL_8H(26, 26); \
	UXTL2_4S(27, 26); \
	UXTL_4S(26, 26)

// K4_MINS: V6.4S = the min sums ms[j] = m[2j]*(bs[4j]+bs[4j+1]) +
// m[2j+1]*(bs[4j+2]+bs[4j+3]) from the mins V26, V27 and the bsums of the
// Q8_K block whose quants start at R1.
#define K4_MINS \
	ADD     $256, R1, R6; \
	VLD1    (R6), [V6.H8, V7.H8]; \
	SADDLP_4S(6, 6); \
	SADDLP_4S(7, 7); \
	MUL_4S(6, 26, 6); \
	MUL_4S(7, 27, 7); \
	ADDP_4S(6, 6, 7)

// Q5_K x Q8_K (dotQ5KGeneric): as Q4_K with a fifth bit per quant from
// qh (bit c for chunk c), and the min terms in one scalar:
// summs = fma(dmin, float32(ms[0]+ms[1]+ms[2]+ms[3]), summs), added last.
//
// Extra registers: V9 = 15, V22 = 16, F23 summs, V24-V27 scales and mins.
#define DOT_Q5_K(DOTZ) \
	VEOR V30.B16, V30.B16, V30.B16; \
	VEOR V31.B16, V31.B16, V31.B16; \
	VEOR V23.B16, V23.B16, V23.B16; \
	VMOVI $15, V9.B16; \
	VMOVI $16, V22.B16; \
	CBZ  R2, done; \
loop: \
	MOVHU.P 2(R0), R3; \
	MOVHU.P 2(R0), R4; \
	MOVWU.P 4(R1), R5; \
	FMOVS   R3, F16; \
	FMOVS   R4, F17; \
	FMOVS   R5, F19; \
	FCVTHS  F16, F16; \
	FCVTHS  F17, F17; \
	FMULS   F16, F19, F20; \
	FNMULS  F17, F19, F21; \
	K4_SCALES; \
	K4_MINS; \
	VADDV   V6.S4, V6; \
	SCVTF_4S(6, 6); \
	FMADDS  F21, F23, F6, F23; \
	VLD1.P  32(R0), [V16.B16, V17.B16]; \
	VEOR V10.B16, V10.B16, V10.B16; \
	VEOR V11.B16, V11.B16, V11.B16; \
	Q5K_PAIR(DOTZ, 24, 0, 1, 0x01, 0x02); \
	Q5K_PAIR(DOTZ, 24, 2, 3, 0x04, 0x08); \
	Q5K_PAIR(DOTZ, 25, 0, 1, 0x10, 0x20); \
	Q5K_PAIR(DOTZ, 25, 2, 3, 0x40, 0x80); \
	KFMA; \
	ADD  $32, R1; \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE8; \
	FADDS F23, F30, F30

// func dotQ5_KQ8_KNEON(w, x *byte, nb int) float32
TEXT ·dotQ5_KQ8_KNEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q5_K(DOTZN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ5_KQ8_KDotProd(w, x *byte, nb int) float32
TEXT ·dotQ5_KQ8_KDotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q5_K(DOTZD)
	FMOVS F30, ret+24(FP)
	RET

// Q2K_CHUNK: the 2-bit quants (Vq >> shift) & 3 of V0, V1 (shift given as
// the pre-shifted V14, V15) against the next 32 activations.
#define Q2K_CHUNK(DOTZ, s, l0, l1) \
	VAND  V9.B16, V14.B16, V14.B16; \
	VAND  V9.B16, V15.B16, V15.B16; \
	VLD1.P 32(R1), [V6.B16, V7.B16]; \
	KCHUNK(DOTZ, 14, 15, 6, 7, s, l0, l1)

// Q2K_HALF: 32 bytes of qs from R0 = 4 chunks (bits 0-1, 2-3, 4-5, 6-7),
// scales sA.S[0..3] (chunks 0, 1) and sB.S[0..3] (chunks 2, 3).
#define Q2K_HALF(DOTZ, sA, sB) \
	VLD1.P 32(R0), [V0.B16, V1.B16]; \
	VORR  V0.B16, V0.B16, V14.B16; \
	VORR  V1.B16, V1.B16, V15.B16; \
	Q2K_CHUNK(DOTZ, sA, 0, 1); \
	VUSHR $2, V0.B16, V14.B16; \
	VUSHR $2, V1.B16, V15.B16; \
	Q2K_CHUNK(DOTZ, sA, 2, 3); \
	VUSHR $4, V0.B16, V14.B16; \
	VUSHR $4, V1.B16, V15.B16; \
	Q2K_CHUNK(DOTZ, sB, 0, 1); \
	VUSHR $6, V0.B16, V14.B16; \
	VUSHR $6, V1.B16, V15.B16; \
	Q2K_CHUNK(DOTZ, sB, 2, 3)

// Q2_K x Q8_K (dotQ2KGeneric):
//
//	for each super-block: d = x.d*w.d, dmin = -x.d*w.dmin
//		ms[j] = (sc[2j]>>4)*bs[2j] + (sc[2j+1]>>4)*bs[2j+1]
//		acc[j] = fma(dmin, float32(ms[j]), acc[j])
//		lane[l] = Σ_e (sc[e/16]&15) * q[e]*y[e] over the e with (e%32)/4 == l
//		acc[l] = fma(d, float32(lane[l]), acc[l])
//	return hsum8(acc)
//
// Extra registers: V9 = 3, V20 d, V21 dmin, V24-V27 the scales as int32.
#define DOT_Q2_K(DOTZ) \
	VEOR V30.B16, V30.B16, V30.B16; \
	VEOR V31.B16, V31.B16, V31.B16; \
	VMOVI $3, V9.B16; \
	VMOVI $15, V23.B16; \
	CBZ  R2, done; \
loop: \
	MOVWU.P 4(R1), R5; \
	MOVHU   80(R0), R3; \
	MOVHU   82(R0), R4; \
	FMOVS   R3, F16; \
	FMOVS   R4, F17; \
	FMOVS   R5, F19; \
	FCVTHS  F16, F16; \
	FCVTHS  F17, F17; \
	FMULS   F16, F19, F20; \
	FNMULS  F17, F19, F21; \
	VLD1.P  16(R0), [V22.B16]; \
	VUSHR   $4, V22.B16, V12.B16; \
	UXTL_8H(13, 12); \
	UXTL2_8H(12, 12); \
	ADD     $256, R1, R6; \
	VLD1    (R6), [V6.H8, V7.H8]; \
	SMULL_4S(14, 13, 6); \
	SMULL2_4S(15, 13, 6); \
	ADDP_4S(14, 14, 15); \
	SMULL_4S(15, 12, 7); \
	SMULL2_4S(16, 12, 7); \
	ADDP_4S(15, 15, 16); \
	SCVTF_4S(14, 14); \
	SCVTF_4S(15, 15); \
	VDUP  V21.S[0], V8.S4; \
	VFMLA V14.S4, V8.S4, V30.S4; \
	VFMLA V15.S4, V8.S4, V31.S4; \
	VAND  V23.B16, V22.B16, V22.B16; \
	UXTL_8H(12, 22); \
	UXTL2_8H(13, 22); \
	UXTL_4S(24, 12); \
	UXTL2_4S(25, 12); \
	UXTL_4S(26, 13); \
	UXTL2_4S(27, 13); \
	VEOR V10.B16, V10.B16, V10.B16; \
	VEOR V11.B16, V11.B16, V11.B16; \
	Q2K_HALF(DOTZ, 24, 25); \
	Q2K_HALF(DOTZ, 26, 27); \
	KFMA; \
	ADD  $4, R0; \
	ADD  $32, R1; \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE8

// func dotQ2_KQ8_KNEON(w, x *byte, nb int) float32
TEXT ·dotQ2_KQ8_KNEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q2_K(DOTZN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ2_KQ8_KDotProd(w, x *byte, nb int) float32
TEXT ·dotQ2_KQ8_KDotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q2_K(DOTZD)
	FMOVS F30, ret+24(FP)
	RET

// Q3K_CHUNK: the chunk c's quants ((Vq >> shift) & 3) - 4 + 4*(hmask bit
// c), with the shifted quants in V14, V15, hmask in V16, V17 and 1<<c = b.
#define Q3K_CHUNK(DOTZ, s, l0, l1, b) \
	VAND   V9.B16, V14.B16, V14.B16; \
	VAND   V9.B16, V15.B16, V15.B16; \
	VMOVI  $b, V18.B16; \
	VCMTST V18.B16, V16.B16, V12.B16; \
	VCMTST V18.B16, V17.B16, V13.B16; \
	VAND   V19.B16, V12.B16, V12.B16; \
	VAND   V19.B16, V13.B16, V13.B16; \
	VORR   V12.B16, V14.B16, V14.B16; \
	VORR   V13.B16, V15.B16, V15.B16; \
	VSUB   V19.B16, V14.B16, V14.B16; \
	VSUB   V19.B16, V15.B16, V15.B16; \
	VLD1.P 32(R1), [V6.B16, V7.B16]; \
	KCHUNK(DOTZ, 14, 15, 6, 7, s, l0, l1)

// Q3K_HALF: 32 bytes of qs from R0 = the chunks c0..c0+3.
#define Q3K_HALF(DOTZ, sA, sB, b0, b1, b2, b3) \
	VLD1.P 32(R0), [V0.B16, V1.B16]; \
	VORR  V0.B16, V0.B16, V14.B16; \
	VORR  V1.B16, V1.B16, V15.B16; \
	Q3K_CHUNK(DOTZ, sA, 0, 1, b0); \
	VUSHR $2, V0.B16, V14.B16; \
	VUSHR $2, V1.B16, V15.B16; \
	Q3K_CHUNK(DOTZ, sA, 2, 3, b1); \
	VUSHR $4, V0.B16, V14.B16; \
	VUSHR $4, V1.B16, V15.B16; \
	Q3K_CHUNK(DOTZ, sB, 0, 1, b2); \
	VUSHR $6, V0.B16, V14.B16; \
	VUSHR $6, V1.B16, V15.B16; \
	Q3K_CHUNK(DOTZ, sB, 2, 3, b3)

// Q3_K x Q8_K (dotQ3KGeneric):
//
//	for each super-block: d = x.d*w.d
//		sc[j] = 6-bit scale j - 32
//		q[e] = 2 low bits - 4 + 4*(hmask bit)
//		lane[l] = Σ_e sc[e/16] * q[e]*y[e] over the e with (e%32)/4 == l
//		acc[l] = fma(d, float32(lane[l]), acc[l])
//	return hsum8(acc)
//
// Extra registers: V9 = 3, V19 = 4, V21 = 32, V20 d, V24-V27 the scales.
#define DOT_Q3_K(DOTZ) \
	VEOR V30.B16, V30.B16, V30.B16; \
	VEOR V31.B16, V31.B16, V31.B16; \
	VMOVI $3, V9.B16; \
	VMOVI $4, V19.B16; \
	VMOVI $32, V21.B16; \
	CBZ  R2, done; \
loop: \
	MOVWU.P 4(R1), R5; \
	MOVHU   108(R0), R3; \
	FMOVS   R5, F20; \
	FMOVS   R3, F16; \
	FCVTHS  F16, F16; \
	FMULS   F16, F20, F20; \
	MOVWU   96(R0), R7; \
	MOVWU   100(R0), R8; \
	MOVWU   104(R0), R9; \
	ANDW    $0x0f0f0f0f, R7, R10; \
	ANDW    $0x03030303, R9, R14; \
	ORRW    R14<<4, R10, R10; \
	ANDW    $0x0f0f0f0f, R8, R11; \
	LSRW    $2, R9, R14; \
	ANDW    $0x03030303, R14, R14; \
	ORRW    R14<<4, R11, R11; \
	LSRW    $4, R7, R12; \
	ANDW    $0x0f0f0f0f, R12, R12; \
	LSRW    $4, R9, R14; \
	ANDW    $0x03030303, R14, R14; \
	ORRW    R14<<4, R12, R12; \
	LSRW    $4, R8, R13; \
	ANDW    $0x0f0f0f0f, R13, R13; \
	LSRW    $6, R9, R14; \
	ANDW    $0x03030303, R14, R14; \
	ORRW    R14<<4, R13, R13; \
	VMOV    R10, V22.S[0]; \
	VMOV    R11, V22.S[1]; \
	VMOV    R12, V22.S[2]; \
	VMOV    R13, V22.S[3]; \
	VSUB    V21.B16, V22.B16, V22.B16; \
	SXTL_8H(23, 22); \
	SXTL2_8H(22, 22); \
	SXTL_4S(24, 23); \
	SXTL2_4S(25, 23); \
	SXTL_4S(26, 22); \
	SXTL2_4S(27, 22); \
	VLD1.P  32(R0), [V16.B16, V17.B16]; \
	VEOR V10.B16, V10.B16, V10.B16; \
	VEOR V11.B16, V11.B16, V11.B16; \
	Q3K_HALF(DOTZ, 24, 25, 0x01, 0x02, 0x04, 0x08); \
	Q3K_HALF(DOTZ, 26, 27, 0x10, 0x20, 0x40, 0x80); \
	KFMA; \
	ADD  $14, R0; \
	ADD  $32, R1; \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE8

// func dotQ3_KQ8_KNEON(w, x *byte, nb int) float32
TEXT ·dotQ3_KQ8_KNEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q3_K(DOTZN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ3_KQ8_KDotProd(w, x *byte, nb int) float32
TEXT ·dotQ3_KQ8_KDotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q3_K(DOTZD)
	FMOVS F30, ret+24(FP)
	RET
