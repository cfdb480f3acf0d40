package engine

import (
	"fmt"
	"math"
	"slices"
)

// MaxTopLogprobs is the most alternatives a token's logprobs can list
// (OpenAI's bound for top_logprobs).
const MaxTopLogprobs = 20

// TokenLogprob is one token and its log-probability.
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// checkLogprobs validates the logprob options.
func checkLogprobs(opts Options) error {
	if opts.TopLogprobs < 0 || opts.TopLogprobs > MaxTopLogprobs {
		return fmt.Errorf("top logprobs: %d is outside 0..%d", opts.TopLogprobs, MaxTopLogprobs)
	}
	return nil
}

// wantLogprobs reports whether a generation returns logprobs.
func wantLogprobs(opts Options) bool { return opts.Logprobs || opts.TopLogprobs > 0 }

// logprobsOf computes, from raw (the model's logits at this position,
// before penalties, bias, grammar masking and temperature), the
// log-probability of token id under log-softmax(raw), and fills top (its
// length is the number of alternatives wanted) with the most likely tokens,
// best first (equal logits: lower id first). The normalizer is summed in
// float64; the alternatives are found with a bounded heap, never a sort of
// the vocabulary. It returns the logprob and how many entries of top it
// filled (fewer than asked only when fewer tokens are selectable). It
// allocates nothing. NaN logits count as -Inf.
//
// This is the one implementation behind Session.Generate and the
// Scheduler's sampling step.
func logprobsOf(raw []float32, id int32, top []TokenLogprob) (float32, int) {
	ninf := float32(math.Inf(-1))
	mx := ninf
	// The top len(top) by logit: a min-heap in top (Logprob holds the logit
	// until the end), root = the entry dropped first.
	k := len(top)
	h := top[:0]
	for i, v := range raw {
		if !(v > ninf) {
			continue
		}
		if v > mx {
			mx = v
		}
		if k == 0 {
			continue
		}
		if len(h) < k {
			h = append(h, TokenLogprob{ID: int32(i), Logprob: v})
			if len(h) == k {
				for j := k/2 - 1; j >= 0; j-- {
					lpSift(h, j)
				}
			}
			continue
		}
		if v > h[0].Logprob { // later ids lose ties
			h[0] = TokenLogprob{ID: int32(i), Logprob: v}
			lpSift(h, 0)
		}
	}
	if !(mx > ninf) { // nothing selectable: cannot happen after a sample
		return ninf, 0
	}
	m := float64(mx)
	sum := 0.0
	for _, v := range raw {
		if v > ninf {
			sum += math.Exp(float64(v) - m)
		}
	}
	lse := m + math.Log(sum)
	slices.SortFunc(h, func(a, b TokenLogprob) int {
		switch {
		case a.Logprob > b.Logprob:
			return -1
		case a.Logprob < b.Logprob:
			return 1
		}
		return int(a.ID) - int(b.ID)
	})
	for i := range h {
		h[i].Logprob = float32(float64(h[i].Logprob) - lse)
	}
	if id < 0 || int(id) >= len(raw) || !(raw[id] > ninf) {
		return ninf, len(h)
	}
	return float32(float64(raw[id]) - lse), len(h)
}

// lpWorse is the heap order: a is dropped before b.
func lpWorse(a, b TokenLogprob) bool {
	return a.Logprob < b.Logprob || (a.Logprob == b.Logprob && a.ID > b.ID)
}

func lpSift(h []TokenLogprob, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && lpWorse(h[r], h[l]) {
			m = r
		}
		if !lpWorse(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
