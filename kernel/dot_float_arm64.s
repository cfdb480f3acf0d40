//go:build !purego && !noasm

#include "textflag.h"
#include "neon_arm64.h"

// Float dot products over whole groups of 8 (F32, F16) or 32 (BF16)
// elements, bit for bit the generic ones (dot.go); the Go wrappers add the
// tails. Every product here is exact or fused, as in the generic code.

// func dotF32Groups(w, x *byte, groups int) float32
//
//	var acc [8]float32
//	for i := 0; i < 8*groups; i += 8 {
//		for l := range 8 { acc[l] = fma(w[i+l], x[i+l], acc[l]) }
//	}
//	return hsum8(&acc)
TEXT ·dotF32Groups(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD groups+16(FP), R2
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	CBZ  R2, done
loop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VLD1.P 32(R1), [V2.S4, V3.S4]
	VFMLA  V0.S4, V2.S4, V30.S4
	VFMLA  V1.S4, V3.S4, V31.S4
	SUBS   $1, R2
	BNE    loop
done:
	REDUCE8
	FMOVS F30, ret+24(FP)
	RET

// func dotF16Groups(w, x *byte, groups int) float32
//
//	var acc [8]float32
//	for i := 0; i < 8*groups; i += 8 {
//		for l := range 8 { acc[l] += f16(w[i+l]) * f16(x[i+l]) } // exact product
//	}
//	return hsum8(&acc)
TEXT ·dotF16Groups(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD groups+16(FP), R2
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	CBZ  R2, done
loop:
	VLD1.P 16(R0), [V0.H8]
	VLD1.P 16(R1), [V2.H8]
	FCVTL_4S(4, 0)
	FCVTL2_4S(5, 0)
	FCVTL_4S(6, 2)
	FCVTL2_4S(7, 2)
	VFMLA  V4.S4, V6.S4, V30.S4
	VFMLA  V5.S4, V7.S4, V31.S4
	SUBS   $1, R2
	BNE    loop
done:
	REDUCE8
	FMOVS F30, ret+24(FP)
	RET

// BF16_WIDEN: Vd.4S, Ve.4S = the bf16 values of Vs.8H as float32 (V27 = 0).
#define BF16_WIDEN(s, d, e) \
	VZIP1 s.H8, V27.H8, d.H8; \
	VZIP2 s.H8, V27.H8, e.H8

// func dotBF16Groups(w, x *byte, groups int) float32
//
//	var c [4][8]float32
//	for i := 0; i < 32*groups; i += 32 {
//		for k := range 4 { for l := range 8 {
//			c[k][l] += bf16(w[i+8k+l]) * bf16(x[i+8k+l]) // exact product
//		} }
//	}
//	for l := range 8 { v[l] = (c[0][l] + c[2][l]) + (c[1][l] + c[3][l]) }
//	return hsum8(&v)
TEXT ·dotBF16Groups(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD groups+16(FP), R2
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	CBZ  R2, done
loop:
	VLD1.P 64(R0), [V0.H8, V1.H8, V2.H8, V3.H8]
	VLD1.P 64(R1), [V4.H8, V5.H8, V6.H8, V7.H8]
	BF16_WIDEN(V0, V8, V9)
	BF16_WIDEN(V4, V10, V11)
	VFMLA V8.S4, V10.S4, V16.S4
	VFMLA V9.S4, V11.S4, V17.S4
	BF16_WIDEN(V1, V8, V9)
	BF16_WIDEN(V5, V10, V11)
	VFMLA V8.S4, V10.S4, V18.S4
	VFMLA V9.S4, V11.S4, V19.S4
	BF16_WIDEN(V2, V8, V9)
	BF16_WIDEN(V6, V10, V11)
	VFMLA V8.S4, V10.S4, V20.S4
	VFMLA V9.S4, V11.S4, V21.S4
	BF16_WIDEN(V3, V8, V9)
	BF16_WIDEN(V7, V10, V11)
	VFMLA V8.S4, V10.S4, V22.S4
	VFMLA V9.S4, V11.S4, V23.S4
	SUBS   $1, R2
	BNE    loop
done:
	// (c0 + c2) + (c1 + c3), low and high 4 lanes
	FADD_4S(16, 16, 20)
	FADD_4S(18, 18, 22)
	FADD_4S(30, 16, 18)
	FADD_4S(17, 17, 21)
	FADD_4S(19, 19, 23)
	FADD_4S(31, 17, 19)
	REDUCE8
	FMOVS F30, ret+24(FP)
	RET
