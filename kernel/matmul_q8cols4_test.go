package kernel

import (
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// TestMatMulQ8Cols4 checks that the batched Q8_0 products that use the
// rows × 4-activation kernel (groups of 4 activation rows, the rest by the
// existing kernels) give bit for bit what the path without it gives, and
// what the single dot gives for each element, for MatMul and the fused
// MatMul3, pooled or not.
func TestMatMulQ8Cols4(t *testing.T) {
	if q8Cols4.fn == nil || !cpuHas(q8Cols4.tier) {
		t.Skip("no Q8_0 4-activation kernel in this build")
	}
	rnd := rand.New(rand.NewPCG(43, 44))
	defer func() { serialOnly = false }()
	prev := setForcedTier(q8Cols4.tier)
	defer setForcedTier(prev)
	typ := quant.Q8_0
	rt := routeFor(typ)
	if !rt.ok || rt.tier != q8Cols4.tier {
		t.Fatalf("Q8_0: dot tier %v, 4-activation kernel tier %v", rt.tier, q8Cols4.tier)
	}
	for _, sh := range [][2]int{{24, 512}, {72, 1536}, {13, 96}} {
		cols := sh[1]
		var ms [3]*Matrix
		for i, rows := range []int{sh[0], 16, 40} {
			if sh[0]%8 != 0 && i > 0 {
				rows = sh[0] + 2*i // odd row counts: not fusable, run one by one
			}
			m, err := NewMatrix(typ, randomWeights(rnd, typ, rows*cols), rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			ms[i] = m
		}
		for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 37} {
			x := randVec(rnd, n*cols)
			xb := make([][]byte, n)
			for tk := range n {
				xb[tk] = encodeAct(t, quant.Q8_0, x[tk*cols:(tk+1)*cols])
			}
			for _, serial := range []bool{false, true} {
				serialOnly = serial
				var single, got, fused [3][]float32
				saved := q8Cols4.fn
				q8Cols4.fn = nil
				for i, m := range ms {
					single[i] = make([]float32, n*m.Rows)
					m.MatMul(single[i], x, n)
				}
				q8Cols4.fn = saved
				for i, m := range ms {
					got[i] = make([]float32, n*m.Rows+1)
					got[i][n*m.Rows] = 42
					m.MatMul(got[i][:n*m.Rows], x, n)
					if got[i][n*m.Rows] != 42 {
						t.Fatal("MatMul wrote past its output")
					}
					fused[i] = make([]float32, n*m.Rows)
				}
				MatMul3(ms[0], ms[1], ms[2], fused[0], fused[1], fused[2], x, n)
				for i, m := range ms {
					for tk := range n {
						for r := range m.Rows {
							k := tk*m.Rows + r
							want := rt.dot(cols, m.Data[r*m.RowBytes:(r+1)*m.RowBytes], xb[tk])
							if !sameBits(single[i][k], want) || !sameBits(got[i][k], want) || !sameBits(fused[i][k], want) {
								t.Fatalf("%dx%d n=%d serial=%v matrix %d out[%d][%d]: cols4 %g, fused %g, single %g, dot %g",
									m.Rows, cols, n, serial, i, tk, r, got[i][k], fused[i][k], single[i][k], want)
							}
						}
					}
				}
			}
		}
	}
}
