//go:build !purego && !noasm

#include "textflag.h"
#include "neon_arm64.h"

#define FSUB_4S(d, n, m)  WORD $(0x4EA0D400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S - Vm.4S
#define FMIN_4S(d, n, m)  WORD $(0x4EA0F400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = min(Vn.4S, Vm.4S)
#define FDIV_4S(d, n, m)  WORD $(0x6E20FC00 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S / Vm.4S
#define FCMGT_4S(d, n, m) WORD $(0x6EA0E400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S > Vm.4S ? ~0 : 0
#define FNEG_4S(d, n)     WORD $(0x6EA0F800 | ((n)<<5) | (d))             // Vd.4S = -Vn.4S
#define FRINTN_4S(d, n)   WORD $(0x4E218800 | ((n)<<5) | (d))             // Vd.4S = round half even(Vn.4S)
#define SUB_4S(d, n, m)   WORD $(0x6EA08400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S - Vm.4S (int32)
#define SSHR1_4S(d, n)    WORD $(0x4F3F0400 | ((n)<<5) | (d))             // Vd.4S = Vn.4S >> 1 (arithmetic)
#define SHL23_4S(d, n)    WORD $(0x4F375400 | ((n)<<5) | (d))             // Vd.4S = Vn.4S << 23
#define BIT_16B(d, n, m)  WORD $(0x6EA01C00 | ((m)<<16) | ((n)<<5) | (d)) // Vd = Vm ? Vn : Vd, bitwise
#define BIF_16B(d, n, m)  WORD $(0x6EE01C00 | ((m)<<16) | ((n)<<5) | (d)) // Vd = Vm ? Vd : Vn, bitwise
#define BIC_16B(d, n, m)  WORD $(0x4E601C00 | ((m)<<16) | ((n)<<5) | (d)) // Vd = Vn &^ Vm
#define EXT8_16B(d, n, m) WORD $(0x6E004000 | ((m)<<16) | ((n)<<5) | (d)) // Vd = bytes 8..23 of Vn:Vm
#define FADDP_S(d, n)     WORD $(0x7E30D800 | ((n)<<5) | (d))             // Sd = Vn.S[0] + Vn.S[1]

// Four-lane copies of the constants of expf (exp.go), loaded into V16..V29.
DATA expk<>+0(SB)/8, $0x3fb8aa3b3fb8aa3b // V16: log2e
DATA expk<>+8(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expk<>+16(SB)/8, $0x3f3180003f318000 // V17: c1
DATA expk<>+24(SB)/8, $0x3f3180003f318000
DATA expk<>+32(SB)/8, $0xb95e8083b95e8083 // V18: c2
DATA expk<>+40(SB)/8, $0xb95e8083b95e8083
DATA expk<>+48(SB)/8, $0x3950696739506967 // V19: p5
DATA expk<>+56(SB)/8, $0x3950696739506967
DATA expk<>+64(SB)/8, $0x3ab743ce3ab743ce // V20: p4
DATA expk<>+72(SB)/8, $0x3ab743ce3ab743ce
DATA expk<>+80(SB)/8, $0x3c0889083c088908 // V21: p3
DATA expk<>+88(SB)/8, $0x3c0889083c088908
DATA expk<>+96(SB)/8, $0x3d2aa9c13d2aa9c1 // V22: p2
DATA expk<>+104(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expk<>+112(SB)/8, $0x3e2aaaaa3e2aaaaa // V23: p1
DATA expk<>+120(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expk<>+128(SB)/8, $0x3f0000003f000000 // V24: p0
DATA expk<>+136(SB)/8, $0x3f0000003f000000
DATA expk<>+144(SB)/8, $0x3f8000003f800000 // V25: one
DATA expk<>+152(SB)/8, $0x3f8000003f800000
DATA expk<>+160(SB)/8, $0x42b1721842b17218 // V26: hi
DATA expk<>+168(SB)/8, $0x42b1721842b17218
DATA expk<>+176(SB)/8, $0xc2d00000c2d00000 // V27: lo
DATA expk<>+184(SB)/8, $0xc2d00000c2d00000
DATA expk<>+192(SB)/8, $0x7f8000007f800000 // V28: inf
DATA expk<>+200(SB)/8, $0x7f8000007f800000
DATA expk<>+208(SB)/8, $0x0000007f0000007f // V29: bias
DATA expk<>+216(SB)/8, $0x0000007f0000007f
GLOBL expk<>(SB), RODATA|NOPTR, $224

// LOADK loads the constants (clobbers R3).
#define LOADK \
	MOVD $expk<>(SB), R3 \
	VLD1.P 64(R3), [V16.S4, V17.S4, V18.S4, V19.S4] \
	VLD1.P 64(R3), [V20.S4, V21.S4, V22.S4, V23.S4] \
	VLD1.P 64(R3), [V24.S4, V25.S4, V26.S4, V27.S4] \
	VLD1   (R3), [V28.S4, V29.S4]

// EXP4 sets y to expf of the four lanes of x, step for step as the Go code
// (each product and sum rounded, no fused multiply-add); t1..t3 are
// scratch. The arithmetic runs on x clamped to [expLo, expHi]; the lanes
// outside (or NaN) are then replaced as expf's switch does.
#define EXP4(x, y, t1, t2, t3) \
	FMAX_4S(t1, x, 27) \
	FMIN_4S(t1, t1, 26) \
	FMUL_4S(t2, t1, 16) \
	FRINTN_4S(t2, t2) \
	FMUL_4S(t3, t2, 17) \
	FSUB_4S(t1, t1, t3) \
	FMUL_4S(t3, t2, 18) \
	FSUB_4S(t1, t1, t3) \
	FMUL_4S(y, t1, 19) \
	FADD_4S(y, y, 20) \
	FMUL_4S(y, y, t1) \
	FADD_4S(y, y, 21) \
	FMUL_4S(y, y, t1) \
	FADD_4S(y, y, 22) \
	FMUL_4S(y, y, t1) \
	FADD_4S(y, y, 23) \
	FMUL_4S(y, y, t1) \
	FADD_4S(y, y, 24) \
	FMUL_4S(t3, t1, t1) \
	FMUL_4S(y, y, t3) \
	FADD_4S(y, y, t1) \
	FADD_4S(y, y, 25) \
	FCVTNS_4S(t2, t2) \
	SSHR1_4S(t3, t2) \
	SUB_4S(t2, t2, t3) \
	ADD_4S(t3, t3, 29) \
	SHL23_4S(t3, t3) \
	FMUL_4S(y, y, t3) \
	ADD_4S(t2, t2, 29) \
	SHL23_4S(t2, t2) \
	FMUL_4S(y, y, t2) \
	FCMGT_4S(t1, x, 26) \
	BIT_16B(y, 28, t1) \
	FCMGT_4S(t1, 27, x) \
	BIC_16B(y, y, t1) \
	FCMEQ_4S(t1, x, x) \
	BIF_16B(y, x, t1)

// func siluMulNEON(gate, up *float32, n int)
//
// siluMulGeneric for n a multiple of 8:
//
//	gate[i] = (gate[i] / (1 + expf(-gate[i]))) * up[i]
TEXT ·siluMulNEON(SB), NOSPLIT, $0-24
	MOVD gate+0(FP), R0
	MOVD up+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $3, R2
	CBZ  R2, silu_done
	LOADK

silu_loop:
	VLD1 (R0), [V0.S4, V1.S4]
	FNEG_4S(2, 0)
	FNEG_4S(3, 1)
	EXP4(2, 4, 6, 7, 8)
	EXP4(3, 5, 9, 10, 11)
	FADD_4S(4, 4, 25)
	FADD_4S(5, 5, 25)
	FDIV_4S(0, 0, 4)
	FDIV_4S(1, 1, 5)
	VLD1.P 32(R1), [V12.S4, V13.S4]
	FMUL_4S(0, 0, 12)
	FMUL_4S(1, 1, 13)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUB  $1, R2
	CBNZ R2, silu_loop

silu_done:
	RET

// func expSumNEON(x *float32, n int, mx float32) float64
//
// expSumGeneric with sum 0 for n a multiple of 8: x[i] = expf(x[i] - mx),
// and each group of eight summed as the float32 tree
// ((e0+e4)+(e2+e6)) + ((e1+e5)+(e3+e7)), added in float64 in order.
TEXT ·expSumNEON(SB), NOSPLIT, $0-32
	MOVD  x+0(FP), R0
	MOVD  n+8(FP), R2
	FMOVS mx+16(FP), F30
	VDUP  V30.S[0], V30.S4
	FMOVD ZR, F31
	LSR   $3, R2
	CBZ   R2, exps_done
	LOADK

exps_loop:
	VLD1 (R0), [V0.S4, V1.S4]
	FSUB_4S(0, 0, 30)
	FSUB_4S(1, 1, 30)
	EXP4(0, 4, 6, 7, 8)
	EXP4(1, 5, 9, 10, 11)
	VST1.P [V4.S4, V5.S4], 32(R0)
	FADD_4S(6, 4, 5)         // e0+e4, e1+e5, e2+e6, e3+e7
	EXT8_16B(7, 6, 6)
	FADD_4S(6, 6, 7)         // (e0+e4)+(e2+e6), (e1+e5)+(e3+e7)
	FADDP_S(6, 6)
	FCVTSD F6, F6
	FADDD  F6, F31, F31
	SUB  $1, R2
	CBNZ R2, exps_loop

exps_done:
	FMOVD F31, ret+24(FP)
	RET

#define FMAXP_S(d, n)     WORD $(0x7E30F800 | ((n)<<5) | (d))             // Sd = max(Vn.S[0], Vn.S[1])

// func maxNEON(x *float32, n int) float32
//
// maxGeneric for n a multiple of 8 (FMAX gives NaN where maxGeneric passes
// a NaN over; Softmax's result is all NaN either way).
TEXT ·maxNEON(SB), NOSPLIT, $0-20
	MOVD  x+0(FP), R0
	MOVD  n+8(FP), R2
	MOVW  $0xff800000, R3
	VDUP  R3, V0.S4              // -Inf
	VMOV  V0.B16, V1.B16
	LSR   $3, R2
	CBZ   R2, max_done

max_loop:
	VLD1.P 32(R0), [V2.S4, V3.S4]
	FMAX_4S(0, 0, 2)
	FMAX_4S(1, 1, 3)
	SUB  $1, R2
	CBNZ R2, max_loop

max_done:
	FMAX_4S(0, 0, 1)
	EXT8_16B(1, 0, 0)
	FMAX_4S(0, 0, 1)
	FMAXP_S(0, 0)
	FMOVS F0, ret+16(FP)
	RET

// func scaleNEON(y *float32, n int, a float32)
//
// y[i] *= a for n a multiple of 8.
TEXT ·scaleNEON(SB), NOSPLIT, $0-20
	MOVD  y+0(FP), R0
	MOVD  n+8(FP), R2
	FMOVS a+16(FP), F4
	VDUP  V4.S[0], V4.S4
	LSR   $3, R2
	CBZ   R2, scale_done

scale_loop:
	VLD1 (R0), [V0.S4, V1.S4]
	FMUL_4S(0, 0, 4)
	FMUL_4S(1, 1, 4)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUB  $1, R2
	CBNZ R2, scale_loop

scale_done:
	RET
