package model

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/slm-dev/slm/kernel"
)

// HeadRMSNorm is kernel.RMSNorm of every head, bit for bit, whether it runs
// on the caller or is split over the pool, from several goroutines at once,
// and it allocates nothing.
func TestHeadRMSNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct{ n, heads, hd int }{
		{1, 1, 2}, {1, 16, 128}, {3, 2, 64}, {7, 5, 96}, {256, 24, 128}, {129, 8, 128},
	} {
		x := make([]float32, c.n*c.heads*c.hd+5) // guard values past the rows
		w := make([]float32, c.hd)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 3)
		}
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		want := append([]float32(nil), x...)
		for h := 0; h < c.n*c.heads; h++ {
			kernel.RMSNorm(want[h*c.hd:(h+1)*c.hd], want[h*c.hd:(h+1)*c.hd], w, 1e-6)
		}
		// Several goroutines at once: one holds the shared job, the others
		// run on their own goroutine; all must agree.
		var wg sync.WaitGroup
		got := make([][]float32, 4)
		for g := range got {
			got[g] = append([]float32(nil), x...)
			wg.Add(1)
			go func() {
				defer wg.Done()
				HeadRMSNorm(got[g], w, 1e-6, c.n, c.heads)
			}()
		}
		wg.Wait()
		for g := range got {
			for i := range want {
				if got[g][i] != want[i] {
					t.Fatalf("n %d, heads %d, head_dim %d, goroutine %d: value %d is %v, want %v", c.n, c.heads, c.hd, g, i, got[g][i], want[i])
				}
			}
		}
		y := append([]float32(nil), x...)
		if a := testing.AllocsPerRun(10, func() { HeadRMSNorm(y, w, 1e-6, c.n, c.heads) }); a != 0 {
			t.Errorf("n %d, heads %d: %v allocations", c.n, c.heads, a)
		}
	}
}

func BenchmarkHeadRMSNorm(b *testing.B) {
	const n, heads, hd = 256, 24, 128 // a 256-token prompt's q and k heads in a Qwen3-0.6B layer
	x := make([]float32, n*heads*hd)
	w := make([]float32, hd)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	for i := range w {
		w[i] = 1
	}
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		HeadRMSNorm(x, w, 1e-6, n, heads)
	}
}
