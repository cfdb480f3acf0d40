package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// Kernel benchmarks on real shapes (cols × rows: the input and output
// widths of a weight matrix): qwen2.5-0.5b's MLP 896×4864, llama-3.2-1b's
// 2048×8192, smollm2-135m's 576×1536, and its output layer 576×50257 (the
// issue's 50257-token vocabulary; larger than the caches).
//
//	go test -run XXX -bench 'Kernel' ./kernel/
//
// BenchmarkKernelDecode is MatVec on the calling goroutine alone
// (activation encoding included): the single-thread decode kernel.
// BenchmarkKernelPrefill does 32 vectors (a prompt chunk), also on one
// goroutine. BenchmarkKernelMatVec is the pooled MatVec. Each reports GB/s of weights
// streamed and GOP/s (2 ops per multiply-add), per type and tier.

var benchShapes = [][2]int{{896, 4864}, {2048, 8192}, {576, 1536}, {576, 50257}}

var benchTypes = []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q4_1,
	quant.Q5_0, quant.Q5_1, quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K}

func benchTiers() []Tier {
	ts := []Tier{TierGeneric}
	for t := TierGeneric + 1; int(t) < len(tierNames); t++ {
		if cpuHas(t) {
			ts = append(ts, t)
		}
	}
	return ts
}

func benchKernel(b *testing.B, n int, pooled bool) {
	rnd := rand.New(rand.NewPCG(31, 32))
	for _, typ := range benchTypes {
		if dots[typ] == nil {
			continue
		}
		for _, sh := range benchShapes {
			cols, rows := sh[0], sh[1]
			if cols%typ.BlockElems() != 0 || cols%dots[typ].act.BlockElems() != 0 {
				continue
			}
			data := randomWeights(rnd, typ, rows*cols)
			m, err := NewMatrix(typ, data, rows, cols)
			if err != nil {
				b.Fatal(err)
			}
			x := randVec(rnd, n*cols)
			out := make([]float32, n*rows)
			for _, tier := range benchTiers() {
				b.Run(fmt.Sprintf("%v/%v/%dx%d", typ, tier, cols, rows), func(b *testing.B) {
					defer setForcedTier(setForcedTier(tier))
					rt := routeFor(typ)
					if rt.tier != tier && tier != TierGeneric {
						b.Skipf("no %v kernel for %v (best %v)", tier, typ, rt.tier)
					}
					serialOnly = !pooled
					defer func() { serialOnly = false }()
					for b.Loop() {
						m.MatMul(out, x, n)
					}
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(float64(len(m.Data))/sec/1e9, "GB/s")
					b.ReportMetric(2*float64(rows*cols*n)/sec/1e9, "GOP/s")
				})
			}
		}
	}
}

func BenchmarkKernelDecode(b *testing.B)  { benchKernel(b, 1, false) }
func BenchmarkKernelPrefill(b *testing.B) { benchKernel(b, 32, false) }
func BenchmarkKernelMatVec(b *testing.B)  { benchKernel(b, 1, true) }
