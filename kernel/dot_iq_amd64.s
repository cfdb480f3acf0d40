//go:build !purego && !noasm

#include "textflag.h"

// AVX2 (+FMA, F16C) IQ4 dot products, bit-identical to dotIQ4NLGeneric and
// dotIQ4XSGeneric (dot_iq.go, which defines the float order). The 16-entry
// table lookup is one VPSHUFB per 32 weights (the table in both 128-bit
// halves); the signed weight × signed activation products use VPSIGNB
// (|w| × sign-adjusted x) and VPMADDUBSW, exact for activations in
// [-127, 127], which is all QuantizeQ8_0 and QuantizeQ8_K produce. Only
// whole blocks are read; nothing is written but the result.

DATA iq4nib<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA iq4nib<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA iq4nib<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA iq4nib<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL iq4nib<>(SB), RODATA|NOPTR, $32

DATA iq4ones<>+0(SB)/8, $0x0001000100010001
DATA iq4ones<>+8(SB)/8, $0x0001000100010001
DATA iq4ones<>+16(SB)/8, $0x0001000100010001
DATA iq4ones<>+24(SB)/8, $0x0001000100010001
GLOBL iq4ones<>(SB), RODATA|NOPTR, $32

// kvalues_iq4nl: -127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69 89 113
DATA iq4tab<>+0(SB)/8, $0xf6eaddcfbfad9881
DATA iq4tab<>+8(SB)/8, $0x7159453526190d01
GLOBL iq4tab<>(SB), RODATA|NOPTR, $16

// IQ4VALS loads the 16 nibble bytes at Q and leaves in Y5 the 32 int8
// weight values of the block: bytes 0-15 the low nibbles' values (elements
// 0-15), bytes 16-31 the high nibbles' (elements 16-31). Needs Y15 = 0x0f
// bytes, Y14 = the table in both halves; clobbers Y6.
#define IQ4VALS(Q) \
	VMOVDQU     Q, X5; \
	VPSRLW      $4, X5, X6; \
	VINSERTI128 $1, X6, Y5, Y5; \
	VPAND       Y15, Y5, Y5; \
	VPSHUFB     Y5, Y14, Y5

// IQ4PAIRS multiplies Y5's weights by the 32 int8 activations at X and
// leaves the int16 sums of neighbouring products in Y6; clobbers Y7.
#define IQ4PAIRS(X) \
	VMOVDQU    X, Y6; \
	VPSIGNB    Y5, Y5, Y7; \
	VPSIGNB    Y5, Y6, Y6; \
	VPMADDUBSW Y6, Y7, Y6

// HSUM8 leaves in the low lane of X the sum of Y's 8 lanes in
// hsum_float_8's order: t = hi + lo; u = t[0:2] + t[2:4]; u[0] + u[1].
// T is clobbered.
#define HSUM8(Y, X, T) \
	VEXTRACTF128 $1, Y, T; \
	VADDPS       T, X, X; \
	VMOVHLPS     X, X, T; \
	VADDPS       T, X, X; \
	VMOVSHDUP    X, T; \
	VADDSS       T, X, X

// F16SCALE leaves in the low lane of X the float32 product of the fp16
// values at A and B. T and the general register R are clobbered.
#define F16SCALE(A, B, X, T, R) \
	MOVWLZX   A, R; \
	VMOVD     R, X; \
	VCVTPH2PS X, X; \
	MOVWLZX   B, R; \
	VMOVD     R, T; \
	VCVTPH2PS T, T; \
	VMULSS    T, X, X

// IQ4NLBLOCK fuses the IQ4_NL block at WB (its d; nibbles at WB+2) and the
// Q8_0 block at XB into the accumulator ACC:
// ACC[l] = fma(d_w*d_x, float32(Σ_{k<4} w[4l+k]·x[4l+k]), ACC[l]).
#define IQ4NLBLOCK(WB, WQ, XB, XQ, ACC) \
	IQ4VALS(WQ); \
	IQ4PAIRS(XQ); \
	VPMADDWD     Y13, Y6, Y6; \
	VCVTDQ2PS    Y6, Y6; \
	F16SCALE(WB, XB, X3, X4, AX); \
	VBROADCASTSS X3, Y3; \
	VFMADD231PS  Y3, Y6, ACC

// func dotIQ4NLAVX2(w, x *byte, nb int) float32
//
// dotIQ4NLGeneric:
//
//	var acc1, acc2 [8]float32
//	for each pair of blocks (b, b+1):
//		for lane l: acc1[l] = fma32(d_w[b]*d_x[b], float32(Σ_{k<4} w[4l+k]·x[4l+k]), acc1[l])
//		for lane l: acc2[l] = fma32(d_w[b+1]*d_x[b+1], ..., acc2[l])
//	sumf := hsum8(acc1 + acc2)
//	if nb is odd: sumf = fma32(d_w*d_x, float32(Σ_j w[j]·x[j]), sumf)
TEXT ·dotIQ4NLAVX2(SB), NOSPLIT, $0-28
	MOVQ           w+0(FP), SI
	MOVQ           x+8(FP), DI
	MOVQ           nb+16(FP), CX
	VMOVDQU        iq4nib<>(SB), Y15
	VBROADCASTI128 iq4tab<>(SB), Y14
	VMOVDQU        iq4ones<>(SB), Y13
	VXORPS         Y0, Y0, Y0
	VXORPS         Y1, Y1, Y1
	SUBQ           $2, CX
	JL             iq4nltail

iq4nlloop:
	IQ4NLBLOCK((SI), 2(SI), (DI), 2(DI), Y0)
	IQ4NLBLOCK(18(SI), 20(SI), 34(DI), 36(DI), Y1)
	ADDQ $36, SI
	ADDQ $68, DI
	SUBQ $2, CX
	JGE  iq4nlloop

iq4nltail:
	VADDPS Y1, Y0, Y0
	HSUM8(Y0, X0, X1)
	ADDQ   $2, CX
	JZ     iq4nldone
	IQ4VALS(2(SI))
	IQ4PAIRS(2(DI))
	VPMADDWD     Y13, Y6, Y6
	VEXTRACTI128 $1, Y6, X7
	VPADDD       X7, X6, X6
	VPSHUFD      $0x4e, X6, X7
	VPADDD       X7, X6, X6
	VPSHUFD      $0xb1, X6, X7
	VPADDD       X7, X6, X6
	VCVTDQ2PS    X6, X6
	F16SCALE((SI), (DI), X3, X4, AX)
	VFMADD231SS  X3, X6, X0

iq4nldone:
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// IQ4XSSUB adds sub-block IB of the IQ4_XS super-block at SI (scales_h in
// R8) times the Q8_K quants at DI into the int32 lanes of Y12:
// Y12[l] += (ls-32)·Σ_{k<4} w[4l+k]·x[4l+k], ls the 6-bit scale.
#define IQ4XSSUB(IB, LBYTE, LSHIFT, HSHIFT, WQ, XQ) \
	MOVBLZX      LBYTE(SI), AX; \
	SHRL         $LSHIFT, AX; \
	ANDL         $15, AX; \
	MOVL         R8, BX; \
	SHRL         $HSHIFT, BX; \
	ANDL         $3, BX; \
	SHLL         $4, BX; \
	ORL          BX, AX; \
	SUBL         $32, AX; \
	VMOVD        AX, X8; \
	VPBROADCASTW X8, Y8; \
	IQ4VALS(WQ); \
	IQ4PAIRS(XQ); \
	VPMADDWD     Y8, Y6, Y6; \
	VPADDD       Y6, Y12, Y12

// func dotIQ4XSAVX2(w, x *byte, nb int) float32
//
// dotIQ4XSGeneric:
//
//	var acc [8]float32
//	for each super-block:
//		isum[l] = Σ_ib (ls_ib-32)·Σ_{k<4} w[32ib+4l+k]·x[32ib+4l+k]
//		for lane l: acc[l] = fma32(d_w*d_x, float32(isum[l]), acc[l])
//	return hsum8(&acc)
TEXT ·dotIQ4XSAVX2(SB), NOSPLIT, $0-28
	MOVQ           w+0(FP), SI
	MOVQ           x+8(FP), DI
	MOVQ           nb+16(FP), CX
	VMOVDQU        iq4nib<>(SB), Y15
	VBROADCASTI128 iq4tab<>(SB), Y14
	VXORPS         Y0, Y0, Y0

iq4xsloop:
	MOVWLZX 2(SI), R8
	VPXOR   Y12, Y12, Y12
	IQ4XSSUB(0, 4, 0, 0, 8(SI), 4(DI))
	IQ4XSSUB(1, 4, 4, 2, 24(SI), 36(DI))
	IQ4XSSUB(2, 5, 0, 4, 40(SI), 68(DI))
	IQ4XSSUB(3, 5, 4, 6, 56(SI), 100(DI))
	IQ4XSSUB(4, 6, 0, 8, 72(SI), 132(DI))
	IQ4XSSUB(5, 6, 4, 10, 88(SI), 164(DI))
	IQ4XSSUB(6, 7, 0, 12, 104(SI), 196(DI))
	IQ4XSSUB(7, 7, 4, 14, 120(SI), 228(DI))
	VCVTDQ2PS    Y12, Y12
	MOVWLZX      (SI), AX
	VMOVD        AX, X3
	VCVTPH2PS    X3, X3
	VMULSS       (DI), X3, X3
	VBROADCASTSS X3, Y3
	VFMADD231PS  Y3, Y12, Y0
	ADDQ         $136, SI
	ADDQ         $292, DI
	DECQ         CX
	JNZ          iq4xsloop

	HSUM8(Y0, X0, X1)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET
