//go:build !purego && !noasm

#include "textflag.h"
#include "neon_arm64.h"

// Multi-row Q4_0 x Q8_0 kernels: several weight rows against one or two
// activation rows, each result bit for bit the single-row dot (and
// dotQ4_0Generic): per block, the int32 sum of the 32 products, then
// acc = fma(float32(sum), d_w*d_x, acc).

#define DOTD(acc, a, b) SDOT(acc, a, b)
#define DOTN(acc, a, b) DOT_NEON_EXACT(acc, a, b, 28, 29)

// Q4_0_ROW: V0 = row quants (low nibbles - 8 for elements 0..15 against
// V2, high - 8 for 16..31 against V3) from (Rr), acc = their dot lanes.
#define Q4_0_ROW(DOT, Rr, acc) \
	VLD1.P 16(Rr), [V0.B16]; \
	VAND   V20.B16, V0.B16, V1.B16; \
	VUSHR  $4, V0.B16, V0.B16; \
	VSUB   V21.B16, V1.B16, V1.B16; \
	VSUB   V21.B16, V0.B16, V0.B16; \
	ZERO(acc); \
	DOT(acc, 1, 2); \
	DOT(acc, 0, 3)

// Q4_0_ROWS4: 4 rows (R0-R3) x 1 activation row (R4), nb = R5 blocks,
// results to (R6):
//
//	for r := 0; r < 4; r++ {
//		for b := 0; b < nb; b++ {
//			s := Σ_j (q_r[b][j] - 8) * x[b][j]
//			acc[r] = fma(float32(s), w_r[b].d*x[b].d, acc[r])
//		}
//	}
#define Q4_0_ROWS4(DOT) \
	VMOVI $15, V20.B16; \
	VMOVI $8, V21.B16; \
	VEOR  V30.B16, V30.B16, V30.B16; \
	CBZ   R5, done; \
loop: \
	MOVHU.P 2(R4), R7; \
	FMOVS   R7, F16; \
	FCVTHS  F16, F16; \
	VDUP    V16.S[0], V18.S4; \
	VLD1.P  32(R4), [V2.B16, V3.B16]; \
	MOVHU.P 2(R0), R7; \
	VMOV    R7, V17.H[0]; \
	MOVHU.P 2(R1), R7; \
	VMOV    R7, V17.H[1]; \
	MOVHU.P 2(R2), R7; \
	VMOV    R7, V17.H[2]; \
	MOVHU.P 2(R3), R7; \
	VMOV    R7, V17.H[3]; \
	FCVTL_4S(17, 17); \
	FMUL_4S(17, 17, 18); \
	Q4_0_ROW(DOT, R0, 4); \
	Q4_0_ROW(DOT, R1, 5); \
	Q4_0_ROW(DOT, R2, 6); \
	Q4_0_ROW(DOT, R3, 7); \
	ADDP_4S(4, 4, 5); \
	ADDP_4S(6, 6, 7); \
	ADDP_4S(4, 4, 6); \
	SCVTF_4S(4, 4); \
	VFMLA   V4.S4, V17.S4, V30.S4; \
	SUBS    $1, R5; \
	BNE     loop; \
done: \
	VST1    [V30.S4], (R6)

// func dotQ4_0x4NEON(w *byte, stride int, x *byte, nb int, dst *float32)
TEXT ·dotQ4_0x4NEON(SB), NOSPLIT, $0-40
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R8
	MOVD x+16(FP), R4
	MOVD nb+24(FP), R5
	MOVD dst+32(FP), R6
	ADD  R8, R0, R1
	ADD  R8, R1, R2
	ADD  R8, R2, R3
	Q4_0_ROWS4(DOTN)
	RET

// func dotQ4_0x4DotProd(w *byte, stride int, x *byte, nb int, dst *float32)
TEXT ·dotQ4_0x4DotProd(SB), NOSPLIT, $0-40
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R8
	MOVD x+16(FP), R4
	MOVD nb+24(FP), R5
	MOVD dst+32(FP), R6
	ADD  R8, R0, R1
	ADD  R8, R1, R2
	ADD  R8, R2, R3
	Q4_0_ROWS4(DOTD)
	RET

// Q4_0_PAIR_I8MM: rows Ra, Rb against the two activation rows whose
// quants V6-V9 hold interleaved (elements 0-7, 8-15, 16-23, 24-31 of x0
// then x1, 8 bytes each) and whose scales V16 = [dx0, dx1, dx0, dx1]:
// Vout += float32([a·x0, a·x1, b·x0, b·x1]) * (d_w * d_x), fused.
#define Q4_0_PAIR_I8MM(Ra, Rb, out) \
	MOVHU.P 2(Ra), R9; \
	MOVHU.P 2(Rb), R10; \
	VMOV    R9, V17.H[0]; \
	VMOV    R9, V17.H[1]; \
	VMOV    R10, V17.H[2]; \
	VMOV    R10, V17.H[3]; \
	FCVTL_4S(17, 17); \
	FMUL_4S(17, 17, 16); \
	VLD1.P  16(Ra), [V0.B16]; \
	VLD1.P  16(Rb), [V1.B16]; \
	VAND    V20.B16, V0.B16, V10.B16; \
	VAND    V20.B16, V1.B16, V11.B16; \
	VUSHR   $4, V0.B16, V12.B16; \
	VUSHR   $4, V1.B16, V13.B16; \
	VSUB    V21.B16, V10.B16, V10.B16; \
	VSUB    V21.B16, V11.B16, V11.B16; \
	VSUB    V21.B16, V12.B16, V12.B16; \
	VSUB    V21.B16, V13.B16, V13.B16; \
	VZIP1   V11.D2, V10.D2, V0.D2; \
	VZIP2   V11.D2, V10.D2, V1.D2; \
	VZIP1   V13.D2, V12.D2, V14.D2; \
	VZIP2   V13.D2, V12.D2, V15.D2; \
	ZERO(19); \
	SMMLA(19, 0, 6); \
	SMMLA(19, 1, 7); \
	SMMLA(19, 14, 8); \
	SMMLA(19, 15, 9); \
	SCVTF_4S(19, 19); \
	VFMLA   V19.S4, V17.S4, out.S4

// func dotQ4_0x4x2I8MM(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)
//
// 4 rows x 2 activation rows with SMMLA: each 2x2 tile of (row, activation)
// sums is one SMMLA accumulator over the block's 4 groups of 8 elements.
TEXT ·dotQ4_0x4x2I8MM(SB), NOSPLIT, $0-56
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R11
	MOVD x+16(FP), R4
	MOVD xstride+24(FP), R5
	MOVD nb+32(FP), R6
	MOVD dst0+40(FP), R7
	MOVD dst1+48(FP), R8
	ADD  R11, R0, R1
	ADD  R11, R1, R2
	ADD  R11, R2, R3
	ADD  R4, R5, R5
	VMOVI $15, V20.B16
	VMOVI $8, V21.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	CBZ  R6, done
loop:
	MOVHU.P 2(R4), R9
	MOVHU.P 2(R5), R10
	VMOV    R9, V22.H[0]
	VMOV    R10, V22.H[1]
	VMOV    R9, V22.H[2]
	VMOV    R10, V22.H[3]
	FCVTL_4S(22, 22)
	VLD1.P  32(R4), [V2.B16, V3.B16]
	VLD1.P  32(R5), [V4.B16, V5.B16]
	VZIP1   V4.D2, V2.D2, V6.D2
	VZIP2   V4.D2, V2.D2, V7.D2
	VZIP1   V5.D2, V3.D2, V8.D2
	VZIP2   V5.D2, V3.D2, V9.D2
	VORR    V22.B16, V22.B16, V16.B16
	Q4_0_PAIR_I8MM(R0, R1, V30)
	VORR    V22.B16, V22.B16, V16.B16
	Q4_0_PAIR_I8MM(R2, R3, V31)
	SUBS    $1, R6
	BNE     loop
done:
	VUZP1 V31.S4, V30.S4, V0.S4
	VUZP2 V31.S4, V30.S4, V1.S4
	VST1  [V0.S4], (R7)
	VST1  [V1.S4], (R8)
	RET

// Q8_0_ROW: row r's block (quants from (Rr)) against x in V2, V3: the two
// 4-lane halves of 8 lanes of 4-element sums, each fused-multiply-added
// with d_r = V17.S[r] into the row's accumulators lo, hi.
#define Q8_0_ROW(DOT, Rr, r, lo, hi) \
	VLD1.P 32(Rr), [V0.B16, V1.B16]; \
	ZERO(4); \
	ZERO(5); \
	DOT(4, 0, 2); \
	DOT(5, 1, 3); \
	SCVTF_4S(4, 4); \
	SCVTF_4S(5, 5); \
	FMLA_ELEM_4S(lo, 4, 17, r); \
	FMLA_ELEM_4S(hi, 5, 17, r)

// Q8_0_ROWS4: 4 rows (R0-R3) x 1 activation row (R4), nb = R5 blocks, each
// row's result dotQ8_0's (8 lanes, hsum8), to (R6).
#define Q8_0_ROWS4(DOT) \
	VEOR  V8.B16, V8.B16, V8.B16; \
	VEOR  V9.B16, V9.B16, V9.B16; \
	VEOR  V10.B16, V10.B16, V10.B16; \
	VEOR  V11.B16, V11.B16, V11.B16; \
	VEOR  V12.B16, V12.B16, V12.B16; \
	VEOR  V13.B16, V13.B16, V13.B16; \
	VEOR  V14.B16, V14.B16, V14.B16; \
	VEOR  V15.B16, V15.B16, V15.B16; \
	CBZ   R5, done; \
loop: \
	MOVHU.P 2(R4), R7; \
	FMOVS   R7, F16; \
	FCVTHS  F16, F16; \
	VDUP    V16.S[0], V18.S4; \
	VLD1.P  32(R4), [V2.B16, V3.B16]; \
	MOVHU.P 2(R0), R7; \
	VMOV    R7, V17.H[0]; \
	MOVHU.P 2(R1), R7; \
	VMOV    R7, V17.H[1]; \
	MOVHU.P 2(R2), R7; \
	VMOV    R7, V17.H[2]; \
	MOVHU.P 2(R3), R7; \
	VMOV    R7, V17.H[3]; \
	FCVTL_4S(17, 17); \
	FMUL_4S(17, 17, 18); \
	Q8_0_ROW(DOT, R0, 0, 8, 9); \
	Q8_0_ROW(DOT, R1, 1, 10, 11); \
	Q8_0_ROW(DOT, R2, 2, 12, 13); \
	Q8_0_ROW(DOT, R3, 3, 14, 15); \
	SUBS    $1, R5; \
	BNE     loop; \
done: \
	FADD_4S(8, 9, 8); \
	FADD_4S(10, 11, 10); \
	FADD_4S(12, 13, 12); \
	FADD_4S(14, 15, 14); \
	VZIP1   V10.D2, V8.D2, V0.D2; \
	VZIP2   V10.D2, V8.D2, V1.D2; \
	FADD_4S(0, 0, 1); \
	VZIP1   V14.D2, V12.D2, V2.D2; \
	VZIP2   V14.D2, V12.D2, V3.D2; \
	FADD_4S(2, 2, 3); \
	FADDP_4S(0, 0, 2); \
	VST1    [V0.S4], (R6)

// func dotQ8_0x4NEON(w *byte, stride int, x *byte, nb int, dst *float32)
TEXT ·dotQ8_0x4NEON(SB), NOSPLIT, $0-40
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R8
	MOVD x+16(FP), R4
	MOVD nb+24(FP), R5
	MOVD dst+32(FP), R6
	ADD  R8, R0, R1
	ADD  R8, R1, R2
	ADD  R8, R2, R3
	Q8_0_ROWS4(DOTN)
	RET

// func dotQ8_0x4DotProd(w *byte, stride int, x *byte, nb int, dst *float32)
TEXT ·dotQ8_0x4DotProd(SB), NOSPLIT, $0-40
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R8
	MOVD x+16(FP), R4
	MOVD nb+24(FP), R5
	MOVD dst+32(FP), R6
	ADD  R8, R0, R1
	ADD  R8, R1, R2
	ADD  R8, R2, R3
	Q8_0_ROWS4(DOTD)
	RET

// X2_SCALES: loads the fp16 scales of 4 weight rows (R0-R3) and of the two
// activation rows (R4, R5), advancing all: V24 = d_w * d_x0, V25 = d_w * d_x1
// (4 rows each).
#define X2_SCALES \
	MOVHU.P 2(R4), R9; \
	MOVHU.P 2(R5), R10; \
	FMOVS   R9, F26; \
	FMOVS   R10, F27; \
	FCVTHS  F26, F26; \
	FCVTHS  F27, F27; \
	VDUP    V26.S[0], V24.S4; \
	VDUP    V27.S[0], V25.S4; \
	MOVHU.P 2(R0), R9; \
	VMOV    R9, V26.H[0]; \
	MOVHU.P 2(R1), R9; \
	VMOV    R9, V26.H[1]; \
	MOVHU.P 2(R2), R9; \
	VMOV    R9, V26.H[2]; \
	MOVHU.P 2(R3), R9; \
	VMOV    R9, V26.H[3]; \
	FCVTL_4S(26, 26); \
	FMUL_4S(24, 26, 24); \
	FMUL_4S(25, 26, 25)

// ROWS4X2_PTRS: from R0 (row 0), R11 (stride), R4 (x0), R5 (xstride),
// R0-R3 the rows and R4, R5 the activations of the 4-row x 2-activation
// kernels (R6 blocks, R7, R8 the outputs).
#define ROWS4X2_PTRS \
	ADD  R11, R0, R1; \
	ADD  R11, R1, R2; \
	ADD  R11, R2, R3; \
	ADD  R4, R5, R5

// Q8_0_ROW_X2: row r's block (from Rr) against both activations (V2, V3
// and V4, V5), into the 8-lane accumulators (a0lo, a0hi) and (a1lo, a1hi).
#define Q8_0_ROW_X2(DOT, Rr, r, a0lo, a0hi, a1lo, a1hi) \
	VLD1.P 32(Rr), [V0.B16, V1.B16]; \
	ZERO(6); \
	ZERO(7); \
	DOT(6, 0, 2); \
	DOT(7, 1, 3); \
	SCVTF_4S(6, 6); \
	SCVTF_4S(7, 7); \
	FMLA_ELEM_4S(a0lo, 6, 24, r); \
	FMLA_ELEM_4S(a0hi, 7, 24, r); \
	ZERO(6); \
	ZERO(7); \
	DOT(6, 0, 4); \
	DOT(7, 1, 5); \
	SCVTF_4S(6, 6); \
	SCVTF_4S(7, 7); \
	FMLA_ELEM_4S(a1lo, 6, 25, r); \
	FMLA_ELEM_4S(a1hi, 7, 25, r)

// Q8_0_ROWS4X2: 4 rows x 2 activation rows, each result dotQ8_0's.
#define Q8_0_ROWS4X2(DOT) \
	VEOR  V8.B16, V8.B16, V8.B16; \
	VEOR  V9.B16, V9.B16, V9.B16; \
	VEOR  V10.B16, V10.B16, V10.B16; \
	VEOR  V11.B16, V11.B16, V11.B16; \
	VEOR  V12.B16, V12.B16, V12.B16; \
	VEOR  V13.B16, V13.B16, V13.B16; \
	VEOR  V14.B16, V14.B16, V14.B16; \
	VEOR  V15.B16, V15.B16, V15.B16; \
	VEOR  V16.B16, V16.B16, V16.B16; \
	VEOR  V17.B16, V17.B16, V17.B16; \
	VEOR  V18.B16, V18.B16, V18.B16; \
	VEOR  V19.B16, V19.B16, V19.B16; \
	VEOR  V20.B16, V20.B16, V20.B16; \
	VEOR  V21.B16, V21.B16, V21.B16; \
	VEOR  V22.B16, V22.B16, V22.B16; \
	VEOR  V23.B16, V23.B16, V23.B16; \
	CBZ   R6, done; \
loop: \
	X2_SCALES; \
	VLD1.P 32(R4), [V2.B16, V3.B16]; \
	VLD1.P 32(R5), [V4.B16, V5.B16]; \
	Q8_0_ROW_X2(DOT, R0, 0, 8, 9, 16, 17); \
	Q8_0_ROW_X2(DOT, R1, 1, 10, 11, 18, 19); \
	Q8_0_ROW_X2(DOT, R2, 2, 12, 13, 20, 21); \
	Q8_0_ROW_X2(DOT, R3, 3, 14, 15, 22, 23); \
	SUBS  $1, R6; \
	BNE   loop; \
done: \
	FADD_4S(8, 9, 8); \
	FADD_4S(10, 11, 10); \
	FADD_4S(12, 13, 12); \
	FADD_4S(14, 15, 14); \
	VZIP1 V10.D2, V8.D2, V0.D2; \
	VZIP2 V10.D2, V8.D2, V1.D2; \
	FADD_4S(0, 0, 1); \
	VZIP1 V14.D2, V12.D2, V2.D2; \
	VZIP2 V14.D2, V12.D2, V3.D2; \
	FADD_4S(2, 2, 3); \
	FADDP_4S(0, 0, 2); \
	VST1  [V0.S4], (R7); \
	FADD_4S(16, 17, 16); \
	FADD_4S(18, 19, 18); \
	FADD_4S(20, 21, 20); \
	FADD_4S(22, 23, 22); \
	VZIP1 V18.D2, V16.D2, V0.D2; \
	VZIP2 V18.D2, V16.D2, V1.D2; \
	FADD_4S(0, 0, 1); \
	VZIP1 V22.D2, V20.D2, V2.D2; \
	VZIP2 V22.D2, V20.D2, V3.D2; \
	FADD_4S(2, 2, 3); \
	FADDP_4S(0, 0, 2); \
	VST1  [V0.S4], (R8)

// func dotQ8_0x4x2NEON(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)
TEXT ·dotQ8_0x4x2NEON(SB), NOSPLIT, $0-56
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R11
	MOVD x+16(FP), R4
	MOVD xstride+24(FP), R5
	MOVD nb+32(FP), R6
	MOVD dst0+40(FP), R7
	MOVD dst1+48(FP), R8
	ROWS4X2_PTRS
	Q8_0_ROWS4X2(DOTN)
	RET

// func dotQ8_0x4x2DotProd(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)
TEXT ·dotQ8_0x4x2DotProd(SB), NOSPLIT, $0-56
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R11
	MOVD x+16(FP), R4
	MOVD xstride+24(FP), R5
	MOVD nb+32(FP), R6
	MOVD dst0+40(FP), R7
	MOVD dst1+48(FP), R8
	ROWS4X2_PTRS
	Q8_0_ROWS4X2(DOTD)
	RET

// Q4_0_ROW_X2: row Rr's block (unpacked once) against both activations:
// acc0, acc1 = the dot lanes with x0 (V2, V3) and x1 (V4, V5).
#define Q4_0_ROW_X2(DOT, Rr, acc0, acc1) \
	VLD1.P 16(Rr), [V0.B16]; \
	VAND   V20.B16, V0.B16, V1.B16; \
	VUSHR  $4, V0.B16, V0.B16; \
	VSUB   V21.B16, V1.B16, V1.B16; \
	VSUB   V21.B16, V0.B16, V0.B16; \
	ZERO(acc0); \
	ZERO(acc1); \
	DOT(acc0, 1, 2); \
	DOT(acc0, 0, 3); \
	DOT(acc1, 1, 4); \
	DOT(acc1, 0, 5)

// Q4_0_ROWS4X2: 4 rows x 2 activation rows, each result dotQ4_0's.
#define Q4_0_ROWS4X2(DOT) \
	VMOVI $15, V20.B16; \
	VMOVI $8, V21.B16; \
	VEOR  V30.B16, V30.B16, V30.B16; \
	VEOR  V31.B16, V31.B16, V31.B16; \
	CBZ   R6, done; \
loop: \
	X2_SCALES; \
	VLD1.P 32(R4), [V2.B16, V3.B16]; \
	VLD1.P 32(R5), [V4.B16, V5.B16]; \
	Q4_0_ROW_X2(DOT, R0, 8, 12); \
	Q4_0_ROW_X2(DOT, R1, 9, 13); \
	Q4_0_ROW_X2(DOT, R2, 10, 14); \
	Q4_0_ROW_X2(DOT, R3, 11, 15); \
	ADDP_4S(8, 8, 9); \
	ADDP_4S(10, 10, 11); \
	ADDP_4S(8, 8, 10); \
	ADDP_4S(12, 12, 13); \
	ADDP_4S(14, 14, 15); \
	ADDP_4S(12, 12, 14); \
	SCVTF_4S(8, 8); \
	SCVTF_4S(12, 12); \
	VFMLA V8.S4, V24.S4, V30.S4; \
	VFMLA V12.S4, V25.S4, V31.S4; \
	SUBS  $1, R6; \
	BNE   loop; \
done: \
	VST1  [V30.S4], (R7); \
	VST1  [V31.S4], (R8)

// func dotQ4_0x4x2NEON(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)
TEXT ·dotQ4_0x4x2NEON(SB), NOSPLIT, $0-56
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R11
	MOVD x+16(FP), R4
	MOVD xstride+24(FP), R5
	MOVD nb+32(FP), R6
	MOVD dst0+40(FP), R7
	MOVD dst1+48(FP), R8
	ROWS4X2_PTRS
	Q4_0_ROWS4X2(DOTN)
	RET

// func dotQ4_0x4x2DotProd(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)
TEXT ·dotQ4_0x4x2DotProd(SB), NOSPLIT, $0-56
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R11
	MOVD x+16(FP), R4
	MOVD xstride+24(FP), R5
	MOVD nb+32(FP), R6
	MOVD dst0+40(FP), R7
	MOVD dst1+48(FP), R8
	ROWS4X2_PTRS
	Q4_0_ROWS4X2(DOTD)
	RET
