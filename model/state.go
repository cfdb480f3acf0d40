package model

import (
	"fmt"
)

// MaxContext bounds the positions of one State.
const MaxContext = 1 << 20

// maxKVBytes bounds the KV cache of one State (64 GiB).
const maxKVBytes = 1 << 36

// MaxBatch is the most tokens one forward pass of Eval processes; longer
// inputs to Eval run in consecutive chunks.
const MaxBatch = 512

// State is one sequence being evaluated: its KV cache (float32) and the
// number of positions in use. States made by NewState also carry the
// scratch buffers of Eval; those made by NewBatchState only their cache,
// for sequences evaluated together through EvalBatch (the Batch holds the
// scratch). A State is not safe for concurrent use; different States may
// be used from different goroutines.
type State struct {
	net   *Net
	cfg   *Config
	nCtx  int // positions the cache holds
	n     int // positions in use
	batch int // most tokens per forward pass of Eval

	k, v  [][]float32 // per layer: (nCtx, kv) keys and values, rows by position
	kvF16 bool        // keys and values rounded to fp16 (see SetKVF16)

	own     *Batch   // Eval's scratch; nil until needed for NewBatchState's states
	inBatch bool     // taken by the batch being planned
	obs     Observer // Eval's observer (see SetObserver)
}

// NewState implements Model: it allocates the KV cache for nCtx positions
// and every buffer a forward pass of Eval needs (for batches of up to
// min(nCtx, MaxBatch) tokens), so that evaluation allocates nothing.
func (m *Net) NewState(nCtx int) (*State, error) {
	s, err := m.NewBatchState(nCtx)
	if err != nil {
		return nil, err
	}
	s.own = m.newBatch(s.batch, nCtx)
	return s, nil
}

// NewBatchState implements Model: it allocates the KV cache for nCtx
// positions only.
func (m *Net) NewBatchState(nCtx int) (*State, error) {
	c := &m.cfg
	if nCtx < 1 {
		return nil, fmt.Errorf("model: context size %d: want at least 1", nCtx)
	}
	if nCtx > MaxContext {
		return nil, fmt.Errorf("model: context size %d exceeds the limit of %d", nCtx, MaxContext)
	}
	if c.MaxPos > 0 && nCtx > c.MaxPos {
		return nil, fmt.Errorf("model: context size %d exceeds the %d positions this %s model has embeddings for", nCtx, c.MaxPos, c.Arch)
	}
	kvd := c.KVDim()
	if bytes := int64(c.NLayer) * int64(nCtx) * int64(kvd) * 8; bytes > maxKVBytes {
		return nil, fmt.Errorf("model: a KV cache of %d positions would take %d MiB", nCtx, bytes>>20)
	}
	s := &State{net: m, cfg: c, nCtx: nCtx, batch: min(nCtx, MaxBatch)}
	s.k = make([][]float32, c.NLayer)
	s.v = make([][]float32, c.NLayer)
	for l := range c.NLayer {
		s.k[l] = make([]float32, nCtx*kvd)
		s.v[l] = make([]float32, nCtx*kvd)
	}
	return s, nil
}

// SetKVF16 switches the cache to fp16 values, llama.cpp's default cache
// type (its perplexity and imatrix tools run with it): keys and values are
// rounded to fp16 when stored, and, as ggml's products with an fp16 cache
// do, each query is rounded to fp16 before it meets the keys and the
// attention weights before they meet the values. The cache stays float32
// in memory. Set it while the cache is empty (Len() == 0 or after
// Truncate(0)); positions already stored are not rounded.
func (s *State) SetKVF16(on bool) { s.kvF16 = on }

// KVF16 reports whether the cache rounds to fp16 (see SetKVF16).
func (s *State) KVF16() bool { return s.kvF16 }

// Len is the number of positions in the cache.
func (s *State) Len() int { return s.n }

// Cap is the number of positions the cache holds.
func (s *State) Cap() int { return s.nCtx }

// BatchSize is the most tokens one forward pass of Eval processes.
func (s *State) BatchSize() int { return s.batch }

// Truncate forgets the positions >= n, so that the next Eval continues at
// position n (prefix reuse, rollback). n beyond Len is ignored, n < 0 means 0.
func (s *State) Truncate(n int) {
	s.n = min(max(n, 0), s.n)
}

// CopyPrefix makes s hold the first n positions of src's cache (both from
// the same model), as if the same n tokens had been evaluated in s: a
// prompt prefix that another sequence already evaluated costs a copy
// instead of a forward pass. n is clamped to src.Len() and s.Cap().
func (s *State) CopyPrefix(src *State, n int) error {
	if src == nil || src.net != s.net {
		return fmt.Errorf("model: CopyPrefix: the states come from different models")
	}
	n = min(max(n, 0), src.n, s.nCtx)
	if src != s {
		kvd := s.cfg.KVDim()
		for l := range s.k {
			copy(s.k[l][:n*kvd], src.k[l][:n*kvd])
			copy(s.v[l][:n*kvd], src.v[l][:n*kvd])
		}
	}
	s.n = n
	return nil
}
