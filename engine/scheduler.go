package engine

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slm-dev/slm/model"
	"github.com/slm-dev/slm/sample"
)

// Scheduler runs many generations at once by continuous batching: every
// step is one forward pass (one read of the weights) over the tokens of all
// the sequences in flight — one token of each decoding sequence and a
// chunk of each new prompt — after which each sequence samples its own next
// token. Requests join and leave between steps.
//
// Each sequence has its own KV cache of the full context, taken from a
// fixed set of slots. A finished sequence's cache stays in its slot, so a
// later prompt that starts the same way (a conversation that comes back, a
// shared system prompt) reuses it; a prefix found in another slot, busy or
// idle, is copied instead of recomputed, and requests that arrive together
// with the same prefix evaluate it once. A request that is canceled (its
// context, or an error from its callback) leaves the batch at the next
// step and its slot is free when Generate returns.
//
// Under greedy sampling a request gives the same tokens alone or batched
// with others: each sequence's rows of the batch are computed exactly as
// they would be alone.
//
// The batch loop runs on its own goroutine while there is work and exits
// when idle. Tokens reach each caller's callback on the caller's goroutine,
// so a slow client never holds up the batch.
type Scheduler struct {
	m   *Model
	cfg SchedulerConfig
	nv  int

	mu       sync.Mutex
	waiting  []*request // FIFO of requests not yet given a slot
	admitted int        // requests holding a slot
	running  bool       // the loop goroutine is alive
	closed   bool
	stats    SchedulerStats

	// Owned by the loop goroutine (or by Close when it is not running).
	slots  []*slot
	batch  *model.Batch
	active []*request    // in admission order
	seqs   []model.Seq   // the step's sequences
	seqReq []*request    // the request of each of seqs
	logits []float32     // (Slots, NVocab): the step's logits rows
	raw    []float32     // a row before sampling changes it, for logprobs
	clock  uint64        // for least recently used slots
	wake   chan struct{} // cap 1: a caller caught up, left, or arrived
}

// runAhead is how many tokens a sequence may generate beyond what its
// caller has consumed; then it sits out the steps until the caller catches
// up, so a slow client costs memory for at most this many tokens and never
// holds up the others.
const runAhead = 64

// SchedulerConfig sizes a Scheduler. Zero values take the defaults.
type SchedulerConfig struct {
	// Slots is the number of sequences in flight at once, each with a KV
	// cache of Context positions (allocated on first use). Default 4.
	Slots int
	// Context is every sequence's context; 0 means the model's default.
	Context int
	// Queue is how many requests may wait for a slot; beyond that,
	// Generate returns ErrBusy. 0 (or less) means none wait.
	Queue int
	// BatchTokens bounds the tokens of one step. Default model.MaxBatch.
	BatchTokens int
	// PrefillChunk bounds the prompt tokens of a step in which other
	// sequences decode, so that a long prompt delays them by little.
	// Default 128.
	PrefillChunk int
}

// SchedulerStats describe a Scheduler's load and what it did so far.
type SchedulerStats struct {
	Slots  int // sequences that can be in flight at once
	Active int // requests holding a slot
	Queued int // requests waiting for a slot

	Steps        uint64 // forward passes
	Tokens       uint64 // tokens evaluated (prompt and generated)
	MaxBatchSeqs int    // the most sequences one step has carried
	Requests     uint64 // requests that got a slot
	ReusedTokens uint64 // prompt tokens found in a cache instead of evaluated
	CopiedTokens uint64 // of those, tokens copied from another slot's cache
}

// ErrBusy is returned by Scheduler.Generate when every slot is taken and
// the queue is full.
var ErrBusy = errors.New("the server is busy: every slot is generating and the request queue is full; retry later")

// ErrClosed is returned by Scheduler.Generate after Close.
var ErrClosed = errors.New("the model was unloaded")

// NewScheduler returns a scheduler over m. It allocates the batch's
// working memory now and each slot's KV cache on first use.
func (m *Model) NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Slots < 1 {
		cfg.Slots = 4
	}
	if cfg.Context <= 0 {
		cfg.Context = m.nCtx
	}
	cfg.Queue = max(cfg.Queue, 0)
	if cfg.BatchTokens <= 0 {
		cfg.BatchTokens = model.MaxBatch
	}
	cfg.BatchTokens = max(cfg.BatchTokens, cfg.Slots) // room for a token of each
	if cfg.PrefillChunk <= 0 {
		cfg.PrefillChunk = 128
	}
	batch, err := m.net.NewBatch(cfg.BatchTokens)
	if err != nil {
		return nil, err
	}
	nv := m.Config().NVocab
	s := &Scheduler{
		m: m, cfg: cfg, nv: nv,
		batch:  batch,
		active: make([]*request, 0, cfg.Slots),
		seqs:   make([]model.Seq, 0, cfg.Slots),
		seqReq: make([]*request, 0, cfg.Slots),
		logits: make([]float32, cfg.Slots*nv),
		raw:    make([]float32, nv),
		wake:   make(chan struct{}, 1),
	}
	for range cfg.Slots {
		s.slots = append(s.slots, &slot{})
	}
	// The first cache now, to report a context the model cannot hold.
	st, err := m.newBatchState(cfg.Context)
	if err != nil {
		return nil, err
	}
	s.slots[0].st, s.slots[0].tokens = st, make([]int32, 0, cfg.Context)
	s.stats.Slots = cfg.Slots
	return s, nil
}

// ContextSize is the context of every sequence.
func (s *Scheduler) ContextSize() int { return s.cfg.Context }

// Model is the model the scheduler runs.
func (s *Scheduler) Model() *Model { return s.m }

// Stats reports the load and the counters.
func (s *Scheduler) Stats() SchedulerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Active = s.admitted
	st.Queued = max(len(s.waiting)-(s.cfg.Slots-s.admitted), 0) // those beyond the free slots
	return st
}

// slot is one sequence's KV cache and the tokens it holds.
type slot struct {
	st     *model.State // nil until first used
	tokens []int32      // what st's cache holds, in order
	req    *request     // the request using it, nil when idle
	used   uint64       // Scheduler.clock when last taken
}

// request is one Generate call. The fields above mu belong to the loop;
// those below it are shared with the caller.
type request struct {
	ctx    context.Context
	prompt []int32
	opts   Options
	smp    *sample.Sampler
	slot   *slot
	fed    int      // prompt tokens in the cache
	one    [1]int32 // the token to evaluate next, once decoding
	budget int      // tokens it may generate
	text   textStream
	piece  []byte
	start  time.Time // when it got its slot
	first  time.Time // when its first token was sampled
	over   bool      // finished (it stays so)
	follow *request  // an earlier request whose prompt evaluation this one waits for
	until  int       // the prefix of the prompt they share

	// With logprobs, token i's are in slot i%lpSlots of these rings: the
	// loop runs at most runAhead tokens ahead of the caller, so a slot is
	// rewritten only after the caller has delivered its token.
	lp   []float32      // lpSlots logprobs
	top  []TokenLogprob // lpSlots*TopLogprobs alternatives
	nTop []int          // lpSlots: how many of each slot's alternatives are valid

	cancel   atomic.Bool   // set by the caller: leave at the next step
	seen     atomic.Int64  // tokens the caller has consumed
	notify   chan struct{} // cap 1: something new for the caller
	admitted bool          // guarded by Scheduler.mu

	mu     sync.Mutex
	ids    []int32 // generated tokens
	ends   []int   // end of the text released after each of ids
	out    []byte  // the released text (a prefix of text.buf)
	done   bool
	reason StopReason
	err    error
	cached int // prompt tokens reused
	pDur   time.Duration
	gDur   time.Duration
}

// Generate runs one generation as a member of the batch: it evaluates the
// prompt (reusing any cached prefix), samples up to opts.MaxTokens tokens
// and calls fn for each, on the caller's goroutine. It behaves as
// Session.Generate does; in addition it waits for a free slot (or returns
// ErrBusy when the queue is full). A canceled ctx or an error from fn stops
// the generation; its slot is free when Generate returns.
func (s *Scheduler) Generate(ctx context.Context, prompt []int32, opts Options, fn func(Token) error) (Result, error) {
	res := Result{PromptTokens: len(prompt)}
	r, err := s.newRequest(ctx, prompt, opts)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = s.enqueue(r, true)
	}
	if err != nil {
		if ctx.Err() != nil {
			res.Reason = StopCanceled
		}
		return res, err
	}

	stop := context.AfterFunc(ctx, s.signal) // wake a loop that waits for its callers
	defer stop()
	done := false
	defer func() {
		if !done { // fn panicked: let the loop drop the request
			r.cancel.Store(true)
			s.signal()
		}
	}()

	// Hand the tokens to fn as the loop produces them.
	var fnErr error
	delivered := 0
	ctxDone := ctx.Done()
	for !done {
		select {
		case <-r.notify:
		case <-ctxDone:
			ctxDone = nil
			if s.dequeue(r) { // still waiting: nothing else to undo
				res.Reason = StopCanceled
				return res, ctx.Err()
			}
			r.cancel.Store(true) // the loop drops it before its next step
			s.signal()
			continue
		}
		r.mu.Lock()
		ids, ends, out := r.ids, r.ends, r.out
		done = r.done
		r.mu.Unlock()
		for ; delivered < len(ids) && fn != nil && fnErr == nil && ctx.Err() == nil; delivered++ {
			from := 0
			if delivered > 0 {
				from = ends[delivered-1]
			}
			t := Token{ID: ids[delivered], Text: out[from:ends[delivered]]}
			if r.lp != nil {
				i, k := delivered%lpSlots, r.opts.TopLogprobs
				t.Logprob, t.Top = r.lp[i], r.top[i*k:i*k+r.nTop[i]]
			}
			if err := fn(t); err != nil {
				fnErr = err
				r.cancel.Store(true)
			}
		}
		if fn == nil {
			delivered = len(ids)
		}
		r.seen.Store(int64(delivered))
		s.signal()
	}

	// The loop is done with r.
	res.Tokens, res.Text, res.Reason = r.ids, string(r.text.buf), r.reason
	res.CachedTokens, res.PromptDuration, res.GenDuration = r.cached, r.pDur, r.gDur
	switch {
	case fnErr != nil:
		res.Reason = StopCanceled
		return s.cut(res, r, delivered), fnErr
	case r.reason == StopCanceled:
		err := r.err
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = context.Canceled
		}
		return s.cut(res, r, delivered), err
	case r.err != nil:
		return res, r.err
	}
	if last := r.lastEnd(); last < len(r.text.buf) && fn != nil {
		if err := fn(Token{ID: -1, Text: r.text.buf[last:]}); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (s *Scheduler) newRequest(ctx context.Context, prompt []int32, opts Options) (*request, error) {
	smp, err := newSampler(prompt, opts, s.cfg.Context, s.nv)
	if err != nil {
		return nil, err
	}
	budget := s.cfg.Context - len(prompt) + 1 // the last token is sampled, not evaluated
	if opts.MaxTokens > 0 {
		budget = min(budget, opts.MaxTokens)
	}
	r := &request{
		ctx: ctx, prompt: prompt, opts: opts, smp: smp, budget: budget,
		piece:  make([]byte, 0, 64),
		text:   textStream{buf: make([]byte, 0, 4096)},
		notify: make(chan struct{}, 1),
		ids:    make([]int32, 0, budget), // sized once: the loop appends without allocating
		ends:   make([]int, 0, budget),
	}
	r.text.reset(opts.Stop)
	if wantLogprobs(opts) {
		r.lp = make([]float32, lpSlots)
		r.top = make([]TokenLogprob, lpSlots*opts.TopLogprobs)
		r.nTop = make([]int, lpSlots)
	}
	return r, nil
}

// lpSlots is the size of a request's logprob rings.
const lpSlots = runAhead + 1

// enqueue adds r to the waiting list, starting the loop if asked and
// needed.
func (s *Scheduler) enqueue(r *request, start bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.admitted+len(s.waiting) >= s.cfg.Slots+s.cfg.Queue:
		return ErrBusy
	}
	s.waiting = append(s.waiting, r)
	if start && !s.running {
		s.running = true
		go s.loop()
	}
	s.signal()
	return nil
}

// signal wakes the loop if it waits for its callers.
func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// cut limits a stopped generation's result to the n tokens its caller saw.
func (s *Scheduler) cut(res Result, r *request, n int) Result {
	n = min(n, len(r.ids))
	res.Tokens = r.ids[:n]
	res.Text = ""
	if n > 0 {
		res.Text = string(r.text.buf[:r.ends[n-1]])
	}
	return res
}

func (r *request) lastEnd() int {
	if len(r.ends) == 0 {
		return 0
	}
	return r.ends[len(r.ends)-1]
}

// dequeue takes r out of the waiting list if it is still there.
func (s *Scheduler) dequeue(r *request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.admitted {
		return false
	}
	for i, w := range s.waiting {
		if w == r {
			s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
			break
		}
	}
	return true
}

// Close makes later requests fail with ErrClosed and fails those waiting;
// requests in flight finish. The KV caches are released once idle.
func (s *Scheduler) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, r := range s.waiting {
		r.admitted = true // the loop never sees it
		r.finish(StopCanceled, ErrClosed)
	}
	s.waiting = nil
	if !s.running {
		s.dropCaches()
	}
}

func (s *Scheduler) dropCaches() {
	for _, sl := range s.slots {
		sl.st, sl.tokens = nil, nil
	}
}

// loop runs steps while there are requests, admitting new ones and
// dropping canceled ones between steps, and exits when there is nothing
// to do.
func (s *Scheduler) loop() {
	for {
		s.admit()
		s.reap()
		if len(s.active) == 0 {
			s.mu.Lock()
			if len(s.waiting) == 0 {
				s.running = false
				if s.closed {
					s.dropCaches()
				}
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			continue
		}
		s.step()
	}
}

// admit gives free slots to waiting requests, in order.
func (s *Scheduler) admit() {
	for {
		s.mu.Lock()
		if len(s.waiting) == 0 || len(s.active) == s.cfg.Slots {
			s.mu.Unlock()
			return
		}
		r := s.waiting[0]
		s.waiting[0] = nil
		s.waiting = s.waiting[1:]
		r.admitted = true
		s.admitted++
		s.stats.Requests++
		s.mu.Unlock()

		if err := s.place(r); err != nil {
			s.mu.Lock()
			s.admitted--
			s.mu.Unlock()
			r.finish(StopCanceled, err)
			continue
		}
		s.active = append(s.active, r)
	}
}

// place gives r a slot and as much of its prompt from the caches as
// possible: as llama-server does, the idle slot whose cache shares the
// longest prefix with the prompt if that covers at least half of it, else
// the least recently used idle slot (so that a one-token overlap such as
// BOS does not evict a long cached conversation); then, if another slot
// holds a longer prefix, that prefix is copied.
func (s *Scheduler) place(r *request) error {
	var best, lru *slot
	bestLen := -1
	for _, sl := range s.slots {
		if sl.req != nil {
			continue
		}
		if n := commonPrefix(sl.tokens, r.prompt); n > bestLen {
			best, bestLen = sl, n
		}
		if lru == nil || sl.used < lru.used {
			lru = sl
		}
	}
	if 2*bestLen < len(r.prompt) {
		best = lru
	}
	if best.st == nil {
		st, err := s.m.newBatchState(s.cfg.Context)
		if err != nil {
			return err
		}
		best.st, best.tokens = st, make([]int32, 0, s.cfg.Context)
	}
	keep := commonPrefix(best.tokens, r.prompt)
	var donor *slot
	for _, sl := range s.slots {
		if n := commonPrefix(sl.tokens, r.prompt); sl != best && n > keep {
			donor, keep = sl, n
		}
	}
	keep = min(keep, len(r.prompt)-1) // the last prompt token is evaluated for its logits
	if donor != nil {
		if err := best.st.CopyPrefix(donor.st, keep); err != nil {
			return err
		}
	} else {
		best.st.Truncate(keep)
	}
	best.tokens = append(best.tokens[:0], r.prompt[:keep]...)
	// A longer prefix that an earlier request is still evaluating (the
	// same system prompt, arriving together) is waited for, then copied.
	for _, a := range s.active {
		if n := min(commonPrefix(a.prompt, r.prompt), len(r.prompt)-1); a.fed < n && n >= max(keep, r.until)+minFollow {
			r.follow, r.until = a, n
		}
	}
	s.clock++
	best.req, best.used = r, s.clock
	r.slot, r.fed, r.start = best, keep, time.Now()
	r.mu.Lock()
	r.cached = keep
	r.mu.Unlock()

	s.mu.Lock()
	s.stats.ReusedTokens += uint64(keep)
	if donor != nil {
		s.stats.CopiedTokens += uint64(keep)
	}
	s.mu.Unlock()
	return nil
}

// reap removes the requests whose callers went away.
func (s *Scheduler) reap() {
	for _, r := range s.active {
		if r.cancel.Load() || r.ctx.Err() != nil {
			r.over = true
			s.release(r)
			r.finish(StopCanceled, nil)
		}
	}
	s.compact()
}

// compact drops finished requests from the active list.
func (s *Scheduler) compact() {
	keep := s.active[:0]
	for _, r := range s.active {
		if !r.over {
			keep = append(keep, r)
		}
	}
	clear(s.active[len(keep):])
	s.active = keep
}

// release returns r's slot; its cache stays for prefix reuse.
func (s *Scheduler) release(r *request) {
	r.slot.req = nil
	s.mu.Lock()
	s.admitted--
	s.mu.Unlock()
}

// step runs one forward pass over every active sequence and samples the
// next token of each that has finished its prompt.
func (s *Scheduler) step() {
	s.seqs, s.seqReq = s.seqs[:0], s.seqReq[:0]
	budget := s.cfg.BatchTokens
	for _, r := range s.active { // decoding sequences: one token each
		if r.fed == len(r.prompt) && len(r.ids)-int(r.seen.Load()) < runAhead {
			s.seqs = append(s.seqs, model.Seq{State: r.slot.st, Tokens: r.one[:], Logits: model.LastLogits})
			s.seqReq = append(s.seqReq, r)
			budget--
		}
	}
	if len(s.seqs) > 0 {
		budget = min(budget, s.cfg.PrefillChunk)
	}
	for _, r := range s.active { // prompts, in chunks, oldest first
		if r.fed == len(r.prompt) || budget == 0 || r.follow != nil && !s.caughtUp(r) {
			continue
		}
		n := min(len(r.prompt)-r.fed, budget)
		want := model.NoLogits
		if r.fed+n == len(r.prompt) {
			want = model.LastLogits
		}
		s.seqs = append(s.seqs, model.Seq{State: r.slot.st, Tokens: r.prompt[r.fed : r.fed+n], Logits: want})
		s.seqReq = append(s.seqReq, r)
		budget -= n
	}

	if len(s.seqs) == 0 { // every sequence waits for its caller
		<-s.wake
		return
	}
	nOut, tokens := 0, 0
	for _, sq := range s.seqs {
		tokens += len(sq.Tokens)
		if sq.Logits == model.LastLogits {
			nOut++
		}
	}
	err := s.m.net.EvalBatch(s.batch, s.seqs, s.logits[:nOut*s.nv])
	s.mu.Lock()
	s.stats.Steps++
	s.stats.Tokens += uint64(tokens)
	s.stats.MaxBatchSeqs = max(s.stats.MaxBatchSeqs, len(s.seqs))
	s.mu.Unlock()
	if err != nil { // a bug, not the requests' fault; the states are unchanged
		for _, r := range s.active {
			r.over = true
			s.release(r)
			r.finish(StopCanceled, err)
		}
		s.compact()
		return
	}

	row := 0
	for i, sq := range s.seqs {
		r := s.seqReq[i]
		r.slot.tokens = append(r.slot.tokens, sq.Tokens...)
		if r.fed < len(r.prompt) {
			r.fed += len(sq.Tokens)
		}
		if sq.Logits == model.LastLogits {
			s.next(r, s.logits[row*s.nv:(row+1)*s.nv])
			row++
		}
	}
	s.compact()
	// Let the callers just handed tokens run now, between passes, rather
	// than in the middle of the next one, where the worker pool spins on
	// every core: measured, that halved a single stream's speed on 2 cores.
	runtime.Gosched()
}

// minFollow is the fewest prompt tokens worth waiting a step for, rather
// than evaluating them.
const minFollow = 16

// caughtUp reports whether r, which waits for r.follow to evaluate the
// prompt prefix they share, may go on; if so it copies that prefix, or as
// much of it as r.follow's cache holds (it may have been canceled).
func (s *Scheduler) caughtUp(r *request) bool {
	f := r.follow
	if !f.over && f.fed < r.until {
		return false
	}
	r.follow = nil
	n := min(commonPrefix(f.slot.tokens, r.prompt), len(r.prompt)-1)
	if n <= r.fed {
		return true
	}
	r.slot.st.CopyPrefix(f.slot.st, n) // same model: cannot fail
	r.slot.tokens = append(r.slot.tokens[:0], r.prompt[:n]...)
	s.mu.Lock()
	s.stats.ReusedTokens += uint64(n - r.fed)
	s.stats.CopiedTokens += uint64(n - r.fed)
	s.mu.Unlock()
	r.mu.Lock()
	r.cached = n
	r.mu.Unlock()
	r.fed = n
	return true
}

// next samples r's next token from its logits and hands it over, as
// Session.Generate's loop does.
func (s *Scheduler) next(r *request, logits []float32) {
	now := time.Now()
	if r.first.IsZero() {
		r.first = now
	}
	end := func(reason StopReason, err error) {
		r.over = true
		s.release(r)
		r.finish(reason, err)
	}
	c := r.opts.Constraint
	if r.lp != nil {
		copy(s.raw, logits) // masking and sampling change logits
	}
	if c != nil {
		c.Mask(logits)
	}
	id := r.smp.Sample(logits)
	if id < 0 { // every token is banned
		if c != nil {
			end("", ErrNoAllowedToken)
		} else {
			end(StopEOS, nil)
		}
		return
	}
	if c != nil {
		if err := c.Accept(id); err != nil {
			end("", err)
			return
		}
	}
	tok := s.m.tok
	if !r.opts.IgnoreEOS && tok.IsEOG(id) {
		end(StopEOS, nil)
		return
	}
	r.smp.Accept(id)
	if r.lp != nil {
		i, k := len(r.ids)%lpSlots, r.opts.TopLogprobs
		r.lp[i], r.nTop[i] = logprobsOf(s.raw, id, r.top[i*k:(i+1)*k])
	}
	r.piece = tok.AppendPiece(r.piece[:0], id)
	_, stopped := r.text.push(r.piece)
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.ends = append(r.ends, r.text.emitted)
	r.out = r.text.buf[:r.text.emitted]
	r.mu.Unlock()
	r.poke()
	switch {
	case stopped:
		end(StopString, nil)
	case c != nil && c.Done():
		end(StopEOS, nil)
	case len(r.ids) >= r.budget || r.slot.st.Len() >= s.cfg.Context:
		end(StopLength, nil)
	default:
		r.one[0] = id
	}
}

// finish ends r and tells its caller.
func (r *request) finish(reason StopReason, err error) {
	r.mu.Lock()
	r.finishLocked(reason, err)
	r.mu.Unlock()
}

func (r *request) finishLocked(reason StopReason, err error) {
	if r.done {
		return
	}
	if reason != StopCanceled {
		r.text.flush()
	}
	r.done, r.reason, r.err = true, reason, err
	if !r.start.IsZero() {
		if r.first.IsZero() {
			r.pDur = time.Since(r.start)
		} else {
			r.pDur, r.gDur = r.first.Sub(r.start), time.Since(r.first)
		}
	}
	r.poke()
}

func (r *request) poke() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
