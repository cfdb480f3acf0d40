package kernel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// Tests of the K-quant dot products (dot_k*.go): the generic versions
// against a float64 dot of the dequantized operands, every other tier the
// CPU runs against the generic one bit for bit.

var kTypes = []struct {
	typ     quant.Type
	bytes   int
	generic VecDot
}{
	{quant.Q2_K, bytesQ2K, dotQ2KGeneric},
	{quant.Q3_K, bytesQ3K, dotQ3KGeneric},
	{quant.Q4_K, bytesQ4K, dotQ4KGeneric},
	{quant.Q5_K, bytesQ5K, dotQ5KGeneric},
	{quant.Q6_K, bytesQ6K, dotQ6KGeneric},
}

// kTiers is every registered implementation of t's dot this CPU can run.
func kTiers(t quant.Type) []impl[VecDot] {
	var out []impl[VecDot]
	if e := dots[t]; e != nil {
		for _, im := range e.impls {
			if cpuHas(im.tier) {
				out = append(out, im)
			}
		}
	}
	return out
}

// kFP16Offsets lists where a weight type's fp16 scales are in its block.
func kFP16Offsets(t quant.Type) []int {
	switch t {
	case quant.Q2_K:
		return []int{80, 82}
	case quant.Q3_K:
		return []int{108}
	case quant.Q4_K, quant.Q5_K:
		return []int{0, 2}
	case quant.Q6_K:
		return []int{208}
	}
	panic(t)
}

// q8KFromFloats is the Q8_K encoding of x.
func q8KFromFloats(x []float32) []byte {
	b := make([]byte, len(x)/quant.QKK*bytesQ8K)
	quant.QuantizeQ8_K(x, b)
	return b
}

// fixBsums recomputes the block sums of Q8_K super-blocks from their quants.
func fixBsums(x []byte) {
	for i := 0; i+bytesQ8K <= len(x); i += bytesQ8K {
		b := x[i : i+bytesQ8K]
		for g := range 16 {
			var s int16
			for _, q := range b[4+16*g : 4+16*g+16] {
				s += int16(int8(q))
			}
			binary.LittleEndian.PutUint16(b[260+2*g:], uint16(s))
		}
	}
}

// kRef is the float64 dot of the dequantized weights and activations, and
// the sum of the products' magnitudes (the scale of the rounding error).
func kRef(t *testing.T, typ quant.Type, n int, w, x []byte) (dot, mag float64) {
	wf := make([]float32, n)
	xf := make([]float32, n)
	if err := quant.Dequantize(typ, w, wf); err != nil {
		t.Fatal(err)
	}
	if err := quant.Dequantize(quant.Q8_K, x, xf); err != nil {
		t.Fatal(err)
	}
	for i := range wf {
		p := float64(wf[i]) * float64(xf[i])
		dot += p
		mag += math.Abs(p)
	}
	return dot, mag
}

func randGauss(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

// TestDotKGenericVsDequant checks the generic K-quant dots against the
// float64 dot of the dequantized operands, on quantized Gaussian weights and
// on random weight bytes with finite scales. The generic dot sums exact
// integers and rounds once per super-block and lane, plus the dequantized
// values' own rounding (d·sc, dmin·m products): the error bound is a few
// float32 ulps of the products' magnitude.
func TestDotKGenericVsDequant(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, kt := range kTypes {
		var worst float64
		for _, nb := range []int{1, 2, 7, 16} {
			n := nb * quant.QKK
			for trial := range 4 {
				var w []byte
				if trial < 2 {
					w = make([]byte, nb*kt.bytes)
					if err := quant.Quantize(kt.typ, randGauss(r, n, 0.05), w); err != nil {
						t.Fatal(err)
					}
				} else { // any bit pattern, with finite scales
					w = randBytes(r, nb*kt.bytes)
					for b := range nb {
						for _, off := range kFP16Offsets(kt.typ) {
							binary.LittleEndian.PutUint16(w[b*kt.bytes+off:], quant.F32ToF16(float32(r.NormFloat64()*1e-3)))
						}
					}
				}
				x := q8KFromFloats(randGauss(r, n, 1))
				want, mag := kRef(t, kt.typ, n, w, x)
				got := float64(kt.generic(n, w, x))
				worst = max(worst, math.Abs(got-want)/mag)
				if math.Abs(got-want) > 1e-6*mag+1e-30 {
					t.Errorf("%v nb=%d trial %d: got %.9g, want %.9g (|err| %.3g, magnitude %.3g)",
						kt.typ, nb, trial, got, want, math.Abs(got-want), mag)
				}
			}
		}
		t.Logf("%v: largest |error| / Σ|products| %.2g (bound 1e-6)", kt.typ, worst)
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sameFloat reports whether a and b are the same float32, NaNs (of any
// payload or sign) being equal to each other.
func sameFloat(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// checkKTiers runs every tier of kt's dot on (w, x) and compares each with
// the generic result bit for bit, the inputs copied to guarded memory (an
// access past either end faults where the platform can guard).
func checkKTiers(t *testing.T, typ quant.Type, n int, w, x []byte, what string) {
	t.Helper()
	tiers := kTiers(typ)
	want := tiers[0].fn(n, w, x)
	for _, im := range tiers[1:] {
		for _, end := range []bool{false, true} {
			gw, fw := guardedCopy(w, end)
			gx, fx := guardedCopy(x, end)
			got := im.fn(n, gw, gx)
			fw()
			fx()
			if !sameFloat(got, want) {
				t.Fatalf("%v %v %s (n=%d, guard at end %v): %v (%#08x), generic %v (%#08x)",
					typ, im.tier, what, n, end, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

// TestDotKTiers compares every tier with the generic dot on random blocks,
// quantized weights and adversarial ones (all-max scales and quants, -128
// and 127 activations, zero, huge, infinite and NaN scales, inconsistent
// bsums), for several block counts.
func TestDotKTiers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, kt := range kTypes {
		if len(kTiers(kt.typ)) < 2 {
			t.Logf("%v: only the generic dot runs here", kt.typ)
		}
		for _, nb := range []int{0, 1, 2, 3, 5, 8, 19} {
			n := nb * quant.QKK
			// Random bytes everywhere: any scale bit pattern (NaN, Inf,
			// subnormal), any bsums.
			for trial := range 3 {
				checkKTiers(t, kt.typ, n, randBytes(r, nb*kt.bytes), randBytes(r, nb*bytesQ8K), fmt.Sprintf("random bytes #%d", trial))
			}
			// Realistic: quantized weights and activations.
			w := make([]byte, nb*kt.bytes)
			if err := quant.Quantize(kt.typ, randGauss(r, n, 0.05), w); err != nil {
				t.Fatal(err)
			}
			x := q8KFromFloats(randGauss(r, n, 1))
			checkKTiers(t, kt.typ, n, w, x, "quantized")
			// n is meant to be a multiple of 256; a partial super-block at
			// the end is ignored by every tier alike.
			for _, extra := range []int{1, 31, 255} {
				if got, want := kTiers(kt.typ)[0].fn(n+extra, w, x), kTiers(kt.typ)[0].fn(n, w, x); !sameFloat(got, want) {
					t.Fatalf("%v generic n=%d+%d: %v, want %v (the tail ignored)", kt.typ, n, extra, got, want)
				}
				checkKTiers(t, kt.typ, n+extra, w, x, fmt.Sprintf("quantized, n+%d", extra))
			}
			if nb == 0 || nb > 3 {
				continue
			}
			for _, a := range kAdversarial(kt.typ, nb, kt.bytes) {
				checkKTiers(t, kt.typ, n, a.w, a.x, a.name)
			}
		}
	}
}

type kCase struct {
	name string
	w, x []byte
}

// kAdversarial builds extreme inputs of nb super-blocks.
func kAdversarial(typ quant.Type, nb, wbytes int) []kCase {
	fill := func(n int, v byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = v
		}
		return b
	}
	setW := func(w []byte, h uint16) []byte {
		for b := range nb {
			for _, off := range kFP16Offsets(typ) {
				binary.LittleEndian.PutUint16(w[b*wbytes+off:], h)
			}
		}
		return w
	}
	setX := func(x []byte, d float32, fix bool) []byte {
		if fix {
			fixBsums(x)
		}
		for b := range nb {
			binary.LittleEndian.PutUint32(x[b*bytesQ8K:], math.Float32bits(d))
		}
		return x
	}
	wb, xb := nb*wbytes, nb*bytesQ8K
	var cs []kCase
	for _, h := range []struct {
		name string
		bits uint16
	}{{"1", 0x3c00}, {"max", 0x7bff}, {"0", 0}, {"-0", 0x8000}, {"subnormal", 0x0001}, {"inf", 0x7c00}, {"-inf", 0xfc00}, {"nan", 0x7e01}} {
		for _, xv := range []struct {
			name string
			q    byte
			d    float32
		}{{"-128", 0x80, 1}, {"127", 0x7f, 1}, {"-128 huge", 0x80, 3e38}, {"127 tiny", 0x7f, 1e-45}, {"-128 d=0", 0x80, 0}, {"127 d=inf", 0x7f, float32(math.Inf(1))}} {
			name := fmt.Sprintf("w=0xff scales %s, x=%s", h.name, xv.name)
			cs = append(cs,
				kCase{name, setW(fill(wb, 0xff), h.bits), setX(fill(xb, xv.q), xv.d, true)},
				kCase{name + " (bsums from the fill bytes)", setW(fill(wb, 0xff), h.bits), setX(fill(xb, xv.q), xv.d, false)},
				kCase{"w=0 " + name, setW(fill(wb, 0), h.bits), setX(fill(xb, xv.q), xv.d, true)},
				kCase{"w=0x80 " + name, setW(fill(wb, 0x80), h.bits), setX(fill(xb, xv.q), xv.d, true)},
			)
		}
	}
	// Alternating signs of activations, extreme bsums.
	for _, bs := range []uint16{0x8000, 0x7fff} {
		x := fill(xb, 0x80)
		for i := range x {
			if i%2 == 1 {
				x[i] = 0x7f
			}
		}
		setX(x, 1, false)
		for b := range nb {
			for g := range 16 {
				binary.LittleEndian.PutUint16(x[b*bytesQ8K+260+2*g:], bs)
			}
		}
		cs = append(cs, kCase{fmt.Sprintf("alternating ±, bsums %#x", bs), setW(fill(wb, 0xff), 0x3c00), x})
	}
	return cs
}

// FuzzDotK* feed random bytes as weight and activation super-blocks to
// every tier: no panic, and every tier gives the generic result's bits
// (NaN and Inf from the scales propagate the same way).
func fuzzDotK(f *testing.F, typ quant.Type, wbytes int) {
	r := rand.New(rand.NewPCG(uint64(typ), 5))
	f.Add(uint8(1), randBytes(r, wbytes+bytesQ8K))
	f.Add(uint8(3), randBytes(r, 3*(wbytes+bytesQ8K)))
	f.Add(uint8(2), []byte{0xff})
	f.Add(uint8(1), []byte{0x80, 0x7f, 0x00})
	f.Fuzz(func(t *testing.T, nb uint8, data []byte) {
		nb %= 9
		w := make([]byte, int(nb)*wbytes)
		x := make([]byte, int(nb)*bytesQ8K)
		if len(data) > 0 {
			for i := range w {
				w[i] = data[i%len(data)]
			}
			for i := range x {
				x[i] = data[(len(w)+i)%len(data)]
			}
		}
		checkKTiers(t, typ, int(nb)*quant.QKK, w, x, "fuzz")
		if kFuzzMore != nil {
			kFuzzMore(t, typ, int(nb)*quant.QKK, w, x)
		}
	})
}

// kFuzzMore, if set (by an architecture's tests), checks more kernels on a
// fuzz input.
var kFuzzMore func(t *testing.T, typ quant.Type, n int, w, x []byte)

func FuzzDotQ2K(f *testing.F) { fuzzDotK(f, quant.Q2_K, bytesQ2K) }
func FuzzDotQ3K(f *testing.F) { fuzzDotK(f, quant.Q3_K, bytesQ3K) }
func FuzzDotQ4K(f *testing.F) { fuzzDotK(f, quant.Q4_K, bytesQ4K) }
func FuzzDotQ5K(f *testing.F) { fuzzDotK(f, quant.Q5_K, bytesQ5K) }
func FuzzDotQ6K(f *testing.F) { fuzzDotK(f, quant.Q6_K, bytesQ6K) }

// TestDotKRegistered checks that DotFor hands out the K-quant dots with Q8_K
// activations, and that the tier the CPU supports is registered.
func TestDotKRegistered(t *testing.T) {
	for _, kt := range kTypes {
		act, fn, tier, ok := DotFor(kt.typ)
		if !ok || act != quant.Q8_K || fn == nil {
			t.Fatalf("%v: DotFor = %v, %v, %v", kt.typ, act, tier, ok)
		}
		t.Logf("%v: tiers %v, using %v", kt.typ, Implementations(kt.typ), tier)
	}
}

// TestDotKRows checks the multi-row K-quant kernels (registerDotRows)
// against the generic dot row by row, bit for bit, for row counts around
// the kernels' 4-row step, strides with padding between rows, and guarded
// memory on both sides.
func TestDotKRows(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, kt := range kTypes {
		e := dotRows[kt.typ]
		if e == nil {
			continue
		}
		for _, im := range e.impls {
			if !cpuHas(im.tier) {
				continue
			}
			for _, nb := range []int{0, 1, 3, 6} {
				n := nb * quant.QKK
				x := randBytes(r, nb*bytesQ8K)
				if nb > 0 {
					quant.QuantizeQ8_K(randGauss(r, n, 1), x)
				}
				for _, rows := range []int{0, 1, 3, 4, 5, 8, 11} {
					for _, pad := range []int{0, 7} {
						stride := nb*kt.bytes + pad
						w := randBytes(r, rows*stride)
						if rows > 0 && pad == 0 && nb > 0 {
							if err := quant.Quantize(kt.typ, randGauss(r, rows*n, 0.05), w); err != nil {
								t.Fatal(err)
							}
						}
						for _, end := range []bool{false, true} {
							gw, fw := guardedCopy(w, end)
							gx, fx := guardedCopy(x, end)
							dst := make([]float32, rows)
							for i := range dst {
								dst[i] = float32(math.NaN())
							}
							if rows > 0 {
								// the last row needs only its blocks, not the padding
								gw = gw[:max(0, (rows-1)*stride+nb*kt.bytes)]
							}
							im.fn(n, gw, stride, gx, dst)
							fw()
							fx()
							for i := range dst {
								want := kt.generic(n, w[i*stride:], x)
								if !sameFloat(dst[i], want) {
									t.Fatalf("%v %v rows nb=%d rows=%d pad=%d row %d: %v, generic %v", kt.typ, im.tier, nb, rows, pad, i, dst[i], want)
								}
							}
						}
					}
				}
			}
		}
	}
}
