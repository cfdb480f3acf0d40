//go:build !purego && !noasm

#include "textflag.h"

// AVX2 (+FMA, F16C) kernels. Every routine is bit-identical to its generic
// Go version (dot.go, actquant.go); the comment above each gives that Go.
// Integer sums are exact in any order; the float operations are done in the
// order the comments give.

DATA absmask<>+0(SB)/8, $0x7fffffff7fffffff
DATA absmask<>+8(SB)/8, $0x7fffffff7fffffff
DATA absmask<>+16(SB)/8, $0x7fffffff7fffffff
DATA absmask<>+24(SB)/8, $0x7fffffff7fffffff
GLOBL absmask<>(SB), RODATA|NOPTR, $32

DATA perm8<>+0(SB)/8, $0x0000000400000000
DATA perm8<>+8(SB)/8, $0x0000000500000001
DATA perm8<>+16(SB)/8, $0x0000000600000002
DATA perm8<>+24(SB)/8, $0x0000000700000003
GLOBL perm8<>(SB), RODATA|NOPTR, $32

DATA nib<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nib<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL nib<>(SB), RODATA|NOPTR, $32

DATA eight<>+0(SB)/8, $0x0808080808080808
DATA eight<>+8(SB)/8, $0x0808080808080808
DATA eight<>+16(SB)/8, $0x0808080808080808
DATA eight<>+24(SB)/8, $0x0808080808080808
GLOBL eight<>(SB), RODATA|NOPTR, $32

DATA ones16<>+0(SB)/8, $0x0001000100010001
DATA ones16<>+8(SB)/8, $0x0001000100010001
DATA ones16<>+16(SB)/8, $0x0001000100010001
DATA ones16<>+24(SB)/8, $0x0001000100010001
GLOBL ones16<>(SB), RODATA|NOPTR, $32

DATA bitshuf<>+0(SB)/8, $0x0000000000000000
DATA bitshuf<>+8(SB)/8, $0x0101010101010101
DATA bitshuf<>+16(SB)/8, $0x0202020202020202
DATA bitshuf<>+24(SB)/8, $0x0303030303030303
GLOBL bitshuf<>(SB), RODATA|NOPTR, $32

DATA bitmask<>+0(SB)/8, $0x7fbfdfeff7fbfdfe
DATA bitmask<>+8(SB)/8, $0x7fbfdfeff7fbfdfe
DATA bitmask<>+16(SB)/8, $0x7fbfdfeff7fbfdfe
DATA bitmask<>+24(SB)/8, $0x7fbfdfeff7fbfdfe
GLOBL bitmask<>(SB), RODATA|NOPTR, $32

DATA hif0<>+0(SB)/8, $0xf0f0f0f0f0f0f0f0
DATA hif0<>+8(SB)/8, $0xf0f0f0f0f0f0f0f0
DATA hif0<>+16(SB)/8, $0xf0f0f0f0f0f0f0f0
DATA hif0<>+24(SB)/8, $0xf0f0f0f0f0f0f0f0
GLOBL hif0<>(SB), RODATA|NOPTR, $32

DATA bit10<>+0(SB)/8, $0x1010101010101010
DATA bit10<>+8(SB)/8, $0x1010101010101010
DATA bit10<>+16(SB)/8, $0x1010101010101010
DATA bit10<>+24(SB)/8, $0x1010101010101010
GLOBL bit10<>(SB), RODATA|NOPTR, $32

DATA f127<>+0(SB)/4, $127.0
GLOBL f127<>(SB), RODATA|NOPTR, $4

// SCALES4 stores at 0(SP) the 4 floats d_w[r]·d_x for the blocks at R8,
// R9, R10, R11 (fp16 scales) and the activation block at DI. Uses X1, X2,
// AX.
#define SCALES4 \
	VPINSRW      $0, (R8), X1, X1; \
	VPINSRW      $1, (R9), X1, X1; \
	VPINSRW      $2, (R10), X1, X1; \
	VPINSRW      $3, (R11), X1, X1; \
	VCVTPH2PS    X1, X1; \
	MOVWLZX      (DI), AX; \
	VMOVD        AX, X2; \
	VCVTPH2PS    X2, X2; \
	VBROADCASTSS X2, X2; \
	VMULPS       X2, X1, X1; \
	VMOVUPS      X1, 0(SP)

// Q8ACCS accumulates the Q8_0 block of row B against Y12 into ACC with the
// scale at OFF(SP): ACC = fma(broadcast(scale), lane sums, ACC).
#define Q8ACCS(B, OFF, ACC) \
	VMOVDQU      2(B), Y8; \
	VPSIGNB      Y8, Y8, Y9; \
	VPSIGNB      Y8, Y12, Y1; \
	VPMADDUBSW   Y1, Y9, Y1; \
	VPMADDWD     Y13, Y1, Y1; \
	VCVTDQ2PS    Y1, Y1; \
	VBROADCASTSS OFF(SP), Y3; \
	VFMADD231PS  Y3, Y1, ACC

// Q5ACCS accumulates the Q5_0 block of row B against Y12 into ACC with the
// scale at OFF(SP). Needs Y15 = 0x0f, Y14 = 0xf0, Y13 = 1 words, Y10/Y11 =
// bitshuf/bitmask; uses Y1, Y2, Y6..Y9, AX.
#define Q5ACCS(B, OFF, ACC) \
	VMOVDQU      6(B), X1; \
	VPSRLW       $4, X1, X2; \
	VINSERTI128  $1, X2, Y1, Y1; \
	VPAND        Y15, Y1, Y1; \
	MOVL         2(B), AX; \
	VMOVD        AX, X6; \
	VPBROADCASTD X6, Y6; \
	VPSHUFB      Y10, Y6, Y6; \
	VPOR         Y11, Y6, Y6; \
	VPCMPEQB     Y7, Y7, Y7; \
	VPCMPEQB     Y7, Y6, Y6; \
	VPANDN       Y14, Y6, Y6; \
	VPOR         Y6, Y1, Y1; \
	VPSIGNB      Y1, Y1, Y9; \
	VPSIGNB      Y1, Y12, Y8; \
	VPMADDUBSW   Y8, Y9, Y8; \
	VPMADDWD     Y13, Y8, Y8; \
	VCVTDQ2PS    Y8, Y8; \
	VBROADCASTSS OFF(SP), Y2; \
	VFMADD231PS  Y2, Y8, ACC

// Q5X2ROW accumulates row B's Q5_0 block against the two activations in
// Y12, Y13 into ACC0, ACC1 with the scales at OFF(SP), OFF+16(SP).
// Constants from memory; uses Y1, Y2, Y6..Y9, AX.
#define Q5X2ROW(B, OFF, ACC0, ACC1) \
	VMOVDQU      6(B), X1; \
	VPSRLW       $4, X1, X2; \
	VINSERTI128  $1, X2, Y1, Y1; \
	VPAND        nib<>(SB), Y1, Y1; \
	MOVL         2(B), AX; \
	VMOVD        AX, X6; \
	VPBROADCASTD X6, Y6; \
	VPSHUFB      bitshuf<>(SB), Y6, Y6; \
	VPOR         bitmask<>(SB), Y6, Y6; \
	VPCMPEQB     allones<>(SB), Y6, Y6; \
	VPANDN       hif0<>(SB), Y6, Y6; \
	VPOR         Y6, Y1, Y1; \
	VPSIGNB      Y1, Y1, Y9; \
	VPSIGNB      Y1, Y12, Y8; \
	VPMADDUBSW   Y8, Y9, Y8; \
	VPMADDWD     ones16<>(SB), Y8, Y8; \
	VCVTDQ2PS    Y8, Y8; \
	VBROADCASTSS OFF(SP), Y7; \
	VFMADD231PS  Y7, Y8, ACC0; \
	VPSIGNB      Y1, Y13, Y8; \
	VPMADDUBSW   Y8, Y9, Y8; \
	VPMADDWD     ones16<>(SB), Y8, Y8; \
	VCVTDQ2PS    Y8, Y8; \
	VBROADCASTSS OFF+16(SP), Y7; \
	VFMADD231PS  Y7, Y8, ACC1

// SCALES4X2 stores at 0(SP) and 16(SP) the 4 rows' d_w (fp16 at R8..R11)
// times the activations' d_x (fp16 at (DI) and (DI)(DX*1)). Uses X7..X9, AX.
#define SCALES4X2 \
	VPINSRW      $0, (R8), X7, X7; \
	VPINSRW      $1, (R9), X7, X7; \
	VPINSRW      $2, (R10), X7, X7; \
	VPINSRW      $3, (R11), X7, X7; \
	VCVTPH2PS    X7, X7; \
	MOVWLZX      (DI), AX; \
	VMOVD        AX, X8; \
	VCVTPH2PS    X8, X8; \
	VBROADCASTSS X8, X8; \
	VMULPS       X8, X7, X9; \
	VMOVUPS      X9, 0(SP); \
	MOVWLZX      (DI)(DX*1), AX; \
	VMOVD        AX, X8; \
	VCVTPH2PS    X8, X8; \
	VBROADCASTSS X8, X8; \
	VMULPS       X8, X7, X9; \
	VMOVUPS      X9, 16(SP)

// Q8X2ROW accumulates weight row B's block against the two activations in
// Y6, Y7 into ACC0 and ACC1, with the rows' scales d_w·d_x at OFF(SP) and
// OFF+16(SP). Uses Y0..Y3.
#define Q8X2ROW(B, OFF, ACC0, ACC1) \
	VMOVDQU      2(B), Y0; \
	VPSIGNB      Y0, Y0, Y1; \
	VPSIGNB      Y0, Y6, Y2; \
	VPMADDUBSW   Y2, Y1, Y2; \
	VPMADDWD     ones16<>(SB), Y2, Y2; \
	VCVTDQ2PS    Y2, Y2; \
	VBROADCASTSS OFF(SP), Y3; \
	VFMADD231PS  Y3, Y2, ACC0; \
	VPSIGNB      Y0, Y7, Y2; \
	VPMADDUBSW   Y2, Y1, Y2; \
	VPMADDWD     ones16<>(SB), Y2, Y2; \
	VCVTDQ2PS    Y2, Y2; \
	VBROADCASTSS OFF+16(SP), Y3; \
	VFMADD231PS  Y3, Y2, ACC1

// DX2SCALES stores to 0(SP) and 16(SP) the 4 rows' d_w (X0) times the
// activations' scales (fp16 at (DI) and (DI)(DX*1)). Uses X1, X2, AX.
#define DX2SCALES \
	MOVWLZX      (DI), AX; \
	VMOVD        AX, X1; \
	VCVTPH2PS    X1, X1; \
	VBROADCASTSS X1, X1; \
	VMULPS       X1, X0, X2; \
	VMOVUPS      X2, 0(SP); \
	MOVWLZX      (DI)(DX*1), AX; \
	VMOVD        AX, X1; \
	VCVTPH2PS    X1, X1; \
	VBROADCASTSS X1, X1; \
	VMULPS       X1, X0, X2; \
	VMOVUPS      X2, 16(SP)

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

// HSUMI32 leaves the (exact) sum of Y's 8 int32 lanes in every lane of X.
#define HSUMI32(Y, X, T) \
	VEXTRACTI128 $1, Y, T; \
	VPADDD       T, X, X; \
	VPSHUFD      $0x4e, X, T; \
	VPADDD       T, X, X; \
	VPSHUFD      $0xb1, X, T; \
	VPADDD       T, X, X

// F16SCALE sets X to float32(fp16 at A) * float32(fp16 at B), R clobbered.
#define F16SCALE(A, B, X, T, R) \
	MOVWLZX    A, R; \
	VMOVD      R, X; \
	VCVTPH2PS  X, X; \
	MOVWLZX    B, R; \
	VMOVD      R, T; \
	VCVTPH2PS  T, T; \
	VMULSS     T, X, X

// Q8BLOCK quantizes the 32 floats at SI into Y0, Y1, Y2, Y3 (int32, not yet
// packed) and X7 = d, as QuantizeQ8_0 (quant/activation.go):
//
//	amax := maxps over |x| in the AVX2 lane order
//	d := amax / 127
//	id := 127 / amax, or 0 when amax == 0
//	q[j] = cvtps2dq(roundps(x[j] * id))
#define Q8BLOCK \
	VMOVUPS      (SI), Y0; \
	VMOVUPS      32(SI), Y1; \
	VMOVUPS      64(SI), Y2; \
	VMOVUPS      96(SI), Y3; \
	VANDPS       Y15, Y0, Y4; \
	VANDPS       Y15, Y1, Y5; \
	VMAXPS       Y5, Y4, Y4; \
	VANDPS       Y15, Y2, Y5; \
	VMAXPS       Y5, Y4, Y4; \
	VANDPS       Y15, Y3, Y5; \
	VMAXPS       Y5, Y4, Y4; \
	VEXTRACTF128 $1, Y4, X5; \
	VMAXPS       X4, X5, X5; \
	VMOVHLPS     X5, X5, X6; \
	VMAXPS       X6, X5, X5; \
	VMOVSHDUP    X5, X6; \
	VMAXSS       X6, X5, X5; \
	VDIVSS       X14, X5, X7; \
	VDIVSS       X5, X14, X8; \
	VXORPS       X9, X9, X9; \
	VCMPSS       $4, X9, X5, X9; \
	VANDPS       X9, X8, X8; \
	VBROADCASTSS X8, Y8; \
	VMULPS       Y8, Y0, Y0; \
	VMULPS       Y8, Y1, Y1; \
	VMULPS       Y8, Y2, Y2; \
	VMULPS       Y8, Y3, Y3; \
	VROUNDPS     $0, Y0, Y0; \
	VROUNDPS     $0, Y1, Y1; \
	VROUNDPS     $0, Y2, Y2; \
	VROUNDPS     $0, Y3, Y3; \
	VCVTPS2DQ    Y0, Y0; \
	VCVTPS2DQ    Y1, Y1; \
	VCVTPS2DQ    Y2, Y2; \
	VCVTPS2DQ    Y3, Y3

// Q8PACK packs Y0..Y3 to 32 saturated int8 in element order into Y4.
#define Q8PACK \
	VPACKSSDW Y1, Y0, Y4; \
	VPACKSSDW Y3, Y2, Y5; \
	VPACKSSWB Y5, Y4, Y4; \
	VPERMD    Y4, Y13, Y4

// func quantQ8_0AVX2(x *float32, dst *byte, nb int)
//
//	quant.QuantizeQ8_0(x[:32*nb], dst[:34*nb])
TEXT ·quantQ8_0AVX2(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         nb+16(FP), CX
	VMOVDQU      absmask<>(SB), Y15
	VBROADCASTSS f127<>(SB), X14
	VMOVDQU      perm8<>(SB), Y13

q80loop:
	Q8BLOCK
	VCVTPS2PH $0, X7, X7
	VPEXTRW   $0, X7, (DI)
	Q8PACK
	VMOVDQU   Y4, 2(DI)
	ADDQ      $128, SI
	ADDQ      $34, DI
	DECQ      CX
	JNZ       q80loop
	VZEROUPPER
	RET

// func quantQ8_1AVX2(x *float32, dst *byte, nb int)
//
//	quant.QuantizeQ8_1(x[:32*nb], dst[:36*nb])
//
// (s = fp16(d * float32(the wrapping int32 sum of the unsaturated q))).
TEXT ·quantQ8_1AVX2(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         nb+16(FP), CX
	VMOVDQU      absmask<>(SB), Y15
	VBROADCASTSS f127<>(SB), X14
	VMOVDQU      perm8<>(SB), Y13

q81loop:
	Q8BLOCK
	VCVTPS2PH $0, X7, X8
	VPEXTRW   $0, X8, (DI)
	VPADDD    Y1, Y0, Y4
	VPADDD    Y3, Y2, Y5
	VPADDD    Y5, Y4, Y4
	HSUMI32(Y4, X4, X5)
	VMOVD     X4, AX
	VCVTSI2SSL AX, X8, X8
	VMULSS    X8, X7, X8
	VCVTPS2PH $0, X8, X8
	VPEXTRW   $0, X8, 2(DI)
	Q8PACK
	VMOVDQU   Y4, 4(DI)
	ADDQ      $128, SI
	ADDQ      $36, DI
	DECQ      CX
	JNZ       q81loop
	VZEROUPPER
	RET

// func cvtF16AVX2(x *float32, dst *byte, n8 int)
//
//	for i := range 8 * n8 { binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToF16(x[i])) }
//
// (vcvtps2ph, round to nearest even; a NaN keeps its sign and upper payload
// bits, so only NaNs other than ±0x7fc00000 encode differently from
// F32ToF16).
TEXT ·cvtF16AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n8+16(FP), CX

f16cvtloop:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X0
	VMOVDQU   X0, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	DECQ      CX
	JNZ       f16cvtloop
	VZEROUPPER
	RET

// Q4ROW sets P to the 8 int32 lane sums of the Q4_0 block at B (nibbles
// minus 8) times the int8 activations in Y12: lane l = Σ_{k<4} w[4l+k]·x[4l+k].
// Uses Y8..Y10; needs Y15 = 0x0f bytes, Y14 = 8 bytes, Y13 = 1 words.
#define Q4ROW(B, P) \
	VMOVDQU     2(B), X8; \
	VPSRLW      $4, X8, X9; \
	VINSERTI128 $1, X9, Y8, Y8; \
	VPAND       Y15, Y8, Y8; \
	VPSUBB      Y14, Y8, Y8; \
	VPSIGNB     Y8, Y8, Y9; \
	VPSIGNB     Y8, Y12, Y10; \
	VPMADDUBSW  Y10, Y9, Y9; \
	VPMADDWD    Y13, Y9, P

// func dotQ4_0AVX2(w, x *byte, nb int) float32
//
// dotQ4_0Generic: llama.cpp's order for Q4_0 (its repacked 8×8 kernels),
//
//	var acc float32
//	for each block b: acc = fma32(float32(Σ_j (q[j]-8)·x[j]), d_w*d_x, acc)
TEXT ·dotQ4_0AVX2(SB), NOSPLIT, $0-28
	MOVQ    w+0(FP), SI
	MOVQ    x+8(FP), DI
	MOVQ    nb+16(FP), CX
	VMOVDQU nib<>(SB), Y15
	VMOVDQU eight<>(SB), Y14
	VMOVDQU ones16<>(SB), Y13
	VXORPS  X0, X0, X0

q40loop:
	VMOVDQU     2(DI), Y12
	Q4ROW(SI, Y1)
	HSUMI32(Y1, X1, X2)
	VCVTDQ2PS   X1, X1
	F16SCALE((SI), (DI), X3, X4, AX)
	VFMADD231SS X3, X1, X0
	ADDQ        $18, SI
	ADDQ        $34, DI
	DECQ        CX
	JNZ         q40loop
	VMOVSS      X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotQ4_0x4AVX2(w *byte, stride int, x *byte, nb int, dst *float32)
//
//	for r := range 4 { dst[r] = dotQ4_0Generic(32*nb, w[r*stride:], x) }
//
// One activation block against 4 weight rows: the rows' lane sums are
// reduced together (vphaddd) and the 4 block sums scaled and accumulated in
// the 4 lanes of X11, each lane exactly the single-row computation.
TEXT ·dotQ4_0x4AVX2(SB), NOSPLIT, $0-40
	MOVQ    w+0(FP), R8
	MOVQ    stride+8(FP), DX
	MOVQ    x+16(FP), DI
	MOVQ    nb+24(FP), CX
	LEAQ    (R8)(DX*1), R9
	LEAQ    (R9)(DX*1), R10
	LEAQ    (R10)(DX*1), R11
	VMOVDQU nib<>(SB), Y15
	VMOVDQU eight<>(SB), Y14
	VMOVDQU ones16<>(SB), Y13
	VXORPS  X11, X11, X11

q40x4loop:
	VMOVDQU      2(DI), Y12
	Q4ROW(R8, Y0)
	Q4ROW(R9, Y1)
	Q4ROW(R10, Y2)
	Q4ROW(R11, Y3)
	VPHADDD      Y1, Y0, Y0
	VPHADDD      Y3, Y2, Y2
	VPHADDD      Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VCVTDQ2PS    X0, X0
	VPINSRW      $0, (R8), X4, X4
	VPINSRW      $1, (R9), X4, X4
	VPINSRW      $2, (R10), X4, X4
	VPINSRW      $3, (R11), X4, X4
	VCVTPH2PS    X4, X4
	MOVWLZX      (DI), AX
	VMOVD        AX, X5
	VCVTPH2PS    X5, X5
	VBROADCASTSS X5, X5
	VMULPS       X5, X4, X4
	VFMADD231PS  X4, X0, X11
	ADDQ         $18, R8
	ADDQ         $18, R9
	ADDQ         $18, R10
	ADDQ         $18, R11
	ADDQ         $34, DI
	DECQ         CX
	JNZ          q40x4loop
	MOVQ         dst+32(FP), AX
	VMOVUPS      X11, (AX)
	VZEROUPPER
	RET

// Q8ROW sets P to the float32 lane sums of the int8 block at B times the
// int8 activations in Y12 (vpsignb trick: exact for quants in [-127, 127]).
// Uses Y8, Y9; needs Y13 = 1 words.
#define Q8ROW(B, P) \
	VMOVDQU    B, Y8; \
	VPSIGNB    Y8, Y8, Y9; \
	VPSIGNB    Y8, Y12, P; \
	VPMADDUBSW P, Y9, P; \
	VPMADDWD   Y13, P, P; \
	VCVTDQ2PS  P, P

// func dotQ8_0AVX2(w, x *byte, nb int) float32
//
// dotQ8_0Generic (ggml_vec_dot_q8_0_q8_0, AVX2):
//
//	var acc [8]float32
//	for each block b, lane l: acc[l] = fma32(d_w*d_x, float32(Σ_{k<4} w[4l+k]·x[4l+k]), acc[l])
//	return hsum8(&acc)
TEXT ·dotQ8_0AVX2(SB), NOSPLIT, $0-28
	MOVQ    w+0(FP), SI
	MOVQ    x+8(FP), DI
	MOVQ    nb+16(FP), CX
	VMOVDQU ones16<>(SB), Y13
	VXORPS  Y0, Y0, Y0

q80dloop:
	VMOVDQU      2(DI), Y12
	Q8ROW(2(SI), Y1)
	F16SCALE((SI), (DI), X3, X4, AX)
	VBROADCASTSS X3, Y3
	VFMADD231PS  Y3, Y1, Y0
	ADDQ         $34, SI
	ADDQ         $34, DI
	DECQ         CX
	JNZ          q80dloop
	HSUM8(Y0, X0, X1)
	VMOVSS       X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotQ8_0x4AVX2(w *byte, stride int, x *byte, nb int, dst *float32)
//
//	for r := range 4 { dst[r] = dotQ8_0Generic(32*nb, w[r*stride:], x) }
//
// The 4 rows' scales d_w·d_x are computed together per block (stored at
// 0(SP) for broadcasting), each row keeps its own 8-lane accumulator.
TEXT ·dotQ8_0x4AVX2(SB), NOSPLIT, $16-40
	MOVQ    w+0(FP), R8
	MOVQ    stride+8(FP), DX
	MOVQ    x+16(FP), DI
	MOVQ    nb+24(FP), CX
	LEAQ    (R8)(DX*1), R9
	LEAQ    (R9)(DX*1), R10
	LEAQ    (R10)(DX*1), R11
	LEAQ    (R11)(DX*1), R12
	LEAQ    (R12)(DX*4), R12       // prefetch pointer: two groups of 4 rows ahead
	VMOVDQU ones16<>(SB), Y13
	VXORPS  Y4, Y4, Y4
	VXORPS  Y5, Y5, Y5
	VXORPS  Y6, Y6, Y6
	VXORPS  Y7, Y7, Y7

q80x4loop:
	PREFETCHT0 (R12)
	PREFETCHT0 64(R12)
	PREFETCHT0 128(R12)
	ADDQ       $136, R12
	VMOVDQU 2(DI), Y12
	SCALES4
	Q8ACCS(R8, 0, Y4)
	Q8ACCS(R9, 4, Y5)
	Q8ACCS(R10, 8, Y6)
	Q8ACCS(R11, 12, Y7)
	ADDQ    $34, R8
	ADDQ    $34, R9
	ADDQ    $34, R10
	ADDQ    $34, R11
	ADDQ    $34, DI
	DECQ    CX
	JNZ     q80x4loop
	MOVQ    dst+32(FP), AX
	HSUM8(Y4, X4, X1)
	VMOVSS  X4, (AX)
	HSUM8(Y5, X5, X1)
	VMOVSS  X5, 4(AX)
	HSUM8(Y6, X6, X1)
	VMOVSS  X6, 8(AX)
	HSUM8(Y7, X7, X1)
	VMOVSS  X7, 12(AX)
	VZEROUPPER
	RET

// Q5BITS sets Y6 to 0xff in byte j where bit j of the uint32 at A is set
// (ggml's bytes_from_bits_32). Needs Y10 = bitshuf, Y11 = bitmask.
#define Q5BITS(A) \
	MOVL         A, AX; \
	VMOVD        AX, X6; \
	VPBROADCASTD X6, Y6; \
	VPSHUFB      Y10, Y6, Y6; \
	VPOR         Y11, Y6, Y6; \
	VPCMPEQB     Y7, Y7, Y7; \
	VPCMPEQB     Y7, Y6, Y6

// NIBBLES sets Y1 to the 32 nibbles of the 16 bytes at A (element j < 16:
// low nibble of byte j; j+16: its high nibble). Needs Y15 = 0x0f bytes.
#define NIBBLES(A) \
	VMOVDQU     A, X1; \
	VPSRLW      $4, X1, X2; \
	VINSERTI128 $1, X2, Y1, Y1; \
	VPAND       Y15, Y1, Y1

// func dotQ5_0AVX2(w, x *byte, nb int) float32
//
// dotQ5_0Generic: as dotQ8_0AVX2 with w[j] = (nibble | fifth bit<<4) - 16.
TEXT ·dotQ5_0AVX2(SB), NOSPLIT, $0-28
	MOVQ    w+0(FP), SI
	MOVQ    x+8(FP), DI
	MOVQ    nb+16(FP), CX
	VMOVDQU nib<>(SB), Y15
	VMOVDQU hif0<>(SB), Y14
	VMOVDQU ones16<>(SB), Y13
	VMOVDQU bitshuf<>(SB), Y10
	VMOVDQU bitmask<>(SB), Y11
	VXORPS  Y0, Y0, Y0

q50loop:
	NIBBLES(6(SI))
	Q5BITS(2(SI))
	VPANDN       Y14, Y6, Y6
	VPOR         Y6, Y1, Y1
	VMOVDQU      2(DI), Y12
	VPSIGNB      Y1, Y1, Y9
	VPSIGNB      Y1, Y12, Y8
	VPMADDUBSW   Y8, Y9, Y8
	VPMADDWD     Y13, Y8, Y8
	VCVTDQ2PS    Y8, Y8
	F16SCALE((SI), (DI), X3, X4, AX)
	VBROADCASTSS X3, Y3
	VFMADD231PS  Y3, Y8, Y0
	ADDQ         $22, SI
	ADDQ         $34, DI
	DECQ         CX
	JNZ          q50loop
	HSUM8(Y0, X0, X1)
	VMOVSS       X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotQ4_1AVX2(w, x *byte, nb int) float32
//
// dotQ4_1Generic (ggml_vec_dot_q4_1_q8_1, AVX2):
//
//	var acc [8]float32; var summs float32
//	for each block b {
//		summs = fma32(m_w, s_x, summs)
//		for lane l: acc[l] = fma32(d_w*d_x, float32(Σ_{k<4} q[4l+k]·x[4l+k]), acc[l])
//	}
//	return hsum8(&acc) + summs
TEXT ·dotQ4_1AVX2(SB), NOSPLIT, $0-28
	MOVQ    w+0(FP), SI
	MOVQ    x+8(FP), DI
	MOVQ    nb+16(FP), CX
	VMOVDQU nib<>(SB), Y15
	VMOVDQU ones16<>(SB), Y13
	VXORPS  Y0, Y0, Y0
	VXORPS  X12, X12, X12

q41loop:
	MOVWLZX      2(SI), AX
	VMOVD        AX, X3
	VCVTPH2PS    X3, X3
	MOVWLZX      2(DI), AX
	VMOVD        AX, X4
	VCVTPH2PS    X4, X4
	VFMADD231SS  X4, X3, X12
	NIBBLES(4(SI))
	VMOVDQU      4(DI), Y2
	VPMADDUBSW   Y2, Y1, Y8
	VPMADDWD     Y13, Y8, Y8
	VCVTDQ2PS    Y8, Y8
	F16SCALE((SI), (DI), X3, X4, AX)
	VBROADCASTSS X3, Y3
	VFMADD231PS  Y3, Y8, Y0
	ADDQ         $20, SI
	ADDQ         $36, DI
	DECQ         CX
	JNZ          q41loop
	HSUM8(Y0, X0, X1)
	VADDSS       X12, X0, X0
	VMOVSS       X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotQ5_1AVX2(w, x *byte, nb int) float32
//
// dotQ5_1Generic: as dotQ4_1AVX2 with q[j] = nibble | fifth bit<<4.
TEXT ·dotQ5_1AVX2(SB), NOSPLIT, $0-28
	MOVQ    w+0(FP), SI
	MOVQ    x+8(FP), DI
	MOVQ    nb+16(FP), CX
	VMOVDQU nib<>(SB), Y15
	VMOVDQU bit10<>(SB), Y14
	VMOVDQU ones16<>(SB), Y13
	VMOVDQU bitshuf<>(SB), Y10
	VMOVDQU bitmask<>(SB), Y11
	VXORPS  Y0, Y0, Y0
	VXORPS  X12, X12, X12

q51loop:
	MOVWLZX      2(SI), AX
	VMOVD        AX, X3
	VCVTPH2PS    X3, X3
	MOVWLZX      2(DI), AX
	VMOVD        AX, X4
	VCVTPH2PS    X4, X4
	VFMADD231SS  X4, X3, X12
	NIBBLES(8(SI))
	Q5BITS(4(SI))
	VPAND        Y14, Y6, Y6
	VPOR         Y6, Y1, Y1
	VMOVDQU      4(DI), Y2
	VPMADDUBSW   Y2, Y1, Y8
	VPMADDWD     Y13, Y8, Y8
	VCVTDQ2PS    Y8, Y8
	F16SCALE((SI), (DI), X3, X4, AX)
	VBROADCASTSS X3, Y3
	VFMADD231PS  Y3, Y8, Y0
	ADDQ         $24, SI
	ADDQ         $36, DI
	DECQ         CX
	JNZ          q51loop
	HSUM8(Y0, X0, X1)
	VADDSS       X12, X0, X0
	VMOVSS       X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF16AVX2(w, x *byte, n8 int) float32
//
// dotF16Generic over 8*n8 elements (tinyBLAS's F16 order):
//
//	var acc [8]float32
//	for i := 0; i < 8*n8; i += 8 { for l: acc[l] = fma32(w[i+l], x[i+l], acc[l]) } // exact products
//	return hsum8(&acc)
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n8+16(FP), CX
	VXORPS Y0, Y0, Y0

f16loop:
	VCVTPH2PS   (SI), Y1
	VCVTPH2PS   (DI), Y2
	VFMADD231PS Y2, Y1, Y0
	ADDQ        $16, SI
	ADDQ        $16, DI
	DECQ        CX
	JNZ         f16loop
	HSUM8(Y0, X0, X1)
	VMOVSS      X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF16x4AVX2(w *byte, stride int, x *byte, n8 int, dst *float32)
//
//	for r := range 4 { dst[r] = dotF16AVX2(w[r*stride:], x, n8) }
TEXT ·dotF16x4AVX2(SB), NOSPLIT, $0-40
	MOVQ   w+0(FP), R8
	MOVQ   stride+8(FP), DX
	MOVQ   x+16(FP), DI
	MOVQ   n8+24(FP), CX
	LEAQ   (R8)(DX*1), R9
	LEAQ   (R9)(DX*1), R10
	LEAQ   (R10)(DX*1), R11
	LEAQ   (R11)(DX*1), R12
	LEAQ   (R12)(DX*4), R12 // prefetch pointer: two groups of 4 rows ahead
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

f16x4loop:
	PREFETCHT0 (R12)
	ADDQ       $64, R12
	VCVTPH2PS   (DI), Y12
	VCVTPH2PS   (R8), Y0
	VFMADD231PS Y12, Y0, Y4
	VCVTPH2PS   (R9), Y1
	VFMADD231PS Y12, Y1, Y5
	VCVTPH2PS   (R10), Y2
	VFMADD231PS Y12, Y2, Y6
	VCVTPH2PS   (R11), Y3
	VFMADD231PS Y12, Y3, Y7
	ADDQ        $16, R8
	ADDQ        $16, R9
	ADDQ        $16, R10
	ADDQ        $16, R11
	ADDQ        $16, DI
	DECQ        CX
	JNZ         f16x4loop
	MOVQ        dst+32(FP), AX
	HSUM8(Y4, X4, X1)
	VMOVSS      X4, (AX)
	HSUM8(Y5, X5, X1)
	VMOVSS      X5, 4(AX)
	HSUM8(Y6, X6, X1)
	VMOVSS      X6, 8(AX)
	HSUM8(Y7, X7, X1)
	VMOVSS      X7, 12(AX)
	VZEROUPPER
	RET

// func dotF32AVX2(w, x *byte, n8 int) float32
//
// dotF32Generic over 8*n8 elements (tinyBLAS's F32 order):
//
//	var acc [8]float32
//	for i := 0; i < 8*n8; i += 8 { for l: acc[l] = fma32(w[i+l], x[i+l], acc[l]) }
//	return hsum8(&acc)
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n8+16(FP), CX
	VXORPS Y0, Y0, Y0

f32loop:
	VMOVUPS     (SI), Y1
	VFMADD231PS (DI), Y1, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         f32loop
	HSUM8(Y0, X0, X1)
	VMOVSS      X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF32x4AVX2(w *byte, stride int, x *byte, n8 int, dst *float32)
//
//	for r := range 4 { dst[r] = dotF32AVX2(w[r*stride:], x, n8) }
TEXT ·dotF32x4AVX2(SB), NOSPLIT, $0-40
	MOVQ   w+0(FP), R8
	MOVQ   stride+8(FP), DX
	MOVQ   x+16(FP), DI
	MOVQ   n8+24(FP), CX
	LEAQ   (R8)(DX*1), R9
	LEAQ   (R9)(DX*1), R10
	LEAQ   (R10)(DX*1), R11
	LEAQ   (R11)(DX*1), R12
	LEAQ   (R12)(DX*4), R12 // prefetch pointer: two groups of 4 rows ahead
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

f32x4loop:
	PREFETCHT0 (R12)
	PREFETCHT0 64(R12)
	ADDQ       $128, R12
	VMOVUPS     (DI), Y12
	VFMADD231PS (R8), Y12, Y4
	VFMADD231PS (R9), Y12, Y5
	VFMADD231PS (R10), Y12, Y6
	VFMADD231PS (R11), Y12, Y7
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	ADDQ        $32, DI
	DECQ        CX
	JNZ         f32x4loop
	MOVQ        dst+32(FP), AX
	HSUM8(Y4, X4, X1)
	VMOVSS      X4, (AX)
	HSUM8(Y5, X5, X1)
	VMOVSS      X5, 4(AX)
	HSUM8(Y6, X6, X1)
	VMOVSS      X6, 8(AX)
	HSUM8(Y7, X7, X1)
	VMOVSS      X7, 12(AX)
	VZEROUPPER
	RET

DATA allones<>+0(SB)/8, $-1
DATA allones<>+8(SB)/8, $-1
DATA allones<>+16(SB)/8, $-1
DATA allones<>+24(SB)/8, $-1
GLOBL allones<>(SB), RODATA|NOPTR, $32

DATA magic<>+0(SB)/4, $0x4b400000
GLOBL magic<>(SB), RODATA|NOPTR, $4
DATA mant<>+0(SB)/4, $0x007fffff
GLOBL mant<>(SB), RODATA|NOPTR, $4
DATA half22<>+0(SB)/4, $0x00400000
GLOBL half22<>(SB), RODATA|NOPTR, $4
DATA i127<>+0(SB)/4, $127
GLOBL i127<>(SB), RODATA|NOPTR, $4
DATA iff<>+0(SB)/4, $0xff
GLOBL iff<>(SB), RODATA|NOPTR, $4
DATA ones8<>+0(SB)/4, $0x01010101
GLOBL ones8<>(SB), RODATA|NOPTR, $4
DATA fneg127<>+0(SB)/4, $-127.0
GLOBL fneg127<>(SB), RODATA|NOPTR, $4
DATA fone<>+0(SB)/4, $1.0
GLOBL fone<>(SB), RODATA|NOPTR, $4

// Q8K8 quantizes the 8 floats at OFF(SI) into Y as
// int32(int8(min(127, nearestInt(iscale*x)))) & 0xff, iscale in Y14,
// 1.5·2^23 in Y12 (nearestInt's rounding trick, bit for bit).
#define Q8K8(OFF, Y) \
	VMULPS       OFF(SI), Y14, Y; \
	VADDPS       Y12, Y, Y; \
	VPAND        Y11, Y, Y; \
	VPSUBD       Y10, Y, Y; \
	VPMINSD      Y9, Y, Y; \
	VPAND        Y8, Y, Y

// Q8K32 quantizes 32 floats at OFF(SI) into bytes at QOFF(DI) and sets T
// to the 8 int32 sums of 4 consecutive int8 quants.
#define Q8K32(OFF, QOFF, T) \
	Q8K8(OFF, Y0); \
	Q8K8(OFF+32, Y1); \
	Q8K8(OFF+64, Y2); \
	Q8K8(OFF+96, Y3); \
	VPACKUSDW  Y1, Y0, Y0; \
	VPACKUSDW  Y3, Y2, Y2; \
	VPACKUSWB  Y2, Y0, Y0; \
	VPERMD     Y0, Y13, Y0; \
	VMOVDQU    Y0, QOFF(DI); \
	VPMADDUBSW Y0, Y5, T; \
	VPMADDWD   ones16<>(SB), T, T

// func quantQ8_KAVX2(x *float32, dst *byte, nb int)
//
//	quant.QuantizeQ8_K(x[:256*nb], dst[:292*nb])
//
// Per block: amax = max|x| ignoring NaNs, max = the first x with |x| = amax
// (an all-zero block is stored as zeros); iscale = -127/max;
// q[j] = int8(min(127, nearestInt(iscale*x[j]))); d = 1/iscale;
// bsums[g] = Σ q[16g:16g+16].
TEXT ·quantQ8_KAVX2(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         nb+16(FP), CX
	VMOVDQU      absmask<>(SB), Y15
	VMOVDQU      perm8<>(SB), Y13
	VBROADCASTSS magic<>(SB), Y12
	VBROADCASTSS mant<>(SB), Y11
	VBROADCASTSS half22<>(SB), Y10
	VBROADCASTSS i127<>(SB), Y9
	VBROADCASTSS iff<>(SB), Y8
	VBROADCASTSS ones8<>(SB), Y5

q8kblock:
	VXORPS Y0, Y0, Y0
	XORQ   AX, AX

q8kamax:
	VANDPS (SI)(AX*4), Y15, Y1
	VMAXPS Y0, Y1, Y0            // max(|x|, acc): a NaN |x| leaves acc
	ADDQ   $8, AX
	CMPQ   AX, $256
	JB     q8kamax
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	VXORPS       X1, X1, X1
	VUCOMISS     X1, X0
	JEQ          q8kzero
	VBROADCASTSS X0, Y0
	XORQ         AX, AX

q8kfind:
	VANDPS    (SI)(AX*4), Y15, Y1
	VCMPPS    $0, Y0, Y1, Y1
	VMOVMSKPS Y1, BX
	TESTL     BX, BX
	JNZ       q8kfound
	ADDQ      $8, AX
	JMP       q8kfind

q8kfound:
	BSFL         BX, BX
	ADDQ         BX, AX
	VMOVSS       (SI)(AX*4), X1
	VMOVSS       fneg127<>(SB), X2
	VDIVSS       X1, X2, X2
	VMOVSS       fone<>(SB), X3
	VDIVSS       X2, X3, X3
	VMOVSS       X3, (DI)
	VBROADCASTSS X2, Y14
	Q8K32(0, 4, Y6)
	Q8K32(128, 36, Y7)
	Q8K32(256, 68, Y4)
	Q8K32(384, 100, Y3)
	VPHADDD      Y7, Y6, Y6
	VPHADDD      Y3, Y4, Y4
	VPHADDD      Y4, Y6, Y6          // groups 0,2,4,6 | 1,3,5,7
	Q8K32(512, 132, Y4)
	Q8K32(640, 164, Y7)
	VPHADDD      Y7, Y4, Y7
	Q8K32(768, 196, Y4)
	Q8K32(896, 228, Y3)
	VPHADDD      Y3, Y4, Y4
	VPHADDD      Y4, Y7, Y7          // groups 8,10,12,14 | 9,11,13,15
	VPACKSSDW    Y7, Y6, Y6
	VEXTRACTI128 $1, Y6, X7
	VPUNPCKLWD   X7, X6, X0
	VPUNPCKHWD   X7, X6, X1
	VMOVDQU      X0, 260(DI)
	VMOVDQU      X1, 276(DI)
	JMP          q8knext

q8kzero:
	VPXOR   Y0, Y0, Y0
	VMOVDQU Y0, (DI)
	VMOVDQU Y0, 32(DI)
	VMOVDQU Y0, 64(DI)
	VMOVDQU Y0, 96(DI)
	VMOVDQU Y0, 128(DI)
	VMOVDQU Y0, 160(DI)
	VMOVDQU Y0, 192(DI)
	VMOVDQU Y0, 224(DI)
	VMOVDQU Y0, 256(DI)
	MOVL    $0, 288(DI)

q8knext:
	ADDQ $1024, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q8kblock
	VZEROUPPER
	RET

DATA bfround<>+0(SB)/4, $0x00007fff
GLOBL bfround<>(SB), RODATA|NOPTR, $4
DATA finf<>+0(SB)/4, $0x7f800000
GLOBL finf<>(SB), RODATA|NOPTR, $4
DATA i64<>+0(SB)/4, $64
GLOBL i64<>(SB), RODATA|NOPTR, $4
DATA i1<>+0(SB)/4, $1
GLOBL i1<>(SB), RODATA|NOPTR, $4

// func cvtBF16AVX2(x *float32, dst *byte, n8 int)
//
//	for i := range 8 * n8 { binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToBF16(x[i])) }
//
// (b = bits; NaN: b>>16 | 64; else (b + 0x7fff + (b>>16 & 1)) >> 16).
TEXT ·cvtBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	MOVQ         dst+8(FP), DI
	MOVQ         n8+16(FP), CX
	VMOVDQU      absmask<>(SB), Y15
	VPBROADCASTD bfround<>(SB), Y14
	VPBROADCASTD finf<>(SB), Y13
	VPBROADCASTD i64<>(SB), Y12
	VPBROADCASTD i1<>(SB), Y11

bf16cvtloop:
	VMOVDQU      (SI), Y0
	VPSRLD       $16, Y0, Y1        // b>>16
	VPAND        Y11, Y1, Y2        // &1
	VPADDD       Y14, Y0, Y3
	VPADDD       Y2, Y3, Y3
	VPSRLD       $16, Y3, Y3        // rounded
	VPAND        Y15, Y0, Y4
	VPCMPGTD     Y13, Y4, Y4        // |b| > 0x7f800000: NaN
	VPOR         Y12, Y1, Y1        // NaN result
	VPBLENDVB    Y4, Y1, Y3, Y3
	VPACKUSDW    Y3, Y3, Y3
	VPERMQ       $0x08, Y3, Y3
	VMOVDQU      X3, (DI)
	ADDQ         $32, SI
	ADDQ         $16, DI
	DECQ         CX
	JNZ          bf16cvtloop
	VZEROUPPER
	RET

// BF16LOAD widens the 8 bf16 at A to float32 in Y.
#define BF16LOAD(A, Y) \
	VPMOVZXWD A, Y; \
	VPSLLD    $16, Y, Y

// func dotBF16AVX2(w, x *byte, n32 int) float32
//
// dotBF16Generic over 32*n32 elements (ggml_vec_dot_bf16, AVX2):
//
//	var c [4][8]float32
//	for i := 0; i < 32*n32; i += 32 { for k < 4, l < 8: c[k][l] += float32(w[i+8k+l] * x[i+8k+l]) }
//	v[l] = (c[0][l] + c[2][l]) + (c[1][l] + c[3][l]); return hsum8(&v)
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n32+16(FP), CX
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

bf16loop:
	BF16LOAD((SI), Y0)
	BF16LOAD((DI), Y1)
	VMULPS   Y1, Y0, Y0
	VADDPS   Y0, Y4, Y4
	BF16LOAD(16(SI), Y0)
	BF16LOAD(16(DI), Y1)
	VMULPS   Y1, Y0, Y0
	VADDPS   Y0, Y5, Y5
	BF16LOAD(32(SI), Y0)
	BF16LOAD(32(DI), Y1)
	VMULPS   Y1, Y0, Y0
	VADDPS   Y0, Y6, Y6
	BF16LOAD(48(SI), Y0)
	BF16LOAD(48(DI), Y1)
	VMULPS   Y1, Y0, Y0
	VADDPS   Y0, Y7, Y7
	ADDQ     $64, SI
	ADDQ     $64, DI
	DECQ     CX
	JNZ      bf16loop
	VADDPS   Y6, Y4, Y4
	VADDPS   Y7, Y5, Y5
	VADDPS   Y5, Y4, Y4
	HSUM8(Y4, X4, X1)
	VMOVSS   X4, ret+24(FP)
	VZEROUPPER
	RET

// Q4PAIR sets P to the int32 sums Σ q·x of a 32-byte pair of repacked Q4_0
// rows at A (row a's 16 quant bytes, then row b's), unsigned nibbles q:
// the low 128 bits of P sum row a's products, the high ones row b's. Needs
// Y15 = 0x0f bytes, Y12/Y13 = the activation's quants 0..15 / 16..31 in
// both halves. T is clobbered.
#define Q4PAIR(A, P, T) \
	VMOVDQU    A, P; \
	VPSRLW     $4, P, T; \
	VPAND      Y15, P, P; \
	VPAND      Y15, T, T; \
	VPMADDUBSW Y12, P, P; \
	VPMADDUBSW Y13, T, T; \
	VPADDW     T, P, P; \
	VPMADDWD   ones16<>(SB), P, P

// func q40x8AVX2(w *byte, nb int, x *byte, sums *int32, dst *float32)
//
// Eight Q4_0 rows repacked by packQ4_0 (per block: the 8 fp16 scales in
// the order r0 r2 r4 r6 r1 r3 r5 r7, then the quant bytes of rows 0|1,
// 2|3, 4|5, 6|7) against one Q8_0 activation row, with sums[b] = 8·Σ x of
// its block b:
//
//	for r := range 8 { dst[r] = dotQ4_0Generic(32*nb, row r, x) }
//
// Σ (q-8)·x = Σ q·x - sums[b], exact; the 8 rows' block sums come out of
// the vphaddd tree in the scales' order and are scaled and accumulated
// (fma, one lane per row) like the single-row kernel.
TEXT ·q40x8AVX2(SB), NOSPLIT, $0-40
	MOVQ    w+0(FP), SI
	MOVQ    nb+8(FP), CX
	MOVQ    x+16(FP), DI
	MOVQ    sums+24(FP), BX
	VMOVDQU nib<>(SB), Y15
	VXORPS  Y14, Y14, Y14

q40x8loop:
	VBROADCASTI128 2(DI), Y12
	VBROADCASTI128 18(DI), Y13
	Q4PAIR(16(SI), Y0, Y1)
	Q4PAIR(48(SI), Y2, Y3)
	VPHADDD        Y2, Y0, Y0
	Q4PAIR(80(SI), Y2, Y3)
	Q4PAIR(112(SI), Y4, Y5)
	VPHADDD        Y4, Y2, Y2
	VPHADDD        Y2, Y0, Y0
	VPBROADCASTD   (BX), Y1
	VPSUBD         Y1, Y0, Y0
	VCVTDQ2PS      Y0, Y0
	VCVTPH2PS      (SI), Y1
	MOVWLZX        (DI), AX
	VMOVD          AX, X2
	VCVTPH2PS      X2, X2
	VBROADCASTSS   X2, Y2
	VMULPS         Y2, Y1, Y1
	VFMADD231PS    Y1, Y0, Y14
	ADDQ           $144, SI
	ADDQ           $34, DI
	ADDQ           $4, BX
	DECQ           CX
	JNZ            q40x8loop
	VMOVDQU        perm8<>(SB), Y0
	VPERMPS        Y14, Y0, Y14
	MOVQ           dst+32(FP), AX
	VMOVUPS        Y14, (AX)
	VZEROUPPER
	RET

// Q4X2ACT sets Y10 to the 8 rows' Σ q·x (in the scales' order) for the
// unpacked rows in Y0..Y7 and the activation halves in Y8 (0..15) and Y9
// (16..31). Uses Y11..Y13. (ACC unused: for the reader, the accumulator the
// caller adds into next.)
#define Q4X2ACT(ACC) \
	VPMADDUBSW Y8, Y0, Y10; \
	VPMADDUBSW Y9, Y1, Y11; \
	VPADDW     Y11, Y10, Y10; \
	VPMADDWD   ones16<>(SB), Y10, Y10; \
	VPMADDUBSW Y8, Y2, Y11; \
	VPMADDUBSW Y9, Y3, Y12; \
	VPADDW     Y12, Y11, Y11; \
	VPMADDWD   ones16<>(SB), Y11, Y11; \
	VPHADDD    Y11, Y10, Y10; \
	VPMADDUBSW Y8, Y4, Y11; \
	VPMADDUBSW Y9, Y5, Y12; \
	VPADDW     Y12, Y11, Y11; \
	VPMADDWD   ones16<>(SB), Y11, Y11; \
	VPMADDUBSW Y8, Y6, Y12; \
	VPMADDUBSW Y9, Y7, Y13; \
	VPADDW     Y13, Y12, Y12; \
	VPMADDWD   ones16<>(SB), Y12, Y12; \
	VPHADDD    Y12, Y11, Y11; \
	VPHADDD    Y11, Y10, Y10

// func q40x8x2AVX2(w *byte, nb int, x *byte, xstride int, sums *int32, dst *float32, dstride int)
//
// q40x8AVX2 for two activation rows at once (x and x+xstride, their sums
// at sums and sums+4·nb, results at dst and dst+4·dstride): the weights are
// unpacked once per block for both.
TEXT ·q40x8x2AVX2(SB), NOSPLIT, $0-56
	MOVQ    w+0(FP), SI
	MOVQ    nb+8(FP), CX
	MOVQ    x+16(FP), DI
	MOVQ    xstride+24(FP), DX
	MOVQ    sums+32(FP), BX
	MOVQ    nb+8(FP), R8
	SHLQ    $2, R8                 // sums stride in bytes
	VXORPS  Y14, Y14, Y14
	VXORPS  Y15, Y15, Y15

q40x8x2loop:
	// unpack the 8 rows: Y0..Y7 = low/high nibbles of pairs 0..3
	VMOVDQU 16(SI), Y0
	VPSRLW  $4, Y0, Y1
	VPAND   nib<>(SB), Y0, Y0
	VPAND   nib<>(SB), Y1, Y1
	VMOVDQU 48(SI), Y2
	VPSRLW  $4, Y2, Y3
	VPAND   nib<>(SB), Y2, Y2
	VPAND   nib<>(SB), Y3, Y3
	VMOVDQU 80(SI), Y4
	VPSRLW  $4, Y4, Y5
	VPAND   nib<>(SB), Y4, Y4
	VPAND   nib<>(SB), Y5, Y5
	VMOVDQU 112(SI), Y6
	VPSRLW  $4, Y6, Y7
	VPAND   nib<>(SB), Y6, Y6
	VPAND   nib<>(SB), Y7, Y7

	// activation 0
	VBROADCASTI128 2(DI), Y8
	VBROADCASTI128 18(DI), Y9
	Q4X2ACT(Y14)
	VPBROADCASTD   (BX), Y11
	VPSUBD         Y11, Y10, Y10
	VCVTDQ2PS      Y10, Y10
	VCVTPH2PS      (SI), Y8
	MOVWLZX        (DI), AX
	VMOVD          AX, X9
	VCVTPH2PS      X9, X9
	VBROADCASTSS   X9, Y9
	VMULPS         Y9, Y8, Y8
	VFMADD231PS    Y8, Y10, Y14

	// activation 1
	VBROADCASTI128 2(DI)(DX*1), Y8
	VBROADCASTI128 18(DI)(DX*1), Y9
	Q4X2ACT(Y15)
	VPBROADCASTD   (BX)(R8*1), Y11
	VPSUBD         Y11, Y10, Y10
	VCVTDQ2PS      Y10, Y10
	VCVTPH2PS      (SI), Y8
	MOVWLZX        (DI)(DX*1), AX
	VMOVD          AX, X9
	VCVTPH2PS      X9, X9
	VBROADCASTSS   X9, Y9
	VMULPS         Y9, Y8, Y8
	VFMADD231PS    Y8, Y10, Y15

	ADDQ $144, SI
	ADDQ $34, DI
	ADDQ $4, BX
	DECQ CX
	JNZ  q40x8x2loop
	VMOVDQU perm8<>(SB), Y0
	VPERMPS Y14, Y0, Y14
	VPERMPS Y15, Y0, Y15
	MOVQ    dst+40(FP), AX
	MOVQ    dstride+48(FP), DX
	VMOVUPS Y14, (AX)
	VMOVUPS Y15, (AX)(DX*4)
	VZEROUPPER
	RET

// func dotQ8_0x4x2AVX2(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)
//
//	for r := range 4 {
//		dst0[r] = dotQ8_0Generic(32*nb, w[r*stride:], x)
//		dst1[r] = dotQ8_0Generic(32*nb, w[r*stride:], x[xstride:])
//	}
TEXT ·dotQ8_0x4x2AVX2(SB), NOSPLIT, $32-56
	MOVQ   w+0(FP), R8
	MOVQ   stride+8(FP), BX
	MOVQ   x+16(FP), DI
	MOVQ   xstride+24(FP), DX
	MOVQ   nb+32(FP), CX
	LEAQ   (R8)(BX*1), R9
	LEAQ   (R9)(BX*1), R10
	LEAQ   (R10)(BX*1), R11
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

q80x4x2loop:
	VMOVDQU   2(DI), Y6
	VMOVDQU   2(DI)(DX*1), Y7
	VPINSRW   $0, (R8), X0, X0
	VPINSRW   $1, (R9), X0, X0
	VPINSRW   $2, (R10), X0, X0
	VPINSRW   $3, (R11), X0, X0
	VCVTPH2PS X0, X0
	DX2SCALES
	Q8X2ROW(R8, 0, Y8, Y12)
	Q8X2ROW(R9, 4, Y9, Y13)
	Q8X2ROW(R10, 8, Y10, Y14)
	Q8X2ROW(R11, 12, Y11, Y15)
	ADDQ      $34, R8
	ADDQ      $34, R9
	ADDQ      $34, R10
	ADDQ      $34, R11
	ADDQ      $34, DI
	DECQ      CX
	JNZ       q80x4x2loop
	MOVQ      dst0+40(FP), AX
	MOVQ      dst1+48(FP), BX
	HSUM8(Y8, X8, X1)
	VMOVSS    X8, (AX)
	HSUM8(Y9, X9, X1)
	VMOVSS    X9, 4(AX)
	HSUM8(Y10, X10, X1)
	VMOVSS    X10, 8(AX)
	HSUM8(Y11, X11, X1)
	VMOVSS    X11, 12(AX)
	HSUM8(Y12, X12, X1)
	VMOVSS    X12, (BX)
	HSUM8(Y13, X13, X1)
	VMOVSS    X13, 4(BX)
	HSUM8(Y14, X14, X1)
	VMOVSS    X14, 8(BX)
	HSUM8(Y15, X15, X1)
	VMOVSS    X15, 12(BX)
	VZEROUPPER
	RET

// func dotQ5_0x4AVX2(w *byte, stride int, x *byte, nb int, dst *float32)
//
//	for r := range 4 { dst[r] = dotQ5_0Generic(32*nb, w[r*stride:], x) }
TEXT ·dotQ5_0x4AVX2(SB), NOSPLIT, $16-40
	MOVQ    w+0(FP), R8
	MOVQ    stride+8(FP), DX
	MOVQ    x+16(FP), DI
	MOVQ    nb+24(FP), CX
	LEAQ    (R8)(DX*1), R9
	LEAQ    (R9)(DX*1), R10
	LEAQ    (R10)(DX*1), R11
	LEAQ    (R11)(DX*1), R12
	LEAQ    (R12)(DX*4), R12       // prefetch pointer: two groups of 4 rows ahead
	VMOVDQU nib<>(SB), Y15
	VMOVDQU hif0<>(SB), Y14
	VMOVDQU ones16<>(SB), Y13
	VMOVDQU bitshuf<>(SB), Y10
	VMOVDQU bitmask<>(SB), Y11
	VXORPS  Y0, Y0, Y0
	VXORPS  Y3, Y3, Y3
	VXORPS  Y4, Y4, Y4
	VXORPS  Y5, Y5, Y5

q50x4loop:
	PREFETCHT0 (R12)
	PREFETCHT0 64(R12)
	ADDQ       $88, R12
	VMOVDQU 2(DI), Y12
	SCALES4
	Q5ACCS(R8, 0, Y0)
	Q5ACCS(R9, 4, Y3)
	Q5ACCS(R10, 8, Y4)
	Q5ACCS(R11, 12, Y5)
	ADDQ    $22, R8
	ADDQ    $22, R9
	ADDQ    $22, R10
	ADDQ    $22, R11
	ADDQ    $34, DI
	DECQ    CX
	JNZ     q50x4loop
	MOVQ    dst+32(FP), AX
	HSUM8(Y0, X0, X1)
	VMOVSS  X0, (AX)
	HSUM8(Y3, X3, X1)
	VMOVSS  X3, 4(AX)
	HSUM8(Y4, X4, X1)
	VMOVSS  X4, 8(AX)
	HSUM8(Y5, X5, X1)
	VMOVSS  X5, 12(AX)
	VZEROUPPER
	RET

// func dotF16x4x2AVX2(w *byte, stride int, x *byte, xstride int, n8 int, dst0, dst1 *float32)
//
//	for r := range 4 {
//		dst0[r] = dotF16AVX2(w[r*stride:], x, n8)
//		dst1[r] = dotF16AVX2(w[r*stride:], x[xstride:], n8)
//	}
TEXT ·dotF16x4x2AVX2(SB), NOSPLIT, $0-56
	MOVQ   w+0(FP), R8
	MOVQ   stride+8(FP), BX
	MOVQ   x+16(FP), DI
	MOVQ   xstride+24(FP), DX
	MOVQ   n8+32(FP), CX
	LEAQ   (R8)(BX*1), R9
	LEAQ   (R9)(BX*1), R10
	LEAQ   (R10)(BX*1), R11
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

f16x4x2loop:
	VCVTPH2PS   (DI), Y12
	VCVTPH2PS   (DI)(DX*1), Y13
	VCVTPH2PS   (R8), Y0
	VFMADD231PS Y12, Y0, Y4
	VFMADD231PS Y13, Y0, Y8
	VCVTPH2PS   (R9), Y1
	VFMADD231PS Y12, Y1, Y5
	VFMADD231PS Y13, Y1, Y9
	VCVTPH2PS   (R10), Y2
	VFMADD231PS Y12, Y2, Y6
	VFMADD231PS Y13, Y2, Y10
	VCVTPH2PS   (R11), Y3
	VFMADD231PS Y12, Y3, Y7
	VFMADD231PS Y13, Y3, Y11
	ADDQ        $16, R8
	ADDQ        $16, R9
	ADDQ        $16, R10
	ADDQ        $16, R11
	ADDQ        $16, DI
	DECQ        CX
	JNZ         f16x4x2loop
	MOVQ        dst0+40(FP), AX
	MOVQ        dst1+48(FP), BX
	HSUM8(Y4, X4, X1)
	VMOVSS      X4, (AX)
	HSUM8(Y5, X5, X1)
	VMOVSS      X5, 4(AX)
	HSUM8(Y6, X6, X1)
	VMOVSS      X6, 8(AX)
	HSUM8(Y7, X7, X1)
	VMOVSS      X7, 12(AX)
	HSUM8(Y8, X8, X1)
	VMOVSS      X8, (BX)
	HSUM8(Y9, X9, X1)
	VMOVSS      X9, 4(BX)
	HSUM8(Y10, X10, X1)
	VMOVSS      X10, 8(BX)
	HSUM8(Y11, X11, X1)
	VMOVSS      X11, 12(BX)
	VZEROUPPER
	RET

// func dotQ5_0x4x2AVX2(w *byte, stride int, x *byte, xstride int, nb int, dst0, dst1 *float32)
//
//	for r := range 4 {
//		dst0[r] = dotQ5_0Generic(32*nb, w[r*stride:], x)
//		dst1[r] = dotQ5_0Generic(32*nb, w[r*stride:], x[xstride:])
//	}
TEXT ·dotQ5_0x4x2AVX2(SB), NOSPLIT, $32-56
	MOVQ   w+0(FP), R8
	MOVQ   stride+8(FP), BX
	MOVQ   x+16(FP), DI
	MOVQ   xstride+24(FP), DX
	MOVQ   nb+32(FP), CX
	LEAQ   (R8)(BX*1), R9
	LEAQ   (R9)(BX*1), R10
	LEAQ   (R10)(BX*1), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

q50x4x2loop:
	VMOVDQU 2(DI), Y12
	VMOVDQU 2(DI)(DX*1), Y13
	SCALES4X2
	Q5X2ROW(R8, 0, Y0, Y10)
	Q5X2ROW(R9, 4, Y3, Y11)
	Q5X2ROW(R10, 8, Y4, Y14)
	Q5X2ROW(R11, 12, Y5, Y15)
	ADDQ    $22, R8
	ADDQ    $22, R9
	ADDQ    $22, R10
	ADDQ    $22, R11
	ADDQ    $34, DI
	DECQ    CX
	JNZ     q50x4x2loop
	MOVQ    dst0+40(FP), AX
	MOVQ    dst1+48(FP), BX
	HSUM8(Y0, X0, X1)
	VMOVSS  X0, (AX)
	HSUM8(Y3, X3, X1)
	VMOVSS  X3, 4(AX)
	HSUM8(Y4, X4, X1)
	VMOVSS  X4, 8(AX)
	HSUM8(Y5, X5, X1)
	VMOVSS  X5, 12(AX)
	HSUM8(Y10, X10, X1)
	VMOVSS  X10, (BX)
	HSUM8(Y11, X11, X1)
	VMOVSS  X11, 4(BX)
	HSUM8(Y14, X14, X1)
	VMOVSS  X14, 8(BX)
	HSUM8(Y15, X15, X1)
	VMOVSS  X15, 12(BX)
	VZEROUPPER
	RET

// Q8SCALE2 stores at OFF(SP) the 2 rows' d_w (X0 lanes 0, 1) times the
// activation scale (fp16 at (A)). Uses X1, AX.
#define Q8SCALE2(A, OFF) \
	MOVWLZX      (A), AX; \
	VMOVD        AX, X1; \
	VCVTPH2PS    X1, X1; \
	VBROADCASTSS X1, X1; \
	VMULPS       X1, X0, X1; \
	VMOVQ        X1, OFF(SP)

// Q8X2COL accumulates the activation block at A against the two weight
// rows (raw in Y0, Y2; absolute values in Y1, Y3) into ACC0 and ACC1 with
// the scales at OFF(SP), OFF+4(SP). Needs Y7 = 1 words; uses Y4..Y6.
#define Q8X2COL(A, OFF, ACC0, ACC1) \
	VMOVDQU      2(A), Y4; \
	VPSIGNB      Y0, Y4, Y5; \
	VPMADDUBSW   Y5, Y1, Y5; \
	VPMADDWD     Y7, Y5, Y5; \
	VCVTDQ2PS    Y5, Y5; \
	VBROADCASTSS OFF(SP), Y6; \
	VFMADD231PS  Y6, Y5, ACC0; \
	VPSIGNB      Y2, Y4, Y5; \
	VPMADDUBSW   Y5, Y3, Y5; \
	VPMADDWD     Y7, Y5, Y5; \
	VCVTDQ2PS    Y5, Y5; \
	VBROADCASTSS OFF+4(SP), Y6; \
	VFMADD231PS  Y6, Y5, ACC1

// func dotQ8_0x2x4AVX2(w *byte, stride int, x *byte, xstride int, nb int, dst *float32, dstride int)
//
//	for c := range 4 {
//		for r := range 2 {
//			dst[c*dstride/4+r] = dotQ8_0Generic(32*nb, w[r*stride:], x[c*xstride:])
//		}
//	}
//
// (dstride in bytes.) Each weight block loaded serves 4 activations; the
// scales d_w·d_x are formed per lane (the same float32 product).
TEXT ·dotQ8_0x2x4AVX2(SB), NOSPLIT, $32-56
	MOVQ   w+0(FP), R8
	MOVQ   stride+8(FP), BX
	MOVQ   x+16(FP), DI
	MOVQ   xstride+24(FP), DX
	MOVQ   nb+32(FP), CX
	LEAQ   (R8)(BX*1), R12
	LEAQ   (DI)(DX*1), R9
	LEAQ   (R9)(DX*1), R10
	LEAQ   (R10)(DX*1), R11
	VMOVDQU ones16<>(SB), Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

q80x2x4loop:
	VPINSRW   $0, (R8), X0, X0
	VPINSRW   $1, (R12), X0, X0
	VCVTPH2PS X0, X0
	Q8SCALE2(DI, 0)
	Q8SCALE2(R9, 8)
	Q8SCALE2(R10, 16)
	Q8SCALE2(R11, 24)
	VMOVDQU   2(R8), Y0
	VPSIGNB   Y0, Y0, Y1
	VMOVDQU   2(R12), Y2
	VPSIGNB   Y2, Y2, Y3
	Q8X2COL(DI, 0, Y8, Y12)
	Q8X2COL(R9, 8, Y9, Y13)
	Q8X2COL(R10, 16, Y10, Y14)
	Q8X2COL(R11, 24, Y11, Y15)
	ADDQ   $34, R8
	ADDQ   $34, R12
	ADDQ   $34, DI
	ADDQ   $34, R9
	ADDQ   $34, R10
	ADDQ   $34, R11
	DECQ   CX
	JNZ    q80x2x4loop
	MOVQ   dst+40(FP), AX
	MOVQ   dstride+48(FP), BX
	HSUM8(Y8, X8, X1)
	VMOVSS X8, (AX)
	HSUM8(Y12, X12, X1)
	VMOVSS X12, 4(AX)
	ADDQ   BX, AX
	HSUM8(Y9, X9, X1)
	VMOVSS X9, (AX)
	HSUM8(Y13, X13, X1)
	VMOVSS X13, 4(AX)
	ADDQ   BX, AX
	HSUM8(Y10, X10, X1)
	VMOVSS X10, (AX)
	HSUM8(Y14, X14, X1)
	VMOVSS X14, 4(AX)
	ADDQ   BX, AX
	HSUM8(Y11, X11, X1)
	VMOVSS X11, (AX)
	HSUM8(Y15, X15, X1)
	VMOVSS X15, 4(AX)
	VZEROUPPER
	RET
