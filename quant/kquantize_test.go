package quant_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
)

var kTypes = []quant.Type{quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K}

// TestQuantizeKMatchesLlamaQuantize re-encodes, row by row, every K-quant
// tensor of the llama-quantize outputs (--pure Q2_K..Q6_K, and the Q4_K_M
// mixture; all without an importance matrix) from the F32 model and compares
// the bytes. It logs how many tensors match per type.
func TestQuantizeKMatchesLlamaQuantize(t *testing.T) {
	match := map[quant.Type]int{}
	total := map[quant.Type]int{}
	for _, base := range []string{"llama", "qwen2", "gpt2"} {
		fp, err := gguf.Open(filepath.Join(testdata, "models", base+"-f32.gguf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_k_m"} {
			fq, err := gguf.Open(filepath.Join(testdata, "models", base+"-"+v+".gguf"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range fq.Tensors {
				tq := &fq.Tensors[i]
				switch tq.Type {
				case quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K:
				default:
					continue
				}
				tf, ok := fp.Tensor(tq.Name)
				if !ok || tf.Type != quant.F32 {
					t.Fatalf("%s: no F32 source", tq.Name)
				}
				raw := fp.Data(tf)
				src := make([]float32, len(raw)/4)
				if err := quant.Dequantize(quant.F32, raw, src); err != nil {
					t.Fatal(err)
				}
				want := fq.Data(tq)
				n := int(tq.Dims[0])
				rb, err := tq.Type.RowBytes(n)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, rb)
				total[tq.Type]++
				ok = true
				for r := 0; r*n < len(src); r++ {
					if err := quant.Quantize(tq.Type, src[r*n:(r+1)*n], got); err != nil {
						t.Fatalf("%s: %v", tq.Name, err)
					}
					w := want[r*rb : (r+1)*rb]
					if !bytes.Equal(got, w) {
						j := 0
						for got[j] == w[j] {
							j++
						}
						t.Errorf("%s-%s %s (%v) row %d: first difference at byte %d (block %d, offset %d): got %#02x want %#02x",
							base, v, tq.Name, tq.Type, r, j, j/tq.Type.BlockBytes(), j%tq.Type.BlockBytes(), got[j], w[j])
						ok = false
						break
					}
				}
				if ok {
					match[tq.Type]++
				}
			}
			fq.Close()
		}
		fp.Close()
	}
	for _, typ := range kTypes {
		if total[typ] == 0 {
			t.Errorf("no %v tensors checked", typ)
		}
		t.Logf("%v: %d/%d tensors byte-identical", typ, match[typ], total[typ])
	}
}

// gaussian returns n N(0, sigma^2) samples.
func gaussian(seed uint64, n int, sigma float64) []float32 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * sigma)
	}
	return x
}

// roundTrip quantizes x (weighted when imatrix != nil) and dequantizes it.
func roundTrip(t testing.TB, typ quant.Type, x, imatrix []float32) []float32 {
	t.Helper()
	nb, err := typ.RowBytes(len(x))
	if err != nil {
		t.Fatal(err)
	}
	enc := make([]byte, nb)
	if err := quant.QuantizeWeighted(typ, x, enc, imatrix); err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(x))
	if err := quant.Dequantize(typ, enc, y); err != nil {
		t.Fatal(err)
	}
	return y
}

// weightedRMSE is sqrt(sum w (x-y)^2 / sum w), w = 1 when w is nil; w is
// one row's weights, repeated over the rows of x.
func weightedRMSE(x, y, w []float32) float64 {
	var num, den float64
	for i := range x {
		wi := 1.0
		if w != nil {
			wi = float64(w[i%len(w)])
		}
		d := float64(x[i]) - float64(y[i])
		num += wi * d * d
		den += wi
	}
	return math.Sqrt(num / den)
}

// TestQuantizeKRMSE checks the round-trip error on N(0,1) data: every type
// must beat the previous (fewer-bit) one, and each must lie in a band around
// what its bits imply (about halving per extra bit).
func TestQuantizeKRMSE(t *testing.T) {
	x := gaussian(42, 64*quant.QKK, 1)
	// Bands measured on this data with a margin; the ordering is the real
	// requirement.
	bands := map[quant.Type][2]float64{
		quant.Q2_K: {0.20, 0.40},
		quant.Q3_K: {0.10, 0.20},
		quant.Q4_K: {0.05, 0.10},
		quant.Q5_K: {0.025, 0.05},
		quant.Q6_K: {0.010, 0.025},
	}
	prev := math.Inf(1)
	for _, typ := range kTypes {
		e := weightedRMSE(x, roundTrip(t, typ, x, nil), nil)
		t.Logf("%v: RMSE %.5f (%.2f bits/weight)", typ, e, float64(8*typ.BlockBytes())/float64(typ.BlockElems()))
		if !(e < prev) {
			t.Errorf("%v: RMSE %.5f not below the previous type's %.5f", typ, e, prev)
		}
		if b := bands[typ]; e < b[0] || e > b[1] {
			t.Errorf("%v: RMSE %.5f outside [%g, %g]", typ, e, b[0], b[1])
		}
		prev = e
	}
}

// skewedImatrix gives a few columns a much larger importance than the rest,
// as real activation statistics do.
func skewedImatrix(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(0.05 + r.ExpFloat64())
		if r.IntN(16) == 0 {
			w[i] *= 50
		}
	}
	return w
}

var weightedTypes = []quant.Type{quant.Q4_0, quant.Q4_1, quant.Q5_0, quant.Q5_1,
	quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K}

// TestQuantizeWeighted checks the importance-matrix encoders: under skewed
// weights their weighted error beats the reference encoders', the output is
// finite and deterministic, and imatrix == nil is exactly Quantize.
func TestQuantizeWeighted(t *testing.T) {
	const rowLen = 4 * quant.QKK
	x := gaussian(7, 16*rowLen, 0.05)
	w := skewedImatrix(3, rowLen)
	for _, typ := range weightedTypes {
		plain := roundTrip(t, typ, x, nil)
		weighted := roundTrip(t, typ, x, w)
		ep, ew := weightedRMSE(x, plain, w), weightedRMSE(x, weighted, w)
		t.Logf("%v: weighted RMSE reference %.6f, with imatrix %.6f (%.1f%% lower)", typ, ep, ew, 100*(1-ew/ep))
		if !(ew <= ep) {
			t.Errorf("%v: weighted encoder's weighted RMSE %.6f above the reference's %.6f", typ, ew, ep)
		}
		for i, v := range weighted {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%v: element %d decodes to %v", typ, i, v)
			}
		}
		// Deterministic.
		nb, _ := typ.RowBytes(len(x))
		a, b := make([]byte, nb), make([]byte, nb)
		if err := quant.QuantizeWeighted(typ, x, a, w); err != nil {
			t.Fatal(err)
		}
		if err := quant.QuantizeWeighted(typ, x, b, w); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%v: weighted encoding not deterministic", typ)
		}
		// Row by row gives the same bytes as all rows at once.
		rb, _ := typ.RowBytes(rowLen)
		for r := 0; r < len(x)/rowLen; r++ {
			if err := quant.QuantizeWeighted(typ, x[r*rowLen:(r+1)*rowLen], b[:rb], w); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a[r*rb:(r+1)*rb], b[:rb]) {
				t.Fatalf("%v: row %d differs when encoded alone", typ, r)
			}
		}
		// nil imatrix is Quantize.
		if err := quant.QuantizeWeighted(typ, x, a, nil); err != nil {
			t.Fatal(err)
		}
		if err := quant.Quantize(typ, x, b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%v: QuantizeWeighted(nil) differs from Quantize", typ)
		}
		// A uniform imatrix is a different algorithm in ggml, not the
		// reference path; just make sure it is not worse than it by much.
		ones := make([]float32, rowLen)
		for i := range ones {
			ones[i] = 1
		}
		eu := weightedRMSE(x, roundTrip(t, typ, x, ones), nil)
		er := weightedRMSE(x, plain, nil)
		t.Logf("%v: RMSE reference %.6f, uniform imatrix %.6f", typ, er, eu)
		if eu > 1.1*er {
			t.Errorf("%v: uniform-imatrix RMSE %.6f much above the reference's %.6f", typ, eu, er)
		}
	}
}

func TestQuantizeWeightedErrors(t *testing.T) {
	x := make([]float32, 512)
	dst := make([]byte, 4096)
	cases := []struct {
		name string
		typ  quant.Type
		x    []float32
		w    []float32
		dst  []byte
		want error
	}{
		{"ok", quant.Q4_K, x, make([]float32, 256), dst, nil},
		{"ok simple", quant.Q4_0, x, make([]float32, 32), dst, nil},
		{"Q8_0 ignores imatrix", quant.Q8_0, x, make([]float32, 7), dst, nil},
		{"empty imatrix", quant.Q4_K, x, []float32{}, dst, quant.ErrBlockMultiple},
		{"imatrix not whole blocks", quant.Q4_K, x, make([]float32, 128), dst, quant.ErrBlockMultiple},
		{"rows not whole", quant.Q4_K, x[:512], make([]float32, 768), dst, quant.ErrBlockMultiple},
		{"short dst", quant.Q6_K, x, make([]float32, 256), dst[:419], quant.ErrShortBuffer},
		{"unsupported", quant.Q8_K, x, make([]float32, 256), dst, quant.ErrUnsupported},
		{"unsupported nil", quant.Q8_K, x, nil, dst, quant.ErrUnsupported},
	}
	for _, c := range cases {
		err := quant.QuantizeWeighted(c.typ, c.x, c.dst, c.w)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		} else if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	for _, typ := range kTypes {
		if !quant.CanQuantize(typ) {
			t.Errorf("CanQuantize(%v) = false", typ)
		}
	}
}

// TestQuantizeKSpecialBlocks: all-zero blocks encode to zeros; constant,
// single-spike and tiny-magnitude blocks decode close to the input.
func TestQuantizeKSpecialBlocks(t *testing.T) {
	type blk struct {
		name string
		x    []float32
	}
	mk := func(f func(i int) float32) []float32 {
		x := make([]float32, quant.QKK)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	blocks := []blk{
		{"zero", mk(func(int) float32 { return 0 })},
		{"constant", mk(func(int) float32 { return 0.5 })},
		{"negative constant", mk(func(int) float32 { return -0.25 })},
		{"spike", mk(func(i int) float32 {
			if i == 77 {
				return 3
			}
			return 0
		})},
		{"ramp", mk(func(i int) float32 { return float32(i-128) / 128 })},
		{"small", mk(func(i int) float32 { return float32(i%7-3) * 1e-3 })},
	}
	for _, typ := range kTypes {
		for _, w := range [][]float32{nil, skewedImatrix(1, quant.QKK)} {
			for _, b := range blocks {
				y := roundTrip(t, typ, b.x, w)
				var amax float64
				for _, v := range b.x {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				e := weightedRMSE(b.x, y, nil)
				if b.name == "zero" && e != 0 {
					t.Errorf("%v %s (imatrix %v): RMSE %g", typ, b.name, w != nil, e)
				}
				if e > 0.35*amax {
					t.Errorf("%v %s (imatrix %v): RMSE %g vs max %g", typ, b.name, w != nil, e, amax)
				}
			}
		}
	}
}

// FuzzQuantizeK feeds arbitrary float32 blocks (NaN, Inf, huge and
// subnormal values included) and imatrices to every K-quant encoder: it must
// not panic, must be deterministic, and moderate inputs (|x| < 1e4) must not
// decode to NaN. (Larger ones can overflow the fp16 super-block scale to
// Inf, as they do in llama.cpp, and Inf*0 decodes to NaN.)
func FuzzQuantizeK(f *testing.F) {
	seed := func(vals ...float32) []byte {
		b := make([]byte, 4*len(vals))
		for i, v := range vals {
			bits := math.Float32bits(v)
			b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
		}
		return b
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	f.Add(seed(1, -2, 3), uint8(0), false)
	f.Add(seed(nan, 1, 2), uint8(1), true)
	f.Add(seed(inf, -inf, 0), uint8(2), false)
	f.Add(seed(math.MaxFloat32, -math.MaxFloat32, 1), uint8(3), true)
	f.Add(seed(1e-45, -1e-40, 1e-38), uint8(4), false)
	f.Add(seed(1e30, 1e-30, -1e20), uint8(0), true)
	f.Add([]byte{}, uint8(1), false)
	f.Add([]byte("007A000X0000"), uint8(19), false) // Q6_K scale overflows fp16
	f.Fuzz(func(t *testing.T, raw []byte, sel uint8, weighted bool) {
		typ := kTypes[int(sel)%len(kTypes)]
		x := make([]float32, quant.QKK)
		var w []float32
		if weighted {
			w = make([]float32, quant.QKK)
		}
		moderate := true
		for i := range x {
			// Cycle the fuzz data over the block; odd positions of
			// the imatrix get the reversed stream.
			if len(raw) >= 4 {
				j := 4 * (i % (len(raw) / 4))
				x[i] = math.Float32frombits(uint32(raw[j]) | uint32(raw[j+1])<<8 | uint32(raw[j+2])<<16 | uint32(raw[j+3])<<24)
				if w != nil {
					k := len(raw) - 4 - j
					w[i] = math.Float32frombits(uint32(raw[k]) | uint32(raw[k+1])<<8 | uint32(raw[k+2])<<16 | uint32(raw[k+3])<<24)
					if !(w[i] >= 0 && w[i] < 1e4) {
						moderate = false
					}
				}
			} else if w != nil {
				w[i] = 1
			}
			if a := math.Abs(float64(x[i])); !(a < 1e4) {
				moderate = false
			}
		}
		nb, _ := typ.RowBytes(len(x))
		a, b := make([]byte, nb), make([]byte, nb)
		if err := quant.QuantizeWeighted(typ, x, a, w); err != nil {
			t.Fatal(err)
		}
		if err := quant.QuantizeWeighted(typ, x, b, w); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%v: not deterministic", typ)
		}
		y := make([]float32, len(x))
		if err := quant.Dequantize(typ, a, y); err != nil {
			t.Fatal(err)
		}
		if moderate {
			for i, v := range y {
				if math.IsNaN(float64(v)) {
					t.Fatalf("%v: moderate input decodes to NaN at %d", typ, i)
				}
			}
		}
	})
}

// BenchmarkQuantizeK encodes one 4096-element row per type, with and without
// an importance matrix. Metric: MB/s of float32 input.
func BenchmarkQuantizeK(b *testing.B) {
	const n = 4096
	x := gaussian(5, n, 0.05)
	w := skewedImatrix(5, n)
	for _, typ := range weightedTypes {
		nb, _ := typ.RowBytes(n)
		dst := make([]byte, nb)
		for _, mode := range []string{"ref", "imatrix"} {
			var imx []float32
			if mode == "imatrix" {
				imx = w
			}
			b.Run(fmt.Sprintf("%v/%s", typ, mode), func(b *testing.B) {
				for b.Loop() {
					if err := quant.QuantizeWeighted(typ, x, dst, imx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(4*n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
			})
		}
	}
}
