// Encodings of the AArch64 Advanced SIMD instructions that the Go assembler
// does not know, as WORD macros. Arguments are register numbers, in the
// order of the ARM syntax (destination first): SDOT(0, 1, 2) is
// "sdot v0.4s, v1.16b, v2.16b".

// Integer dot products and matrix multiply-accumulate.
#define SDOT(d, n, m)      WORD $(0x4E809400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S += dot4(Vn.16B, Vm.16B)   (dotprod)
#define SMMLA(d, n, m)     WORD $(0x4E80A400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S += Vn(2x8 s8) * Vm(2x8 s8)^T (i8mm)

// Widening integer arithmetic.
#define SMULL_8H(d, n, m)  WORD $(0x0E20C000 | ((m)<<16) | ((n)<<5) | (d)) // Vd.8H = Vn.8B * Vm.8B (low halves)
#define SMULL2_8H(d, n, m) WORD $(0x4E20C000 | ((m)<<16) | ((n)<<5) | (d)) // Vd.8H = Vn.16B * Vm.16B (high halves)
#define SMULL_4S(d, n, m)  WORD $(0x0E60C000 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4H * Vm.4H
#define SMLAL_4S(d, n, m)  WORD $(0x0E608000 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S += Vn.4H * Vm.4H
#define SMLAL2_4S(d, n, m) WORD $(0x4E608000 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S += Vn.8H[4:] * Vm.8H[4:]
#define SADALP_4S(d, n)    WORD $(0x4E606800 | ((n)<<5) | (d))             // Vd.4S += pairwise sums of Vn.8H
#define SADDLP_4S(d, n)    WORD $(0x4E602800 | ((n)<<5) | (d))             // Vd.4S = pairwise sums of Vn.8H
#define SXTL_8H(d, n)      WORD $(0x0F08A400 | ((n)<<5) | (d))             // Vd.8H = sign-extend Vn.8B
#define SXTL2_8H(d, n)     WORD $(0x4F08A400 | ((n)<<5) | (d))             // Vd.8H = sign-extend Vn.16B[8:]
#define SXTL_4S(d, n)      WORD $(0x0F10A400 | ((n)<<5) | (d))             // Vd.4S = sign-extend Vn.4H
#define SXTL2_4S(d, n)     WORD $(0x4F10A400 | ((n)<<5) | (d))             // Vd.4S = sign-extend Vn.8H[4:]
#define ADD_4S(d, n, m)    WORD $(0x4EA08400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S + Vm.4S
#define ADDP_4S(d, n, m)   WORD $(0x4EA0BC00 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = pairwise sums of Vn:Vm
#define MLA_ELEM_4S(d, n, m, i) WORD $(0x6F800000 | (((i)&1)<<21) | ((m)<<16) | (((i)>>1)<<11) | ((n)<<5) | (d)) // Vd.4S += Vn.4S * Vm.S[i]
#define UXTL_8H(d, n)      WORD $(0x2F08A400 | ((n)<<5) | (d))             // Vd.8H = zero-extend Vn.8B
#define UXTL2_8H(d, n)     WORD $(0x6F08A400 | ((n)<<5) | (d))             // Vd.8H = zero-extend Vn.16B[8:]
#define SMULL2_4S(d, n, m) WORD $(0x4E60C000 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.8H[4:] * Vm.8H[4:]
#define UXTL_4S(d, n)      WORD $(0x2F10A400 | ((n)<<5) | (d))             // Vd.4S = zero-extend Vn.4H
#define UXTL2_4S(d, n)     WORD $(0x6F10A400 | ((n)<<5) | (d))             // Vd.4S = zero-extend Vn.8H[4:]
#define ZERO(d)            WORD $(0x6F00E400 | (d))                        // Vd = 0 (movi vd.2d, #0)
#define FMLA_ELEM_4S(d, n, m, i) WORD $(0x4F801000 | (((i)&1)<<21) | ((m)<<16) | (((i)>>1)<<11) | ((n)<<5) | (d)) // Vd.4S += Vn.4S * Vm.S[i] (fused)
#define MLA_4S(d, n, m)    WORD $(0x4EA09400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S += Vn.4S * Vm.4S
#define MUL_4S(d, n, m)    WORD $(0x4EA09C00 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S * Vm.4S
#define SQXTN_4H(d, n)     WORD $(0x0E614800 | ((n)<<5) | (d))             // Vd.4H = sat16(Vn.4S)
#define SQXTN2_8H(d, n)    WORD $(0x4E614800 | ((n)<<5) | (d))             // Vd.8H[4:] = sat16(Vn.4S)
#define SQXTN_8B(d, n)     WORD $(0x0E214800 | ((n)<<5) | (d))             // Vd.8B = sat8(Vn.8H)
#define SQXTN2_16B(d, n)   WORD $(0x4E214800 | ((n)<<5) | (d))             // Vd.16B[8:] = sat8(Vn.8H)

// Floating point, 4 x float32.
#define SCVTF_4S(d, n)     WORD $(0x4E21D800 | ((n)<<5) | (d))             // Vd.4S = float32(Vn.4S int32)
#define FCVTNS_4S(d, n)    WORD $(0x4E21A800 | ((n)<<5) | (d))             // Vd.4S = int32(round half even(Vn.4S)), saturating
#define FCVTL_4S(d, n)     WORD $(0x0E217800 | ((n)<<5) | (d))             // Vd.4S = float32(Vn.4H half)
#define FCVTL2_4S(d, n)    WORD $(0x4E217800 | ((n)<<5) | (d))             // Vd.4S = float32(Vn.8H[4:] half)
#define FCVTN_4H(d, n)     WORD $(0x0E216800 | ((n)<<5) | (d))             // Vd.4H = half(Vn.4S), round to nearest even
#define FCVTN2_8H(d, n)    WORD $(0x4E216800 | ((n)<<5) | (d))             // Vd.8H[4:] = half(Vn.4S)
#define FCMEQ_4S(d, n, m)  WORD $(0x4E20E400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S == Vm.4S ? ~0 : 0
#define CMHI_4S(d, n, m)   WORD $(0x6EA03400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S > Vm.4S (unsigned) ? ~0 : 0
#define FADD_4S(d, n, m)   WORD $(0x4E20D400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S + Vm.4S
#define FADDP_4S(d, n, m)  WORD $(0x6E20D400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = pairwise sums of Vn:Vm
#define FMUL_4S(d, n, m)   WORD $(0x6E20DC00 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = Vn.4S * Vm.4S
#define FABS_4S(d, n)      WORD $(0x4EA0F800 | ((n)<<5) | (d))             // Vd.4S = |Vn.4S|
#define FMAX_4S(d, n, m)   WORD $(0x4E20F400 | ((m)<<16) | ((n)<<5) | (d)) // Vd.4S = max(Vn.4S, Vm.4S)

// DOT_NEON_EXACT is SDOT for cores without dotprod, lane for lane:
// acc.4S[i] += sum of a.16B[4i+k] * b.16B[4i+k], k < 4 (t1, t2 scratch).
#define DOT_NEON_EXACT(acc, a, b, t1, t2) \
	SMULL_8H(t1, a, b); \
	SMULL2_8H(t2, a, b); \
	SADDLP_4S(t1, t1); \
	SADDLP_4S(t2, t2); \
	ADDP_4S(t1, t1, t2); \
	ADD_4S(acc, acc, t1)

// DOT_NEON is SDOT for cores without dotprod: acc.4S += the dot products
// of a.16B and b.16B over groups of four bytes, widened through int16
// (t1, t2 are scratch). Lane sums differ from SDOT's (pairs are grouped
// differently), the total over the four lanes is the same.
#define DOT_NEON(acc, a, b, t1, t2) \
	SMULL_8H(t1, a, b); \
	SMULL2_8H(t2, a, b); \
	SADALP_4S(acc, t1); \
	SADALP_4S(acc, t2)

// DOTZ_D, DOTZ_N: p.4S = the SDOT lane sums of a.16B and b.16B (not
// accumulated), with dotprod and without (scratch V28, V29).
#define DOTZ_D(p, a, b) \
	ZERO(p); \
	SDOT(p, a, b)

#define DOTZ_N(p, a, b) \
	SMULL_8H(28, a, b); \
	SMULL2_8H(29, a, b); \
	SADDLP_4S(28, 28); \
	SADDLP_4S(29, 29); \
	ADDP_4S(p, 28, 29)

// REDUCE8: F30 = hsum8(V30:V31), in hsum8's order (fma32.go): t = hi + lo,
// u = t[0:2] + t[2:4], u[0] + u[1]. Clobbers V29.
#define REDUCE8 \
	FADD_4S(30, 31, 30); \
	VDUP V30.D[1], V29.D2; \
	FADD_4S(30, 30, 29); \
	FADDP_4S(30, 30, 30)
