//go:build !purego && !noasm

package kernel

import "github.com/slm-dev/slm/quant"

//go:noescape
func dotF32Groups(w, x *byte, groups int) float32

//go:noescape
func dotF16Groups(w, x *byte, groups int) float32

//go:noescape
func dotBF16Groups(w, x *byte, groups int) float32

func init() {
	registerDot(quant.F32, quant.F32, TierNEON, dotF32NEON)
	registerDot(quant.F16, quant.F16, TierNEON, dotF16NEON)
	registerDot(quant.BF16, quant.BF16, TierNEON, dotBF16NEON)
}

// The float dots: the assembly sums whole groups of 8 (32 for BF16) as the
// generic code does; the tail is added in float64, as there.

func dotF32NEON(n int, w, x []byte) float32 {
	if n <= 0 {
		return 0
	}
	_, _ = w[4*n-1], x[4*n-1]
	m := n &^ 7
	s := dotF32Groups(&w[0], &x[0], m/8)
	if m == n {
		return s
	}
	t := float64(s)
	for i := m; i < n; i++ {
		t += float64(f32At(w, i) * f32At(x, i))
	}
	return float32(t)
}

func dotF16NEON(n int, w, x []byte) float32 {
	if n <= 0 {
		return 0
	}
	_, _ = w[2*n-1], x[2*n-1]
	m := n &^ 7
	s := dotF16Groups(&w[0], &x[0], m/8)
	if m == n {
		return s
	}
	t := float64(s)
	for i := m; i < n; i++ {
		t += float64(h16(w[2*i:]) * h16(x[2*i:]))
	}
	return float32(t)
}

func dotBF16NEON(n int, w, x []byte) float32 {
	if n <= 0 {
		return 0
	}
	_, _ = w[2*n-1], x[2*n-1]
	m := n &^ 31
	var t float64
	if m > 0 {
		t = float64(dotBF16Groups(&w[0], &x[0], m/32))
	}
	for i := m; i < n; i++ {
		t += float64(b16(w, i) * b16(x, i))
	}
	return float32(t)
}
