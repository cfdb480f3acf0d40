package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/model"
)

// SoftCap is ggml's three float32 steps (scale by 1/c, tanh, scale by c),
// within rounding of the exact c·tanh(x/c), bounded by c, odd, and
// allocation-free.
func TestSoftCap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []float32{50, 30, 3} {
		x := make([]float32, 4096)
		for i := range x {
			x[i] = float32(r.NormFloat64() * float64(c) * 2)
		}
		x[0], x[1], x[2] = 0, 1e30, -1e30
		got := append([]float32(nil), x...)
		model.SoftCap(got, c)
		inv := 1 / c
		for i, v := range x {
			step := c * float32(math.Tanh(float64(v*inv)))
			if got[i] != step {
				t.Fatalf("cap %v: SoftCap(%v) = %v, want the float32 steps' %v", c, v, got[i], step)
			}
			exact := float64(c) * math.Tanh(float64(v)/float64(c))
			if d := math.Abs(float64(got[i]) - exact); d > 2e-7*float64(c) {
				t.Errorf("cap %v: SoftCap(%v) = %v, exact %v (Δ %.3g)", c, v, got[i], exact, d)
			}
			if math.Abs(float64(got[i])) > float64(c) {
				t.Errorf("cap %v: |SoftCap(%v)| = %v exceeds the cap", c, v, got[i])
			}
			neg := []float32{-v}
			model.SoftCap(neg, c)
			if neg[0] != -got[i] {
				t.Errorf("cap %v: SoftCap(-%v) = %v, want %v", c, v, neg[0], -got[i])
			}
		}
	}
	x := make([]float32, 256)
	if a := testing.AllocsPerRun(10, func() { model.SoftCap(x, 50) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}
