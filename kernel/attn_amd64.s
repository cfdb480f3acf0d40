//go:build !purego && !noasm

#include "textflag.h"

// AVX2 attention kernels (attn.go has the generic specification). Products
// are VMULPS and sums VADDPS, never FMA: the specification rounds each
// product before adding it.

// HSUM4 reduces four 8-lane sums a, b, c, d (ymm) to [Σa Σb Σc Σd] in the
// low xmm of a, each as ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)): the pairwise
// horizontal adds give s0+s1 … s6+s7, then (s0+s1)+(s2+s3) in the low
// 128-bit half and (s4+s5)+(s6+s7) in the high one, which are added last.
// xa is the xmm of a, xh a scratch xmm. Clobbers b and c.
#define HSUM4(a, b, c, d, xa, xh) \
	VHADDPS      b, a, a;   \
	VHADDPS      d, c, c;   \
	VHADDPS      c, a, a;   \
	VEXTRACTF128 $1, a, xh; \
	VADDPS       xh, xa, xa

// MAC adds the product of the q lanes in Y8 and the key lanes at mem into
// acc, using the scratch register tmp.
#define MAC(mem, acc, tmp) \
	VMULPS mem, Y8, tmp; \
	VADDPS tmp, acc, acc

// func dotRows32AVX2(q *float32, n8 int, k *float32, stride int, dst *float32, nt int)
//
// For t < nt: dst[t] = dot32(q[:8*n8], row t), row t at k + t*stride bytes.
// Eight keys at a time (then four, then one) so that eight independent
// add chains hide the add latency; n8 >= 1.
TEXT ·dotRows32AVX2(SB), NOSPLIT, $0-48
	MOVQ q+0(FP), SI
	MOVQ n8+8(FP), CX
	MOVQ k+16(FP), DI
	MOVQ stride+24(FP), BX
	MOVQ dst+32(FP), DX
	MOVQ nt+40(FP), R8

rows8:
	CMPQ R8, $8
	JLT  rows4
	MOVQ DI, R12                // row 0
	LEAQ (DI)(BX*2), R9
	ADDQ BX, R9                 // row 3
	LEAQ (R9)(BX*2), R10
	ADDQ BX, R10                // row 6
	MOVQ SI, R11
	MOVQ CX, R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

loop8:
	VMOVUPS (R11), Y8
	MAC((DI), Y0, Y9)
	MAC((DI)(BX*1), Y1, Y10)
	MAC((DI)(BX*2), Y2, Y11)
	MAC((R9), Y3, Y12)
	MAC((DI)(BX*4), Y4, Y13)
	MAC((R9)(BX*2), Y5, Y14)
	MAC((R10), Y6, Y15)
	MAC((R9)(BX*4), Y7, Y9)
	ADDQ $32, R11
	ADDQ $32, DI
	ADDQ $32, R9
	ADDQ $32, R10
	DECQ R13
	JNZ  loop8

	HSUM4(Y0, Y1, Y2, Y3, X0, X1)
	HSUM4(Y4, Y5, Y6, Y7, X4, X5)
	VMOVUPS X0, (DX)
	VMOVUPS X4, 16(DX)
	ADDQ    $32, DX
	LEAQ    (R12)(BX*8), DI
	SUBQ    $8, R8
	JMP     rows8

rows4:
	CMPQ R8, $4
	JLT  rows1
	MOVQ DI, R12
	LEAQ (DI)(BX*2), R9
	ADDQ BX, R9
	MOVQ SI, R11
	MOVQ CX, R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop4:
	VMOVUPS (R11), Y8
	MAC((DI), Y0, Y9)
	MAC((DI)(BX*1), Y1, Y10)
	MAC((DI)(BX*2), Y2, Y11)
	MAC((R9), Y3, Y12)
	ADDQ $32, R11
	ADDQ $32, DI
	ADDQ $32, R9
	DECQ R13
	JNZ  loop4

	HSUM4(Y0, Y1, Y2, Y3, X0, X1)
	VMOVUPS X0, (DX)
	ADDQ    $16, DX
	LEAQ    (R12)(BX*4), DI
	SUBQ    $4, R8

rows1:
	TESTQ R8, R8
	JZ    done
	MOVQ  DI, R12
	MOVQ  SI, R11
	MOVQ  CX, R13
	VXORPS Y0, Y0, Y0

loop1:
	VMOVUPS (R11), Y8
	MAC((DI), Y0, Y9)
	ADDQ $32, R11
	ADDQ $32, DI
	DECQ R13
	JNZ  loop1

	// [s01 s23 s01 s23 | s45 s67 …], then [s0123 … | s4567 …].
	VHADDPS      Y0, Y0, Y0
	VHADDPS      Y0, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDSS       X1, X0, X0
	VMOVSS       X0, (DX)
	ADDQ         $4, DX
	LEAQ         (R12)(BX*1), DI
	DECQ         R8
	JMP          rows1

done:
	VZEROUPPER
	RET

// AXPY adds the product of the broadcast weight in Y8 and the value lanes
// at mem into acc, using the scratch register tmp.
#define AXPY(mem, acc, tmp) \
	VMULPS mem, Y8, tmp; \
	VADDPS tmp, acc, acc

// func axpyRows64AVX2(o *float32, a *float32, nt int, v *float32, stride int)
//
// For t < nt in order: o[d] += a[t]*v[t*stride/4+d] for d < 64, with the
// 64 outputs held in Y0-Y7 throughout; nt >= 1.
TEXT ·axpyRows64AVX2(SB), NOSPLIT, $0-40
	MOVQ o+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ nt+16(FP), CX
	MOVQ v+24(FP), R8
	MOVQ stride+32(FP), BX
	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7

loop64:
	VBROADCASTSS (SI), Y8
	AXPY(0(R8), Y0, Y9)
	AXPY(32(R8), Y1, Y10)
	AXPY(64(R8), Y2, Y11)
	AXPY(96(R8), Y3, Y12)
	AXPY(128(R8), Y4, Y13)
	AXPY(160(R8), Y5, Y14)
	AXPY(192(R8), Y6, Y15)
	AXPY(224(R8), Y7, Y9)
	ADDQ $4, SI
	ADDQ BX, R8
	DECQ CX
	JNZ  loop64

	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	VZEROUPPER
	RET

// func axpyRows32AVX2(o *float32, a *float32, nt int, v *float32, stride int)
//
// axpyRows64AVX2 for 32 outputs.
TEXT ·axpyRows32AVX2(SB), NOSPLIT, $0-40
	MOVQ o+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ nt+16(FP), CX
	MOVQ v+24(FP), R8
	MOVQ stride+32(FP), BX
	VMOVUPS 0(DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3

loop32:
	VBROADCASTSS (SI), Y8
	AXPY(0(R8), Y0, Y9)
	AXPY(32(R8), Y1, Y10)
	AXPY(64(R8), Y2, Y11)
	AXPY(96(R8), Y3, Y12)
	ADDQ $4, SI
	ADDQ BX, R8
	DECQ CX
	JNZ  loop32

	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VZEROUPPER
	RET

// func axpyRows8AVX2(o *float32, a *float32, nt int, v *float32, stride int)
//
// axpyRows64AVX2 for 8 outputs.
TEXT ·axpyRows8AVX2(SB), NOSPLIT, $0-40
	MOVQ o+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ nt+16(FP), CX
	MOVQ v+24(FP), R8
	MOVQ stride+32(FP), BX
	VMOVUPS (DI), Y0

loop8a:
	VBROADCASTSS (SI), Y8
	AXPY((R8), Y0, Y9)
	ADDQ $4, SI
	ADDQ BX, R8
	DECQ CX
	JNZ  loop8a

	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET
