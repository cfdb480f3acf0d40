//go:build !purego && !noasm

#include "textflag.h"
#include "neon_arm64.h"

#define FMAXV(d, n) WORD $(0x6E30F800 | ((n)<<5) | (d)) // Sd = max of Vn.4S

// func quantQ8Blocks(x *float32, dst *byte, nb int, q81 bool) int
//
// Quantizes up to nb blocks of 32 float32 to Q8_0 (q81 false) or Q8_1, as
// quant.QuantizeQ8_0 / QuantizeQ8_1 do for finite input:
//
//	amax := max |x[j]|;  d := amax / 127;  id := 127 / amax (0 if amax == 0)
//	q[j] := round half even(x[j] * id), saturated to int8
//	store fp16(d) [, fp16(d * float32(Σ q[j]))], q
//
// It stops before the first block whose amax is not finite (an infinity or
// NaN in the block) or whose id overflows (amax below 127/MaxFloat32), where the generic code's x86 conversions (NaN → the
// "integer indefinite") differ from ARM's, and returns the number of blocks
// done; the caller quantizes that block in Go and calls again.
TEXT ·quantQ8Blocks(SB), NOSPLIT, $0-40
	MOVD  x+0(FP), R0
	MOVD  dst+8(FP), R1
	MOVD  nb+16(FP), R2
	MOVBU q81+24(FP), R3
	MOVD  ZR, R4                 // blocks done
	MOVW  $0x7f800000, R5
	FMOVS R5, F25                // +Inf
	MOVW  $0x42fe0000, R5
	FMOVS R5, F26                // 127
	VEOR  V27.B16, V27.B16, V27.B16
	CBZ   R2, done
loop:
	VLD1   (R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	ADD    $64, R0, R6
	VLD1   (R6), [V4.S4, V5.S4, V6.S4, V7.S4]
	FABS_4S(8, 0)
	FABS_4S(9, 1)
	FABS_4S(10, 2)
	FABS_4S(11, 3)
	FABS_4S(12, 4)
	FABS_4S(13, 5)
	FABS_4S(14, 6)
	FABS_4S(15, 7)
	FMAX_4S(8, 8, 9)
	FMAX_4S(10, 10, 11)
	FMAX_4S(12, 12, 13)
	FMAX_4S(14, 14, 15)
	FMAX_4S(8, 8, 10)
	FMAX_4S(12, 12, 14)
	FMAX_4S(8, 8, 12)
	FMAXV(16, 8)                 // F16 = amax (NaN if any x is NaN)
	FCMPS  F25, F16
	BPL    done                  // amax >= +Inf or unordered
	FDIVS  F26, F16, F17         // d = amax / 127
	FDIVS  F16, F26, F18         // id = 127 / amax
	FCMPS  $(0.0), F16
	FCSELS EQ, F27, F18, F18     // id = 0 if amax == 0
	FCMPS  F25, F18
	BPL    done                  // id = +Inf (tiny amax): 0*id is NaN
	ADD    $128, R0
	VDUP   V18.S[0], V19.S4
	FMUL_4S(0, 0, 19)
	FMUL_4S(1, 1, 19)
	FMUL_4S(2, 2, 19)
	FMUL_4S(3, 3, 19)
	FMUL_4S(4, 4, 19)
	FMUL_4S(5, 5, 19)
	FMUL_4S(6, 6, 19)
	FMUL_4S(7, 7, 19)
	FCVTNS_4S(0, 0)
	FCVTNS_4S(1, 1)
	FCVTNS_4S(2, 2)
	FCVTNS_4S(3, 3)
	FCVTNS_4S(4, 4)
	FCVTNS_4S(5, 5)
	FCVTNS_4S(6, 6)
	FCVTNS_4S(7, 7)
	FCVTSH F17, F20
	FMOVS  F20, R7
	MOVH.P R7, 2(R1)
	CBZ    R3, quants
	// s = fp16(d * float32(Σ q)), the int32 sum wrapping as the generic one
	ADD_4S(8, 0, 1)
	ADD_4S(9, 2, 3)
	ADD_4S(10, 4, 5)
	ADD_4S(11, 6, 7)
	ADD_4S(8, 8, 9)
	ADD_4S(10, 10, 11)
	ADD_4S(8, 8, 10)
	VADDV  V8.S4, V8
	FMOVS  F8, R7
	SCVTFWS R7, F21
	FMULS  F21, F17, F21
	FCVTSH F21, F21
	FMOVS  F21, R7
	MOVH.P R7, 2(R1)
quants:
	SQXTN_4H(8, 0)
	SQXTN2_8H(8, 1)
	SQXTN_4H(9, 2)
	SQXTN2_8H(9, 3)
	SQXTN_4H(10, 4)
	SQXTN2_8H(10, 5)
	SQXTN_4H(11, 6)
	SQXTN2_8H(11, 7)
	SQXTN_8B(12, 8)
	SQXTN2_16B(12, 9)
	SQXTN_8B(13, 10)
	SQXTN2_16B(13, 11)
	VST1.P [V12.B16, V13.B16], 32(R1)
	ADD    $1, R4
	SUBS   $1, R2
	BNE    loop
done:
	MOVD R4, ret+32(FP)
	RET


// func quantQ8KBlocks(x *float32, dst *byte, nb int) int
//
// Quantizes up to nb blocks of 256 float32 to Q8_K as quant.QuantizeQ8_K:
//
//	max := the first x[j] of largest |x[j]|;  if max == 0 { zero block }
//	iscale := -127 / max
//	q[j] := min(127, round half even(iscale * x[j]))
//	bsums[g] := Σ q[16g : 16g+16];  d := 1 / iscale
//
// It stops before (and returns the number of blocks done) the first block
// that it cannot do exactly as the generic code: an infinity or NaN in the
// block, |max| so small that iscale overflows, or both +|max| and -|max|
// present (the generic code takes the first; the caller's Go code does).
TEXT ·quantQ8KBlocks(SB), NOSPLIT, $0-32
	MOVD  x+0(FP), R0
	MOVD  dst+8(FP), R1
	MOVD  nb+16(FP), R2
	MOVD  ZR, R4                 // blocks done
	MOVW  $0x7f800000, R5
	FMOVS R5, F25                // +Inf
	MOVW  $0xc2fe0000, R5
	FMOVS R5, F26                // -127
	MOVW  $0x3f800000, R5
	FMOVS R5, F27                // 1
	VEOR  V31.B16, V31.B16, V31.B16
	CBZ   R2, done
block:
	// pass 1: amax
	MOVD  R0, R6
	MOVD  $16, R7
	VEOR  V16.B16, V16.B16, V16.B16
	VEOR  V17.B16, V17.B16, V17.B16
	VEOR  V18.B16, V18.B16, V18.B16
	VEOR  V19.B16, V19.B16, V19.B16
amax:
	VLD1.P 64(R6), [V0.S4, V1.S4, V2.S4, V3.S4]
	FABS_4S(0, 0)
	FABS_4S(1, 1)
	FABS_4S(2, 2)
	FABS_4S(3, 3)
	FMAX_4S(16, 16, 0)
	FMAX_4S(17, 17, 1)
	FMAX_4S(18, 18, 2)
	FMAX_4S(19, 19, 3)
	SUBS  $1, R7
	BNE   amax
	FMAX_4S(16, 16, 17)
	FMAX_4S(18, 18, 19)
	FMAX_4S(16, 16, 18)
	FMAXV(20, 16)                // F20 = amax (NaN if any x is NaN)
	FCMPS F25, F20
	BPL   done                   // infinite or NaN
	FCMPS $(0.0), F20
	BEQ   zero
	// pass 2: the sign of max
	VDUP  V20.S[0], V21.S4       // amax
	FNEGS F20, F22
	VDUP  V22.S[0], V22.S4       // -amax
	VEOR  V23.B16, V23.B16, V23.B16 // some x == amax
	VEOR  V24.B16, V24.B16, V24.B16 // some x == -amax
	MOVD  R0, R6
	MOVD  $16, R7
sign:
	VLD1.P 64(R6), [V0.S4, V1.S4, V2.S4, V3.S4]
	FCMEQ_4S(4, 0, 21)
	FCMEQ_4S(5, 1, 21)
	FCMEQ_4S(6, 2, 21)
	FCMEQ_4S(7, 3, 21)
	FCMEQ_4S(0, 0, 22)
	FCMEQ_4S(1, 1, 22)
	FCMEQ_4S(2, 2, 22)
	FCMEQ_4S(3, 3, 22)
	VORR  V4.B16, V23.B16, V23.B16
	VORR  V5.B16, V23.B16, V23.B16
	VORR  V6.B16, V23.B16, V23.B16
	VORR  V7.B16, V23.B16, V23.B16
	VORR  V0.B16, V24.B16, V24.B16
	VORR  V1.B16, V24.B16, V24.B16
	VORR  V2.B16, V24.B16, V24.B16
	VORR  V3.B16, V24.B16, V24.B16
	SUBS  $1, R7
	BNE   sign
	VMOV  V23.D[0], R8
	VMOV  V23.D[1], R9
	ORR   R8, R9, R8             // R8 != 0: +amax present
	VMOV  V24.D[0], R9
	VMOV  V24.D[1], R10
	ORR   R9, R10, R9            // R9 != 0: -amax present
	FMOVS F20, F21               // max = amax
	CBZ   R9, signed
	CBNZ  R8, done               // both signs: the first decides, in Go
	FMOVS F22, F21               // max = -amax
signed:
	FDIVS  F21, F26, F28         // iscale = -127 / max
	FABSS  F28, F29
	FCMPS  F25, F29
	BPL    done                  // iscale overflowed
	FDIVS  F28, F27, F29         // d = 1 / iscale
	FMOVS  F29, (R1)
	VDUP   V28.S[0], V28.S4
	// pass 3: quants and bsums
	MOVD   R0, R6
	ADD    $4, R1, R8            // qs
	ADD    $260, R1, R9          // bsums
	MOVD   $16, R7
quants:
	VLD1.P 64(R6), [V0.S4, V1.S4, V2.S4, V3.S4]
	FMUL_4S(0, 0, 28)
	FMUL_4S(1, 1, 28)
	FMUL_4S(2, 2, 28)
	FMUL_4S(3, 3, 28)
	FCVTNS_4S(0, 0)
	FCVTNS_4S(1, 1)
	FCVTNS_4S(2, 2)
	FCVTNS_4S(3, 3)
	ADD_4S(4, 0, 1)
	ADD_4S(5, 2, 3)
	ADD_4S(4, 4, 5)
	VADDV  V4.S4, V4
	FMOVS  F4, R10
	MOVH.P R10, 2(R9)
	SQXTN_4H(8, 0)
	SQXTN2_8H(8, 1)
	SQXTN_4H(9, 2)
	SQXTN2_8H(9, 3)
	SQXTN_8B(10, 8)
	SQXTN2_16B(10, 9)
	VST1.P [V10.B16], 16(R8)
	SUBS   $1, R7
	BNE    quants
	B      next
zero:
	MOVW   ZR, (R1)
	ADD    $4, R1, R8
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
	VST1.P [V31.B16], 16(R8)
next:
	ADD    $1024, R0
	ADD    $292, R1
	ADD    $1, R4
	SUBS   $1, R2
	BNE    block
done:
	MOVD R4, ret+24(FP)
	RET

// func actF16Groups(x *float32, dst *byte, groups int)
//
// Rounds 8*groups float32 to fp16 as quant.F32ToF16 does:
//
//	dst[i] = half(x[i]), nearest even; a NaN becomes sign | 0x7e00
TEXT ·actF16Groups(SB), NOSPLIT, $0-24
	MOVD x+0(FP), R0
	MOVD dst+8(FP), R1
	MOVD groups+16(FP), R2
	MOVW $0x8000, R3
	VDUP R3, V20.H8              // sign bit
	MOVW $0x7e00, R3
	VDUP R3, V21.H8              // quiet NaN
	CBZ  R2, done
loop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	FCVTN_4H(2, 0)
	FCVTN2_8H(2, 1)
	FCMEQ_4S(3, 0, 0)            // not NaN
	FCMEQ_4S(4, 1, 1)
	VUZP1 V4.H8, V3.H8, V3.H8    // the masks as 8 x 16 bits
	VUZP2 V1.H8, V0.H8, V5.H8    // the high halves: sign
	VAND  V20.B16, V5.B16, V5.B16
	VORR  V21.B16, V5.B16, V5.B16 // sign | 0x7e00
	VBSL  V5.B16, V2.B16, V3.B16  // not NaN ? half : NaN
	VST1.P [V3.H8], 16(R1)
	SUBS  $1, R2
	BNE   loop
done:
	RET

// func actBF16Groups(x *float32, dst *byte, groups int)
//
// Rounds 8*groups float32 to bfloat16 as quant.F32ToBF16 does:
//
//	b := bits(x[i])
//	if b&0x7fffffff > 0x7f800000 { dst[i] = b>>16 | 64 } // NaN, kept quiet
//	else { dst[i] = (b + 0x7fff + (b>>16)&1) >> 16 }     // nearest even
TEXT ·actBF16Groups(SB), NOSPLIT, $0-24
	MOVD x+0(FP), R0
	MOVD dst+8(FP), R1
	MOVD groups+16(FP), R2
	MOVW $1, R3
	VDUP R3, V20.S4
	MOVW $0x7fff, R3
	VDUP R3, V21.S4
	MOVW $0x7fffffff, R3
	VDUP R3, V22.S4
	MOVW $0x7f800000, R3
	VDUP R3, V23.S4
	MOVW $64, R3
	VDUP R3, V24.S4
	CBZ  R2, done
loop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VUSHR $16, V0.S4, V2.S4
	VUSHR $16, V1.S4, V3.S4
	VORR  V24.B16, V2.B16, V4.B16 // NaN result
	VORR  V24.B16, V3.B16, V5.B16
	VAND  V20.B16, V2.B16, V2.B16
	VAND  V20.B16, V3.B16, V3.B16
	VADD  V21.S4, V2.S4, V2.S4
	VADD  V21.S4, V3.S4, V3.S4
	VADD  V0.S4, V2.S4, V2.S4
	VADD  V1.S4, V3.S4, V3.S4
	VUSHR $16, V2.S4, V2.S4      // rounded result
	VUSHR $16, V3.S4, V3.S4
	VAND  V22.B16, V0.B16, V6.B16
	VAND  V22.B16, V1.B16, V7.B16
	CMHI_4S(6, 6, 23)            // NaN
	CMHI_4S(7, 7, 23)
	VBSL  V2.B16, V4.B16, V6.B16  // NaN ? nan : rounded
	VBSL  V3.B16, V5.B16, V7.B16
	VUZP1 V7.H8, V6.H8, V6.H8
	VST1.P [V6.H8], 16(R1)
	SUBS  $1, R2
	BNE   loop
done:
	RET
