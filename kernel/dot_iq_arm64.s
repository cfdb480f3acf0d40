//go:build !purego && !noasm

#include "textflag.h"
#include "neon_arm64.h"

// IQ4_NL × Q8_0 and IQ4_XS × Q8_K on arm64, bit for bit the generic
// dotIQ4NLGeneric and dotIQ4XSGeneric (dot_iq.go, which defines the float
// order). The 16-entry table lookup is one TBL per 16 weights; the
// products are summed exactly in the SDOT lane layout (lane l of a 16-byte
// half: elements 4l..4l+3), with SDOT (dotprod tier) or SMULL/SADDLP
// (NEON tier, DOT_NEON_EXACT): every body is a macro taking the DOT macro.
// Any activation bytes are multiplied exactly (-128 included).
//
// Registers: R0 w, R1 x, R2 blocks left, V0-V3 quants, V20 the byte 15,
// V24 the table, V28/V29 DOT_NEON_EXACT's scratch, F16-F18 the scales.

#define DOTD(acc, a, b) SDOT(acc, a, b)
#define DOTN(acc, a, b) DOT_NEON_EXACT(acc, a, b, 28, 29)

// kvalues_iq4nl: -127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69 89 113
DATA iq4tab<>+0(SB)/8, $0xf6eaddcfbfad9881
DATA iq4tab<>+8(SB)/8, $0x7159453526190d01
GLOBL iq4tab<>(SB), RODATA|NOPTR, $16

#define IQ4_SETUP \
	MOVD  $iq4tab<>(SB), R5; \
	VLD1  (R5), [V24.B16]; \
	VMOVI $15, V20.B16

// IQ4_VALUES: loads 16 nibble bytes from R0 (advancing it) and the 32
// activations from R1 (advancing it); leaves in V1 the weight values of
// elements 0..15 (low nibbles), in V0 those of 16..31, in V2, V3 the
// activations.
#define IQ4_VALUES \
	VLD1.P 16(R0), [V0.B16]; \
	VLD1.P 32(R1), [V2.B16, V3.B16]; \
	VAND   V20.B16, V0.B16, V1.B16; \
	VUSHR  $4, V0.B16, V0.B16; \
	VTBL   V1.B16, [V24.B16], V1.B16; \
	VTBL   V0.B16, [V24.B16], V0.B16

// LOAD_SCALES: F18 = fp16(*R0) * fp16(*R1), advancing both by 2.
#define LOAD_SCALES \
	MOVHU.P 2(R0), R3; \
	MOVHU.P 2(R1), R4; \
	FMOVS   R3, F16; \
	FMOVS   R4, F17; \
	FCVTHS  F16, F16; \
	FCVTHS  F17, F17; \
	FMULS   F17, F16, F18

// NL_BLOCK: one IQ4_NL block and its Q8_0 block into the accumulators
// A0 (lanes 0..3), A1 (lanes 4..7):
// A[l] = fma(d_w*d_x, float32(Σ_{k<4} w[4l+k]·x[4l+k]), A[l]).
#define NL_BLOCK(DOT, A0, A1) \
	LOAD_SCALES; \
	IQ4_VALUES; \
	ZERO(4); \
	ZERO(5); \
	DOT(4, 1, 2); \
	DOT(5, 0, 3); \
	SCVTF_4S(4, 4); \
	SCVTF_4S(5, 5); \
	VDUP  V18.S[0], V6.S4; \
	VFMLA V4.S4, V6.S4, A0.S4; \
	VFMLA V5.S4, V6.S4, A1.S4

// IQ4_NL x Q8_0:
//
//	acc1 (V30:V31), acc2 (V26:V27) over the pairs of blocks, as NL_BLOCK;
//	sum = hsum8(acc1 + acc2)
//	if a block is left: sum = fma(d_w*d_x, float32(Σ_j w[j]·x[j]), sum)
#define DOT_IQ4_NL(DOT) \
	IQ4_SETUP; \
	ZERO(30); \
	ZERO(31); \
	ZERO(26); \
	ZERO(27); \
	CMP  $2, R2; \
	BLT  pairsdone; \
pairs: \
	NL_BLOCK(DOT, V30, V31); \
	NL_BLOCK(DOT, V26, V27); \
	SUB  $2, R2; \
	CMP  $2, R2; \
	BGE  pairs; \
pairsdone: \
	FADD_4S(30, 30, 26); \
	FADD_4S(31, 31, 27); \
	REDUCE8; \
	CBZ  R2, done; \
	LOAD_SCALES; \
	IQ4_VALUES; \
	ZERO(4); \
	ZERO(5); \
	DOT(4, 1, 2); \
	DOT(5, 0, 3); \
	ADD_4S(4, 4, 5); \
	VADDV  V4.S4, V4; \
	SCVTF_4S(4, 4); \
	FMADDS F18, F30, F4, F30; \
done:

// XS_SUB: sub-block ib of an IQ4_XS super-block (scales_h in R6, scales_l
// in R7): V8:V9 += (ls-32) * the lane sums of its 32 products.
#define XS_SUB(DOT, ib) \
	UBFX  $(4*(ib)), R7, $4, R3; \
	UBFX  $(2*(ib)), R6, $2, R4; \
	ORR   R4<<4, R3, R3; \
	SUB   $32, R3, R3; \
	VDUP  R3, V7.S4; \
	IQ4_VALUES; \
	ZERO(4); \
	ZERO(5); \
	DOT(4, 1, 2); \
	DOT(5, 0, 3); \
	MLA_4S(8, 4, 7); \
	MLA_4S(9, 5, 7)

// IQ4_XS x Q8_K:
//
//	for each super-block:
//		isum[l] = Σ_ib (ls_ib-32)·Σ_{k<4} w[32ib+4l+k]·x[32ib+4l+k]   (V8:V9)
//		acc[l] = fma(d_w*d_x, float32(isum[l]), acc[l])             (V30:V31)
//	return hsum8(acc)
#define DOT_IQ4_XS(DOT) \
	IQ4_SETUP; \
	ZERO(30); \
	ZERO(31); \
	CBZ  R2, xsdone; \
xsloop: \
	MOVHU  (R0), R3; \
	FMOVS  R3, F16; \
	FCVTHS F16, F16; \
	FMOVS  (R1), F17; \
	FMULS  F17, F16, F18; \
	MOVHU  2(R0), R6; \
	MOVWU  4(R0), R7; \
	ADD    $8, R0; \
	ADD    $4, R1; \
	ZERO(8); \
	ZERO(9); \
	XS_SUB(DOT, 0); \
	XS_SUB(DOT, 1); \
	XS_SUB(DOT, 2); \
	XS_SUB(DOT, 3); \
	XS_SUB(DOT, 4); \
	XS_SUB(DOT, 5); \
	XS_SUB(DOT, 6); \
	XS_SUB(DOT, 7); \
	ADD    $32, R1; \
	SCVTF_4S(8, 8); \
	SCVTF_4S(9, 9); \
	VDUP   V18.S[0], V6.S4; \
	VFMLA  V8.S4, V6.S4, V30.S4; \
	VFMLA  V9.S4, V6.S4, V31.S4; \
	SUBS   $1, R2; \
	BNE    xsloop; \
xsdone: \
	REDUCE8

// func dotIQ4NLNEON(w, x *byte, nb int) float32
TEXT ·dotIQ4NLNEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_IQ4_NL(DOTN)
	FMOVS F30, ret+24(FP)
	RET

// func dotIQ4NLDotProd(w, x *byte, nb int) float32
TEXT ·dotIQ4NLDotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_IQ4_NL(DOTD)
	FMOVS F30, ret+24(FP)
	RET

// func dotIQ4XSNEON(w, x *byte, nb int) float32
TEXT ·dotIQ4XSNEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_IQ4_XS(DOTN)
	FMOVS F30, ret+24(FP)
	RET

// func dotIQ4XSDotProd(w, x *byte, nb int) float32
TEXT ·dotIQ4XSDotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_IQ4_XS(DOTD)
	FMOVS F30, ret+24(FP)
	RET
