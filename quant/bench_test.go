package quant_test

import (
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// BenchmarkDequantize decodes one 4096-element row of each type. Metrics:
// GB/s of float32 output written, src-GB/s of encoded input read.
func BenchmarkDequantize(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 0.05)
	}
	for _, typ := range allDequant {
		nb, err := typ.RowBytes(n)
		if err != nil {
			b.Fatal(err)
		}
		src := make([]byte, nb)
		if quant.CanQuantize(typ) {
			if err := quant.Quantize(typ, x, src); err != nil {
				b.Fatal(err)
			}
		} else {
			for i := range src {
				src[i] = byte(r.Uint32())
			}
		}
		dst := make([]float32, n)
		b.Run(typ.String(), func(b *testing.B) {
			for b.Loop() {
				if err := quant.Dequantize(typ, src, dst); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(4*n)*float64(b.N)/sec/1e9, "GB/s")
			b.ReportMetric(float64(nb)*float64(b.N)/sec/1e9, "src-GB/s")
		})
	}
}

// BenchmarkQuantizeActivation quantizes one 4096-element row as llama.cpp
// does with matmul inputs.
func BenchmarkQuantizeActivation(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(2, 2))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, c := range []struct {
		typ quant.Type
		fn  func([]float32, []byte)
	}{{quant.Q8_0, quant.QuantizeQ8_0}, {quant.Q8_1, quant.QuantizeQ8_1}, {quant.Q8_K, quant.QuantizeQ8_K}} {
		nb, _ := c.typ.RowBytes(n)
		dst := make([]byte, nb)
		b.Run(c.typ.String(), func(b *testing.B) {
			for b.Loop() {
				c.fn(x, dst)
			}
			b.ReportMetric(float64(4*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}
