package kernel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// IQ4_NL × Q8_0 and IQ4_XS × Q8_K: every tier against the generic spec bit
// for bit (odd block counts, slices against guard pages at either end,
// random and extreme weight bytes, NaN/Inf scales), and the generic spec
// against dequantize-then-dot in float64. (TestAllImplementations,
// TestMatMulFast and FuzzDot cover these types too; the tests here are
// named IQ so that `-run IQ` selects them, e.g. under qemu-aarch64.) There
// are no llama.cpp reference values for these types in this repository.

var iq4Types = []quant.Type{quant.IQ4_NL, quant.IQ4_XS}

// iq4Weights returns nb blocks of weight type typ: random nibbles and
// scales, realistic or random finite fp16 d.
func iq4RandWeights(r *rand.Rand, typ quant.Type, nb int) []byte {
	bb := typ.BlockBytes()
	w := make([]byte, nb*bb)
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for b := 0; b < nb; b++ {
		h := quant.F32ToF16(float32(r.NormFloat64() * 0.01))
		if r.IntN(8) == 0 {
			h = uint16(r.Uint32()) &^ 0x4000 // finite, any magnitude up to 2
		}
		binary.LittleEndian.PutUint16(w[b*bb:], h)
	}
	return w
}

func iq4Act(t testing.TB, typ quant.Type, x []float32) []byte {
	return encodeAct(t, dots[typ].act, x)
}

// TestDotIQ4GenericVsDequant: the generic dot equals Σ w·x over the
// dequantized weights and activations, to float32 accumulation error.
func TestDotIQ4GenericVsDequant(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, typ := range iq4Types {
		act := dots[typ].act
		for _, nb := range []int{1, 2, 3, 7, 16, 33} {
			n := nb * typ.BlockElems()
			w := iq4RandWeights(r, typ, nb)
			xb := iq4Act(t, typ, randGauss(r, n, 1))
			wf, xf := make([]float32, n), make([]float32, n)
			if err := quant.Dequantize(typ, w, wf); err != nil {
				t.Fatal(err)
			}
			if err := quant.Dequantize(act, xb, xf); err != nil {
				t.Fatal(err)
			}
			var ref, mag float64
			for i := range wf {
				p := float64(wf[i]) * float64(xf[i])
				ref += p
				mag += math.Abs(p)
			}
			got := dotImpl(typ, TierGeneric)(n, w, xb)
			if math.Abs(float64(got)-ref) > 1e-5*mag+1e-30 {
				t.Errorf("%v nb=%d: generic %v, dequantized dot %v (Σ|p| %g)", typ, nb, got, ref, mag)
			}
		}
	}
}

func checkIQ4Tiers(t *testing.T, typ quant.Type, n int, w, x []byte, what string) {
	t.Helper()
	want := dotImpl(typ, TierGeneric)(n, w, x)
	for _, im := range dots[typ].impls {
		if im.tier == TierGeneric || !runnable(im.tier) {
			continue
		}
		for _, end := range []bool{true, false} {
			gw, fw := guardedCopy(w, end)
			gx, fx := guardedCopy(x, end)
			got := im.fn(n, gw, gx)
			fw()
			fx()
			if !sameBits(got, want) {
				t.Fatalf("%v %v %s n=%d (guard at end %v): %v (%#x), generic %v (%#x)", typ, im.tier, what, n, end, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

// TestDotIQ4Tiers: every tier this CPU runs equals the generic dot.
func TestDotIQ4Tiers(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, typ := range iq4Types {
		tiers := 0
		for _, im := range dots[typ].impls {
			if runnable(im.tier) {
				tiers++
			}
		}
		t.Logf("%v: %d tiers runnable here", typ, tiers)
		nbs := []int{1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 65}
		if testing.Short() {
			nbs = []int{1, 2, 3, 5, 9}
		}
		for _, nb := range nbs {
			n := nb * typ.BlockElems()
			for kind := range 5 {
				w := iq4RandWeights(r, typ, nb)
				x := iq4Act(t, typ, testFloats(r, n, kind))
				checkIQ4Tiers(t, typ, n, w, x, fmt.Sprintf("kind %d", kind))
			}
			// Extreme weights: every nibble 0 (-127) or 15 (113), the
			// largest IQ4_XS scales, activations ±127 (the largest
			// VPMADDUBSW pair sums).
			for _, nib := range []byte{0x00, 0xff, 0x0f} {
				w := iq4RandWeights(r, typ, nb)
				for b := 0; b < nb; b++ {
					blk := w[b*typ.BlockBytes():][:typ.BlockBytes()]
					qs := blk[2:]
					if typ == quant.IQ4_XS {
						blk[2], blk[3], blk[4], blk[5], blk[6], blk[7] = 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 // ls 63 (sub-blocks 0-3), 48 (4-7)
						qs = blk[8:]
					}
					for i := range qs {
						qs[i] = nib
					}
				}
				xf := make([]float32, n)
				for i := range xf {
					xf[i] = float32(1 - 2*((i/2)&1)) // neighbours of one sign: int16 pair sums ±32258
				}
				checkIQ4Tiers(t, typ, n, w, iq4Act(t, typ, xf), fmt.Sprintf("nibbles %#x", nib))
			}
		}
		// A length that is not a whole number of blocks: the tail is ignored.
		w := iq4RandWeights(r, typ, 3)
		x := iq4Act(t, typ, randGauss(r, 3*typ.BlockElems(), 1))
		checkIQ4Tiers(t, typ, 2*typ.BlockElems()+typ.BlockElems()/2, w, x, "partial")
		checkIQ4Tiers(t, typ, 0, w, x, "empty")
	}
}

// TestDotIQ4Specials: NaN and infinite fp16 scales propagate identically
// in every tier, and nothing panics.
func TestDotIQ4Specials(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, typ := range iq4Types {
		for _, h := range []uint16{0x7c00, 0xfc00, 0x7e00, 0x7bff, 0xfbff, 0x0001, 0x8000} {
			nb := 5
			n := nb * typ.BlockElems()
			w := iq4RandWeights(r, typ, nb)
			binary.LittleEndian.PutUint16(w[2*typ.BlockBytes():], h)
			x := iq4Act(t, typ, randGauss(r, n, 1))
			checkIQ4Tiers(t, typ, n, w, x, fmt.Sprintf("d=%#04x", h))
		}
	}
}

// FuzzDotIQ4 dots fuzzer-chosen weight bytes (scales included, so NaN and
// Inf too) with quantized random activations: no panics, every tier equal
// to the generic one.
func FuzzDotIQ4(f *testing.F) {
	f.Add(uint8(0), uint8(3), []byte{0x00, 0x7c, 0x12, 0x34}, uint64(1))
	f.Add(uint8(1), uint8(1), []byte{0xff, 0xff, 0xff}, uint64(2))
	f.Add(uint8(1), uint8(4), []byte{0x01, 0x3c, 0xaa, 0x55, 0x0f, 0xf0}, uint64(3))
	f.Fuzz(func(t *testing.T, sel, nblocks uint8, raw []byte, seed uint64) {
		typ := iq4Types[sel&1]
		nb := int(nblocks)%16 + 1
		n := nb * typ.BlockElems()
		w := make([]byte, nb*typ.BlockBytes())
		for i := range w {
			if len(raw) > 0 {
				w[i] = raw[i%len(raw)] ^ byte(i/len(raw))
			}
		}
		r := rand.New(rand.NewPCG(seed, 9))
		x := iq4Act(t, typ, testFloats(r, n, int(seed%5)))
		want := dotImpl(typ, TierGeneric)(n, w, x)
		for _, im := range dots[typ].impls {
			if im.tier == TierGeneric || !runnable(im.tier) {
				continue
			}
			if got := im.fn(n, w, x); !sameBits(got, want) {
				t.Fatalf("%v %v n=%d: %v, generic %v", typ, im.tier, n, got, want)
			}
		}
	})
}

// BenchmarkMatVecIQ4 is the 896×4864 matrix-vector product (Qwen2.5 0.5B
// ffn_down) on one core, row after row with the single-row dot, for IQ4_NL,
// IQ4_XS and, to compare, Q4_0 and Q4_K. GB/s counts weight bytes per
// second of the thread's CPU time (see kLoop).
//
//	go test ./kernel/ -run '^$' -bench MatVecIQ4 -benchtime 200ms
func BenchmarkMatVecIQ4(b *testing.B) {
	const rows, cols = 896, 4864
	r := rand.New(rand.NewPCG(37, 38))
	for _, typ := range []quant.Type{quant.IQ4_NL, quant.IQ4_XS, quant.Q4_0, quant.Q4_K} {
		rb, _ := typ.RowBytes(cols)
		const q = 32 // distinct rows, repeated (the quantizers are slow)
		w := make([]byte, rows*rb)
		if err := quant.Quantize(typ, randGauss(r, q*cols, 0.05), w[:q*rb]); err != nil {
			b.Fatal(err)
		}
		for i := q * rb; i < len(w); i += q * rb {
			copy(w[i:], w[:q*rb])
		}
		act := dots[typ].act
		x := encodeAct(b, act, randGauss(r, cols, 1))
		out := make([]float32, rows)
		for _, im := range dots[typ].impls {
			if !runnable(im.tier) {
				continue
			}
			b.Run(fmt.Sprintf("%v/%v", typ, im.tier), func(b *testing.B) {
				kLoop(b, len(w), rows*cols, func() {
					for i := range rows {
						out[i] = im.fn(cols, w[i*rb:(i+1)*rb], x)
					}
				})
			})
		}
	}
}
