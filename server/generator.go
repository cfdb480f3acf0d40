package server

import (
	"context"
	"errors"
	"sync"

	"github.com/slm-dev/slm/engine"
)

// Generator is the one seam between the HTTP layer and whatever produces
// tokens: the continuous-batching scheduler (Batcher, the default for local
// models), a pool of independent engine sessions (Pool); later a remote
// OpenAI-compatible endpoint or the hybrid router. Handlers never see more
// than this.
//
// Implementations must be safe for concurrent use. Generate may wait for
// capacity; it returns ErrBusy when it will not, and ctx's error when the
// caller goes away (which must free whatever the request held at once).
type Generator interface {
	// Tokenize encodes text as Model.Tokenize does.
	Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error)
	// Detokenize decodes ids.
	Detokenize(ids []int32) string
	// VocabSize is the number of token ids (for validating ids and logit
	// biases that clients send).
	VocabSize() int
	// ContextSize is the context every request gets: the prompt plus the
	// generated tokens must fit it.
	ContextSize() int
	// Generate runs one request, calling fn for each token (Token.Text is
	// only valid during the call).
	Generate(ctx context.Context, prompt []int32, opts engine.Options, fn func(engine.Token) error) (engine.Result, error)
}

// Stats describes a Generator's load, for /metrics and /props.
type Stats struct {
	Slots  int // sequences that can run at once
	Busy   int // sequences running
	Queued int // requests waiting for a slot
}

// statser is implemented by generators that can report their load.
type statser interface{ Stats() Stats }

// ErrBusy is returned when the request queue is full: the server answers
// 503 with Retry-After. It is the engine's, so that the scheduler's refusals
// map to it too.
var ErrBusy = engine.ErrBusy

// Pool is a Generator over one model: a fixed number of slots, each an
// engine.Session with its own full context, and a bounded FIFO of waiting
// requests. A request takes the idle slot whose cached tokens share the
// longest prefix with its prompt, so a conversation that comes back reuses
// its KV cache.
type Pool struct {
	m     *engine.Model
	nCtx  int
	queue int

	mu      sync.Mutex
	slots   []*slot
	waiting []chan *slot // FIFO of requests waiting for a slot
	closed  bool
	clock   uint64
}

type slot struct {
	id     int
	sess   *engine.Session // created on first use
	busy   bool
	tokens []int32 // what the session's cache is believed to hold
	used   uint64  // Pool.clock when last taken
}

var _ Generator = (*Pool)(nil)

// NewPool returns a pool of n slots (at least 1) of nCtx positions each
// (0: the model's default) and a queue of up to queue waiting requests.
func NewPool(m *engine.Model, n, queue, nCtx int) *Pool {
	if n < 1 {
		n = 1
	}
	if nCtx <= 0 {
		nCtx = m.ContextSize()
	}
	p := &Pool{m: m, nCtx: nCtx, queue: max(queue, 0)}
	for i := range n {
		p.slots = append(p.slots, &slot{id: i})
	}
	return p
}

// Tokenize implements Generator.
func (p *Pool) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	return p.m.Tokenize(text, addSpecial, parseSpecial)
}

// Detokenize implements Generator.
func (p *Pool) Detokenize(ids []int32) string { return p.m.Detokenize(ids) }

// VocabSize implements Generator.
func (p *Pool) VocabSize() int { return p.m.Config().NVocab }

// ContextSize implements Generator.
func (p *Pool) ContextSize() int { return p.nCtx }

// Stats implements statser.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{Slots: len(p.slots), Queued: len(p.waiting)}
	for _, s := range p.slots {
		if s.busy {
			st.Busy++
		}
	}
	return st
}

// Generate implements Generator.
func (p *Pool) Generate(ctx context.Context, prompt []int32, opts engine.Options, fn func(engine.Token) error) (engine.Result, error) {
	s, err := p.acquire(ctx, prompt)
	if err != nil {
		return engine.Result{Reason: engine.StopCanceled}, err
	}
	defer p.release(s)
	if s.sess == nil {
		sess, err := p.m.NewSession(p.nCtx)
		if err != nil {
			return engine.Result{}, err
		}
		s.sess = sess
	}
	s.tokens = s.tokens[:0]
	res, err := s.sess.Generate(ctx, prompt, opts, fn)
	if err == nil || res.Reason == engine.StopCanceled {
		// The cache holds the prompt and every generated token but the
		// last (it was sampled, not evaluated).
		s.tokens = append(s.tokens, prompt...)
		if len(res.Tokens) > 1 {
			s.tokens = append(s.tokens, res.Tokens[:len(res.Tokens)-1]...)
		}
	}
	return res, err
}

// acquire takes the best idle slot, or queues.
func (p *Pool) acquire(ctx context.Context, prompt []int32) (*slot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("the model was unloaded")
	}
	// As llama-server does: the idle slot sharing the longest prefix with
	// the prompt if that covers at least half of it, else the least
	// recently used idle slot (so a one-token overlap such as BOS does not
	// evict a long cached conversation).
	var best, lru *slot
	bestLen := -1
	for _, s := range p.slots {
		if s.busy {
			continue
		}
		if n := commonPrefix(s.tokens, prompt); n > bestLen {
			best, bestLen = s, n
		}
		if lru == nil || s.used < lru.used {
			lru = s
		}
	}
	if best != nil && 2*bestLen < len(prompt) {
		best = lru
	}
	if best != nil {
		p.clock++
		best.busy, best.used = true, p.clock
		p.mu.Unlock()
		return best, nil
	}
	if len(p.waiting) >= p.queue {
		p.mu.Unlock()
		return nil, ErrBusy
	}
	ch := make(chan *slot, 1)
	p.waiting = append(p.waiting, ch)
	p.mu.Unlock()

	select {
	case s := <-ch:
		return s, nil
	case <-ctx.Done():
		p.mu.Lock()
		for i, w := range p.waiting {
			if w == ch {
				p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
		// A slot may have been handed over just before we left the queue.
		select {
		case s := <-ch:
			p.release(s)
		default:
		}
		return nil, ctx.Err()
	}
}

// release hands the slot to the first waiting request, or marks it idle.
func (p *Pool) release(s *slot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.waiting) > 0 {
		ch := p.waiting[0]
		p.waiting = p.waiting[1:]
		p.clock++
		s.used = p.clock
		ch <- s // buffered: never blocks
		return
	}
	s.busy = false
	if p.closed {
		s.sess, s.tokens = nil, nil
	}
}

// Close drops the sessions of idle slots; busy ones drop theirs when they
// finish. Later requests fail.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, s := range p.slots {
		if !s.busy {
			s.sess, s.tokens = nil, nil
		}
	}
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
