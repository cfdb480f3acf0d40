package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func newScheduler(t testing.TB, m *Model, cfg SchedulerConfig) *Scheduler {
	t.Helper()
	s, err := m.NewScheduler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// prompts are n prompts of various lengths; some share long prefixes.
func prompts(n, vocab int) [][]int32 {
	shared := make([]int32, 24)
	for i := range shared {
		shared[i] = int32(3 + (i*37)%(vocab-3))
	}
	var out [][]int32
	for i := range n {
		var p []int32
		if i%3 == 0 {
			p = slices.Clone(shared)
		}
		for j := range 2 + (i*7)%19 {
			p = append(p, int32(3+(i*101+j*13)%(vocab-3)))
		}
		out = append(out, p)
	}
	return out
}

// waitIdle waits for the scheduler's loop to exit and its requests to
// leave.
func waitIdle(t *testing.T, s *Scheduler) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		idle := !s.running && s.admitted == 0
		s.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler is still busy: %+v", s.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Sixteen concurrent greedy requests, batched, give exactly what each gives
// alone in a session of its own; stop strings and callbacks too.
func TestSchedulerEqualsSequential(t *testing.T) {
	for _, name := range []string{"llama-q8_0", "qwen2-q4_k", "gpt2-f16"} {
		t.Run(name, func(t *testing.T) {
			m := open(t, name+".gguf")
			ps := prompts(16, m.Config().NVocab)
			opts := make([]Options, len(ps))
			want := make([]Result, len(ps))
			for i, p := range ps {
				opts[i] = greedy()
				opts[i].MaxTokens = 6 + i%11
				if i == 5 { // a stop string from its own text
					full, _ := m.Generate(context.Background(), p, opts[i], nil)
					if len(full.Text) >= 6 {
						opts[i].Stop = []string{full.Text[4:6]}
					}
				}
				var err error
				if want[i], err = m.Generate(context.Background(), p, opts[i], nil); err != nil {
					t.Fatal(err)
				}
			}
			s := newScheduler(t, m, SchedulerConfig{Slots: 8, Queue: 16, Context: 96, PrefillChunk: 8})
			got := make([]Result, len(ps))
			streamed := make([]string, len(ps))
			var wg sync.WaitGroup
			for i, p := range ps {
				wg.Go(func() {
					var text []byte
					res, err := s.Generate(context.Background(), p, opts[i], func(tok Token) error {
						text = append(text, tok.Text...)
						return nil
					})
					if err != nil {
						t.Error(err)
					}
					got[i], streamed[i] = res, string(text)
				})
			}
			wg.Wait()
			for i := range ps {
				if !slices.Equal(got[i].Tokens, want[i].Tokens) || got[i].Text != want[i].Text || got[i].Reason != want[i].Reason {
					t.Errorf("request %d: batched %v %q (%s), alone %v %q (%s)", i, got[i].Tokens, got[i].Text, got[i].Reason, want[i].Tokens, want[i].Text, want[i].Reason)
				}
				if streamed[i] != got[i].Text {
					t.Errorf("request %d: streamed %q, result %q", i, streamed[i], got[i].Text)
				}
			}
			st := s.Stats()
			t.Logf("%+v", st)
			if st.MaxBatchSeqs < 2 {
				t.Errorf("no step carried more than one sequence: %+v", st)
			}
			if st.ReusedTokens == 0 {
				t.Errorf("no prefix reused among prompts sharing 24 tokens: %+v", st)
			}
			waitIdle(t, s)
		})
	}
}

// A request canceled mid-generation frees its slot by the time Generate
// returns, and the loop goroutine exits.
func TestSchedulerCancel(t *testing.T) {
	m := open(t, "gpt2-q8_0.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 2, Context: 96})
	warm := greedy()
	warm.MaxTokens = 1
	if _, err := s.Generate(context.Background(), []int32{1}, warm, nil); err != nil { // start the worker pool
		t.Fatal(err)
	}
	waitIdle(t, s)
	base := runtime.NumGoroutine()

	// A second request keeps the batch busy meanwhile.
	bg, stopBg := context.WithCancel(context.Background())
	bgDone := make(chan error, 1)
	bgStarted := make(chan struct{})
	go func() {
		_, err := s.Generate(bg, []int32{9, 8, 7}, greedy(), func(Token) error {
			close(bgStarted)
			<-bg.Done() // stops reading: pauses after runAhead tokens, holding its slot
			return nil
		})
		bgDone <- err
	}()
	<-bgStarted

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := s.Generate(ctx, []int32{1, 2, 3}, greedy(), func(Token) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if res.Reason != StopCanceled || len(res.Tokens) != 3 {
		t.Errorf("reason %q, %d tokens", res.Reason, len(res.Tokens))
	}
	if st := s.Stats(); st.Active != 1 { // the background request only
		t.Errorf("after the cancel: %+v", st)
	}

	// An error from the callback stops the generation and is returned.
	boom := errors.New("client went away")
	_, err = s.Generate(context.Background(), []int32{1, 2, 3}, greedy(), func(Token) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("callback error: %v", err)
	}
	if st := s.Stats(); st.Active != 1 {
		t.Errorf("after the callback error: %+v", st)
	}

	stopBg()
	if err := <-bgDone; !errors.Is(err, context.Canceled) {
		t.Errorf("background request: %v", err)
	}
	if st := s.Stats(); st.Active != 0 || st.Queued != 0 {
		t.Errorf("all gone: %+v", st)
	}
	waitIdle(t, s)
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before the requests:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// Requests beyond the slots wait in the queue, beyond the queue they are
// refused, and a waiting request that gives up leaves the queue.
func TestSchedulerQueue(t *testing.T) {
	m := open(t, "llama-q4_0.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 1, Queue: 1, Context: 2 * runAhead}) // the first request pauses before its end
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := s.Generate(ctx, []int32{1, 2}, greedy(), func(Token) error {
			once.Do(func() { close(started) })
			<-ctx.Done() // a client that stops reading: the sequence pauses, holding its slot
			return nil
		})
		first <- err
	}()
	<-started
	wctx, leave := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := s.Generate(wctx, []int32{1, 3}, greedy(), nil)
		second <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().Queued != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second request is not queued: %+v", s.Stats())
		}
	}
	if _, err := s.Generate(context.Background(), []int32{1, 4}, greedy(), nil); !errors.Is(err, ErrBusy) {
		t.Errorf("third request: %v, want ErrBusy", err)
	}
	leave()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("queued request: %v", err)
	}
	if st := s.Stats(); st.Queued != 0 || st.Active != 1 {
		t.Errorf("after leaving the queue: %+v", st)
	}
	cancel()
	<-first
	s.Close()
	if _, err := s.Generate(context.Background(), []int32{1, 4}, greedy(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// A prompt that extends a finished conversation reuses its cache in place;
// one that shares a prefix with a slot the LRU rule does not pick gets
// that prefix copied. Either way the output is that of a fresh session.
func TestSchedulerPrefixReuse(t *testing.T) {
	m := open(t, "qwen2-q4_k.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 2, Context: 96})
	opts := greedy()
	opts.MaxTokens = 4
	seq := func(from, n int) []int32 {
		p := make([]int32, n)
		for i := range p {
			p[i] = int32(from + i)
		}
		return p
	}
	run := func(p []int32) Result {
		t.Helper()
		res, err := s.Generate(context.Background(), p, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		fresh, _ := m.Generate(context.Background(), p, opts, nil)
		if !slices.Equal(res.Tokens, fresh.Tokens) {
			t.Errorf("prompt %v: scheduler %v, fresh session %v", p, res.Tokens, fresh.Tokens)
		}
		return res
	}
	q := seq(100, 12)
	p := seq(10, 20)
	run(q) // slot A
	run(p) // slot B (never used: least recently used)
	if got := run(append(slices.Clone(p), 50, 51)); got.CachedTokens != len(p) {
		t.Errorf("extending p: %d tokens reused, want %d", got.CachedTokens, len(p))
	}
	// 10 tokens of p then 30 others: less than half is shared, so the
	// least recently used slot (A) is taken and p's prefix copied into it.
	third := append(seq(10, 10), seq(200, 30)...)
	before := s.Stats().CopiedTokens
	if got := run(third); got.CachedTokens != 10 {
		t.Errorf("copied prefix: %d tokens reused, want 10", got.CachedTokens)
	}
	if st := s.Stats(); st.CopiedTokens-before != 10 {
		t.Errorf("copied %d tokens, want 10 (%+v)", st.CopiedTokens-before, st)
	}
	// The same prompt again: all but the last token.
	if got := run(third); got.CachedTokens != len(third)-1 {
		t.Errorf("repeat: %d tokens reused, want %d", got.CachedTokens, len(third)-1)
	}
}

func TestSchedulerErrors(t *testing.T) {
	m := open(t, "llama-q4_0.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 1, Context: 8})
	if _, err := s.Generate(context.Background(), make([]int32, 8), greedy(), nil); !errors.Is(err, ErrContextFull) {
		t.Errorf("prompt = context: %v", err)
	}
	opts := greedy()
	opts.MaxTokens = 5
	if _, err := s.Generate(context.Background(), []int32{1, 2, 3, 4}, opts, nil); !errors.Is(err, ErrContextFull) {
		t.Errorf("prompt + max tokens > context: %v", err)
	}
	if _, err := s.Generate(context.Background(), nil, greedy(), nil); err == nil {
		t.Error("empty prompt accepted")
	}
	if _, err := s.Generate(context.Background(), []int32{1, 1 << 20}, greedy(), nil); err == nil {
		t.Error("out-of-vocabulary token accepted")
	}
	// Without a limit, generation ends when the context is full, as in a
	// session.
	res, err := s.Generate(context.Background(), []int32{1, 100, 101}, greedy(), nil)
	if err != nil || res.Reason != StopLength || 3+len(res.Tokens) != 8+1 {
		t.Errorf("full context: %v, reason %q, %d tokens", err, res.Reason, len(res.Tokens))
	}
}

// In steady state a step of the batch loop (four sequences decoding)
// allocates nothing.
func TestSchedulerStepAllocs(t *testing.T) {
	m := open(t, "llama-q4_k_m.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 4, Context: 128})
	for i, p := range prompts(4, m.Config().NVocab) {
		opts := greedy()
		opts.MaxTokens = 100
		r, err := s.newRequest(context.Background(), p, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.enqueue(r, false); err != nil { // the test drives the loop
			t.Fatal(err)
		}
		_ = i
	}
	s.admit() // nobody consumes the tokens: stay below runAhead
	for range 8 {
		s.step()
	}
	if len(s.active) != 4 {
		t.Fatalf("%d active sequences", len(s.active))
	}
	if allocs := testing.AllocsPerRun(20, s.step); allocs != 0 {
		t.Errorf("%v allocations per step", allocs)
	}
	for _, r := range s.active {
		r.cancel.Store(true)
	}
	s.reap()
}

// BenchmarkStreams measures the aggregate rate of 1, 4 and 16 concurrent
// greedy streams (short prompts, 32 tokens each), batched by the scheduler
// and, for comparison, each in a session of its own.
//
// SLM_BENCH_MODEL names another GGUF file to run (such as one written by
// `slm synth --like smollm2-135m --type q8_0`): the test models are so small
// that their weights stay in cache, which hides what batching saves.
func BenchmarkStreams(b *testing.B) {
	var m *Model
	if path := os.Getenv("SLM_BENCH_MODEL"); path != "" {
		var err error
		if m, err = Open(path); err != nil {
			b.Fatal(err)
		}
		defer m.Close()
	} else {
		m = open(b, "llama-q8_0.gguf")
	}
	warm := greedy()
	warm.MaxTokens = 4
	if _, err := m.Generate(context.Background(), []int32{1, 2, 3}, warm, nil); err != nil { // page the weights in
		b.Fatal(err)
	}
	const gen = 32
	for _, n := range []int{1, 4, 16} {
		ps := prompts(n, m.Config().NVocab)
		opts := greedy()
		opts.MaxTokens = gen
		b.Run(fmt.Sprintf("batched/%d", n), func(b *testing.B) {
			s := newScheduler(b, m, SchedulerConfig{Slots: n, Context: 128})
			tokens := 0
			var mu sync.Mutex
			for iter := 0; b.Loop(); iter++ {
				var wg sync.WaitGroup
				for _, p := range ps {
					p = append([]int32{int32(iter % 300)}, p...) // no reuse across iterations
					wg.Go(func() {
						res, err := s.Generate(context.Background(), p, opts, nil)
						if err != nil {
							b.Error(err)
						}
						mu.Lock()
						tokens += len(res.Tokens)
						mu.Unlock()
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(s.Stats().Tokens)/float64(s.Stats().Steps), "tokens/step")
		})
		b.Run(fmt.Sprintf("sessions/%d", n), func(b *testing.B) {
			sess := make([]*Session, n)
			for i := range sess {
				sess[i], _ = m.NewSession(128)
			}
			tokens := 0
			var mu sync.Mutex
			for iter := 0; b.Loop(); iter++ {
				var wg sync.WaitGroup
				for i, p := range ps {
					p = append([]int32{int32(iter % 300)}, p...)
					wg.Go(func() {
						sess[i].st.Truncate(0)
						sess[i].cached = sess[i].cached[:0]
						res, err := sess[i].Generate(context.Background(), p, opts, nil)
						if err != nil {
							b.Error(err)
						}
						mu.Lock()
						tokens += len(res.Tokens)
						mu.Unlock()
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// Requests that arrive together with the same long prompt prefix evaluate
// it once: the later ones wait for the first and copy its cache.
func TestSchedulerSharedPrefixTogether(t *testing.T) {
	m := open(t, "llama-q8_0.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 4, Context: 128, PrefillChunk: 16})
	system := make([]int32, 40)
	for i := range system {
		system[i] = int32(5 + 3*i)
	}
	opts := greedy()
	opts.MaxTokens = 5
	var reqs []*request
	for i := range 4 {
		p := append(slices.Clone(system), int32(200+i), int32(210+i), int32(220+i))
		r, err := s.newRequest(context.Background(), p, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.enqueue(r, false); err != nil { // the test drives the loop
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	s.admit()
	for range 100 {
		if len(s.active) == 0 {
			break
		}
		s.step()
	}
	if len(s.active) != 0 {
		t.Fatalf("%d requests still active", len(s.active))
	}
	st := s.Stats()
	t.Logf("%+v", st)
	if st.CopiedTokens != 3*40 || st.Tokens != 40+4*3+4*4 {
		t.Errorf("the shared prefix was evaluated more than once: %+v", st)
	}
	for i, r := range reqs {
		want, _ := m.Generate(context.Background(), r.prompt, opts, nil)
		if !slices.Equal(r.ids, want.Tokens) || r.cached != 40*min(i, 1) {
			t.Errorf("request %d: %v (%d cached), alone %v", i, r.ids, r.cached, want.Tokens)
		}
	}
}

// A callback that panics does not leave its sequence in the batch.
func TestSchedulerCallbackPanics(t *testing.T) {
	m := open(t, "llama-q4_0.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 1, Context: 2 * runAhead})
	func() {
		defer func() { recover() }()
		s.Generate(context.Background(), []int32{1, 2}, greedy(), func(Token) error { panic("handler bug") })
	}()
	waitIdle(t, s)
	if _, err := s.Generate(context.Background(), []int32{1, 2}, greedy(), nil); err != nil {
		t.Fatal(err)
	}
}

// A constraint steers a batched request as it steers a session's.
func TestSchedulerConstraint(t *testing.T) {
	m := open(t, "llama-q4_0.gguf")
	s := newScheduler(t, m, SchedulerConfig{Slots: 2, Context: 64})
	checkConstraint(t, s)
	if st := s.Stats(); st.Active != 0 {
		t.Errorf("after the failure: %+v", st)
	}
}
