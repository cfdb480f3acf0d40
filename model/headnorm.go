package model

import (
	"sync"

	"github.com/slm-dev/slm/internal/parallel"
	"github.com/slm-dev/slm/kernel"
)

// HeadRMSNorm normalizes every head of n rows in place, each on its own:
// x holds n rows of heads·head_dim values and w (head_dim) is the weight
// all heads share (Qwen3's attn_q_norm and attn_k_norm, applied to the q
// and k projections before RoPE):
//
//	x[i,h] (head_dim) = x[i,h] / rms(x[i,h]) ⊙ w
//
// It is RMSNorm over n·heads rows of head_dim, with ggml's numerics
// (kernel.RMSNorm). A prompt's worth of heads is split over the worker
// pool: the norm costs a few nanoseconds per value, ~1 ms per layer for
// 256 tokens of Qwen3-0.6B's 24 q and k heads on one core (halved on two),
// a serial share of the pass that would grow with the thread count. Every
// head is computed by the same code either way, so the result does not
// depend on the split. Nothing is allocated.
func HeadRMSNorm(x, w []float32, eps float32, n, heads int) {
	d, rows := len(w), n*heads
	x = x[:rows*d]
	p := parallel.Default()
	if rows*d < parallelHeadNorm || rows < 2 || p.Size() == 1 || !headNorm.mu.TryLock() {
		// Small, single-threaded, or another pass holds the shared job (the
		// pool would run the two one after the other anyway).
		RMSNorm(x, x, w, eps, rows)
		return
	}
	j := &headNorm.job
	j.x, j.w, j.eps = x, w, eps
	p.Do(rows, max(16, rows/(4*p.Size())), j)
	j.x, j.w = nil, nil
	headNorm.mu.Unlock()
}

// parallelHeadNorm is the number of values below which HeadRMSNorm runs on
// the calling goroutine (a decoded token's heads, tens of microseconds at
// most).
const parallelHeadNorm = 1 << 14

// headNorm is the job HeadRMSNorm hands to the pool, kept here so that
// handing it over allocates nothing; mu guards it between passes running on
// different goroutines.
var headNorm struct {
	mu  sync.Mutex
	job headNormJob
}

type headNormJob struct {
	x, w []float32
	eps  float32
}

func (j *headNormJob) Run(_, r0, r1 int) {
	d := len(j.w)
	for r := r0; r < r1; r++ {
		kernel.RMSNorm(j.x[r*d:(r+1)*d], j.x[r*d:(r+1)*d], j.w, j.eps)
	}
}
