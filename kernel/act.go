package kernel

import (
	"math"
	"sync"

	"github.com/slm-dev/slm/quant"
)

// GELU constants, as float32 like ggml's.
const (
	geluCoefA     = float32(0.044715)
	sqrt2OverPi32 = float32(0.79788456080286535587989211986876)
)

// gelu is ggml_gelu_f32: the tanh approximation evaluated in float32.
func gelu(x float32) float32 {
	inner := float32(float32(sqrt2OverPi32*x) * float32(1+float32(float32(geluCoefA*x)*x)))
	t := float32(math.Tanh(float64(inner)))
	return float32(0.5*x) * (1 + t)
}

// GELU replaces each x by the tanh approximation of GELU,
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in float32.
func GELU(x []float32) {
	for i, v := range x {
		x[i] = gelu(v)
	}
}

var (
	geluTableOnce sync.Once
	geluTable     []uint16 // fp16 result for every fp16 input
)

// GELUFP16 is GELU as ggml's CPU backend computes it: through a table over
// all fp16 inputs. The input is rounded to fp16, the table holds the fp16
// rounding of the float32 GELU of that value; inputs <= -10 give 0 and
// inputs >= 10 give x. Use it to reproduce llama.cpp's GELU models.
func GELUFP16(x []float32) {
	geluTableOnce.Do(func() {
		geluTable = make([]uint16, 1<<16)
		for i := range geluTable {
			geluTable[i] = quant.F32ToF16(gelu(quant.F16ToF32(uint16(i))))
		}
	})
	t := geluTable
	for i, v := range x {
		switch {
		case v <= -10:
			x[i] = 0
		case v >= 10:
			// x itself
		default:
			x[i] = quant.F16ToF32(t[quant.F32ToF16(v)])
		}
	}
}
