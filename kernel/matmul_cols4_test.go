package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// TestMatMulCols4 checks that the batched products that use the 4-column
// K-quant kernels (groups of 4 activation rows, the rest by the single dot)
// give bit for bit what the single-dot path gives, and what the dot of the
// same tier gives for each element, for MatMul and the fused MatMul3, pooled
// or not, on every tier with such kernels.
func TestMatMulCols4(t *testing.T) {
	if cols4For == nil {
		t.Skip("no 4-column kernels in this build")
	}
	rnd := rand.New(rand.NewPCG(41, 42))
	defer func() { serialOnly = false }()
	for _, tier := range []Tier{TierAVX2, TierAVX512VNNI} {
		if !cpuHas(tier) {
			continue
		}
		prev := setForcedTier(tier)
		for _, typ := range []quant.Type{quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K} {
			rt := routeFor(typ)
			if !rt.ok || rt.tier != tier || cols4For(typ, rt.tier) == nil {
				t.Fatalf("%v tier %v: no 4-column kernel at the dot's tier (%v)", typ, tier, rt.tier)
			}
			for _, sh := range [][2]int{{24, 512}, {72, 1536}} {
				cols := sh[1]
				var ms [3]*Matrix
				for i, rows := range []int{sh[0], 16, 40} {
					m, err := NewMatrix(typ, randomWeights(rnd, typ, rows*cols), rows, cols)
					if err != nil {
						t.Fatal(err)
					}
					ms[i] = m
				}
				checkCols4Products(t, rnd, ms, rt.dot, quant.Q8_K, []int{4, 5, 7, 8, 37},
					func() func() { saved := cols4For; cols4For = nil; return func() { cols4For = saved } },
					fmt.Sprintf("%v tier %v", typ, tier))
			}
		}
		setForcedTier(prev)
	}
}

// checkCols4Products checks the products of the three matrices for every
// activation count n — MatMul with and without the pool, and the fused
// MatMul3 — against MatMul with the 4-activation kernels switched off
// (off() switches them off and returns the undo) and against the route's
// dot for each element (activations encoded as act), bit for bit; MatMul
// must not write past its output.
func checkCols4Products(t *testing.T, rnd *rand.Rand, ms [3]*Matrix, dot VecDot, act quant.Type, ns []int, off func() func(), label string) {
	t.Helper()
	cols := ms[0].Cols
	for _, n := range ns {
		x := randVec(rnd, n*cols)
		xb := make([][]byte, n)
		for tk := range n {
			xb[tk] = encodeAct(t, act, x[tk*cols:(tk+1)*cols])
		}
		for _, serial := range []bool{false, true} {
			serialOnly = serial
			var single, got, fused [3][]float32
			undo := off()
			for i, m := range ms {
				single[i] = make([]float32, n*m.Rows)
				m.MatMul(single[i], x, n)
			}
			undo()
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
						want := dot(cols, m.Data[r*m.RowBytes:(r+1)*m.RowBytes], xb[tk])
						if !sameBits(single[i][k], want) || !sameBits(got[i][k], want) || !sameBits(fused[i][k], want) {
							t.Fatalf("%s %dx%d n=%d serial=%v matrix %d out[%d][%d]: cols4 %g, fused %g, single %g, dot %g",
								label, m.Rows, cols, n, serial, i, tk, r, got[i][k], fused[i][k], single[i][k], want)
						}
					}
				}
			}
		}
	}
}

// BenchmarkMatMulCols4 is a prompt's product (128 activation rows) on one
// goroutine, with the single dot ("single") and with the 4-column kernels
// ("cols4"); cpu-ns/op is the thread's CPU time.
//
//	go test ./kernel/ -run '^$' -bench MatMulCols4 -benchtime 20x
func BenchmarkMatMulCols4(b *testing.B) {
	if cols4For == nil {
		b.Skip("no 4-column kernels in this build")
	}
	const n = 128
	rnd := rand.New(rand.NewPCG(5, 6))
	serialOnly = true
	defer func() { serialOnly = false }()
	for _, typ := range []quant.Type{quant.Q4_K, quant.Q6_K} {
		for _, sh := range [][2]int{{576, 1536}, {896, 4864}} {
			rows, cols := sh[0], sh[1]
			m, err := NewMatrix(typ, randomWeights(rnd, typ, rows*cols), rows, cols)
			if err != nil {
				b.Fatal(err)
			}
			x, dst := randVec(rnd, n*cols), make([]float32, n*rows)
			saved := cols4For
			for _, mode := range []string{"single", "cols4"} {
				b.Run(fmt.Sprintf("%v/%dx%dx%d/%s", typ, rows, cols, n, mode), func(b *testing.B) {
					if mode == "single" {
						cols4For = nil
						defer func() { cols4For = saved }()
					}
					kLoop(b, len(m.Data)*n, rows*cols*n, func() { m.MatMul(dst, x, n) })
				})
			}
		}
	}
}
