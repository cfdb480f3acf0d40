//go:build !purego && !noasm

#include "textflag.h"
#include "neon_arm64.h"

// Dot products of the 32-element block formats with Q8_0 / Q8_1
// activations, bit for bit the generic ones (dot.go): a block's 32 products
// are summed in 8 int32 lanes of 4 consecutive elements (V4: elements
// 0..15, V5: 16..31), each lane converted to float32 and fused-multiply-
// added with the block scale d = d_w*d_x into its float32 accumulator
// (V30: lanes 0..3, V31: lanes 4..7); the 8 accumulators are summed at the
// end in hsum8's order (Q4_0: one int32 sum per block and one float32
// accumulator, as dotQ4_0Generic). Each routine exists twice, with SDOT
// (dotprod tier) and with SMULL/SADDLP (NEON tier): the body is a macro
// taking the DOT macro. V28, V29 are DOT_NEON_EXACT's scratch.
//
// Registers: R0 w, R1 x, R2 blocks left, V0-V3 quants, F22 the "_1" min
// sum, V20, V21, V24-V26 constants.

#define DOTD(acc, a, b) SDOT(acc, a, b)
#define DOTN(acc, a, b) DOT_NEON_EXACT(acc, a, b, 28, 29)

// LOAD_SCALES: F18 = fp16(*R0) * fp16(*R1), advancing both by 2.
#define LOAD_SCALES \
	MOVHU.P 2(R0), R3; \
	MOVHU.P 2(R1), R4; \
	FMOVS   R3, F16; \
	FMOVS   R4, F17; \
	FCVTHS  F16, F16; \
	FCVTHS  F17, F17; \
	FMULS   F17, F16, F18

// LOAD_MS: F22 = fma(fp16(*R0), fp16(*R1), F22) (the Q4_1/Q5_1 min times
// the Q8_1 sum), advancing both by 2.
#define LOAD_MS \
	MOVHU.P 2(R0), R3; \
	MOVHU.P 2(R1), R4; \
	FMOVS   R3, F16; \
	FMOVS   R4, F17; \
	FCVTHS  F16, F16; \
	FCVTHS  F17, F17; \
	FMADDS  F17, F22, F16, F22

// BLOCK_DOT: V4, V5 = the lane sums of V1 x V2 and V0 x V3; then
// V30, V31 += float32(V4), float32(V5) * F18.
#define BLOCK_DOT(DOT) \
	VEOR V4.B16, V4.B16, V4.B16; \
	VEOR V5.B16, V5.B16, V5.B16; \
	DOT(4, 1, 2); \
	DOT(5, 0, 3); \
	SCVTF_4S(4, 4); \
	SCVTF_4S(5, 5); \
	VDUP  V18.S[0], V6.S4; \
	VFMLA V4.S4, V6.S4, V30.S4; \
	VFMLA V5.S4, V6.S4, V31.S4

// INIT zeroes the accumulators.
#define INIT \
	VEOR V30.B16, V30.B16, V30.B16; \
	VEOR V31.B16, V31.B16, V31.B16; \
	VEOR V22.B16, V22.B16, V22.B16

// REDUCE: F30 = hsum8(V30:V31) + F22, in hsum8's order: t = hi + lo,
// u = t[0:2] + t[2:4], u[0] + u[1].
#define REDUCE \
	REDUCE8; \
	FADDS F22, F30, F30

// NIBBLES: V1 = low nibbles of V0, V0 = high nibbles (V20 = 15).
#define NIBBLES \
	VAND  V20.B16, V0.B16, V1.B16; \
	VUSHR $4, V0.B16, V0.B16

// Q8_0 x Q8_0:
//
//	for b := 0; b < nb; b++ {
//		var s int32
//		for j := 0; j < 32; j++ { s += int32(int8(w[b].qs[j])) * int32(int8(x[b].qs[j])) }
//		sum += float32(s) * (w[b].d * x[b].d)  // in 8 lanes, see above
//	}
#define DOT_Q8_0(DOT) \
	INIT; \
	CBZ  R2, done; \
loop: \
	LOAD_SCALES; \
	VLD1.P 32(R0), [V0.B16, V1.B16]; \
	VLD1.P 32(R1), [V2.B16, V3.B16]; \
	VEOR V4.B16, V4.B16, V4.B16; \
	VEOR V5.B16, V5.B16, V5.B16; \
	DOT(4, 0, 2); \
	DOT(5, 1, 3); \
	SCVTF_4S(4, 4); \
	SCVTF_4S(5, 5); \
	VDUP  V18.S[0], V6.S4; \
	VFMLA V4.S4, V6.S4, V30.S4; \
	VFMLA V5.S4, V6.S4, V31.S4; \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE

// Q4_0 x Q8_0 (one float32 accumulator, as the generic dotQ4_0Generic):
//
//	for b := 0; b < nb; b++ {
//		var s int32
//		for j := 0; j < 16; j++ {
//			s += (int32(w[b].qs[j]&15) - 8) * int32(int8(x[b].qs[j]))
//			s += (int32(w[b].qs[j]>>4) - 8) * int32(int8(x[b].qs[j+16]))
//		}
//		sum = fma(float32(s), w[b].d*x[b].d, sum)
//	}
#define DOT_Q4_0(DOT) \
	INIT; \
	VMOVI $15, V20.B16; \
	VMOVI $8, V21.B16; \
	CBZ  R2, done; \
loop: \
	LOAD_SCALES; \
	VLD1.P 16(R0), [V0.B16]; \
	VLD1.P 32(R1), [V2.B16, V3.B16]; \
	NIBBLES; \
	VSUB  V21.B16, V1.B16, V1.B16; \
	VSUB  V21.B16, V0.B16, V0.B16; \
	VEOR V4.B16, V4.B16, V4.B16; \
	VEOR V5.B16, V5.B16, V5.B16; \
	DOT(4, 1, 2); \
	DOT(5, 0, 3); \
	ADD_4S(4, 4, 5); \
	VADDV V4.S4, V4; \
	SCVTF_4S(4, 4); \
	FMADDS F18, F30, F4, F30; \
	SUBS $1, R2; \
	BNE  loop; \
done:

// Q4_1 x Q8_1:
//
//	for b := 0; b < nb; b++ {
//		var s int32
//		for j := 0; j < 16; j++ {
//			s += int32(w[b].qs[j]&15) * int32(int8(x[b].qs[j]))
//			s += int32(w[b].qs[j]>>4) * int32(int8(x[b].qs[j+16]))
//		}
//		sum += float32(s) * (w[b].d * x[b].d)  // in 8 lanes
//		mins = fma(w[b].m, x[b].s, mins)
//	}
//	return sum + mins
#define DOT_Q4_1(DOT) \
	INIT; \
	VMOVI $15, V20.B16; \
	CBZ  R2, done; \
loop: \
	LOAD_SCALES; \
	LOAD_MS; \
	VLD1.P 16(R0), [V0.B16]; \
	VLD1.P 32(R1), [V2.B16, V3.B16]; \
	NIBBLES; \
	BLOCK_DOT(DOT); \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE

// Tables that spread the 32 fifth bits qh of a Q5 block over 32 bytes:
// byte j of the low (high) half selects qh byte j/8 (2 + j/8) and tests
// bit j%8.
DATA q5tab<>+0(SB)/8, $0x0000000000000000
DATA q5tab<>+8(SB)/8, $0x0101010101010101
DATA q5tab<>+16(SB)/8, $0x0202020202020202
DATA q5tab<>+24(SB)/8, $0x0303030303030303
DATA q5tab<>+32(SB)/8, $0x8040201008040201
DATA q5tab<>+40(SB)/8, $0x8040201008040201
GLOBL q5tab<>(SB), RODATA|NOPTR, $48

// Q5_SETUP loads the tables into V24-V26, 15 into V20 and 16 into V21.
#define Q5_SETUP \
	MOVD  $q5tab<>(SB), R5; \
	VLD1  (R5), [V24.B16, V25.B16, V26.B16]; \
	VMOVI $15, V20.B16; \
	VMOVI $16, V21.B16

// Q5_QUANTS: loads qh (4 bytes) and qs (16 bytes) from R0 and leaves in V1
// (elements 0..15) and V0 (16..31) the 5-bit quants q = nibble | fifth<<4.
#define Q5_QUANTS \
	MOVWU.P 4(R0), R5; \
	VLD1.P  16(R0), [V0.B16]; \
	VMOV    R5, V8.S[0]; \
	VTBL    V24.B16, [V8.B16], V9.B16; \
	VTBL    V25.B16, [V8.B16], V10.B16; \
	VCMTST  V26.B16, V9.B16, V9.B16; \
	VCMTST  V26.B16, V10.B16, V10.B16; \
	VAND    V21.B16, V9.B16, V9.B16; \
	VAND    V21.B16, V10.B16, V10.B16; \
	NIBBLES; \
	VORR    V9.B16, V1.B16, V1.B16; \
	VORR    V10.B16, V0.B16, V0.B16

// Q5_0 x Q8_0:
//
//	for b := 0; b < nb; b++ {
//		var s int32
//		for j := 0; j < 16; j++ {
//			h0, h1 := int32(w[b].qh>>j&1)<<4, int32(w[b].qh>>(j+16)&1)<<4
//			s += (int32(w[b].qs[j]&15) | h0 - 16) * int32(int8(x[b].qs[j]))
//			s += (int32(w[b].qs[j]>>4) | h1 - 16) * int32(int8(x[b].qs[j+16]))
//		}
//		sum += float32(s) * (w[b].d * x[b].d)  // in 8 lanes
//	}
#define DOT_Q5_0(DOT) \
	INIT; \
	Q5_SETUP; \
	CBZ  R2, done; \
loop: \
	LOAD_SCALES; \
	Q5_QUANTS; \
	VLD1.P 32(R1), [V2.B16, V3.B16]; \
	VSUB  V21.B16, V1.B16, V1.B16; \
	VSUB  V21.B16, V0.B16, V0.B16; \
	BLOCK_DOT(DOT); \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE

// Q5_1 x Q8_1:
//
//	for b := 0; b < nb; b++ {
//		var s int32
//		for j := 0; j < 16; j++ {
//			h0, h1 := int32(w[b].qh>>j&1)<<4, int32(w[b].qh>>(j+16)&1)<<4
//			s += (int32(w[b].qs[j]&15) | h0) * int32(int8(x[b].qs[j]))
//			s += (int32(w[b].qs[j]>>4) | h1) * int32(int8(x[b].qs[j+16]))
//		}
//		sum += float32(s) * (w[b].d * x[b].d)  // in 8 lanes
//		mins = fma(w[b].m, x[b].s, mins)
//	}
//	return sum + mins
#define DOT_Q5_1(DOT) \
	INIT; \
	Q5_SETUP; \
	CBZ  R2, done; \
loop: \
	LOAD_SCALES; \
	LOAD_MS; \
	Q5_QUANTS; \
	VLD1.P 32(R1), [V2.B16, V3.B16]; \
	BLOCK_DOT(DOT); \
	SUBS $1, R2; \
	BNE  loop; \
done: \
	REDUCE

// func dotQ8_0Q8_0NEON(w, x *byte, nb int) float32
TEXT ·dotQ8_0Q8_0NEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q8_0(DOTN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ8_0Q8_0DotProd(w, x *byte, nb int) float32
TEXT ·dotQ8_0Q8_0DotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q8_0(DOTD)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ4_0Q8_0NEON(w, x *byte, nb int) float32
TEXT ·dotQ4_0Q8_0NEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q4_0(DOTN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ4_0Q8_0DotProd(w, x *byte, nb int) float32
TEXT ·dotQ4_0Q8_0DotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q4_0(DOTD)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ4_1Q8_1NEON(w, x *byte, nb int) float32
TEXT ·dotQ4_1Q8_1NEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q4_1(DOTN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ4_1Q8_1DotProd(w, x *byte, nb int) float32
TEXT ·dotQ4_1Q8_1DotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q4_1(DOTD)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ5_0Q8_0NEON(w, x *byte, nb int) float32
TEXT ·dotQ5_0Q8_0NEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q5_0(DOTN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ5_0Q8_0DotProd(w, x *byte, nb int) float32
TEXT ·dotQ5_0Q8_0DotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q5_0(DOTD)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ5_1Q8_1NEON(w, x *byte, nb int) float32
TEXT ·dotQ5_1Q8_1NEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q5_1(DOTN)
	FMOVS F30, ret+24(FP)
	RET

// func dotQ5_1Q8_1DotProd(w, x *byte, nb int) float32
TEXT ·dotQ5_1Q8_1DotProd(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD nb+16(FP), R2
	DOT_Q5_1(DOTD)
	FMOVS F30, ret+24(FP)
	RET
