package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

var (
	attnWidths = []int{0, 1, 7, 8, 9, 16, 24, 40, 63, 64, 72, 80, 96, 120, 128, 136, 200, 256}
	attnRows   = []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 15, 16, 17, 31, 33, 128}
)

// attnGuarded returns n float32s that end where an inaccessible page begins
// (on unix), filled from r with values of the given testFloats kind.
func attnGuarded(t testing.TB, r *rand.Rand, n, kind int) []float32 {
	b := guarded(t, 4*n)
	if n == 0 {
		return []float32{}
	}
	x := unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	copy(x, testFloats(r, n, kind))
	return x
}

// attnStrides are the row strides tried for rows of width n: packed,
// padded (as a KV cache of several heads is) and overlapping.
func attnStrides(n int) []int {
	s := []int{n, n + 3, 3*n + 8}
	if n > 1 {
		s = append(s, n/2)
	}
	return s
}

// rowsLen is the length of a slice holding rows rows of width n stride
// apart, with nothing after the last row.
func rowsLen(rows, stride, n int) int {
	if rows == 0 {
		return 0
	}
	return (rows-1)*stride + n
}

// dotFuses reports whether the compiler fused Dot's multiply-adds (arm64,
// GOAMD64=v3), in which case Dot no longer equals the DotRows32 spec: with
// s0 = -1 and the tail product 1+2⁻¹¹+2⁻²⁴, only a fused add keeps the 2⁻²⁴.
func dotFuses() bool {
	x := make([]float32, 9)
	y := make([]float32, 9)
	x[0], y[0] = -1, 1
	x[8] = 1 + 0x1p-12
	y[8] = 1 + 0x1p-12
	return Dot(x, y) != 0x1p-11
}

// TestDotRows32 checks every tier against the generic specification, and
// the specification against Dot row by row, on guard-paged slices.
func TestDotRows32(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	fuses := dotFuses()
	for _, n := range attnWidths {
		for _, rows := range attnRows {
			for _, stride := range attnStrides(n) {
				kind := (n + rows + stride) % 4
				q := attnGuarded(t, r, n, kind)
				k := attnGuarded(t, r, rowsLen(rows, stride, n), kind)
				want := make([]float32, rows)
				dotRows32Generic(q, k, stride, want)
				for i := range want {
					if s := dot32(q, k[i*stride:i*stride+n]); !sameBits(want[i], s) {
						t.Fatalf("n=%d rows=%d stride=%d: generic[%d] = %g, dot32 %g", n, rows, stride, i, want[i], s)
					}
					if d := Dot(q, k[i*stride:i*stride+n]); !fuses && !sameBits(want[i], d) {
						t.Fatalf("n=%d rows=%d stride=%d: generic[%d] = %g, Dot %g", n, rows, stride, i, want[i], d)
					}
				}
				for _, im := range dotRows32Impls {
					if !runnable(im.tier) {
						continue
					}
					dst := attnGuarded(t, r, rows, 0)
					im.fn(q, k, stride, dst)
					for i := range want {
						if !sameBits(dst[i], want[i]) {
							t.Fatalf("%v n=%d rows=%d stride=%d: [%d] = %g, want %g", im.tier, n, rows, stride, i, dst[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestAxpyRows checks every tier against the generic specification, and
// that against Axpy called row by row, on guard-paged slices.
func TestAxpyRows(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	fuses := dotFuses() // Axpy's multiply-adds fuse where Dot's do
	for _, n := range attnWidths {
		for _, rows := range attnRows {
			for _, stride := range attnStrides(n) {
				kind := (n + rows + stride) % 4
				a := attnGuarded(t, r, rows, kind)
				v := attnGuarded(t, r, rowsLen(rows, stride, n), kind)
				o0 := testFloats(r, n, kind)
				want := append([]float32(nil), o0...)
				axpyRowsGeneric(want, a, v, stride)
				if !fuses {
					ref := append([]float32(nil), o0...)
					for i, ai := range a {
						Axpy(ref, ai, v[i*stride:i*stride+n])
					}
					for d := range ref {
						if !sameBits(ref[d], want[d]) {
							t.Fatalf("n=%d rows=%d stride=%d: generic[%d] = %g, Axpy %g", n, rows, stride, d, want[d], ref[d])
						}
					}
				}
				for _, im := range axpyRowsImpls {
					if !runnable(im.tier) {
						continue
					}
					o := attnGuarded(t, r, n, 0)
					copy(o, o0)
					im.fn(o, a, v, stride)
					for d := range want {
						if !sameBits(o[d], want[d]) {
							t.Fatalf("%v n=%d rows=%d stride=%d: o[%d] = %g, want %g", im.tier, n, rows, stride, d, o[d], want[d])
						}
					}
				}
			}
		}
	}
}

// TestAttnRowsTiers checks that the exported functions follow the forced
// tier and agree with the specification on each.
func TestAttnRowsTiers(t *testing.T) {
	defer setForcedTier(setForcedTier(-1))
	r := rand.New(rand.NewPCG(45, 46))
	const n, rows, stride = 64, 37, 192
	q := testFloats(r, n, 0)
	k := testFloats(r, rowsLen(rows, stride, n), 0)
	want := make([]float32, rows)
	dotRows32Generic(q, k, stride, want)
	o0 := testFloats(r, n, 0)
	wantO := append([]float32(nil), o0...)
	axpyRowsGeneric(wantO, want, k, stride)
	for _, tier := range benchTiers() {
		setForcedTier(tier)
		dot, dt := pick(dotRows32Impls)
		_, at := pick(axpyRowsImpls)
		if dt > tier || at > tier {
			t.Fatalf("forced %v: picked %v, %v", tier, dt, at)
		}
		if dot == nil {
			t.Fatalf("forced %v: no DotRows32", tier)
		}
		got := make([]float32, rows)
		DotRows32(q, k, stride, got)
		o := append([]float32(nil), o0...)
		AxpyRows(o, got, k, stride)
		for i := range want {
			if !sameBits(got[i], want[i]) {
				t.Fatalf("%v: DotRows32[%d] = %g, want %g", tier, i, got[i], want[i])
			}
		}
		for d := range wantO {
			if !sameBits(o[d], wantO[d]) {
				t.Fatalf("%v: AxpyRows o[%d] = %g, want %g", tier, d, o[d], wantO[d])
			}
		}
	}
}

// TestAttnRowsShort checks that too short key and value slices panic
// instead of being read past their end.
func TestAttnRowsShort(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	q := make([]float32, 64)
	k := make([]float32, 3*100+63)
	mustPanic("DotRows32", func() { DotRows32(q, k, 100, make([]float32, 4)) })
	mustPanic("DotRows32 stride", func() { DotRows32(q, k, -1, make([]float32, 2)) })
	mustPanic("AxpyRows", func() { AxpyRows(q, make([]float32, 4), k, 100) })
	mustPanic("AxpyRows width", func() { AxpyRows(make([]float32, 64), make([]float32, 1), q[:63], 0) })
	DotRows32(q, k, 100, make([]float32, 3)) // exactly long enough
	DotRows32(nil, nil, 100, make([]float32, 3))
	AxpyRows(q, make([]float32, 3), k, 100)
}

// FuzzAttnRows checks every tier of both kernels against the generic one
// on fuzzer-chosen shapes and float bit patterns (NaNs, infinities,
// subnormals included).
func FuzzAttnRows(f *testing.F) {
	f.Add(uint8(64), uint8(13), uint8(0), []byte{1, 2, 3, 4, 0, 0, 0x80, 0x3f})
	f.Add(uint8(8), uint8(4), uint8(5), []byte{0xff, 0xff, 0x7f, 0x7f, 0, 0, 0x80, 0x7f})
	f.Add(uint8(17), uint8(1), uint8(1), []byte{0x01, 0, 0, 0})
	f.Fuzz(func(t *testing.T, n8, rows, pad uint8, data []byte) {
		n := int(n8) % 137
		nt := int(rows) % 70
		stride := n + int(pad)%16
		words := bytesToF32(data[:len(data)&^3])
		val := func(i int) float32 {
			if len(words) == 0 {
				return float32(i%7) - 3
			}
			w := words[i%len(words)]
			if i >= len(words) { // vary the repeats
				w *= float32(i%5) - 2
			}
			return w
		}
		fill := func(m, off int) []float32 {
			x := make([]float32, m)
			for i := range x {
				x[i] = val(i + off)
			}
			return x
		}
		q := fill(n, 0)
		k := fill(rowsLen(nt, stride, n), n)
		want := make([]float32, nt)
		dotRows32Generic(q, k, stride, want)
		o0 := fill(n, 3)
		wantO := append([]float32(nil), o0...)
		axpyRowsGeneric(wantO, want, k, stride)
		for _, im := range dotRows32Impls {
			if im.tier == TierGeneric || !runnable(im.tier) {
				continue
			}
			got := make([]float32, nt)
			im.fn(q, k, stride, got)
			for i := range want {
				if !sameBits(got[i], want[i]) {
					t.Fatalf("DotRows32 %v n=%d rows=%d: [%d] = %g, want %g", im.tier, n, nt, i, got[i], want[i])
				}
			}
		}
		for _, im := range axpyRowsImpls {
			if im.tier == TierGeneric || !runnable(im.tier) {
				continue
			}
			o := append([]float32(nil), o0...)
			im.fn(o, want, k, stride)
			for d := range wantO {
				if !sameBits(o[d], wantO[d]) {
					t.Fatalf("AxpyRows %v n=%d rows=%d: o[%d] = %g, want %g", im.tier, n, nt, d, o[d], wantO[d])
				}
			}
		}
	})
}

// BenchmarkAttn times one head of causal attention's two kernels against a
// KV cache laid out as a model's (3 KV heads of 64): scores for ctx keys,
// then the weighted sum of ctx values; the old path (Dot and Axpy per key)
// for comparison.
func BenchmarkAttn(b *testing.B) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, hd := range []int{64, 128} {
		kvd := 3 * hd
		for _, ctx := range []int{16, 128, 1024} {
			q := testFloats(r, hd, 0)
			k := testFloats(r, ctx*kvd, 0)
			v := testFloats(r, ctx*kvd, 0)
			att := make([]float32, ctx)
			o := make([]float32, hd)
			flops := 4 * float64(hd*ctx)
			report := func(b *testing.B) {
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(flops/sec/1e9, "GFLOP/s")
			}
			b.Run(fmt.Sprintf("perkey/hd%d/ctx%d", hd, ctx), func(b *testing.B) {
				for b.Loop() {
					for t := range att {
						att[t] = Dot(q, k[t*kvd:t*kvd+hd])
					}
					for t := range att {
						att[t] *= 1.0 / 1024
					}
					clear(o)
					for t, a := range att {
						Axpy(o, a, v[t*kvd:t*kvd+hd])
					}
				}
				report(b)
			})
			for _, tier := range benchTiers() {
				b.Run(fmt.Sprintf("%v/hd%d/ctx%d", tier, hd, ctx), func(b *testing.B) {
					defer setForcedTier(setForcedTier(tier))
					for b.Loop() {
						DotRows32(q, k, kvd, att)
						for t := range att {
							att[t] *= 1.0 / 1024
						}
						clear(o)
						AxpyRows(o, att, v, kvd)
					}
					report(b)
				})
			}
		}
	}
}
