package quant_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// IQ4_NL / IQ4_XS. No llama.cpp reference files exist for these types in
// this repository (testdata/ has none written by llama-quantize), so
// byte-exactness with llama-quantize cannot be checked here. The encoders
// follow ggml's quantize_iq4_nl / quantize_iq4_xs (ggml-quants.c,
// quantize_row_iq4_nl_impl with ntry = 7, the path llama-quantize takes with
// and without an imatrix): weights x² (or qw·sqrt(σ² + x²), σ² = 2·Σx²/n over
// the (super-)block), first scale guess max/127 then 15 candidates
// (itry-127)/max, best_index_int8's binary search with ties upwards, the
// IQ4_XS super-scale -s_max/32 with 6-bit sub-scales clamp(round(s/d),
// -32, 31)+32, indices recomputed from the float32 (not fp16) scales, all in
// float32 in the C expressions' order. The tests below check the format
// (hand-built blocks), the error (RMSE against Q4_0's), properties of the
// encoder, and freeze its output (golden hashes) against regressions.

func putHalf(b []byte, off int, f float32) { binary.LittleEndian.PutUint16(b[off:], quant.F32ToF16(f)) }

func TestIQ4Layout(t *testing.T) {
	for _, c := range []struct {
		typ          quant.Type
		name         string
		elems, bytes int
	}{
		{quant.IQ4_NL, "IQ4_NL", 32, 18},
		{quant.IQ4_XS, "IQ4_XS", 256, 136},
	} {
		if c.typ.String() != c.name || c.typ.BlockElems() != c.elems || c.typ.BlockBytes() != c.bytes {
			t.Errorf("%v: %s %d elems %d bytes, want %s %d %d", uint32(c.typ), c.typ, c.typ.BlockElems(), c.typ.BlockBytes(), c.name, c.elems, c.bytes)
		}
		if p, ok := quant.ParseType(c.name); !ok || p != c.typ {
			t.Errorf("ParseType(%q) = %v, %v", c.name, p, ok)
		}
		if !quant.CanDequantize(c.typ) || !quant.CanQuantize(c.typ) {
			t.Errorf("%v: cannot (de)quantize", c.typ)
		}
	}
	if quant.IQ4_NL != 20 || quant.IQ4_XS != 23 {
		t.Errorf("ggml type ids: IQ4_NL %d, IQ4_XS %d", quant.IQ4_NL, quant.IQ4_XS)
	}
	want := [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}
	if quant.IQ4NLValues != want {
		t.Errorf("kvalues_iq4nl = %v", quant.IQ4NLValues)
	}
}

// TestDequantizeIQ4NLBlocks decodes hand-built IQ4_NL blocks.
func TestDequantizeIQ4NLBlocks(t *testing.T) {
	v := quant.IQ4NLValues
	cases := []struct {
		name string
		d    float32
		qs   func(j int) byte // byte j of qs
		want func(e int) float32
	}{
		{"ascending low, descending high", 0.5,
			func(j int) byte { return byte(j) | byte(15-j)<<4 },
			func(e int) float32 {
				if e < 16 {
					return 0.5 * float32(v[e])
				}
				return 0.5 * float32(v[15-(e-16)])
			}},
		{"all index 8 (value 1), negative d", -2,
			func(int) byte { return 0x88 },
			func(int) float32 { return -2 }},
		{"extremes", 1.0 / 127,
			func(j int) byte { return 0xf0 },
			func(e int) float32 {
				if e < 16 {
					return float32(quant.F16ToF32(quant.F32ToF16(1.0/127))) * -127
				}
				return float32(quant.F16ToF32(quant.F32ToF16(1.0/127))) * 113
			}},
		{"zero scale", 0, func(j int) byte { return byte(j * 17) }, func(int) float32 { return 0 }},
	}
	for _, c := range cases {
		b := make([]byte, 18)
		putHalf(b, 0, c.d)
		for j := range 16 {
			b[2+j] = c.qs(j)
		}
		y := make([]float32, 32)
		if err := quant.Dequantize(quant.IQ4_NL, b, y); err != nil {
			t.Fatal(err)
		}
		for e := range 32 {
			if w := c.want(e); y[e] != w {
				t.Errorf("%s: element %d = %v, want %v", c.name, e, y[e], w)
			}
		}
	}
}

// TestDequantizeIQ4XSBlocks decodes hand-built IQ4_XS super-blocks: every
// 6-bit scale from its two fields, the sub-block layout of the nibbles.
func TestDequantizeIQ4XSBlocks(t *testing.T) {
	v := quant.IQ4NLValues
	for _, ls := range [][8]int{
		{0, 1, 31, 32, 33, 62, 63, 40},
		{63, 0, 17, 48, 5, 32, 16, 47},
	} {
		const d = 0.125
		b := make([]byte, 136)
		putHalf(b, 0, d)
		var sh uint16
		for ib, l := range ls {
			b[4+ib/2] |= byte(l&15) << (4 * (ib & 1))
			sh |= uint16(l>>4) << (2 * ib)
		}
		binary.LittleEndian.PutUint16(b[2:], sh)
		for ib := range 8 {
			for j := range 16 {
				b[8+16*ib+j] = byte((j+ib)&15) | byte((j+2*ib+3)&15)<<4
			}
		}
		y := make([]float32, 256)
		if err := quant.Dequantize(quant.IQ4_XS, b, y); err != nil {
			t.Fatal(err)
		}
		for ib, l := range ls {
			dl := float32(d) * float32(l-32)
			for j := range 16 {
				lo, hi := dl*float32(v[(j+ib)&15]), dl*float32(v[(j+2*ib+3)&15])
				if y[32*ib+j] != lo || y[32*ib+16+j] != hi {
					t.Fatalf("ls %v sub-block %d j %d: %v %v, want %v %v", ls, ib, j, y[32*ib+j], y[32*ib+16+j], lo, hi)
				}
			}
		}
	}
}

// TestIQ4RMSE compares the round-trip error on N(0,1) data with Q4_0's
// (4.5 bits per weight, like IQ4_NL; IQ4_XS has 4.25): the non-linear grid
// and the searched scale must do better than Q4_0.
func TestIQ4RMSE(t *testing.T) {
	x := gaussian(42, 64*quant.QKK, 1)
	q40 := weightedRMSE(x, roundTrip(t, quant.Q4_0, x, nil), nil)
	q4k := weightedRMSE(x, roundTrip(t, quant.Q4_K, x, nil), nil)
	t.Logf("Q4_0: RMSE %.5f, Q4_K: RMSE %.5f", q40, q4k)
	bands := map[quant.Type][2]float64{ // measured on this data, with a margin
		quant.IQ4_NL: {0.05, 0.095},
		quant.IQ4_XS: {0.05, 0.10},
	}
	for _, typ := range []quant.Type{quant.IQ4_NL, quant.IQ4_XS} {
		e := weightedRMSE(x, roundTrip(t, typ, x, nil), nil)
		t.Logf("%v: RMSE %.5f (%.2f bits/weight), %.1f%% below Q4_0", typ, e, float64(8*typ.BlockBytes())/float64(typ.BlockElems()), 100*(1-e/q40))
		if !(e < q40) {
			t.Errorf("%v: RMSE %.5f not below Q4_0's %.5f", typ, e, q40)
		}
		if b := bands[typ]; e < b[0] || e > b[1] {
			t.Errorf("%v: RMSE %.5f outside [%g, %g]", typ, e, b[0], b[1])
		}
	}
}

// TestIQ4Weighted: with a skewed importance matrix the weighted encoders
// beat the plain ones on the weighted error; nil imatrix is Quantize; rows
// encode independently; the output is deterministic.
func TestIQ4Weighted(t *testing.T) {
	const rowLen = 4 * quant.QKK
	x := gaussian(7, 16*rowLen, 0.05)
	w := skewedImatrix(3, rowLen)
	for _, typ := range []quant.Type{quant.IQ4_NL, quant.IQ4_XS} {
		plain := roundTrip(t, typ, x, nil)
		weighted := roundTrip(t, typ, x, w)
		ep, ew := weightedRMSE(x, plain, w), weightedRMSE(x, weighted, w)
		t.Logf("%v: weighted RMSE plain %.6f, with imatrix %.6f (%.1f%% lower)", typ, ep, ew, 100*(1-ew/ep))
		if !(ew < ep) {
			t.Errorf("%v: imatrix RMSE %.6f not below the plain encoder's %.6f", typ, ew, ep)
		}
		nb, _ := typ.RowBytes(len(x))
		a, b := make([]byte, nb), make([]byte, nb)
		if err := quant.QuantizeWeighted(typ, x, a, w); err != nil {
			t.Fatal(err)
		}
		rb, _ := typ.RowBytes(rowLen)
		for r := 0; r < len(x)/rowLen; r++ {
			if err := quant.QuantizeWeighted(typ, x[r*rowLen:(r+1)*rowLen], b[:rb], w); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a[r*rb:(r+1)*rb], b[:rb]) {
				t.Fatalf("%v: row %d differs when encoded alone", typ, r)
			}
		}
		if err := quant.QuantizeWeighted(typ, x, a, nil); err != nil {
			t.Fatal(err)
		}
		if err := quant.Quantize(typ, x, b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%v: QuantizeWeighted(nil) differs from Quantize", typ)
		}
	}
}

// TestIQ4Encoder checks properties of the encoders that follow from ggml's
// algorithm: a zero block stores index 8 (the value 1, nearest to 0)
// everywhere and d = +0 (IQ4_NL) or, IQ4_XS, d = -0 (ggml's -max_scale/32)
// with every 6-bit scale 32 (scales_h 0xaaaa, scales_l 0); a block whose values are exactly c·kvalues (largest
// magnitude -127·c) decodes to them up to the fp16 rounding of c; scales
// and sign follow the input; and Quantize writes no byte past the blocks.
func TestIQ4Encoder(t *testing.T) {
	v := quant.IQ4NLValues
	for _, typ := range []quant.Type{quant.IQ4_NL, quant.IQ4_XS} {
		n := typ.BlockElems()
		rb, _ := typ.RowBytes(n)
		enc := make([]byte, rb+8)
		for i := range enc {
			enc[i] = 0xa5
		}
		if err := quant.Quantize(typ, make([]float32, n), enc); err != nil {
			t.Fatal(err)
		}
		for _, g := range enc[rb:] {
			if g != 0xa5 {
				t.Fatalf("%v: wrote past the block", typ)
			}
		}
		head := []byte{0, 0}
		if typ == quant.IQ4_XS {
			head = []byte{0, 0x80, 0xaa, 0xaa, 0, 0, 0, 0}
		}
		qs := enc[len(head):rb]
		if !bytes.Equal(enc[:len(head)], head) || bytes.Count(qs, []byte{0x88}) != len(qs) {
			t.Errorf("%v: zero block encodes as % x", typ, enc[:rb])
		}

		for _, c := range []float32{0.01, -0.003, 1.5} {
			x := make([]float32, n)
			for i := range x {
				x[i] = c * float32(v[(i*7+3)%16])
			}
			x[5] = -127 * c
			y := roundTrip(t, typ, x, nil)
			ch := quant.F16ToF32(quant.F32ToF16(c))
			for i := range x {
				if d := math.Abs(float64(y[i] - x[i])); d > math.Abs(float64(x[i]))*0.02+math.Abs(float64(c-ch))*128 {
					t.Fatalf("%v c=%v: element %d = %v, want %v", typ, c, i, y[i], x[i])
				}
			}
		}
	}
}

// TestIQ4Golden freezes the encoders' output on fixed data (a regression
// check, not a comparison with llama-quantize, see the top of this file).
// To refresh after a deliberate change, run with -v and copy the hashes.
func TestIQ4Golden(t *testing.T) {
	x := gaussian(2024, 16*quant.QKK, 0.02)
	imat := skewedImatrix(5, 4*quant.QKK)
	want := map[string]string{
		"IQ4_NL":         "486aacf06e90911ba6312cecdb7781a252be8ce6d12ab940420d35e35d62ad33",
		"IQ4_NL/imatrix": "21fc2204f59b02dad7c3a006fc4aaa75d466db89cd98b8acc24d88437e382923",
		"IQ4_XS":         "457848f3f0d9a95c5998ff8bc74a194a37fe6c38f097766ba7af1af614efb3a1",
		"IQ4_XS/imatrix": "b2ca955361c2725cb8b6bf14f41d2d9b214a1a14f46960ab91dcf71169423318",
	}
	for _, typ := range []quant.Type{quant.IQ4_NL, quant.IQ4_XS} {
		for _, w := range [][]float32{nil, imat} {
			name := typ.String()
			if w != nil {
				name += "/imatrix"
			}
			nb, _ := typ.RowBytes(len(x))
			enc := make([]byte, nb)
			if err := quant.QuantizeWeighted(typ, x, enc, w); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(enc)
			got := hex.EncodeToString(sum[:])
			t.Logf("%q: %q,", name, got)
			if got != want[name] {
				t.Errorf("%s: sha256 %s, want %s", name, got, want[name])
			}
		}
	}
}

// FuzzIQ4 feeds arbitrary bytes to the IQ4 dequantizers (NaN/Inf scales
// included) and arbitrary float32 data (NaN, Inf, huge, subnormal) and
// imatrices to the encoders: no panics, deterministic output, and the
// decoded values are table values times the scales.
func FuzzIQ4(f *testing.F) {
	f.Add([]byte{0x00, 0x7c, 1, 2, 3}, uint8(0), false)
	f.Add([]byte{0xff, 0x7f, 0xff, 0xff}, uint8(1), true)
	f.Add(bytes.Repeat([]byte{0x80}, 300), uint8(1), false)
	f.Add([]byte("007A000X0000"), uint8(0), true)
	f.Fuzz(func(t *testing.T, raw []byte, sel uint8, weighted bool) {
		typ := []quant.Type{quant.IQ4_NL, quant.IQ4_XS}[sel&1]
		n := quant.QKK
		// Dequantize the raw bytes (cycled) as blocks.
		rb, _ := typ.RowBytes(n)
		src := make([]byte, rb)
		for i := range src {
			if len(raw) > 0 {
				src[i] = raw[i%len(raw)]
			}
		}
		y := make([]float32, n)
		if err := quant.Dequantize(typ, src, y); err != nil {
			t.Fatal(err)
		}
		// Encode the raw bytes as float32s.
		x := make([]float32, n)
		var w []float32
		if weighted {
			w = make([]float32, n)
		}
		for i := range x {
			if len(raw) >= 4 {
				j := 4 * (i % (len(raw) / 4))
				x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[j:]))
				if w != nil {
					w[i] = float32(math.Abs(float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[len(raw)-4-j:])))))
				}
			} else if w != nil {
				w[i] = 1
			}
		}
		a, b := make([]byte, rb), make([]byte, rb)
		if err := quant.QuantizeWeighted(typ, x, a, w); err != nil {
			t.Fatal(err)
		}
		if err := quant.QuantizeWeighted(typ, x, b, w); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%v: not deterministic", typ)
		}
		if err := quant.Dequantize(typ, a, y); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkQuantizeIQ4(b *testing.B) {
	x := gaussian(1, 4096, 1)
	for _, typ := range []quant.Type{quant.IQ4_NL, quant.IQ4_XS} {
		rb, _ := typ.RowBytes(len(x))
		dst := make([]byte, rb)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				_ = quant.Quantize(typ, x, dst)
			}
		})
	}
}
