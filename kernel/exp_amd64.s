//go:build !purego && !noasm

#include "textflag.h"

// Eight-lane copies of the constants of expf (exp.go), 32 bytes each.
// log2e
DATA expk<>+0(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expk<>+8(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expk<>+16(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expk<>+24(SB)/8, $0x3fb8aa3b3fb8aa3b
// c1
DATA expk<>+32(SB)/8, $0x3f3180003f318000
DATA expk<>+40(SB)/8, $0x3f3180003f318000
DATA expk<>+48(SB)/8, $0x3f3180003f318000
DATA expk<>+56(SB)/8, $0x3f3180003f318000
// c2
DATA expk<>+64(SB)/8, $0xb95e8083b95e8083
DATA expk<>+72(SB)/8, $0xb95e8083b95e8083
DATA expk<>+80(SB)/8, $0xb95e8083b95e8083
DATA expk<>+88(SB)/8, $0xb95e8083b95e8083
// p5
DATA expk<>+96(SB)/8, $0x3950696739506967
DATA expk<>+104(SB)/8, $0x3950696739506967
DATA expk<>+112(SB)/8, $0x3950696739506967
DATA expk<>+120(SB)/8, $0x3950696739506967
// p4
DATA expk<>+128(SB)/8, $0x3ab743ce3ab743ce
DATA expk<>+136(SB)/8, $0x3ab743ce3ab743ce
DATA expk<>+144(SB)/8, $0x3ab743ce3ab743ce
DATA expk<>+152(SB)/8, $0x3ab743ce3ab743ce
// p3
DATA expk<>+160(SB)/8, $0x3c0889083c088908
DATA expk<>+168(SB)/8, $0x3c0889083c088908
DATA expk<>+176(SB)/8, $0x3c0889083c088908
DATA expk<>+184(SB)/8, $0x3c0889083c088908
// p2
DATA expk<>+192(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expk<>+200(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expk<>+208(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expk<>+216(SB)/8, $0x3d2aa9c13d2aa9c1
// p1
DATA expk<>+224(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expk<>+232(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expk<>+240(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expk<>+248(SB)/8, $0x3e2aaaaa3e2aaaaa
// p0
DATA expk<>+256(SB)/8, $0x3f0000003f000000
DATA expk<>+264(SB)/8, $0x3f0000003f000000
DATA expk<>+272(SB)/8, $0x3f0000003f000000
DATA expk<>+280(SB)/8, $0x3f0000003f000000
// one
DATA expk<>+288(SB)/8, $0x3f8000003f800000
DATA expk<>+296(SB)/8, $0x3f8000003f800000
DATA expk<>+304(SB)/8, $0x3f8000003f800000
DATA expk<>+312(SB)/8, $0x3f8000003f800000
// hi
DATA expk<>+320(SB)/8, $0x42b1721842b17218
DATA expk<>+328(SB)/8, $0x42b1721842b17218
DATA expk<>+336(SB)/8, $0x42b1721842b17218
DATA expk<>+344(SB)/8, $0x42b1721842b17218
// lo
DATA expk<>+352(SB)/8, $0xc2d00000c2d00000
DATA expk<>+360(SB)/8, $0xc2d00000c2d00000
DATA expk<>+368(SB)/8, $0xc2d00000c2d00000
DATA expk<>+376(SB)/8, $0xc2d00000c2d00000
// inf
DATA expk<>+384(SB)/8, $0x7f8000007f800000
DATA expk<>+392(SB)/8, $0x7f8000007f800000
DATA expk<>+400(SB)/8, $0x7f8000007f800000
DATA expk<>+408(SB)/8, $0x7f8000007f800000
// bias
DATA expk<>+416(SB)/8, $0x0000007f0000007f
DATA expk<>+424(SB)/8, $0x0000007f0000007f
DATA expk<>+432(SB)/8, $0x0000007f0000007f
DATA expk<>+440(SB)/8, $0x0000007f0000007f
// sign
DATA expk<>+448(SB)/8, $0x8000000080000000
DATA expk<>+456(SB)/8, $0x8000000080000000
DATA expk<>+464(SB)/8, $0x8000000080000000
DATA expk<>+472(SB)/8, $0x8000000080000000
GLOBL expk<>(SB), RODATA|NOPTR, $480

#define K_ONE  expk<>+288(SB)
#define K_HI   expk<>+320(SB)
#define K_LO   expk<>+352(SB)
#define K_INF  expk<>+384(SB)
#define K_BIAS expk<>+416(SB)
#define K_SIGN expk<>+448(SB)

// LOADK puts the Horner constants in Y6..Y14.
#define LOADK \
	VMOVUPS expk<>+0(SB), Y6 \
	VMOVUPS expk<>+32(SB), Y7 \
	VMOVUPS expk<>+64(SB), Y8 \
	VMOVUPS expk<>+96(SB), Y9 \
	VMOVUPS expk<>+128(SB), Y10 \
	VMOVUPS expk<>+160(SB), Y11 \
	VMOVUPS expk<>+192(SB), Y12 \
	VMOVUPS expk<>+224(SB), Y13 \
	VMOVUPS expk<>+256(SB), Y14

// EXP8 sets Y4 to expf of the eight lanes of Y1, step for step as the Go
// code (each product and sum rounded, no FMA); clobbers Y2, Y3, Y5. The
// input is clamped to [expLo, expHi] for the arithmetic, and the lanes
// outside (or NaN) are then replaced as expf's switch does.
#define EXP8 \
	VMAXPS  K_LO, Y1, Y3 \
	VMINPS  K_HI, Y3, Y3 \
	VMULPS  Y6, Y3, Y2 \
	VROUNDPS $0, Y2, Y2 \
	VMULPS  Y7, Y2, Y5 \
	VSUBPS  Y5, Y3, Y3 \
	VMULPS  Y8, Y2, Y5 \
	VSUBPS  Y5, Y3, Y3 \
	VMULPS  Y9, Y3, Y4 \
	VADDPS  Y10, Y4, Y4 \
	VMULPS  Y3, Y4, Y4 \
	VADDPS  Y11, Y4, Y4 \
	VMULPS  Y3, Y4, Y4 \
	VADDPS  Y12, Y4, Y4 \
	VMULPS  Y3, Y4, Y4 \
	VADDPS  Y13, Y4, Y4 \
	VMULPS  Y3, Y4, Y4 \
	VADDPS  Y14, Y4, Y4 \
	VMULPS  Y3, Y3, Y5 \
	VMULPS  Y5, Y4, Y4 \
	VADDPS  Y3, Y4, Y4 \
	VADDPS  K_ONE, Y4, Y4 \
	VCVTPS2DQ Y2, Y2 \
	VPSRAD  $1, Y2, Y5 \
	VPSUBD  Y5, Y2, Y2 \
	VPADDD  K_BIAS, Y5, Y5 \
	VPSLLD  $23, Y5, Y5 \
	VMULPS  Y5, Y4, Y4 \
	VPADDD  K_BIAS, Y2, Y2 \
	VPSLLD  $23, Y2, Y2 \
	VMULPS  Y2, Y4, Y4 \
	VCMPPS  $0x1e, K_HI, Y1, Y5 \
	VBLENDVPS Y5, K_INF, Y4, Y4 \
	VCMPPS  $0x11, K_LO, Y1, Y5 \
	VANDNPS Y4, Y5, Y4 \
	VCMPPS  $3, Y1, Y1, Y5 \
	VBLENDVPS Y5, Y1, Y4, Y4

// func siluMulAVX2(gate, up *float32, n int)
//
// siluMulGeneric for n a multiple of 8:
//
//	gate[i] = (gate[i] / (1 + expf(-gate[i]))) * up[i]
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-24
	MOVQ gate+0(FP), DI
	MOVQ up+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   silu_done
	LOADK

silu_loop:
	VMOVUPS (DI), Y0
	VXORPS  K_SIGN, Y0, Y1
	EXP8
	VADDPS  K_ONE, Y4, Y4
	VDIVPS  Y4, Y0, Y0
	VMULPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	DECQ    CX
	JNZ     silu_loop

silu_done:
	VZEROUPPER
	RET

// func expSumAVX2(x *float32, n int, mx float32) float64
//
// expSumGeneric with sum 0 for n a multiple of 8: x[i] = expf(x[i] - mx),
// and each group of eight summed as the float32 tree
// ((e0+e4)+(e2+e6)) + ((e1+e5)+(e3+e7)), added in float64 in order.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS mx+16(FP), Y0
	VXORPD       X15, X15, X15
	SHRQ         $3, CX
	JZ           exps_done
	LOADK

exps_loop:
	VMOVUPS (DI), Y1
	VSUBPS  Y0, Y1, Y1
	EXP8
	VMOVUPS Y4, (DI)
	VEXTRACTF128 $1, Y4, X5
	VADDPS  X4, X5, X5          // e0+e4, e1+e5, e2+e6, e3+e7
	VPSHUFD $0x0e, X5, X3
	VADDPS  X3, X5, X5          // (e0+e4)+(e2+e6), (e1+e5)+(e3+e7)
	VPSHUFD $0x01, X5, X3
	VADDSS  X3, X5, X5
	VCVTSS2SD X5, X5, X5
	VADDSD  X5, X15, X15
	ADDQ    $32, DI
	DECQ    CX
	JNZ     exps_loop

exps_done:
	VMOVSD X15, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
//
// maxGeneric for n a multiple of 8: lane-wise max(x, acc) keeps acc when x
// is NaN (VMAXPS returns its second source then), then the eight lanes.
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS expk<>+384(SB), Y0 // +Inf
	VXORPS       K_SIGN, Y0, Y0     // -Inf
	SHRQ         $3, CX
	JZ           max_done

max_loop:
	VMOVUPS (DI), Y1
	VMAXPS  Y0, Y1, Y0
	ADDQ    $32, DI
	DECQ    CX
	JNZ     max_loop

max_done:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X0, X1, X0
	VPSHUFD      $0x0e, X0, X1
	VMAXPS       X0, X1, X0
	VPSHUFD      $0x01, X0, X1
	VMAXSS       X0, X1, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX2(y *float32, n int, a float32)
//
// y[i] *= a for n a multiple of 8.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ         y+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS a+16(FP), Y0
	SHRQ         $3, CX
	JZ           scale_done

scale_loop:
	VMULPS  (DI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     scale_loop

scale_done:
	VZEROUPPER
	RET
