package synth

import (
	"math"
	"sync"
)

// Weights are drawn from a normal distribution through a table: 2^16
// quantiles of N(0, 1), indexed by 16 random bits, four values per 64-bit
// random number. That is some ten times faster than NormFloat64 and
// indistinguishable for our purpose (the values are truncated at ±4.3σ).
const gaussBits = 16

var gaussTable = sync.OnceValue(func() *[1 << gaussBits]float32 {
	var t [1 << gaussBits]float32
	for i := range t {
		p := (float64(i) + 0.5) / (1 << gaussBits)
		t[i] = float32(math.Sqrt2 * math.Erfinv(2*p-1))
	}
	return &t
})

// rng is SplitMix64: tiny, fast and good enough to pick table entries.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// mix derives an independent stream's seed from a few integers, so that a
// chunk's values depend on (seed, tensor, chunk) only and not on the order
// or the goroutine that computes them.
func mix(xs ...uint64) uint64 {
	r := rng{0x243f6a8885a308d3}
	for _, x := range xs {
		r.s ^= x
		r.s = r.next()
	}
	return r.s
}

// gaussian fills x with normal values of mean 0 and standard deviation std.
func gaussian(x []float32, std float32, seed uint64) {
	t := gaussTable()
	r := rng{seed}
	i := 0
	for ; i+4 <= len(x); i += 4 {
		u := r.next()
		x[i] = std * t[uint16(u)]
		x[i+1] = std * t[uint16(u>>16)]
		x[i+2] = std * t[uint16(u>>32)]
		x[i+3] = std * t[uint16(u>>48)]
	}
	for u := r.next(); i < len(x); i, u = i+1, u>>16 {
		x[i] = std * t[uint16(u)]
	}
}
