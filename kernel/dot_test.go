package kernel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// Every registered implementation (dots, multi-row dots, activation
// quantizers, of every engineer and tier this CPU runs) against the generic
// one: bit-identical results on random and adversarial inputs, odd lengths,
// slices that end at an inaccessible page, guard values around outputs.

// weightTypes are the weight types with a registered dot.
func weightTypes() []quant.Type {
	var ts []quant.Type
	for w := range dots {
		ts = append(ts, w)
	}
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j] < ts[j-1]; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
	return ts
}

func runnable(t Tier) bool { return t == TierGeneric || cpuHas(t) }

func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// testFloats returns n activations of one of several kinds.
func testFloats(r *rand.Rand, n, kind int) []float32 {
	x := make([]float32, n)
	for i := range x {
		v := float32(r.NormFloat64())
		switch kind {
		case 1: // wide dynamic range
			v *= float32(math.Pow(2, float64(r.IntN(60)-30)))
		case 2: // extremes, zeros, subnormals
			switch r.IntN(8) {
			case 0:
				v = 0
			case 1:
				v = float32(math.Copysign(0, -1))
			case 2:
				v = math.Float32frombits(r.Uint32() & 0x807fffff) // subnormal
			case 3:
				v *= 1e30
			case 4:
				v = 65504 * float32(r.IntN(3)-1)
			case 5:
				v = float32(r.IntN(255) - 127)
			}
		case 3: // ties: multiples of 1/2 for round-half-even cases
			v = float32(r.IntN(512)-256) / 2
		case 4: // one block all zero, others small
			if i < 256 {
				v = 0
			}
		}
		x[i] = v
	}
	return x
}

// specials adds ±Inf and quiet NaNs to x (the quantizers must agree on
// those too; the dots then produce NaN/Inf on both sides).
func specials(r *rand.Rand, x []float32) {
	for range 1 + len(x)/64 {
		switch r.IntN(3) {
		case 0:
			x[r.IntN(len(x))] = float32(math.Inf(1))
		case 1:
			x[r.IntN(len(x))] = float32(math.Inf(-1))
		default:
			x[r.IntN(len(x))] = float32(math.NaN())
		}
	}
}

// randomWeights returns n elements of weight type w in valid but arbitrary
// encodings: random quant bits; fp16 scales random finite values of every
// magnitude; Q8_0 quants in [-127, 127] (see dot.go).
func randomWeights(r *rand.Rand, w quant.Type, n int) []byte {
	rb, err := w.RowBytes(n)
	if err != nil {
		panic(err)
	}
	b := make([]byte, rb)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	f16 := func(off int) {
		h := uint16(r.Uint32())
		for h&0x7c00 == 0x7c00 { // no Inf/NaN scales
			h = uint16(r.Uint32())
		}
		if r.IntN(4) != 0 { // usually a realistic scale
			h = quant.F32ToF16(float32(r.NormFloat64() * 0.01))
		}
		binary.LittleEndian.PutUint16(b[off:], h)
	}
	switch w {
	case quant.F32:
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(r.NormFloat64())))
		}
	case quant.F16:
		for i := 0; i < n; i++ {
			f16(2 * i)
		}
	case quant.BF16:
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(b[2*i:], quant.F32ToBF16(float32(r.NormFloat64())))
		}
	case quant.Q4_0, quant.Q5_0:
		for i := 0; i < len(b); i += w.BlockBytes() {
			f16(i)
		}
	case quant.Q4_1, quant.Q5_1:
		for i := 0; i < len(b); i += w.BlockBytes() {
			f16(i)
			f16(i + 2)
		}
	case quant.Q8_0:
		for i := 0; i < len(b); i += 34 {
			f16(i)
			for j := i + 2; j < i+34; j++ {
				if b[j] == 0x80 {
					b[j] = 0x81
				}
			}
		}
	default:
		// K-quants: fill from quantized random data so scales are sane.
		x := testFloats(r, n, 0)
		if err := quant.Quantize(w, x, b); err != nil {
			panic(err)
		}
		// and perturb quant bytes (any bit pattern is a valid encoding)
		for range len(b) / 16 {
			i := r.IntN(len(b))
			b[i] ^= byte(r.Uint32())
		}
	}
	return b
}

func encodeAct(t testing.TB, act quant.Type, x []float32) []byte {
	q, _, ok := ActFor(act)
	if !ok {
		t.Fatalf("no quantizer for %v", act)
	}
	_ = q
	gen := actImpl(act, TierGeneric)
	rb, err := act.RowBytes(len(x))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, rb)
	gen(x, b)
	return b
}

func actImpl(act quant.Type, tier Tier) ActQuantizer {
	for _, im := range actQuants[act] {
		if im.tier == tier {
			return im.fn
		}
	}
	return nil
}

func dotImpl(w quant.Type, tier Tier) VecDot {
	for _, im := range dots[w].impls {
		if im.tier == tier {
			return im.fn
		}
	}
	return nil
}

// lengthsFor is the element counts tested for a weight type.
func lengthsFor(w quant.Type) []int {
	act := dots[w].act
	qk := max(w.BlockElems(), act.BlockElems())
	if qk == 1 {
		return []int{1, 2, 7, 8, 9, 15, 16, 31, 32, 33, 64, 100, 256, 4096 + 17}
	}
	return []int{qk, 2 * qk, 7 * qk, 31 * qk, 4096, 4096 + 5*qk}
}

func TestAllImplementations(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, w := range weightTypes() {
		act := dots[w].act
		gen := dotImpl(w, TierGeneric)
		if gen == nil {
			t.Errorf("%v: no generic dot", w)
			continue
		}
		for _, im := range dots[w].impls {
			if im.tier == TierGeneric || !runnable(im.tier) {
				continue
			}
			t.Run(fmt.Sprintf("%v/%v", w, im.tier), func(t *testing.T) {
				for _, n := range lengthsFor(w) {
					for kind := range 5 {
						wb := randomWeights(r, w, n)
						xf := testFloats(r, n, kind)
						xb := encodeAct(t, act, xf)
						gw, gx := guarded(t, len(wb)), guarded(t, len(xb))
						copy(gw, wb)
						copy(gx, xb)
						want := gen(n, wb, xb)
						got := im.fn(n, gw, gx)
						if !sameBits(got, want) {
							t.Fatalf("n=%d kind %d: %v got %v (%#x), generic %v (%#x)", n, kind, im.tier, got, math.Float32bits(got), want, math.Float32bits(want))
						}
					}
				}
			})
		}
	}
}

func TestAllDotRows(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, w := range weightTypes() {
		e := dotRows[w]
		if e == nil {
			continue
		}
		act := dots[w].act
		gen := dotImpl(w, TierGeneric)
		for _, im := range e.impls {
			if !runnable(im.tier) {
				continue
			}
			t.Run(fmt.Sprintf("%v/%v", w, im.tier), func(t *testing.T) {
				for _, n := range lengthsFor(w)[:5] {
					rb, _ := w.RowBytes(n)
					for _, rows := range []int{1, 3, 4, 5, 8, 9, 17} {
						stride := rb
						if rows%2 == 1 {
							stride += 7 // a gap between rows must not matter
						}
						all := randomWeights(r, w, n*rows)
						wb := guarded(t, (rows-1)*stride+rb)
						for i := range wb {
							wb[i] = 0xa5
						}
						for i := range rows {
							copy(wb[i*stride:i*stride+rb], all[i*rb:(i+1)*rb])
						}
						xb := encodeAct(t, act, testFloats(r, n, rows%5))
						gx := guarded(t, len(xb))
						copy(gx, xb)
						out := make([]float32, rows+2)
						out[0], out[rows+1] = 42, 43
						im.fn(n, wb, stride, gx, out[1:rows+1])
						if out[0] != 42 || out[rows+1] != 43 {
							t.Fatalf("n=%d rows=%d: wrote outside dst", n, rows)
						}
						for i := range rows {
							want := gen(n, wb[i*stride:i*stride+rb], xb)
							if !sameBits(out[1+i], want) {
								t.Fatalf("n=%d rows=%d row %d: %v, generic %v", n, rows, i, out[1+i], want)
							}
						}
					}
				}
			})
		}
	}
}

func TestAllDotRows2(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for _, w := range weightTypes() {
		act := dots[w].act
		gen := dotImpl(w, TierGeneric)
		for _, im := range dotRows2[w] {
			if !runnable(im.tier) {
				continue
			}
			t.Run(fmt.Sprintf("%v/%v", w, im.tier), func(t *testing.T) {
				for _, n := range lengthsFor(w)[:5] {
					rb, _ := w.RowBytes(n)
					for _, rows := range []int{1, 3, 4, 5, 8, 9, 17} {
						stride := rb + 3*(rows%2)
						wb := guarded(t, (rows-1)*stride+rb)
						all := randomWeights(r, w, n*rows)
						for i := range rows {
							copy(wb[i*stride:i*stride+rb], all[i*rb:(i+1)*rb])
						}
						x0 := encodeAct(t, act, testFloats(r, n, rows%5))
						x1 := encodeAct(t, act, testFloats(r, n, (rows+1)%5))
						xb := guarded(t, 2*len(x0)+5) // the two rows 5 bytes apart
						copy(xb, x0)
						copy(xb[len(x0)+5:], x1)
						out := make([]float32, 2*rows+3)
						for i := range out {
							out[i] = 42
						}
						d0, d1 := out[1:rows+1], out[rows+2:2*rows+2]
						im.fn(n, wb, stride, xb[:len(x0)], xb[len(x0)+5:], d0, d1)
						if out[0] != 42 || out[rows+1] != 42 || out[2*rows+2] != 42 {
							t.Fatalf("n=%d rows=%d: wrote outside dst", n, rows)
						}
						for i := range rows {
							wr := wb[i*stride : i*stride+rb]
							if a, b := gen(n, wr, x0), gen(n, wr, x1); !sameBits(d0[i], a) || !sameBits(d1[i], b) {
								t.Fatalf("n=%d rows=%d row %d: %v %v, generic %v %v", n, rows, i, d0[i], d1[i], a, b)
							}
						}
					}
				}
			})
		}
	}
}

// TestPackedQ4_0 checks the repacked Q4_0 kernels (8 rows, 1 and 2
// activations) against the generic dot.
func TestPackedQ4_0(t *testing.T) {
	if q40Packed.x8 == nil || !runnable(q40Packed.tier) {
		t.Skip("no packed Q4_0 kernels")
	}
	r := rand.New(rand.NewPCG(33, 34))
	gen := dotImpl(quant.Q4_0, TierGeneric)
	for _, n := range []int{32, 64, 7 * 32, 31 * 32, 4096 + 160} {
		rb := n / 32 * 18
		for _, rows := range []int{8, 16, 24} {
			data := randomWeights(r, quant.Q4_0, rows*n)
			pk := packQ4_0(data, rows, rb).Bytes
			gp := guarded(t, len(pk))
			copy(gp, pk)
			nb := n / 32
			xs := [2][]byte{encodeAct(t, quant.Q8_0, testFloats(r, n, 0)), encodeAct(t, quant.Q8_0, testFloats(r, n, 2))}
			xb := guarded(t, 2*len(xs[0]))
			copy(xb, xs[0])
			copy(xb[len(xs[0]):], xs[1])
			sums := make([]int32, 2*nb)
			q8Sums(xs[0], sums[:nb])
			q8Sums(xs[1], sums[nb:])
			out := make([]float32, 2*rows+1)
			out[2*rows] = 42
			for g := range rows / 8 {
				q40Packed.x8x2(&gp[g*nb*q4PackBlock], nb, &xb[0], len(xs[0]), &sums[0], &out[8*g], rows)
			}
			one := make([]float32, rows)
			for g := range rows / 8 {
				q40Packed.x8(&gp[g*nb*q4PackBlock], nb, &xb[len(xs[0])], &sums[nb], &one[8*g])
			}
			if out[2*rows] != 42 {
				t.Fatal("wrote past dst")
			}
			for i := range rows {
				wr := data[i*rb : (i+1)*rb]
				a, b := gen(n, wr, xs[0]), gen(n, wr, xs[1])
				if !sameBits(out[i], a) || !sameBits(out[rows+i], b) || !sameBits(one[i], b) {
					t.Fatalf("n=%d rows=%d row %d: %v %v %v, generic %v %v", n, rows, i, out[i], out[rows+i], one[i], a, b)
				}
			}
		}
	}
}

func TestAllActQuantizers(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for act, impls := range actQuants {
		gen := actImpl(act, TierGeneric)
		if gen == nil {
			t.Errorf("%v: no generic quantizer", act)
			continue
		}
		for _, im := range impls {
			if im.tier == TierGeneric || !runnable(im.tier) {
				continue
			}
			t.Run(fmt.Sprintf("%v/%v", act, im.tier), func(t *testing.T) {
				qk := act.BlockElems()
				lens := []int{qk, 2 * qk, 7 * qk, 31 * qk, 4096 + 5*qk}
				if qk == 1 {
					lens = []int{1, 2, 7, 8, 9, 31, 33, 4096 + 17}
				}
				for _, n := range lens {
					for kind := range 6 {
						x := testFloats(r, n, kind%5)
						if kind == 5 {
							specials(r, x)
						}
						rb, _ := act.RowBytes(n)
						want := make([]byte, rb)
						gen(x, want)
						got := guarded(t, rb)
						for i := range got {
							got[i] = 0x5a
						}
						gx := guarded(t, 4*n)
						xs := bytesToF32(gx)
						copy(xs, x)
						im.fn(xs, got)
						for i := range want {
							if got[i] != want[i] {
								t.Fatalf("n=%d kind %d: byte %d (block %d) = %#x, generic %#x", n, kind, i, i/act.BlockBytes(), got[i], want[i])
							}
						}
					}
				}
			})
		}
	}
}

// bytesToF32 views a 4-aligned byte slice as float32s.
func bytesToF32(b []byte) []float32 {
	out := make([]float32, 0)
	if len(b) == 0 {
		return out
	}
	return asF32(b)
}

// FuzzDot checks every tier of every weight type's dot against the generic
// one on fuzzer-chosen weight bytes and activations.
func FuzzDot(f *testing.F) {
	f.Add(uint8(0), uint16(1), []byte{1, 2, 3}, int64(1))
	f.Add(uint8(3), uint16(9), []byte{0xff, 0x80, 0x7f}, int64(7))
	types := weightTypes()
	f.Fuzz(func(t *testing.T, ti uint8, nblocks uint16, wbytes []byte, seed int64) {
		w := types[int(ti)%len(types)]
		act := dots[w].act
		qk := max(w.BlockElems(), act.BlockElems(), 1)
		n := (int(nblocks)%64 + 1) * qk
		if qk == 1 {
			n = int(nblocks)%1000 + 1
		}
		r := rand.New(rand.NewPCG(uint64(seed), 1))
		wb := randomWeights(r, w, n)
		for i := range wb { // fuzzer bytes into the quants, scales kept sane
			if len(wbytes) > 0 && w != quant.Q8_0 && w.BlockElems() > 1 {
				bo := i % w.BlockBytes()
				if bo >= 4 || (w != quant.Q4_1 && w != quant.Q5_1 && bo >= 2) {
					wb[i] = wbytes[i%len(wbytes)]
				}
			}
		}
		x := testFloats(r, n, int(seed&3))
		xb := encodeAct(t, act, x)
		gen := dotImpl(w, TierGeneric)
		want := gen(n, wb, xb)
		for _, im := range dots[w].impls {
			if im.tier == TierGeneric || !runnable(im.tier) {
				continue
			}
			if got := im.fn(n, wb, xb); !sameBits(got, want) {
				t.Fatalf("%v %v n=%d: %v, generic %v", w, im.tier, n, got, want)
			}
		}
	})
}

func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	check := func(a, b, c float32) {
		got := fma32(a, b, c)
		// big-float reference: exact a*b + c, rounded once
		want := fmaRef(a, b, c)
		if !sameBits(got, want) {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
	for range 200000 {
		a := math.Float32frombits(r.Uint32())
		b := math.Float32frombits(r.Uint32())
		c := math.Float32frombits(r.Uint32())
		check(a, b, c)
		// near-midpoint cases: c ≈ -a*b
		p := float32(float64(a) * float64(b))
		check(a, b, -p)
		check(a, b, math.Nextafter32(-p, 0))
		x, y := float32(r.IntN(1<<24)), float32(r.IntN(1<<24))
		check(x, y, float32(r.IntN(1<<24))*0x1p-24)
	}
}
