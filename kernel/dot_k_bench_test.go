package kernel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// Benchmarks of the K-quant dot products on real shapes, every tier the CPU
// runs. GB/s counts weight bytes read, GOP/s two operations (multiply, add)
// per weight element, both per second of CPU time of the benchmark's thread
// where the OS tells it (Linux; else per second of wall time): on a shared,
// loaded machine wall time mostly measures the other processes. cpu-ns/op
// is that CPU time per operation, ns/op the wall time as usual. Row lengths: 1536 (SmolLM2-135M FFN), 2048 (Llama 3.2
// 1B hidden), 4864 (Qwen2.5 0.5B FFN), 8192 (Llama 3.2 1B FFN); Qwen2.5's
// 896 is not a multiple of 256, so no K-quant row has that length.
//
//	go test ./kernel/ -run '^$' -bench 'DotK|MatVecK' -benchtime 200ms

func kBenchOperands(b *testing.B, typ quant.Type, wbytes, rows, cols int) (w, x []byte) {
	r := rand.New(rand.NewPCG(7, 8))
	// Quantize up to 64 distinct rows and repeat them: the reference
	// quantizers are slow, and repeated rows still stream from memory.
	rb := cols / quant.QKK * wbytes
	q := min(rows, 64)
	w = make([]byte, rows*rb)
	if err := quant.Quantize(typ, randGauss(r, q*cols, 0.05), w[:q*rb]); err != nil {
		b.Fatal(err)
	}
	for i := q * rb; i < len(w); i += q * rb {
		copy(w[i:], w[:q*rb])
	}
	return w, q8KFromFloats(randGauss(r, cols, 1))
}

// kLoop runs f in b.Loop on a locked OS thread and reports the metrics.
func kLoop(b *testing.B, wbytes, elems int, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0 := threadCPUTime()
	for b.Loop() {
		f()
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	if c0 >= 0 {
		ns = float64(threadCPUTime()-c0) / float64(b.N)
		b.ReportMetric(ns, "cpu-ns/op")
	}
	b.ReportMetric(float64(wbytes)/ns, "GB/s")
	b.ReportMetric(2*float64(elems)/ns, "GOP/s")
}

// BenchmarkDotK is one weight row against one activation row (both in
// cache after the first iteration).
func BenchmarkDotK(b *testing.B) {
	for _, kt := range kTypes {
		for _, cols := range []int{1536, 2048, 4864, 8192} {
			w, x := kBenchOperands(b, kt.typ, kt.bytes, 1, cols)
			for _, im := range kTiers(kt.typ) {
				b.Run(fmt.Sprintf("%v/%v/row%d", kt.typ, im.tier, cols), func(b *testing.B) {
					var s float32
					kLoop(b, len(w), cols, func() { s += im.fn(cols, w, x) })
					kSink = s
				})
			}
		}
	}
}

var kSink float32

// BenchmarkMatVecK is a matrix-vector product, row after row on one core:
// 576×1536 (SmolLM2-135M ffn_down, fits in L2), 896×4864 (Qwen2.5 0.5B
// ffn_down) and 2048×8192 (Llama 3.2 1B ffn_down, 9 MB and more), with the
// single-row dot in a loop and, where registered, the multi-row kernel.
func BenchmarkMatVecK(b *testing.B) {
	for _, kt := range kTypes {
		for _, sh := range [][2]int{{576, 1536}, {896, 4864}, {2048, 8192}} {
			rows, cols := sh[0], sh[1]
			w, x := kBenchOperands(b, kt.typ, kt.bytes, rows, cols)
			rb := cols / quant.QKK * kt.bytes
			dst := make([]float32, rows)
			for _, im := range kTiers(kt.typ) {
				b.Run(fmt.Sprintf("%v/%v/%dx%d", kt.typ, im.tier, rows, cols), func(b *testing.B) {
					kLoop(b, len(w), rows*cols, func() {
						for r := range dst {
							dst[r] = im.fn(cols, w[r*rb:(r+1)*rb], x)
						}
					})
				})
			}
			if e := dotRows[kt.typ]; e != nil {
				for _, im := range e.impls {
					if !cpuHas(im.tier) {
						continue
					}
					b.Run(fmt.Sprintf("%v/%v-rows/%dx%d", kt.typ, im.tier, rows, cols), func(b *testing.B) {
						kLoop(b, len(w), rows*cols, func() { im.fn(cols, w, rb, x, dst) })
					})
				}
			}
		}
	}
}
