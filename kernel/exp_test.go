package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// ulpDiff is the distance between two finite float32 in units in the last
// place.
func ulpDiff(a, b float32) int64 {
	ord := func(f float32) int64 {
		u := int64(math.Float32bits(f))
		if u&(1<<31) != 0 {
			u = -(u &^ (1 << 31))
		}
		return u
	}
	d := ord(a) - ord(b)
	if d < 0 {
		d = -d
	}
	return d
}

// expf is within 2 ulp of the correctly rounded e^x wherever e^x is a
// normal float32, and exact at the edges: 0 below expLo, +Inf above expHi.
func TestExpfAccuracy(t *testing.T) {
	worst, at := int64(0), float32(0)
	check := func(x float32) {
		want := float32(math.Exp(float64(x)))
		got := expf(x)
		if want < 0x1p-126 { // subnormal or zero: absolute error below the smallest normal
			if math.Abs(float64(got-want)) > 0x1p-148 {
				t.Fatalf("expf(%g) = %g, want %g", x, got, want)
			}
			return
		}
		if math.IsInf(float64(want), 1) {
			if got < math.MaxFloat32*0.9999 {
				t.Fatalf("expf(%g) = %g, want +Inf or near", x, got)
			}
			return
		}
		if d := ulpDiff(got, want); d > worst {
			worst, at = d, x
		}
	}
	for x := float32(-110); x < 90; x += 1.0 / 1024 {
		check(x)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		check(float32(r.Float64()*200 - 110))
		check(float32(r.NormFloat64()))
	}
	for _, x := range []float32{0, -0, 1e-30, -1e-30, 1e-8, expHi, expLo, -87.33, 88.7} {
		check(x)
	}
	t.Logf("worst error %d ulp at x=%g", worst, at)
	if worst > 2 {
		t.Errorf("expf is %d ulp from e^x at x=%g, want ≤ 2", worst, at)
	}
	inf := float32(math.Inf(1))
	if got := expf(-inf); got != 0 {
		t.Errorf("expf(-Inf) = %g", got)
	}
	if got := expf(inf); got != inf {
		t.Errorf("expf(+Inf) = %g", got)
	}
	if got := expf(float32(math.NaN())); got == got {
		t.Errorf("expf(NaN) = %g", got)
	}
	if got := expf(0); got != 1 {
		t.Errorf("expf(0) = %g", got)
	}
}

// expInputs are n activations with the awkward values spread among them:
// overflow and underflow edges, infinities, NaN, zeros of both signs.
func expInputs(r *rand.Rand, n int) []float32 {
	special := []float32{expHi, expLo, expHi + 0.01, expLo - 0.01, 88.7, -87.4, 0, float32(math.Copysign(0, -1)),
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-30, -1e-30, 200, -200}
	x := make([]float32, n)
	for i := range x {
		switch r.IntN(8) {
		case 0:
			x[i] = special[r.IntN(len(special))]
		case 1:
			x[i] = float32(r.Float64()*240 - 120)
		default:
			x[i] = float32(r.NormFloat64() * 4)
		}
	}
	return x
}

// guardedF32 is guarded for n float32.
func guardedF32(t testing.TB, n int) []float32 {
	b := guarded(t, 4*n)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

// Every tier's SiLUMul and Softmax equal the generic code bit for bit, on
// lengths around the eight-lane groups and on slices that end at a guard
// page.
func TestVecTiers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, im := range vecImpls {
		if !cpuHas(im.tier) {
			continue
		}
		t.Run(im.tier.String(), func(t *testing.T) {
			for _, n := range []int{8, 16, 24, 64, 200, 1536, 4864} {
				for rep := range 4 {
					x := expInputs(r, n)
					up := expInputs(r, n)
					if rep == 0 {
						for i := range x { // no specials: the common case
							x[i] = float32(r.NormFloat64() * 3)
						}
					}
					want := append([]float32(nil), x...)
					siluMulGeneric(want, up)
					got := guardedF32(t, n)
					gup := guardedF32(t, n)
					copy(got, x)
					copy(gup, up)
					im.fn.siluMul(got, gup)
					for i := range want {
						if !sameBits(got[i], want[i]) {
							t.Fatalf("siluMul n=%d: [%d] silu(%g)*%g = %g, want %g", n, i, x[i], up[i], got[i], want[i])
						}
					}

					// Softmax's exp pass: max subtracted, finite maximum.
					mx := float32(r.NormFloat64() * 10)
					want = append(want[:0], x...)
					wsum := expSumGeneric(want, mx, 0)
					copy(got, x)
					gsum := im.fn.expSum(got, mx)
					if math.Float64bits(wsum) != math.Float64bits(gsum) && !(wsum != wsum && gsum != gsum) {
						t.Fatalf("expSum n=%d: sum %v, want %v", n, gsum, wsum)
					}
					for i := range want {
						if !sameBits(got[i], want[i]) {
							t.Fatalf("expSum n=%d: [%d] expf(%g-%g) = %g, want %g", n, i, x[i], mx, got[i], want[i])
						}
					}
				}
			}
		})
	}
}

// FuzzExpf checks the SIMD exponentials against expf on any eight inputs.
func FuzzExpf(f *testing.F) {
	f.Add(float32(0), float32(1), float32(-1), float32(88.72), float32(-104), float32(1e-20), float32(30), float32(-30))
	f.Fuzz(func(t *testing.T, a, b, c, d, e, g, h, i float32) {
		x := []float32{a, b, c, d, e, g, h, i}
		for _, im := range vecImpls {
			if !cpuHas(im.tier) {
				continue
			}
			got := append([]float32(nil), x...)
			im.fn.expSum(got, 0)
			for j, v := range x {
				if w := expf(v); !sameBits(got[j], w) {
					t.Fatalf("%v: expf(%g) = %g, want %g", im.tier, v, got[j], w)
				}
			}
		}
	})
}

// Softmax and Scale give the same bits on every tier as on the generic
// code, whatever the maximum kernel returns for NaNs and ±0 ties.
func TestSoftmaxTiers(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	defer setForcedTier(setForcedTier(-1))
	for _, n := range []int{1, 7, 8, 9, 16, 63, 64, 65, 200, 3000} {
		for rep := range 6 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 5)
			}
			switch rep {
			case 1:
				x[r.IntN(n)] = float32(math.Inf(-1))
			case 2:
				for i := range x {
					x[i] = float32(math.Copysign(0, float64(r.IntN(2)*2-1)))
				}
			case 3:
				x[r.IntN(n)] = float32(math.NaN())
			case 4:
				x[r.IntN(n)] = float32(math.Inf(1))
			}
			setForcedTier(TierGeneric)
			want := append([]float32(nil), x...)
			Softmax(want)
			wantScaled := append([]float32(nil), x...)
			Scale(wantScaled, 0.37)
			for _, im := range vecImpls {
				if !cpuHas(im.tier) {
					continue
				}
				setForcedTier(im.tier)
				got := append([]float32(nil), x...)
				Softmax(got)
				scaled := append([]float32(nil), x...)
				Scale(scaled, 0.37)
				for i := range got {
					if !sameBits(got[i], want[i]) {
						t.Fatalf("%v n=%d rep %d: softmax[%d] = %g, want %g", im.tier, n, rep, i, got[i], want[i])
					}
					if !sameBits(scaled[i], wantScaled[i]) {
						t.Fatalf("%v n=%d rep %d: scale[%d] = %g, want %g", im.tier, n, rep, i, scaled[i], wantScaled[i])
					}
				}
				if m := n &^ 7; m > 0 && rep != 3 {
					if got, want := im.fn.max(x[:m]), maxGeneric(x[:m]); got != want {
						t.Fatalf("%v n=%d rep %d: max %g, want %g", im.tier, n, rep, got, want)
					}
				}
			}
		}
	}
}
