//go:build !purego && !noasm

#include "textflag.h"

// The TierAVX512VNNI Q8_0 × Q8_0 prefill kernel (see dot_q8_vnni_amd64.go).

// Permutation indices that spread the 8 float32 scales [dw0..dw3, dx0..dx3]
// over 16 lanes so that one multiply gives lane 4c+r = dw_r·dx_c.
DATA q8vIdxW<>+0(SB)/8, $0x0000000100000000
DATA q8vIdxW<>+8(SB)/8, $0x0000000300000002
DATA q8vIdxW<>+16(SB)/8, $0x0000000100000000
DATA q8vIdxW<>+24(SB)/8, $0x0000000300000002
DATA q8vIdxW<>+32(SB)/8, $0x0000000100000000
DATA q8vIdxW<>+40(SB)/8, $0x0000000300000002
DATA q8vIdxW<>+48(SB)/8, $0x0000000100000000
DATA q8vIdxW<>+56(SB)/8, $0x0000000300000002
GLOBL q8vIdxW<>(SB), RODATA|NOPTR, $64

DATA q8vIdxX<>+0(SB)/8, $0x0000000400000004
DATA q8vIdxX<>+8(SB)/8, $0x0000000400000004
DATA q8vIdxX<>+16(SB)/8, $0x0000000500000005
DATA q8vIdxX<>+24(SB)/8, $0x0000000500000005
DATA q8vIdxX<>+32(SB)/8, $0x0000000600000006
DATA q8vIdxX<>+40(SB)/8, $0x0000000600000006
DATA q8vIdxX<>+48(SB)/8, $0x0000000700000007
DATA q8vIdxX<>+56(SB)/8, $0x0000000700000007
GLOBL q8vIdxX<>(SB), RODATA|NOPTR, $64

// Q8VCOL accumulates the activation block whose quants are at Q against
// the four offset weight rows Y6..Y9 (w+128 as unsigned bytes) into
// ACC0..ACC3, with the scales dw_r·dx_c at OFF+4r(R10). Y11 starts each
// product at -128·Σx of its lane, so that the VPDPBUSD leaves exactly
// Σw·x of the lane's 4 elements. Needs Y3 = 0x80 bytes, Y10 = 0; uses
// Y11..Y15.
#define Q8VCOL(Q, OFF, ACC0, ACC1, ACC2, ACC3) \
	VMOVDQU      Q, Y13; \
	VPXOR        Y11, Y11, Y11; \
	VPDPBUSD     Y13, Y3, Y11; \
	VPSUBD       Y11, Y10, Y11; \
	VMOVDQA      Y11, Y12; \
	VPDPBUSD     Y13, Y6, Y12; \
	VCVTDQ2PS    Y12, Y12; \
	VFMADD231PS.BCST OFF(R10), Y12, ACC0; \
	VMOVDQA      Y11, Y14; \
	VPDPBUSD     Y13, Y7, Y14; \
	VCVTDQ2PS    Y14, Y14; \
	VFMADD231PS.BCST OFF+4(R10), Y14, ACC1; \
	VMOVDQA      Y11, Y15; \
	VPDPBUSD     Y13, Y8, Y15; \
	VCVTDQ2PS    Y15, Y15; \
	VFMADD231PS.BCST OFF+8(R10), Y15, ACC2; \
	VPDPBUSD     Y13, Y9, Y11; \
	VCVTDQ2PS    Y11, Y11; \
	VFMADD231PS.BCST OFF+12(R10), Y11, ACC3

// Q8VSCALES stores at D the 16 float32 scales dw_r·dx_c (at 4c+r) of
// the block OFF bytes ahead of the row pointers. The loop makes those of
// the next block while it computes one, so that the fmas never wait for
// this chain and its store. The 8 fp16 scales are gathered with scalar
// loads (cheaper here than vpinsrw or a gather) into X0.
#define Q8VSCALES(OFF, D) \
	MOVWLZX     OFF(R8), AX; \
	MOVWLZX     OFF(R8)(BX*1), SI; \
	SHLL        $16, SI; \
	ORL         SI, AX; \
	MOVWLZX     OFF(R8)(BX*2), SI; \
	MOVWLZX     OFF(R13), R12; \
	SHLL        $16, R12; \
	ORL         R12, SI; \
	SHLQ        $32, SI; \
	ORQ         SI, AX; \
	VMOVQ       AX, X0; \
	MOVWLZX     OFF(DI), AX; \
	MOVWLZX     OFF(DI)(DX*1), SI; \
	SHLL        $16, SI; \
	ORL         SI, AX; \
	MOVWLZX     OFF(DI)(DX*2), SI; \
	MOVWLZX     OFF(R9), R12; \
	SHLL        $16, R12; \
	ORL         R12, SI; \
	SHLQ        $32, SI; \
	ORQ         SI, AX; \
	VPINSRQ     $1, AX, X0, X0; \
	VCVTPH2PS   X0, Y0; \
	VPERMPS     Z0, Z4, Z1; \
	VPERMPS     Z0, Z5, Z2; \
	VMULPS      Z2, Z1, Z1; \
	VMOVUPS     Z1, D

// Q8VBLOCK accumulates one block of the 4 weight rows against the 4
// activation rows, with the scales at (R10).
#define Q8VBLOCK \
	VPXOR     2(R8), Y3, Y6; \
	VPXOR     2(R8)(BX*1), Y3, Y7; \
	VPXOR     2(R8)(BX*2), Y3, Y8; \
	VPXOR     2(R13), Y3, Y9; \
	Q8VCOL(2(DI), 0, Y16, Y17, Y18, Y19); \
	Q8VCOL(2(DI)(DX*1), 16, Y20, Y21, Y22, Y23); \
	Q8VCOL(2(DI)(DX*2), 32, Y24, Y25, Y26, Y27); \
	Q8VCOL(2(R9), 48, Y28, Y29, Y30, Y31)

// Q8VHSUM stores at D the sum of the 8 lanes of ACC (X its low half) in
// hsum8's order: ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7)).
#define Q8VHSUM(ACC, X, D) \
	VEXTRACTF32X4 $1, ACC, X0; \
	VADDPS        X0, X, X0; \
	VMOVHLPS      X0, X0, X1; \
	VADDPS        X1, X0, X0; \
	VMOVSHDUP     X0, X1; \
	VADDSS        X1, X0, X0; \
	VMOVSS        X0, D

// func dotQ8_0x4x4VNNI(w *byte, stride int, x *byte, xstride int, nb int, dst *float32, dstride int)
//
//	for c := range 4 {
//		for r := range 4 {
//			dst[c*dstride/4+r] = dotQ8_0Generic(32*nb, w[r*stride:], x[c*xstride:])
//		}
//	}
//
// (dstride in bytes.) Per block, each weight row is loaded and offset to
// unsigned once for the 4 activations, and each activation once for the 4
// rows; the 16 block products are one VPDPBUSD each, started at the
// activation's -128·Σx so that the int32 lanes are exactly the generic
// ones. The 16 scales are one 16-lane multiply, broadcast from the stack
// into the fused multiply-adds (the same float32 products and fmas).
TEXT ·dotQ8_0x4x4VNNI(SB), NOSPLIT, $128-56
	MOVQ    w+0(FP), R8
	MOVQ    stride+8(FP), BX
	MOVQ    x+16(FP), DI
	MOVQ    xstride+24(FP), DX
	MOVQ    nb+32(FP), CX
	LEAQ    (R8)(BX*2), R13
	ADDQ    BX, R13
	LEAQ    (DI)(DX*2), R9
	ADDQ    DX, R9
	MOVL    $0x80808080, AX
	VPBROADCASTD AX, Y3
	VPXOR   Y10, Y10, Y10
	VMOVDQU32 q8vIdxW<>(SB), Z4
	VMOVDQU32 q8vIdxX<>(SB), Z5
	VPXORD  Y16, Y16, Y16
	VPXORD  Y17, Y17, Y17
	VPXORD  Y18, Y18, Y18
	VPXORD  Y19, Y19, Y19
	VPXORD  Y20, Y20, Y20
	VPXORD  Y21, Y21, Y21
	VPXORD  Y22, Y22, Y22
	VPXORD  Y23, Y23, Y23
	VPXORD  Y24, Y24, Y24
	VPXORD  Y25, Y25, Y25
	VPXORD  Y26, Y26, Y26
	VPXORD  Y27, Y27, Y27
	VPXORD  Y28, Y28, Y28
	VPXORD  Y29, Y29, Y29
	VPXORD  Y30, Y30, Y30
	VPXORD  Y31, Y31, Y31

	MOVQ    SP, R10
	LEAQ    64(SP), R11
	Q8VSCALES(0, (R10))
	DECQ    CX
	JZ      q8v4x4last

q8v4x4loop:
	Q8VSCALES(34, (R11))
	Q8VBLOCK
	ADDQ    $34, R8
	ADDQ    $34, R13
	ADDQ    $34, DI
	ADDQ    $34, R9
	XCHGQ   R10, R11
	DECQ    CX
	JNZ     q8v4x4loop

q8v4x4last:
	Q8VBLOCK

	MOVQ    dst+40(FP), AX
	MOVQ    dstride+48(FP), BX
	Q8VHSUM(Y16, X16, (AX))
	Q8VHSUM(Y17, X17, 4(AX))
	Q8VHSUM(Y18, X18, 8(AX))
	Q8VHSUM(Y19, X19, 12(AX))
	ADDQ    BX, AX
	Q8VHSUM(Y20, X20, (AX))
	Q8VHSUM(Y21, X21, 4(AX))
	Q8VHSUM(Y22, X22, 8(AX))
	Q8VHSUM(Y23, X23, 12(AX))
	ADDQ    BX, AX
	Q8VHSUM(Y24, X24, (AX))
	Q8VHSUM(Y25, X25, 4(AX))
	Q8VHSUM(Y26, X26, 8(AX))
	Q8VHSUM(Y27, X27, 12(AX))
	ADDQ    BX, AX
	Q8VHSUM(Y28, X28, (AX))
	Q8VHSUM(Y29, X29, 4(AX))
	Q8VHSUM(Y30, X30, 8(AX))
	Q8VHSUM(Y31, X31, 12(AX))
	VZEROUPPER
	RET
