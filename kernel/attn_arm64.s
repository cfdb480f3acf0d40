//go:build !purego && !noasm

#include "textflag.h"
#include "neon_arm64.h"

// NEON attention kernels (attn.go has the generic specification). Products
// are FMUL and sums FADD, never FMLA: the specification rounds each product
// before adding it. An 8-lane sum s0..s7 of the specification is a pair of
// registers here, s0..s3 and s4..s7.

// func dotRows32NEON(q *float32, n8 int, k *float32, stride int, dst *float32, nt int)
//
// For t < nt: dst[t] = dot32(q[:8*n8], row t), row t at k + t*stride bytes.
// Four keys at a time (eight independent add chains), then one; n8 >= 1.
// The reduction: FADDP of a key's two halves gives s0+s1, s2+s3, s4+s5,
// s6+s7; FADDP of two such keys gives (s0+s1)+(s2+s3) and (s4+s5)+(s6+s7)
// of each; a last FADDP adds those, four keys' scores in one register.
TEXT ·dotRows32NEON(SB), NOSPLIT, $0-48
	MOVD q+0(FP), R0
	MOVD n8+8(FP), R1
	MOVD k+16(FP), R2
	MOVD stride+24(FP), R3
	MOVD dst+32(FP), R4
	MOVD nt+40(FP), R5

rows4:
	CMP  $4, R5
	BLT  rows1
	MOVD R2, R6
	ADD  R3, R6, R7
	ADD  R3, R7, R8
	ADD  R3, R8, R9
	ADD  R3, R9, R2
	MOVD R0, R10
	MOVD R1, R11
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16

loop4:
	VLD1.P 32(R10), [V0.S4, V1.S4]
	VLD1.P 32(R6), [V2.S4, V3.S4]
	VLD1.P 32(R7), [V4.S4, V5.S4]
	VLD1.P 32(R8), [V6.S4, V7.S4]
	VLD1.P 32(R9), [V24.S4, V25.S4]
	FMUL_4S(16, 0, 2)
	FMUL_4S(17, 1, 3)
	FMUL_4S(18, 0, 4)
	FMUL_4S(19, 1, 5)
	FMUL_4S(20, 0, 6)
	FMUL_4S(21, 1, 7)
	FMUL_4S(22, 0, 24)
	FMUL_4S(23, 1, 25)
	FADD_4S(8, 8, 16)
	FADD_4S(9, 9, 17)
	FADD_4S(10, 10, 18)
	FADD_4S(11, 11, 19)
	FADD_4S(12, 12, 20)
	FADD_4S(13, 13, 21)
	FADD_4S(14, 14, 22)
	FADD_4S(15, 15, 23)
	SUBS $1, R11
	BNE  loop4

	FADDP_4S(8, 8, 9)
	FADDP_4S(10, 10, 11)
	FADDP_4S(12, 12, 13)
	FADDP_4S(14, 14, 15)
	FADDP_4S(8, 8, 10)
	FADDP_4S(12, 12, 14)
	FADDP_4S(8, 8, 12)
	VST1.P [V8.S4], 16(R4)
	SUB    $4, R5
	B      rows4

rows1:
	CBZ  R5, done
	MOVD R2, R6
	ADD  R3, R2
	MOVD R0, R10
	MOVD R1, R11
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16

loop1:
	VLD1.P 32(R10), [V0.S4, V1.S4]
	VLD1.P 32(R6), [V2.S4, V3.S4]
	FMUL_4S(16, 0, 2)
	FMUL_4S(17, 1, 3)
	FADD_4S(8, 8, 16)
	FADD_4S(9, 9, 17)
	SUBS $1, R11
	BNE  loop1

	FADDP_4S(8, 8, 9) // s01 s23 s45 s67
	FADDP_4S(8, 8, 8) // s0123 s4567 …
	FADDP_4S(8, 8, 8) // s0123+s4567 …
	FMOVS.P F8, 4(R4)
	SUB     $1, R5
	B       rows1

done:
	RET

// AXPY4 adds a[t] (V20) times the four value registers V16-V19 into the
// accumulators d0..d0+3, with products in p0..p0+3.
#define AXPY4(d0, p0) \
	FMUL_4S(p0, 16, 20);     \
	FMUL_4S(p0+1, 17, 20);   \
	FMUL_4S(p0+2, 18, 20);   \
	FMUL_4S(p0+3, 19, 20);   \
	FADD_4S(d0, d0, p0);     \
	FADD_4S(d0+1, d0+1, p0+1); \
	FADD_4S(d0+2, d0+2, p0+2); \
	FADD_4S(d0+3, d0+3, p0+3)

// func axpyRows64NEON(o *float32, a *float32, nt int, v *float32, stride int)
//
// For t < nt in order: o[d] += a[t]*v[t*stride/4+d] for d < 64, with the
// 64 outputs held in V0-V15 throughout; nt >= 1.
TEXT ·axpyRows64NEON(SB), NOSPLIT, $0-40
	MOVD o+0(FP), R0
	MOVD a+8(FP), R1
	MOVD nt+16(FP), R2
	MOVD v+24(FP), R3
	MOVD stride+32(FP), R4
	MOVD R0, R5
	VLD1.P 64(R5), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R5), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R5), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1   (R5), [V12.S4, V13.S4, V14.S4, V15.S4]

loop64:
	VLD1R.P 4(R1), [V20.S4]
	MOVD    R3, R6
	ADD     R4, R3
	VLD1.P  64(R6), [V16.S4, V17.S4, V18.S4, V19.S4]
	AXPY4(0, 24)
	VLD1.P  64(R6), [V16.S4, V17.S4, V18.S4, V19.S4]
	AXPY4(4, 28)
	VLD1.P  64(R6), [V16.S4, V17.S4, V18.S4, V19.S4]
	AXPY4(8, 24)
	VLD1    (R6), [V16.S4, V17.S4, V18.S4, V19.S4]
	AXPY4(12, 28)
	SUBS    $1, R2
	BNE     loop64

	MOVD   R0, R5
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R5)
	VST1.P [V4.S4, V5.S4, V6.S4, V7.S4], 64(R5)
	VST1.P [V8.S4, V9.S4, V10.S4, V11.S4], 64(R5)
	VST1   [V12.S4, V13.S4, V14.S4, V15.S4], (R5)
	RET

// func axpyRows16NEON(o *float32, a *float32, nt int, v *float32, stride int)
//
// axpyRows64NEON for 16 outputs.
TEXT ·axpyRows16NEON(SB), NOSPLIT, $0-40
	MOVD o+0(FP), R0
	MOVD a+8(FP), R1
	MOVD nt+16(FP), R2
	MOVD v+24(FP), R3
	MOVD stride+32(FP), R4
	VLD1 (R0), [V0.S4, V1.S4, V2.S4, V3.S4]

loop16:
	VLD1R.P 4(R1), [V20.S4]
	VLD1    (R3), [V16.S4, V17.S4, V18.S4, V19.S4]
	ADD     R4, R3
	AXPY4(0, 24)
	SUBS    $1, R2
	BNE     loop16

	VST1 [V0.S4, V1.S4, V2.S4, V3.S4], (R0)
	RET
