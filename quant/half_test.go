package quant_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// halfValue is an independent float64 decoding of a binary16 value.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	man := float64(h & 0x3ff)
	switch exp {
	case 0x1f:
		if man != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	case 0:
		return sign * math.Ldexp(man, -24)
	}
	return sign * math.Ldexp(1024+man, exp-25)
}

func TestF16ToF32All(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := quant.F16ToF32(h)
		want := halfValue(h)
		if math.IsNaN(want) {
			b := math.Float32bits(f)
			if !math.IsNaN(float64(f)) || b&0x00400000 == 0 || b>>31 != uint32(h>>15) || (b>>13)&0x1ff != uint32(h)&0x1ff {
				t.Fatalf("F16ToF32(%#04x) = %#08x, want quiet NaN with the same sign and payload", h, b)
			}
			back := quant.F32ToF16(f)
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("F32ToF16(NaN from %#04x) = %#04x, not a NaN", h, back)
			}
			continue
		}
		if float64(f) != want || math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, f, want)
		}
		if back := quant.F32ToF16(f); back != h {
			t.Fatalf("round trip %#04x -> %v -> %#04x", h, f, back)
		}
	}
}

// refF32ToF16 rounds |f| to the nearest half by search, ties to even.
func refF32ToF16(f float32) uint16 {
	var sign uint16
	if math.Signbit(float64(f)) {
		sign = 0x8000
	}
	a := math.Abs(float64(f))
	if math.IsNaN(a) {
		return sign | 0x7e00
	}
	if a >= 65520 { // halfway between 65504 and 2^16 rounds to even: inf
		return sign | 0x7c00
	}
	// largest finite half <= a
	lo, hi := 0, 0x7bff
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if halfValue(uint16(mid)) <= a {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	below := uint16(lo)
	if halfValue(below) == a {
		return sign | below
	}
	above := below + 1
	dl, du := a-halfValue(below), halfValue(above)-a
	switch {
	case dl < du:
		return sign | below
	case du < dl:
		return sign | above
	case below&1 == 0:
		return sign | below
	}
	return sign | above
}

func TestF32ToF16Rounding(t *testing.T) {
	cases := []struct {
		f    float32
		want uint16
	}{
		{0, 0},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65519.996, 0x7bff},
		{65520, 0x7c00}, // tie between max half and 2^16: even -> inf
		{1e10, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{float32(math.Ldexp(1, -24)), 0x0001},              // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000},              // tie to even: 0
		{float32(math.Ldexp(1.0000001, -25)), 0x0001},      // just above the tie
		{float32(math.Ldexp(3, -25)), 0x0002},              // tie between 1 and 2 ulps: 2
		{float32(math.Ldexp(5, -25)), 0x0002},              // tie between 2 and 3 ulps: 2
		{float32(math.Ldexp(1023, -24)), 0x03ff},           // largest subnormal
		{float32(math.Ldexp(2047, -25)), 0x0400},           // rounds up into the normals
		{float32(math.Ldexp(1, -14)), 0x0400},              // smallest normal
		{1 + float32(math.Ldexp(1, -11)), 0x3c00},          // tie: even mantissa 0
		{1 + float32(math.Ldexp(3, -11)), 0x3c02},          // tie: even mantissa 2
		{1 + float32(math.Ldexp(1, -11)) + 1e-7, 0x3c01},   // above the tie
		{2047 + 0.5, 0x67ff + 1},                           // 2047.5: tie between 2047 and 2048 -> 2048
		{float32(math.Ldexp(1, -30)), 0},                   // underflow
		{-float32(math.Ldexp(1.5, -25)), 0x8001},           // negative subnormal rounding up
		{math.Float32frombits(0x7f800001), 0x7e00},         // NaN
		{math.Float32frombits(0xffc00000), 0xfe00},         // negative NaN
		{math.Float32frombits(0x00000001), 0x0000},         // float32 subnormal
		{math.Float32frombits(0x477fefff), 0x7bff},         // just below 65520
		{math.Float32frombits(0x477ff000), 0x7c00},         // 65520
		{float32(math.Ldexp(1, 15)) * 1.999, 0x7bff},       // near max
		{float32(math.Ldexp(1, 16)), 0x7c00},               // 65536
		{float32(math.Ldexp(1, -14)) * 0.99999994, 0x0400}, // just below the smallest normal
	}
	for _, c := range cases {
		if got := quant.F32ToF16(c.f); got != c.want {
			t.Errorf("F32ToF16(%g [%#08x]) = %#04x, want %#04x", c.f, math.Float32bits(c.f), got, c.want)
		}
		if got := refF32ToF16(c.f); got != c.want {
			t.Errorf("test reference disagrees on %g: %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

func TestF32ToF16AgainstReference(t *testing.T) {
	check := func(b uint32) {
		f := math.Float32frombits(b)
		if got, want := quant.F32ToF16(f), refF32ToF16(f); got != want {
			t.Fatalf("F32ToF16(%g [%#08x]) = %#04x, want %#04x", f, b, got, want)
		}
	}
	// every half value, its neighbours and the midpoints to the next half,
	// plus one float32 ulp either side of each
	for i := 0; i < 0x7c00; i++ {
		for _, s := range []uint32{0, 1 << 31} {
			f := math.Float32bits(float32(halfValue(uint16(i)))) | s
			mid := math.Float32bits(float32((halfValue(uint16(i))+halfValue(uint16(i+1)))/2)) | s
			for _, b := range []uint32{f - 1, f, f + 1, mid - 1, mid, mid + 1} {
				check(b)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1<<20; i++ {
		b := r.Uint32()
		// concentrate on the half range and around it
		b = b&0x807fffff | (uint32(r.IntN(50))+97)<<23
		check(b)
		check(r.Uint32())
	}
}

func TestBF16(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := quant.BF16ToF32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %#08x", h, math.Float32bits(f))
		}
		back := quant.F32ToBF16(f)
		if math.IsNaN(float64(f)) {
			if back != h|0x40 {
				t.Fatalf("F32ToBF16(NaN %#08x) = %#04x, want quiet %#04x", math.Float32bits(f), back, h|0x40)
			}
			continue
		}
		if back != h {
			t.Fatalf("round trip %#04x -> %#04x", h, back)
		}
	}
	cases := []struct {
		bits uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above the tie
		{0x3f807fff, 0x3f80}, // below the tie
		{0x7f7fffff, 0x7f80}, // max float rounds to inf
		{0xff7fffff, 0xff80},
		{0x7f800000, 0x7f80}, // inf
		{0x7f800001, 0x7fc0}, // signalling NaN made quiet
		{0xffc12345, 0xffc1},
		{0x00008000, 0x0000}, // subnormal tie to even (not flushed)
		{0x00018000, 0x0002},
		{0x00010001, 0x0001},
		{0x80000000, 0x8000},
	}
	for _, c := range cases {
		if got := quant.F32ToBF16(math.Float32frombits(c.bits)); got != c.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", c.bits, got, c.want)
		}
	}
}
