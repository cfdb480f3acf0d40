package quant_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

func encode(t *testing.T, typ quant.Type, n int) []byte {
	t.Helper()
	nb, err := typ.RowBytes(n)
	if err != nil {
		t.Fatal(err)
	}
	return make([]byte, nb)
}

func decode(t *testing.T, typ quant.Type, b []byte, n int) []float32 {
	t.Helper()
	y := make([]float32, n)
	if err := quant.Dequantize(typ, b, y); err != nil {
		t.Fatal(err)
	}
	return y
}

func i8s(b []byte) []int8 {
	q := make([]int8, len(b))
	for i, v := range b {
		q[i] = int8(v)
	}
	return q
}

func TestQuantizeQ8_0Cases(t *testing.T) {
	check := func(name string, x []float32, wantD uint16, wantQ []int8) {
		t.Helper()
		b := encode(t, quant.Q8_0, len(x))
		quant.QuantizeQ8_0(x, b)
		if d := binary.LittleEndian.Uint16(b); d != wantD {
			t.Errorf("%s: d = %#04x, want %#04x", name, d, wantD)
		}
		q := i8s(b[2:34])
		for i := range q {
			if q[i] != wantQ[i] {
				t.Errorf("%s: q = %v\nwant %v", name, q, wantQ)
				break
			}
		}
	}
	zero := make([]float32, 32)
	check("zeros", zero, 0, make([]int8, 32))

	x := make([]float32, 32)
	x[5] = 100
	q := make([]int8, 32)
	q[5] = 127
	check("one big value", x, quant.F32ToF16(100.0/127), q)

	x[5] = -3
	x[6] = 1.5
	q[5], q[6] = -127, 64 // 1.5*127/3 = 63.5 -> 64 (ties to even)
	check("negative max", x, quant.F32ToF16(3.0/127), q)

	// amax 127: id = 1, so x itself is rounded, ties to even
	x = make([]float32, 32)
	q = make([]int8, 32)
	vals := []float32{127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, -126.5, 125.5}
	want := []int8{127, 0, 2, 2, 0, -2, -2, 3, -126, 126}
	copy(x, vals)
	copy(q, want)
	check("ties to even", x, quant.F32ToF16(1), q)

	// a block of tiny subnormals: 127/amax overflows to +Inf, and AVX2's
	// float->int conversion of Inf and NaN (0*Inf) gives INT_MIN, saturated
	// to -128 (what llama.cpp computes on x86)
	x = make([]float32, 32)
	x[0] = math.Float32frombits(1)
	q = make([]int8, 32)
	for i := range q {
		q[i] = -128
	}
	check("subnormal amax", x, 0, q)
}

func TestQuantizeQ8_0Bound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, scale := range []float64{1e-3, 0.05, 1, 300} {
		x := randVec(r, 32*64, scale)
		x[7] = 0 // an exact zero stays zero
		b := encode(t, quant.Q8_0, len(x))
		quant.QuantizeQ8_0(x, b)
		y := decode(t, quant.Q8_0, b, len(x))
		for blk := 0; blk < len(x)/32; blk++ {
			var amax float64
			for _, v := range x[32*blk : 32*blk+32] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			d := amax / 127
			D := float64(quant.F16ToF32(binary.LittleEndian.Uint16(b[34*blk:])))
			// rounding error of q plus the error of storing d as fp16
			bound := 0.5*d*(1+1e-6) + 127*math.Abs(D-d) + 1e-7*amax
			for i := 32 * blk; i < 32*blk+32; i++ {
				if e := math.Abs(float64(y[i]) - float64(x[i])); e > bound {
					t.Fatalf("scale %g: |%v - %v| = %g > %g", scale, y[i], x[i], e, bound)
				}
			}
		}
		if y[7] != 0 {
			t.Errorf("zero decoded as %v", y[7])
		}
	}
}

func TestQuantizeQ8_1(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := randVec(r, 32*16, 0.7)
	b0 := encode(t, quant.Q8_0, len(x))
	b1 := encode(t, quant.Q8_1, len(x))
	quant.QuantizeQ8_0(x, b0)
	quant.QuantizeQ8_1(x, b1)
	for blk := 0; blk < len(x)/32; blk++ {
		p0, p1 := b0[34*blk:34*blk+34], b1[36*blk:36*blk+36]
		if string(p0[:2]) != string(p1[:2]) || string(p0[2:]) != string(p1[4:]) {
			t.Fatalf("block %d: Q8_1 d/qs differ from Q8_0", blk)
		}
		var sum int32
		for _, q := range i8s(p1[4:]) {
			sum += int32(q)
		}
		amax := float32(0)
		for _, v := range x[32*blk : 32*blk+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		if s, want := binary.LittleEndian.Uint16(p1[2:]), quant.F32ToF16(d*float32(sum)); s != want {
			t.Fatalf("block %d: s = %#04x, want %#04x", blk, s, want)
		}
	}
	y0, y1 := decode(t, quant.Q8_0, b0, len(x)), decode(t, quant.Q8_1, b1, len(x))
	for i := range y0 {
		if y0[i] != y1[i] {
			t.Fatalf("Q8_1 decodes [%d] to %v, Q8_0 to %v", i, y1[i], y0[i])
		}
	}
	// zeros: d = s = 0
	z := make([]byte, 36)
	quant.QuantizeQ8_1(make([]float32, 32), z)
	for _, v := range z {
		if v != 0 {
			t.Fatalf("zeros: % x", z)
		}
	}
}

func q8kFields(b []byte) (d float32, qs []int8, bsums []int16) {
	d = math.Float32frombits(binary.LittleEndian.Uint32(b))
	qs = i8s(b[4:260])
	for g := 0; g < 16; g++ {
		bsums = append(bsums, int16(binary.LittleEndian.Uint16(b[260+2*g:])))
	}
	return
}

func TestQuantizeQ8_KCases(t *testing.T) {
	b := make([]byte, 292)
	for i := range b {
		b[i] = 0xaa // must all be overwritten
	}
	quant.QuantizeQ8_K(make([]float32, 256), b)
	for i, v := range b {
		if v != 0 {
			t.Fatalf("zeros: byte %d = %#02x", i, v)
		}
	}

	// one big value (negative): iscale = -127/max > 0
	x := make([]float32, 256)
	x[17] = -2
	x[18] = 1 // 63.5 -> 64? no: iscale*x = -63.5 -> -64 (ties to even)
	x[19] = 0.5
	quant.QuantizeQ8_K(x, b)
	d, qs, bs := q8kFields(b)
	if want := float32(1) / (float32(-127) / -2); d != want {
		t.Errorf("d = %v, want %v", d, want)
	}
	if qs[17] != -127 || qs[18] != 64 || qs[19] != 32 {
		t.Errorf("q = %d %d %d, want -127 64 32", qs[17], qs[18], qs[19])
	}
	if bs[1] != -127+64+32 {
		t.Errorf("bsums[1] = %d, want %d", bs[1], -127+64+32)
	}

	// equal magnitudes: the first one decides the sign of d
	x = make([]float32, 256)
	x[0], x[1], x[2] = 3, -3, 1.5
	quant.QuantizeQ8_K(x, b)
	d, qs, _ = q8kFields(b)
	if !(d < 0) || qs[0] != -127 || qs[1] != 127 || qs[2] != -64 {
		t.Errorf("d = %v, q = %d %d %d; want d < 0, -127 127 -64", d, qs[0], qs[1], qs[2])
	}
	y := decode(t, quant.Q8_K, b, 256)
	if y[0] != 3 || y[1] != -3 {
		t.Errorf("decoded %v %v, want 3 -3", y[0], y[1])
	}
}

func TestQuantizeQ8_KBound(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, scale := range []float64{1e-4, 1, 1000} {
		x := randVec(r, 256*8, scale)
		b := encode(t, quant.Q8_K, len(x))
		quant.QuantizeQ8_K(x, b)
		y := decode(t, quant.Q8_K, b, len(x))
		for blk := 0; blk < len(x)/256; blk++ {
			d, qs, bs := q8kFields(b[292*blk:])
			for g := 0; g < 16; g++ {
				var s int
				for _, q := range qs[16*g : 16*g+16] {
					s += int(q)
				}
				if int(bs[g]) != s {
					t.Fatalf("block %d: bsums[%d] = %d, want %d", blk, g, bs[g], s)
				}
			}
			bound := math.Abs(float64(d)) * 0.5 * (1 + 1e-5)
			for i := 256 * blk; i < 256*blk+256; i++ {
				if e := math.Abs(float64(y[i]) - float64(x[i])); e > bound {
					t.Fatalf("scale %g: |%v - %v| = %g > %g", scale, y[i], x[i], e, bound)
				}
			}
		}
	}
}

// TestReferenceQuantizersBound round-trips the weight encoders.
func TestReferenceQuantizersBound(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := randVec(r, 32*64, 0.05)
	levels := map[quant.Type]float64{quant.Q4_0: 8, quant.Q4_1: 7.5, quant.Q5_0: 16, quant.Q5_1: 15.5, quant.Q8_0: 127}
	for typ, lv := range levels {
		b := encode(t, typ, len(x))
		if err := quant.Quantize(typ, x, b); err != nil {
			t.Fatal(err)
		}
		y := decode(t, typ, b, len(x))
		for blk := 0; blk < len(x)/32; blk++ {
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range x[32*blk : 32*blk+32] {
				lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
			}
			rng := math.Max(hi, -lo)
			if typ == quant.Q4_1 || typ == quant.Q5_1 {
				rng = (hi - lo) / 2
			}
			// one quantization step is rng/lv; allow a step (the Q4_0/Q5_0
			// grid is asymmetric) plus fp16 rounding of the scales
			bound := rng/lv*1.01 + 2e-3*rng
			for i := 32 * blk; i < 32*blk+32; i++ {
				if e := math.Abs(float64(y[i] - x[i])); e > bound {
					t.Fatalf("%v: |%v - %v| = %g > %g", typ, y[i], x[i], e, bound)
				}
			}
		}
	}
	// all zeros. For Q4_0/Q5_0 d = 0/-8 = -0 (fp16 0x8000) as in ggml, and
	// zero is the middle level (q = 8, q = 16 with its fifth bit set).
	zeros := []struct {
		typ  quant.Type
		want []byte
	}{
		{quant.Q4_0, append([]byte{0x00, 0x80}, repeat(0x88, 16)...)},
		{quant.Q4_1, make([]byte, 20)},
		{quant.Q5_0, append([]byte{0x00, 0x80, 0xff, 0xff, 0xff, 0xff}, make([]byte, 16)...)},
		{quant.Q5_1, make([]byte, 24)},
		{quant.Q8_0, make([]byte, 34)},
	}
	for _, c := range zeros {
		b := encode(t, c.typ, 32)
		if err := quant.Quantize(c.typ, make([]float32, 32), b); err != nil {
			t.Fatal(err)
		}
		if string(b) != string(c.want) {
			t.Errorf("%v zeros: % x, want % x", c.typ, b, c.want)
		}
	}
}

func repeat(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}
