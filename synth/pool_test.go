package synth

import (
	"bytes"
	"math"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
)

// TestBlockPool checks the pooled K-quant tensors: valid blocks of normal
// values, independent of the thread count, and different from the exact
// encoding only in which values they hold.
func TestBlockPool(t *testing.T) {
	defer func(b, m int) { poolBlocks, poolMinBlocks = b, m }(poolBlocks, poolMinBlocks)
	poolBlocks, poolMinBlocks = 16, 64
	s, err := Lookup("llama-3.2-1b")
	if err != nil {
		t.Fatal(err)
	}
	s.NEmbd, s.NFF, s.NLayer, s.NHead, s.NHeadKV = 256, 512, 1, 4, 2
	opt := Options{Shape: s, Type: "q4_k_m", Vocab: 300, Seed: 5, Threads: 1}
	var a, b, exact bytes.Buffer
	if _, err := Write(&a, opt); err != nil {
		t.Fatal(err)
	}
	opt.Threads = 4
	if _, err := Write(&b, opt); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("pooled tensors depend on the thread count")
	}
	opt.Exact = true
	if _, err := Write(&exact, opt); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), exact.Bytes()) {
		t.Error("no tensor was drawn from the pool")
	}
	f, err := gguf.Parse("pooled", a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	pooled := 0
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if !usesPool(ti.Type, ti.Elems(), false) {
			continue
		}
		pooled++
		x := make([]float32, ti.Elems())
		if err := quant.Dequantize(ti.Type, f.Data(ti), x); err != nil {
			t.Fatal(err)
		}
		var sum, sq float64
		for _, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: value %v", ti.Name, v)
			}
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean := sum / float64(len(x))
		std := math.Sqrt(sq/float64(len(x)) - mean*mean)
		if math.Abs(mean) > 0.002 || math.Abs(std-Std) > 0.002 {
			t.Errorf("%s (%s): mean %g, std %g", ti.Name, ti.Type, mean, std)
		}
		row := int(ti.Dims[0])
		if bytes.Equal(x2b(x[:row]), x2b(x[row:2*row])) {
			t.Errorf("%s: rows 0 and 1 are equal", ti.Name)
		}
	}
	if pooled == 0 {
		t.Fatal("no pooled tensor")
	}
}

func x2b(x []float32) []byte {
	var b bytes.Buffer
	for _, v := range x {
		u := math.Float32bits(v)
		b.Write([]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)})
	}
	return b.Bytes()
}
