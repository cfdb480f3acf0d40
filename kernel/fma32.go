package kernel

import "math"

// fma32 is the float32 fused multiply-add a*b + c with a single rounding, as
// vfmadd*ps computes it lane by lane. The float64 product of two float32 is
// exact; the float64 sum is rounded once more, and that double rounding can
// only go wrong when the float64 sum lands exactly halfway between two
// float32 values, which the slow path resolves with the sum's exact error.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	s := p + float64(c)
	r := float32(s)
	bits := math.Float64bits(s)
	if bits&(1<<29-1) != 1<<28 && math.Abs(s) >= 0x1p-126 {
		return r // not a float32 midpoint (normal range): r is correctly rounded
	}
	if float64(r) == s || math.IsInf(s, 0) || math.IsNaN(s) {
		return r
	}
	// Exact error of s = p + c (TwoSum).
	bb := s - p
	e := (p - (s - bb)) + (float64(c) - bb)
	if e == 0 {
		return r
	}
	// Neighbour of r on the other side of s.
	var o float32
	if float64(r) < s {
		o = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		o = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if (float64(r)+float64(o))/2 != s {
		return r // not a midpoint after all (subnormal range)
	}
	// The exact value lies beyond the midpoint in the direction of e.
	if (e > 0) == (float64(o) > float64(r)) {
		return o
	}
	return r
}

// hsum8 is the horizontal sum of an 8-lane float32 vector in the order of
// ggml's hsum_float_8 (and tinyBLAS's hsum): the high 128-bit half added to
// the low one, then lanes 2,3 onto 0,1, then lane 1 onto 0.
func hsum8(v *[8]float32) float32 {
	t0, t1, t2, t3 := v[4]+v[0], v[5]+v[1], v[6]+v[2], v[7]+v[3]
	u0, u1 := t0+t2, t1+t3
	return u0 + u1
}
