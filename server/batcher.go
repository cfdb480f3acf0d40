package server

import (
	"context"

	"github.com/slm-dev/slm/engine"
)

// Batcher is a Generator over one model that decodes concurrent requests
// together: an engine.Scheduler (continuous batching), where every step is
// one pass over the weights for all the sequences in flight, each with its
// own full context. Requests join and leave between steps; a request that
// finds every sequence slot taken waits in a bounded queue, beyond which
// Generate returns ErrBusy. Prompts that share a prefix with a cached or
// running sequence reuse its KV cache.
type Batcher struct {
	m *engine.Model
	s *engine.Scheduler
}

var _ Generator = (*Batcher)(nil)

// NewBatcher returns a Batcher of n sequence slots (at least 1) of nCtx
// positions each (0: the model's default) and a queue of up to queue
// waiting requests.
func NewBatcher(m *engine.Model, n, queue, nCtx int) (*Batcher, error) {
	s, err := m.NewScheduler(engine.SchedulerConfig{Slots: max(n, 1), Queue: queue, Context: nCtx})
	if err != nil {
		return nil, err
	}
	return &Batcher{m: m, s: s}, nil
}

// Tokenize implements Generator.
func (b *Batcher) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	return b.m.Tokenize(text, addSpecial, parseSpecial)
}

// Detokenize implements Generator.
func (b *Batcher) Detokenize(ids []int32) string { return b.m.Detokenize(ids) }

// VocabSize implements Generator.
func (b *Batcher) VocabSize() int { return b.m.Config().NVocab }

// ContextSize implements Generator.
func (b *Batcher) ContextSize() int { return b.s.ContextSize() }

// Generate implements Generator.
func (b *Batcher) Generate(ctx context.Context, prompt []int32, opts engine.Options, fn func(engine.Token) error) (engine.Result, error) {
	return b.s.Generate(ctx, prompt, opts, fn)
}

// Stats implements statser.
func (b *Batcher) Stats() Stats {
	st := b.s.Stats()
	return Stats{Slots: st.Slots, Busy: st.Active, Queued: st.Queued}
}

// Scheduler is the engine scheduler behind the Batcher, for its counters.
func (b *Batcher) Scheduler() *engine.Scheduler { return b.s }

// Close fails waiting requests and later ones; running ones finish.
func (b *Batcher) Close() { b.s.Close() }
