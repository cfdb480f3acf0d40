//go:build !purego && !noasm

package kernel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/slm-dev/slm/quant"
)

// The arm64 tiers are tested against the generic kernels: every tier this
// CPU runs (under qemu: -cpu cortex-a72 has NEON only, -cpu max all three),
// on random and adversarial blocks of several lengths, with each input
// placed so that it ends at an unreadable page (an over-read faults) and
// starts at an odd address. The results must be bit-identical.

var a64Tiers = []Tier{TierNEON, TierDotProd, TierI8MM}

// a64Impl returns the registered implementation of w's dot at exactly tier.
func a64Impl(w quant.Type, tier Tier) VecDot {
	if e := dots[w]; e != nil {
		for _, im := range e.impls {
			if im.tier == tier {
				return im.fn
			}
		}
	}
	return nil
}

// a64WeightTypes lists the weight types that have an arm64 kernel.
func a64WeightTypes() []quant.Type {
	out := []quant.Type{quant.F32, quant.F16, quant.BF16}
	seen := map[quant.Type]bool{}
	for _, d := range arm64Dots {
		if !seen[d.w] {
			seen[d.w] = true
			out = append(out, d.w)
		}
	}
	return out
}

// a64Guarded returns a copy of b that ends right before a PROT_NONE page
// (so it starts at an odd address when len(b) is odd, as Q4_0 rows are).
func a64Guarded(t testing.TB, b []byte) []byte {
	ps := os.Getpagesize()
	size := (len(b)+1+ps-1)/ps*ps + ps
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	if err := unix.Mprotect(mem[size-ps:], unix.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	g := mem[size-ps-len(b) : size-ps : size-ps]
	copy(g, b)
	return g
}

// a64FiniteF16 is a random finite fp16 bit pattern.
func a64FiniteF16(r *rand.Rand) uint16 {
	for {
		h := uint16(r.Uint32())
		if h&0x7c00 != 0x7c00 {
			return h
		}
	}
}

// a64ExtremeF16 picks among the largest, smallest, zero and ordinary scales.
func a64ExtremeF16(r *rand.Rand) uint16 {
	v := []uint16{0x7bff, 0xfbff, 0x0001, 0x8001, 0x0000, 0x8000, 0x3c00, 0x0400}
	if r.IntN(3) == 0 {
		return a64FiniteF16(r)
	}
	return v[r.IntN(len(v))]
}

// a64F16Fields lists the byte offsets of the fp16 fields of a block.
var a64F16Fields = map[quant.Type][]int{
	quant.Q4_0: {0}, quant.Q4_1: {0, 2}, quant.Q5_0: {0}, quant.Q5_1: {0, 2},
	quant.Q8_0: {0}, quant.Q8_1: {0, 2},
	quant.Q2_K: {80, 82}, quant.Q3_K: {108}, quant.Q4_K: {0, 2}, quant.Q5_K: {0, 2}, quant.Q6_K: {208},
}

// a64Int8Fields gives the [start, end) of a block's int8 quants, which the
// kernels' precondition keeps within [-127, 127].
var a64Int8Fields = map[quant.Type][2]int{
	quant.Q8_0: {2, 34}, quant.Q8_1: {4, 36}, quant.Q8_K: {4, 260},
}

// a64Raw fills n elements of type t with random bytes made valid: finite
// scales (extreme ones when extreme), int8 quants in [-127, 127] (all ±127
// when extreme and the coin says so), Q8_K with a moderate float32 d and
// consistent bsums.
func a64Raw(r *rand.Rand, t quant.Type, n int, extreme bool) []byte {
	nb := n / t.BlockElems()
	bs := t.BlockBytes()
	b := make([]byte, nb*bs)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	allMax := extreme && r.IntN(2) == 0
	for k := 0; k < nb; k++ {
		blk := b[k*bs : (k+1)*bs]
		if allMax {
			switch t {
			case quant.Q4_0, quant.Q4_1:
				a64Fill(blk[t.BlockBytes()-16:], 0xff)
			case quant.Q5_0, quant.Q5_1:
				a64Fill(blk[t.BlockBytes()-20:], 0xff)
			}
		}
		for _, off := range a64F16Fields[t] {
			h := a64FiniteF16(r)
			if extreme {
				h = a64ExtremeF16(r)
			}
			binary.LittleEndian.PutUint16(blk[off:], h)
		}
		if f, ok := a64Int8Fields[t]; ok {
			for i := f[0]; i < f[1]; i++ {
				if blk[i] == 0x80 {
					blk[i] = 0x81
				}
				if allMax {
					blk[i] = []byte{0x7f, 0x81}[r.IntN(2)]
				}
			}
		}
		if t == quant.Q8_K {
			d := float32(r.NormFloat64())
			if extreme {
				d = []float32{1e-30, -1e-30, 3e4, 0, 1}[r.IntN(5)]
			}
			binary.LittleEndian.PutUint32(blk, math.Float32bits(d))
			for g := 0; g < 16; g++ {
				var s int32
				for _, q := range blk[4+16*g : 4+16*g+16] {
					s += int32(int8(q))
				}
				binary.LittleEndian.PutUint16(blk[260+2*g:], uint16(int16(s)))
			}
		}
	}
	return b
}

func a64Fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

// a64Case builds a weight row and an activation row of n elements: real
// quantized data (kind 0), random valid bytes (1) or extreme values (2).
func a64Case(r *rand.Rand, w, act quant.Type, n, kind int) (wq, xq []byte) {
	if kind == 0 {
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(r.NormFloat64()) * 0.1
		}
		wb, _ := w.RowBytes(n)
		wq = make([]byte, wb)
		if err := quant.Quantize(w, src, wq); err != nil {
			panic(err)
		}
		for i := range src {
			src[i] = float32(r.NormFloat64())
		}
		xb, _ := act.RowBytes(n)
		xq = make([]byte, xb)
		q, _, _ := ActFor(act)
		q(src, xq)
		return wq, xq
	}
	return a64Raw(r, w, n, kind == 2), a64Raw(r, act, n, kind == 2)
}

func a64Same(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// a64Check compares every arm64 tier of w's dot with the generic one on
// one input.
func a64Check(t *testing.T, w quant.Type, n int, wq, xq []byte, what string) {
	t.Helper()
	gen := a64Impl(w, TierGeneric)
	if gen == nil {
		t.Fatalf("%v: no generic dot", w)
	}
	want := gen(n, wq, xq)
	gw, gx := a64Guarded(t, wq), a64Guarded(t, xq)
	for _, tier := range a64Tiers {
		fn := a64Impl(w, tier)
		if fn == nil || !cpuHas(tier) {
			continue
		}
		if got := fn(n, gw, gx); !a64Same(got, want) {
			t.Errorf("%v %v n=%d %s: got %v (%#x), generic %v (%#x)", w, tier, n, what, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
}

func TestArm64DotsMatchGeneric(t *testing.T) {
	t.Logf("cpu: neon=%v dotprod=%v i8mm=%v", hasNEON, hasDotProd, hasI8MM)
	if !hasNEON {
		t.Skip("no ASIMD")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, w := range a64WeightTypes() {
		act := dots[w].act
		qk := w.BlockElems()
		nbs := []int{0, 1, 2, 3, 7, 16, 33}
		if qk == 1 {
			nbs = []int{0, 1, 7, 8, 9, 31, 32, 33, 100, 4096 + 17}
		}
		for _, nb := range nbs {
			if qk == 256 && nb > 16 {
				continue
			}
			n := nb * qk
			for kind := 0; kind < 3; kind++ {
				reps := 3
				if nb >= 16 && qk > 1 || nb > 1000 {
					reps = 1
				}
				for rep := 0; rep < reps; rep++ {
					wq, xq := a64Case(r, w, act, n, kind)
					a64Check(t, w, n, wq, xq, fmt.Sprintf("kind=%d rep=%d", kind, rep))
				}
			}
		}
	}
}

// TestArm64Dispatch checks that DotFor picks each tier the CPU has.
func TestArm64Dispatch(t *testing.T) {
	defer setForcedTier(setForcedTier(-1))
	for _, w := range a64WeightTypes() {
		for _, tier := range append([]Tier{TierGeneric}, a64Tiers...) {
			if !cpuHas(tier) || a64Impl(w, tier) == nil {
				continue
			}
			setForcedTier(tier)
			if _, _, got, ok := DotFor(w); !ok || got != tier {
				t.Errorf("%v forced to %v: DotFor gives %v", w, tier, got)
			}
		}
	}
}

func FuzzArm64Dot(f *testing.F) {
	f.Add(uint8(0), uint8(1), []byte{1, 2, 3})
	f.Add(uint8(3), uint8(5), []byte{0xff, 0x80, 0x7f, 0})
	f.Fuzz(func(t *testing.T, which, blocks uint8, data []byte) {
		types := a64WeightTypes()
		w := types[int(which)%len(types)]
		act := dots[w].act
		nb := int(blocks) % 9
		if w.BlockElems() == 1 {
			nb = int(blocks)
		}
		n := nb * w.BlockElems()
		r := rand.New(rand.NewPCG(uint64(len(data)), 1))
		wq := a64Raw(r, w, n, which&0x80 != 0)
		xq := a64Raw(r, act, n, which&0x40 != 0)
		// The fuzzer's bytes overwrite the quants (not the scales, which a64Raw
		// keeps finite, nor the int8 quants' -128, which the kernels exclude).
		for i, v := range data {
			j := i % max(len(wq), 1)
			if len(wq) == 0 {
				break
			}
			if a64IsScaleByte(w, j%w.BlockBytes()) {
				continue
			}
			wq[j] = v
		}
		if f, ok := a64Int8Fields[w]; ok {
			for k := 0; k < nb; k++ {
				for i := f[0]; i < f[1]; i++ {
					if p := &wq[k*w.BlockBytes()+i]; *p == 0x80 {
						*p = 0x81
					}
				}
			}
		}
		a64Check(t, w, n, wq, xq, "fuzz")
	})
}

func a64IsScaleByte(t quant.Type, off int) bool {
	for _, o := range a64F16Fields[t] {
		if off == o || off == o+1 {
			return true
		}
	}
	return false
}

// a64ActInputs are float32 rows for the activation quantizers: random,
// with extreme, tiny, zero and non-finite blocks.
func a64ActInputs(r *rand.Rand, n int) [][]float32 {
	var out [][]float32
	for kind := 0; kind < 8; kind++ {
		x := make([]float32, n)
		for i := range x {
			v := float32(r.NormFloat64())
			switch kind {
			case 1:
				v *= 1e30
			case 2:
				v *= 1e-38 // subnormal and tiny: 127/amax overflows
			case 3:
				v = 0
			case 4:
				v = float32(r.IntN(5)-2) * 0.5 // ties and repeated maxima of both signs
			case 5:
				if r.IntN(50) == 0 {
					v = []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}[r.IntN(3)]
				}
			case 6:
				v = float32(r.IntN(255)-127) / 127 * 3
			case 7:
				v *= 1e-45
			}
			x[i] = v
		}
		out = append(out, x)
	}
	return out
}

func TestArm64ActQuantizers(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, act := range []quant.Type{quant.Q8_0, quant.Q8_1, quant.Q8_K, quant.F16, quant.BF16} {
		impls := actQuants[act]
		var gen ActQuantizer
		for _, im := range impls {
			if im.tier == TierGeneric {
				gen = im.fn
			}
		}
		for _, im := range impls {
			if im.tier < TierNEON || !cpuHas(im.tier) {
				continue
			}
			nbs := []int{0, 1, 2, 5, 17}
			if act.BlockElems() == 1 {
				nbs = []int{0, 1, 7, 8, 9, 33, 257}
			}
			for _, nb := range nbs {
				n := nb * act.BlockElems()
				size, _ := act.RowBytes(n)
				for k, x := range a64ActInputs(r, n) {
					want := make([]byte, size)
					gen(x, want)
					// dst padded with guard bytes that must survive
					buf := make([]byte, size+64)
					for i := range buf {
						buf[i] = 0xa5
					}
					im.fn(a64GuardedF32(t, x), buf[32:32+size])
					for i := range buf {
						if (i < 32 || i >= 32+size) && buf[i] != 0xa5 {
							t.Fatalf("%v %v n=%d: wrote outside dst at %d", act, im.tier, n, i-32)
						}
					}
					if got := buf[32 : 32+size]; string(got) != string(want) {
						for i := range got {
							if got[i] != want[i] {
								t.Errorf("%v %v n=%d kind=%d: byte %d = %#x, generic %#x", act, im.tier, n, k, i, got[i], want[i])
								break
							}
						}
					}
				}
			}
		}
	}
}

// a64GuardedF32 is x copied to end at an unreadable page.
func a64GuardedF32(t *testing.T, x []float32) []float32 {
	if len(x) == 0 {
		return x
	}
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	g := a64Guarded(t, b) // ends at the page: 4-byte aligned
	return unsafe.Slice((*float32)(unsafe.Pointer(&g[0])), len(x))
}

// FuzzArm64Act feeds raw float32 bit patterns (any NaN payload included)
// to every arm64 activation quantizer and the generic one.
func FuzzArm64Act(f *testing.F) {
	f.Add(uint8(0), []byte{0, 0, 0x80, 0x7f, 1, 0, 0xc0, 0xff, 0, 0, 0x80, 0x3f})
	f.Add(uint8(2), []byte{0xff, 0xff, 0x7f, 0x7f, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		acts := []quant.Type{quant.Q8_0, quant.Q8_1, quant.Q8_K, quant.F16, quant.BF16}
		act := acts[int(which)%len(acts)]
		qk := act.BlockElems()
		n := (len(data)/4 + qk - 1) / qk * qk
		if n == 0 {
			n = qk
		}
		x := make([]float32, n)
		for i := range x {
			var b [4]byte
			for k := range b {
				if len(data) > 0 {
					b[k] = data[(4*i+k)%len(data)]
				}
			}
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
		}
		size, _ := act.RowBytes(n)
		want := make([]byte, size)
		var gen ActQuantizer
		for _, im := range actQuants[act] {
			if im.tier == TierGeneric {
				gen = im.fn
			}
		}
		gen(x, want)
		for _, im := range actQuants[act] {
			if im.tier < TierNEON || !cpuHas(im.tier) {
				continue
			}
			got := make([]byte, size)
			im.fn(x, got)
			if string(got) != string(want) {
				t.Fatalf("%v %v n=%d: %x, generic %x", act, im.tier, n, got, want)
			}
		}
	})
}
