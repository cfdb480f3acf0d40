package kernel

import (
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// TestMatMulFused checks that MatMul2 and MatMul3 give exactly the results
// of separate MatMuls, pooled or not, for one input and for batches.
func TestMatMulFused(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		for _, shapes := range [][3]int{{576, 192, 1536}, {576, 192, 200}} { // the last: not fused
			cols := 256
			var ms [3]*Matrix
			for i, rows := range shapes {
				m, err := NewMatrix(typ, randomWeights(rnd, typ, rows*cols), rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				ms[i] = m
			}
			for _, serial := range []bool{false, true} {
				serialOnly = serial
				for _, n := range []int{1, 2, 3, 37} {
					x := randVec(rnd, n*cols)
					var want, got [3][]float32
					for i, m := range ms {
						want[i] = make([]float32, n*m.Rows)
						got[i] = make([]float32, n*m.Rows)
						m.MatMul(want[i], x, n)
					}
					MatMul3(ms[0], ms[1], ms[2], got[0], got[1], got[2], x, n)
					for i := range ms {
						if !sameResults(got[i], want[i]) {
							t.Fatalf("%v n=%d serial=%v: MatMul3 part %d differs", typ, n, serial, i)
						}
						clear(got[i])
					}
					MatMul2(ms[0], ms[1], got[0], got[1], x, n)
					if !sameResults(got[0], want[0]) || !sameResults(got[1], want[1]) {
						t.Fatalf("%v n=%d serial=%v: MatMul2 differs", typ, n, serial)
					}
				}
			}
			serialOnly = false
		}
	}
}

// sameResults reports whether a and b hold the same values, NaN matching NaN
// (random weight bytes include NaN scales).
func sameResults(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && (a[i] == a[i] || b[i] == b[i]) {
			return false
		}
	}
	return true
}
