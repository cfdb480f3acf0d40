package kernel

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/slm-dev/slm/quant"
)

var testLens = []int{0, 1, 7, 8, 9, 31, 32, 33, 256, 4096 + 17}

func randVec(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range testLens {
		x, y := randVec(r, n), randVec(r, n+3) // y may be longer
		var want, mag float64
		for i := range x {
			want += float64(x[i]) * float64(y[i])
			mag += math.Abs(float64(x[i]) * float64(y[i]))
		}
		got := float64(Dot(x, y))
		if math.Abs(got-want) > 1e-6*(1+mag) {
			t.Errorf("Dot n=%d: %g, want %g", n, got, want)
		}
	}
}

func TestVecOps(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range testLens {
		x, y := randVec(r, n), randVec(r, n)
		y0 := append([]float32(nil), y...)
		Axpy(y, 0.5, x)
		for i := range y {
			if y[i] != y0[i]+0.5*x[i] {
				t.Fatalf("Axpy n=%d i=%d", n, i)
			}
		}
		copy(y, y0)
		Add(y, x)
		Mul(y, x)
		Scale(y, 2)
		for i := range y {
			if y[i] != (y0[i]+x[i])*x[i]*2 {
				t.Fatalf("Add/Mul/Scale n=%d i=%d", n, i)
			}
		}
	}
}

func TestNorms(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range testLens[1:] {
		x, w, b := randVec(r, n), randVec(r, n), randVec(r, n)
		var ss, sum float64
		for _, v := range x {
			ss += float64(v) * float64(v)
			sum += float64(v)
		}
		out := make([]float32, n)
		RMSNorm(out, x, w, 1e-5)
		scale := 1 / math.Sqrt(ss/float64(n)+1e-5)
		for i := range out {
			if !near(float64(out[i]), float64(x[i])*scale*float64(w[i]), 1e-5) {
				t.Fatalf("RMSNorm n=%d i=%d: %g", n, i, out[i])
			}
		}
		mean := sum / float64(n)
		var v2 float64
		for _, v := range x {
			v2 += (float64(v) - mean) * (float64(v) - mean)
		}
		scale = 1 / math.Sqrt(v2/float64(n)+1e-5)
		copy(out, x)
		LayerNorm(out, out, w, b, 1e-5) // in place
		for i := range out {
			want := (float64(x[i])-mean)*scale*float64(w[i]) + float64(b[i])
			if math.Abs(float64(out[i])-want) > 1e-5*(1+math.Abs(float64(w[i]))) {
				t.Fatalf("LayerNorm n=%d i=%d: %g, want %g", n, i, out[i], want)
			}
		}
	}
}

func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range testLens[1:] {
		x := randVec(r, n)
		if n > 1 {
			x[0] = float32(math.Inf(-1)) // masked
			x[n-1] = 80                  // large values must not overflow
		}
		want := make([]float64, n)
		mx := math.Inf(-1)
		for _, v := range x {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		for i, v := range x {
			want[i] = math.Exp(float64(v) - mx)
			sum += want[i]
		}
		Softmax(x)
		var total float64
		for i := range x {
			total += float64(x[i])
			if !near(float64(x[i]), want[i]/sum, 1e-6) {
				t.Fatalf("Softmax n=%d i=%d: %g, want %g", n, i, x[i], want[i]/sum)
			}
		}
		if !near(total, 1, 1e-5) {
			t.Errorf("Softmax n=%d sums to %g", n, total)
		}
	}
}

func geluExact(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func TestActivations(t *testing.T) {
	xs := []float32{-20, -10, -9.99, -3, -1, -0.5, -1e-3, 0, 1e-3, 0.1, 0.5, 1, 2.5, 9.99, 10, 30}
	x := append([]float32(nil), xs...)
	GELU(x)
	for i, v := range xs {
		if !near(float64(x[i]), geluExact(float64(v)), 1e-6) && math.Abs(float64(x[i])-geluExact(float64(v))) > 1e-7 {
			t.Errorf("GELU(%g) = %g, want %g", v, x[i], geluExact(float64(v)))
		}
	}
	x = append(x[:0], xs...)
	GELUFP16(x)
	for i, v := range xs {
		var want float32
		switch {
		case v <= -10:
			want = 0
		case v >= 10:
			want = v
		default:
			h := quant.F16ToF32(quant.F32ToF16(v))
			want = quant.F16ToF32(quant.F32ToF16(float32(geluExact(float64(h)))))
		}
		if x[i] != want {
			t.Errorf("GELUFP16(%g) = %g, want %g", v, x[i], want)
		}
		// The table's error is fp16-sized.
		if e := math.Abs(float64(x[i]) - geluExact(float64(v))); e > 2e-3*(1+math.Abs(float64(v))) && v > -10 && v < 10 {
			t.Errorf("GELUFP16(%g) = %g is far from %g", v, x[i], geluExact(float64(v)))
		}
	}
	x = append(x[:0], xs...)
	SiLU(x)
	g := append([]float32(nil), xs...)
	up := make([]float32, len(xs))
	for i := range up {
		up[i] = 2
	}
	SiLUMul(g, up)
	for i, v := range xs {
		want := float64(v) / (1 + math.Exp(-float64(v)))
		if !near(float64(x[i]), want, 1e-6) {
			t.Errorf("SiLU(%g) = %g, want %g", v, x[i], want)
		}
		if g[i] != 2*x[i] {
			t.Errorf("SiLUMul(%g) = %g, want %g", v, g[i], 2*x[i])
		}
	}
}

// ropeRef is ggml's rope in float64 (theta computed directly).
func ropeRef(r *Rope, x []float64, headDim, pos int) {
	fs := float64(r.FreqScale)
	if fs == 0 {
		fs = 1
	}
	corr := func(beta float64) float64 {
		return float64(r.Dims) * math.Log(float64(r.OrigCtx)/(beta*2*math.Pi)) / (2 * math.Log(float64(r.Base)))
	}
	low, high := math.Max(0, math.Floor(corr(float64(r.BetaFast)))), math.Min(float64(r.Dims-1), math.Ceil(corr(float64(r.BetaSlow))))
	for h := 0; h+headDim <= len(x); h += headDim {
		for i := 0; i < r.Dims/2; i++ {
			extrap := float64(pos) * math.Pow(float64(r.Base), -2*float64(i)/float64(r.Dims))
			if r.FreqFactors != nil {
				extrap /= float64(r.FreqFactors[i])
			}
			theta := fs * extrap
			m := 1.0
			if r.ExtFactor != 0 {
				y := (float64(i) - low) / math.Max(0.001, high-low)
				mix := (1 - math.Min(1, math.Max(0, y))) * float64(r.ExtFactor)
				theta = theta*(1-mix) + extrap*mix
				m *= 1 + 0.1*math.Log(1/fs)
			}
			a, b := h+2*i, h+2*i+1
			if r.Neox {
				a, b = h+i, h+i+r.Dims/2
			}
			c, s := math.Cos(theta)*m, math.Sin(theta)*m
			x[a], x[b] = x[a]*c-x[b]*s, x[a]*s+x[b]*c
		}
	}
}

func TestRope(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 10))
	factors := make([]float32, 16)
	for i := range factors {
		factors[i] = 1 + float32(i)
	}
	cases := []Rope{
		{Dims: 32, Base: 10000},
		{Dims: 32, Neox: true, Base: 1e6},
		{Dims: 16, Base: 10000}, // partial rotation of a 32-wide head
		{Dims: 32, Base: 500000, FreqFactors: factors},
		{Dims: 32, Base: 10000, FreqScale: 0.25},
		{Dims: 32, Neox: true, Base: 10000, FreqScale: 0.25, ExtFactor: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 4096},
	}
	for ci, r := range cases {
		for _, pos := range []int{0, 1, 7, 70, 1000} {
			x := randVec(rnd, 4*32)
			want := make([]float64, len(x))
			for i, v := range x {
				want[i] = float64(v)
			}
			cs := make([]float32, r.Dims)
			r.Angles(cs, pos)
			r.Apply(x, 32, cs)
			ropeRef(&r, want, 32, pos)
			// float32 theta accumulates a few ulps per pair: ~1e-7·pos.
			tol := 2e-6 * float64(1+pos)
			for i := range x {
				if math.Abs(float64(x[i])-want[i]) > tol {
					t.Fatalf("case %d pos %d: x[%d] = %g, want %g", ci, pos, i, x[i], want[i])
				}
			}
		}
	}
	// Position 0 is the identity (without YaRN's magnitude scale).
	r := Rope{Dims: 32, Base: 10000}
	x := randVec(rnd, 64)
	y := append([]float32(nil), x...)
	cs := make([]float32, 32)
	r.Angles(cs, 0)
	r.Apply(y, 32, cs)
	for i := range x {
		if x[i] != y[i] {
			t.Fatal("rope at position 0 changed the vector")
		}
	}
}

// encode builds the bytes of a rows×cols matrix of type typ from float32
// values, returning the values the encoding decodes to.
func encode(t *testing.T, typ quant.Type, vals []float32, cols int) ([]byte, []float32) {
	t.Helper()
	rows := len(vals) / cols
	rb, err := typ.RowBytes(cols)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, rows*rb)
	for r := range rows {
		src, dst := vals[r*cols:(r+1)*cols], data[r*rb:(r+1)*rb]
		switch typ {
		case quant.F32:
			for i, v := range src {
				binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
			}
		case quant.F16:
			for i, v := range src {
				binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToF16(v))
			}
		case quant.Q8_0:
			quant.QuantizeQ8_0Ref(src, dst)
		case quant.Q4_0:
			quant.QuantizeQ4_0Ref(src, dst)
		case quant.Q5_1:
			quant.QuantizeQ5_1Ref(src, dst)
		}
	}
	dec := make([]float32, len(vals))
	if err := quant.Dequantize(typ, data, dec); err != nil {
		t.Fatal(err)
	}
	return data, dec
}

// naiveMatMul is the specification: dequantized rows dotted with Dot.
func naiveMatMul(w []float32, rows, cols int, x []float32, n int) []float32 {
	out := make([]float32, n*rows)
	for t := range n {
		for r := range rows {
			out[t*rows+r] = Dot(w[r*cols:(r+1)*cols], x[t*cols:(t+1)*cols])
		}
	}
	return out
}

// TestMatMul checks the exact float mode against dequantized rows dotted
// with Dot.
func TestMatMul(t *testing.T) {
	defer SetExactFloat(SetExactFloat(true))
	rnd := rand.New(rand.NewPCG(11, 12))
	shapes := [][2]int{{1, 32}, {3, 64}, {17, 96}, {300, 256}, {1000, 128}} // the last two use the pool
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0, quant.Q5_1} {
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			data, w := encode(t, typ, randVec(rnd, rows*cols), cols)
			m, err := NewMatrix(typ, data, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 2, 5} {
				x := randVec(rnd, n*cols)
				want := naiveMatMul(w, rows, cols, x, n)
				got := make([]float32, n*rows+1)
				got[n*rows] = 42 // guard
				m.MatMul(got[:n*rows], x, n)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%v %dx%d n=%d: out[%d] = %g, want %g", typ, rows, cols, n, i, got[i], want[i])
					}
				}
				if got[n*rows] != 42 {
					t.Fatal("MatMul wrote past its output")
				}
				if n == 1 {
					vec := make([]float32, rows)
					m.MatVec(vec, x)
					for i := range vec {
						if vec[i] != want[i] {
							t.Fatalf("%v MatVec out[%d] = %g, want %g", typ, i, vec[i], want[i])
						}
					}
				}
			}
			// Row and Slice.
			row := make([]float32, cols)
			m.Row(rows-1, row)
			for i := range row {
				if row[i] != w[(rows-1)*cols+i] {
					t.Fatalf("%v Row", typ)
				}
			}
			s := m.Slice(rows/2, rows)
			x := randVec(rnd, cols)
			full, half := make([]float32, rows), make([]float32, s.Rows)
			m.MatVec(full, x)
			s.MatVec(half, x)
			for i := range half {
				if half[i] != full[rows/2+i] {
					t.Fatalf("%v Slice row %d", typ, i)
				}
			}
		}
	}
}

// TestMatMulFast checks the default path against its specification: the
// activations encoded by the generic quantizer and each row dotted by the
// generic dot, on every tier, with the pool and without.
func TestMatMulFast(t *testing.T) {
	rnd := rand.New(rand.NewPCG(17, 18))
	shapes := [][2]int{{1, 256}, {3, 256}, {17, 512}, {300, 256}, {1000, 512}}
	for _, tier := range []Tier{TierGeneric, ActiveTier()} {
		prev := setForcedTier(tier)
		for _, typ := range weightTypes() {
			act := dots[typ].act
			gen := dotImpl(typ, TierGeneric)
			for _, sh := range shapes {
				rows, cols := sh[0], sh[1]
				data := randomWeights(rnd, typ, rows*cols)
				m, err := NewMatrix(typ, data, rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{1, 2, 5} {
					x := randVec(rnd, n*cols)
					got := make([]float32, n*rows+1)
					got[n*rows] = 42
					m.MatMul(got[:n*rows], x, n)
					if got[n*rows] != 42 {
						t.Fatal("MatMul wrote past its output")
					}
					spec := gen
					for tk := range n {
						xb := encodeAct(t, act, x[tk*cols:(tk+1)*cols])
						for r := range rows {
							want := spec(cols, data[r*m.RowBytes:(r+1)*m.RowBytes], xb)
							if !sameBits(got[tk*rows+r], want) {
								t.Fatalf("%v tier %v %dx%d n=%d: out[%d][%d] = %g, want %g", typ, tier, rows, cols, n, tk, r, got[tk*rows+r], want)
							}
						}
					}
				}
				// Row slices (gpt2's q/k/v) at group boundaries and not.
				for _, r0 := range []int{0, 3, 8} {
					if r0 >= rows {
						continue
					}
					s := m.Slice(r0, rows)
					x := randVec(rnd, 2*cols)
					full, part := make([]float32, 2*rows), make([]float32, 2*s.Rows)
					m.MatMul(full, x, 2)
					s.MatMul(part, x, 2)
					for tk := range 2 {
						for i := range s.Rows {
							if !sameBits(part[tk*s.Rows+i], full[tk*rows+r0+i]) {
								t.Fatalf("%v Slice(%d) row %d", typ, r0, i)
							}
						}
					}
				}
			}
		}
		setForcedTier(prev)
	}
}

func TestNewMatrixErrors(t *testing.T) {
	if _, err := NewMatrix(quant.F32, make([]byte, 4*10), 3, 4); err == nil {
		t.Error("short data accepted")
	}
	if _, err := NewMatrix(quant.Q8_0, make([]byte, 1000), 2, 20); err == nil {
		t.Error("a row that is not a whole number of blocks accepted")
	}
	if _, err := NewMatrix(quant.I32, make([]byte, 64), 2, 8); err == nil {
		t.Error("an integer type accepted")
	}
	if _, err := NewMatrix(quant.F32, make([]byte, 64), 2, 0); err == nil {
		t.Error("zero columns accepted")
	}
	// Unaligned F32 data still works (decoded per row).
	buf := make([]byte, 4*8+1)
	for i := range 8 {
		binary.LittleEndian.PutUint32(buf[1+4*i:], math.Float32bits(float32(i)))
	}
	m, err := NewMatrix(quant.F32, buf[1:], 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 2)
	m.MatVec(out, []float32{1, 1, 1, 1})
	if out[0] != 6 || out[1] != 22 {
		t.Errorf("unaligned F32: %v", out)
	}
}

func TestMatVecAllocs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(13, 14))
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0} {
		data, _ := encode(t, typ, randVec(rnd, 512*256), 256)
		m, err := NewMatrix(typ, data, 512, 256)
		if err != nil {
			t.Fatal(err)
		}
		x, out := randVec(rnd, 4*256), make([]float32, 4*512)
		if a := testing.AllocsPerRun(50, func() { m.MatVec(out[:512], x[:256]); m.MatMul(out, x, 4) }); a != 0 {
			t.Errorf("%v: %v allocations per product", typ, a)
		}
	}
}

func BenchmarkMatVec(b *testing.B) {
	rnd := rand.New(rand.NewPCG(15, 16))
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0} {
		b.Run(typ.String(), func(b *testing.B) {
			t := &testing.T{}
			data, _ := encode(t, typ, randVec(rnd, 2048*2048), 2048)
			m, _ := NewMatrix(typ, data, 2048, 2048)
			x, out := randVec(rnd, 2048), make([]float32, 2048)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				m.MatVec(out, x)
			}
		})
	}
}

// A Slice keeps the huge-page buffer of its parent's repacked Q4_0 groups
// alive: products on it are right after the parent is collected.
func TestPackedSliceOutlivesParent(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const rows, cols = 8192, 512 // 2.4 MB repacked: a huge-page buffer where available
	data := randomWeights(r, quant.Q4_0, rows*cols)
	parent, err := NewMatrix(quant.Q4_0, data, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	s := parent.Slice(4096, 4104)
	want := make([]float32, 8)
	x := testFloats(r, cols, 0)
	ref, _ := NewMatrix(quant.Q4_0, data[4096*cols/32*18:4104*cols/32*18], 8, cols)
	ref.MatMul(want, x, 1)
	parent = nil
	runtime.GC()
	runtime.GC()
	got := make([]float32, 8)
	s.MatMul(got, x, 1)
	for i := range got {
		if !sameBits(got[i], want[i]) {
			t.Fatalf("row %d: %g, want %g", i, got[i], want[i])
		}
	}
}
