package engine

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// logSoftmax is the reference: every token's log-probability, in float64,
// with a full sort for the ranking.
func logSoftmax(row []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = max(m, float64(v))
	}
	sum := 0.0
	for _, v := range row {
		sum += math.Exp(float64(v) - m)
	}
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = float64(v) - m - math.Log(sum)
	}
	return out
}

func TestLogprobsOfMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n := 1 + rng.IntN(300)
		row := make([]float32, n)
		for i := range row {
			row[i] = float32(rng.NormFloat64() * 4)
			if rng.IntN(10) == 0 { // ties
				row[i] = 1.5
			}
		}
		if trial%5 == 0 {
			row[rng.IntN(n)] = float32(math.Inf(-1))
		}
		ref := logSoftmax(row)
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case row[a] > row[b]:
				return -1
			case row[a] < row[b]:
				return 1
			}
			return 0
		})
		k := rng.IntN(MaxTopLogprobs + 1)
		top := make([]TokenLogprob, k)
		id := int32(rng.IntN(n))
		lp, got := logprobsOf(row, id, top)
		if math.Abs(float64(lp)-ref[id]) > 1e-5 && !math.IsInf(ref[id], -1) {
			t.Fatalf("trial %d: logprob %v, want %v", trial, lp, ref[id])
		}
		selectable := 0
		for _, v := range row {
			if !math.IsInf(float64(v), -1) {
				selectable++
			}
		}
		if want := min(k, selectable); got != want {
			t.Fatalf("trial %d: %d alternatives, want %d", trial, got, want)
		}
		for i, e := range top[:got] {
			if int(e.ID) != order[i] || math.Abs(float64(e.Logprob)-ref[order[i]]) > 1e-5 {
				t.Fatalf("trial %d: top[%d] = %+v, want id %d logprob %v", trial, i, e, order[i], ref[order[i]])
			}
		}
	}
}

type lpStep struct {
	id  int32
	lp  float32
	top []TokenLogprob
}

func collect(steps *[]lpStep) func(Token) error {
	return func(t Token) error {
		if t.ID >= 0 {
			*steps = append(*steps, lpStep{t.ID, t.Logprob, slices.Clone(t.Top)})
		}
		return nil
	}
}

// Greedy tokens have the highest log-probability of their position, as
// computed independently from Model.Logits; the alternatives are sorted,
// start with the chosen token and sum to at most 1.
func TestGreedyLogprobs(t *testing.T) {
	for _, name := range []string{"llama-q8_0", "qwen2-q4_k", "gpt2-f16"} {
		t.Run(name, func(t *testing.T) {
			m := open(t, name+".gguf")
			prompt := prompts(3, m.Config().NVocab)[1]
			opts := greedy()
			opts.MaxTokens = 12
			opts.Logprobs, opts.TopLogprobs = true, 5
			var steps []lpStep
			res, err := m.Generate(context.Background(), prompt, opts, collect(&steps))
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != len(res.Tokens) || len(steps) == 0 {
				t.Fatalf("%d logprob steps for %d tokens", len(steps), len(res.Tokens))
			}
			all := append(slices.Clone(prompt), res.Tokens...)
			rows, err := m.Logits(all[:len(all)-1])
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range steps {
				ref := logSoftmax(rows[len(prompt)-1+i])
				best := slices.Max(ref)
				if d := math.Abs(float64(st.lp) - best); d > 2e-3 {
					t.Errorf("token %d (%d): logprob %v, max log-softmax %v", i, st.id, st.lp, best)
				}
				if len(st.top) != 5 || st.top[0].ID != st.id || st.top[0].Logprob != st.lp {
					t.Errorf("token %d (%d): top %+v does not start with it", i, st.id, st.top)
				}
				sum := 0.0
				for j, e := range st.top {
					sum += math.Exp(float64(e.Logprob))
					if j > 0 && e.Logprob > st.top[j-1].Logprob {
						t.Errorf("token %d: top not sorted: %+v", i, st.top)
					}
					if d := math.Abs(float64(e.Logprob) - ref[e.ID]); d > 2e-3 {
						t.Errorf("token %d: alternative %d: logprob %v, reference %v", i, e.ID, e.Logprob, ref[e.ID])
					}
				}
				if sum > 1+1e-5 {
					t.Errorf("token %d: top probabilities sum to %v", i, sum)
				}
			}
		})
	}
}

// The scheduler reports exactly what a session does, batched or not, and
// logprobs are those of the raw distribution: penalties and temperature
// change what is sampled, not what is reported.
func TestSchedulerLogprobsEqualSession(t *testing.T) {
	m := open(t, "llama-q8_0.gguf")
	ps := prompts(6, m.Config().NVocab)
	mk := func(i int) Options {
		opts := greedy()
		opts.MaxTokens = 8 + i
		opts.Logprobs, opts.TopLogprobs = true, i*3
		if i%2 == 1 {
			opts.Sampling.Temperature, opts.Sampling.Seed = 0.9, int64(i)
			opts.Sampling.RepeatPenalty = 1.3
		}
		return opts
	}
	want := make([][]lpStep, len(ps))
	for i, p := range ps {
		if _, err := m.Generate(context.Background(), p, mk(i), collect(&want[i])); err != nil {
			t.Fatal(err)
		}
	}
	s := newScheduler(t, m, SchedulerConfig{Slots: 4, Queue: 8, Context: 96, PrefillChunk: 8})
	got := make([][]lpStep, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			if _, err := s.Generate(context.Background(), p, mk(i), collect(&got[i])); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range ps {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("request %d: %d steps batched, %d alone", i, len(got[i]), len(want[i]))
		}
		for j := range got[i] {
			g, w := got[i][j], want[i][j]
			if g.id != w.id || g.lp != w.lp || !slices.Equal(g.top, w.top) {
				t.Errorf("request %d token %d: batched %+v, alone %+v", i, j, g, w)
			}
			if len(g.top) != mk(i).TopLogprobs {
				t.Errorf("request %d token %d: %d alternatives", i, j, len(g.top))
			}
		}
	}
	waitIdle(t, s)
}

func TestLogprobsBounds(t *testing.T) {
	m := open(t, "llama-q8_0.gguf")
	for _, k := range []int{-1, MaxTopLogprobs + 1} {
		opts := greedy()
		opts.MaxTokens, opts.TopLogprobs = 2, k
		if _, err := m.Generate(context.Background(), []int32{1, 5}, opts, nil); err == nil {
			t.Errorf("TopLogprobs %d accepted", k)
		}
	}
}

// With logprobs on, the decode loop still allocates nothing per token.
func TestDecodeLogprobsAllocatesNothing(t *testing.T) {
	m := open(t, "llama-q4_k_m.gguf")
	s, err := m.NewSession(128)
	if err != nil {
		t.Fatal(err)
	}
	run := func(n int) float64 {
		opts := greedy()
		opts.MaxTokens = n
		opts.Logprobs, opts.TopLogprobs = true, MaxTopLogprobs
		return testing.AllocsPerRun(5, func() {
			s.st.Truncate(0)
			s.cached = s.cached[:0]
			if _, err := s.Generate(context.Background(), []int32{1, 7, 8}, opts, func(Token) error { return nil }); err != nil {
				t.Fatal(err)
			}
		})
	}
	short, long := run(4), run(64)
	if long > short {
		t.Errorf("64 tokens cost %.0f allocations, 4 tokens %.0f: the decode loop allocates", long, short)
	}
}

// A step of the batch loop with logprobs on allocates nothing.
func TestSchedulerStepLogprobsAllocs(t *testing.T) {
	m := open(t, "llama-q4_k_m.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 4, Context: 128})
	for i, p := range prompts(4, m.Config().NVocab) {
		opts := greedy()
		opts.MaxTokens = 100
		opts.Logprobs, opts.TopLogprobs = true, 5*i
		r, err := s.newRequest(context.Background(), p, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.enqueue(r, false); err != nil {
			t.Fatal(err)
		}
	}
	s.admit()
	for range 8 {
		s.step()
	}
	if allocs := testing.AllocsPerRun(20, s.step); allocs != 0 {
		t.Errorf("%v allocations per step", allocs)
	}
	for _, r := range s.active {
		r.cancel.Store(true)
	}
	s.reap()
}

// A slow caller lets the loop run ahead by up to runAhead tokens: the
// logprob rings must still hand each token its own values.
func TestSchedulerLogprobsSlowCaller(t *testing.T) {
	m := open(t, "llama-q8_0.gguf")
	p := prompts(2, m.Config().NVocab)[1]
	opts := greedy()
	opts.MaxTokens = 200
	opts.Logprobs, opts.TopLogprobs = true, 4
	var want, got []lpStep
	if _, err := m.Generate(context.Background(), p, opts, collect(&want)); err != nil {
		t.Fatal(err)
	}
	s := newScheduler(t, m, SchedulerConfig{Slots: 2, Context: 256})
	c := collect(&got)
	if _, err := s.Generate(context.Background(), p, opts, func(tok Token) error {
		if len(got) == 3 || len(got) == 100 {
			time.Sleep(50 * time.Millisecond) // the loop fills the ring meanwhile
		}
		return c(tok)
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) < 150 {
		t.Fatalf("%d tokens batched, %d alone", len(got), len(want))
	}
	for j := range got {
		if got[j].id != want[j].id || got[j].lp != want[j].lp || !slices.Equal(got[j].top, want[j].top) {
			t.Fatalf("token %d: batched %+v, alone %+v", j, got[j], want[j])
		}
	}
}
