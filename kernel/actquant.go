package kernel

import (
	"encoding/binary"
	"math"

	"github.com/slm-dev/slm/quant"
)

// The generic activation quantizers, each exactly what ggml's CPU backend
// does on x86 to the float32 input of a product with a weight type (see the
// weight types' vec_dot_type in ggml-cpu): Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for
// Q4_1/Q5_1, Q8_K for the K-quants, fp16 for F16, bf16 for BF16, and the
// float32 values themselves for F32.

func init() {
	registerAct(quant.Q8_0, TierGeneric, quant.QuantizeQ8_0)
	registerAct(quant.Q8_1, TierGeneric, quant.QuantizeQ8_1)
	registerAct(quant.Q8_K, TierGeneric, quant.QuantizeQ8_K)
	registerAct(quant.F16, TierGeneric, actF16Generic)
	registerAct(quant.BF16, TierGeneric, actBF16Generic)
	registerAct(quant.F32, TierGeneric, actF32Generic)
}

// actF16Generic rounds to fp16, nearest even (F16C vcvtps2ph with
// imm 0). NaNs become the quiet NaN 0x7e00 with their sign; F16C keeps the
// upper payload bits instead, so only non-canonical NaNs encode differently.
func actF16Generic(x []float32, dst []byte) {
	dst = dst[:2*len(x)]
	for i, v := range x {
		binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToF16(v))
	}
}

// actBF16Generic rounds to bfloat16, nearest even, NaNs kept quiet
// (GGML_FP32_TO_BF16).
func actBF16Generic(x []float32, dst []byte) {
	dst = dst[:2*len(x)]
	for i, v := range x {
		binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToBF16(v))
	}
}

func actF32Generic(x []float32, dst []byte) {
	dst = dst[:4*len(x)]
	for i, v := range x {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}
