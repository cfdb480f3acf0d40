package model

import (
	"fmt"

	"github.com/slm-dev/slm/internal/parallel"
	"github.com/slm-dev/slm/kernel"
)

// MaxContext bounds the positions of one State.
const MaxContext = 1 << 20

// maxKVBytes bounds the KV cache of one State (64 GiB).
const maxKVBytes = 1 << 36

// MaxBatch is the most tokens one forward pass processes; longer inputs to
// Eval run in consecutive chunks.
const MaxBatch = 512

// State is one sequence being evaluated: its KV cache (float32) and the
// scratch buffers of the forward pass, all allocated by NewState. A State
// is not safe for concurrent use; different States may be used from
// different goroutines.
type State struct {
	net   *Net
	cfg   *Config
	nCtx  int // positions the cache holds
	n     int // positions in use
	batch int // most tokens per forward pass

	k, v [][]float32 // per layer: (nCtx, kv) keys and values, rows by position

	// Buf holds the activations of one batch for the family's forward pass.
	// Contents are undefined between calls.
	Buf Buffers

	rope    []float32 // (batch, RopeDims) cos/sin of the batch's positions
	ropeFor *kernel.Rope
	ropePos int
	ropeN   int

	attn attnJob
}

// Buffers are the activations of one batch, row-major (batch, width).
type Buffers struct {
	X   []float32 // (batch, embd) residual stream
	XB  []float32 // (batch, embd) input of a block (normed) or its output
	Q   []float32 // (batch, q)    queries, heads concatenated
	K   []float32 // (batch, kv)   keys
	V   []float32 // (batch, kv)   values
	Att []float32 // (batch, q)    attention output, heads concatenated
	H   []float32 // (batch, ff)   MLP hidden
	H2  []float32 // (batch, ff)   MLP hidden (gate)
}

// NewState implements Model: it allocates the KV cache for nCtx positions
// and every buffer a forward pass needs (for batches of up to
// min(nCtx, MaxBatch) tokens), so that evaluation allocates nothing.
func (m *Net) NewState(nCtx int) (*State, error) {
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
	b := min(nCtx, MaxBatch)
	s := &State{net: m, cfg: c, nCtx: nCtx, batch: b}
	s.k = make([][]float32, c.NLayer)
	s.v = make([][]float32, c.NLayer)
	for l := range c.NLayer {
		s.k[l] = make([]float32, nCtx*kvd)
		s.v[l] = make([]float32, nCtx*kvd)
	}
	s.Buf = Buffers{
		X:   make([]float32, b*c.NEmbd),
		XB:  make([]float32, b*c.NEmbd),
		Q:   make([]float32, b*c.QDim()),
		K:   make([]float32, b*kvd),
		V:   make([]float32, b*kvd),
		Att: make([]float32, b*c.QDim()),
		H:   make([]float32, b*c.NFF),
		H2:  make([]float32, b*c.NFF),
	}
	s.rope = make([]float32, b*c.RopeDims)
	s.attn.scores = make([][]float32, parallel.Default().Size())
	for w := range s.attn.scores {
		s.attn.scores[w] = make([]float32, nCtx)
	}
	return s, nil
}

// Len is the number of positions in the cache.
func (s *State) Len() int { return s.n }

// Cap is the number of positions the cache holds.
func (s *State) Cap() int { return s.nCtx }

// BatchSize is the most tokens one forward pass processes.
func (s *State) BatchSize() int { return s.batch }

// Truncate forgets the positions >= n, so that the next Eval continues at
// position n (prefix reuse, rollback). n beyond Len is ignored, n < 0 means 0.
func (s *State) Truncate(n int) {
	s.n = min(max(n, 0), s.n)
}

// Rope rotates the n rows of x (each nHead heads of HeadDim) by the angles
// of their positions, s.Len()+i. The angles of a batch are computed once and
// reused for q and k in every layer.
func (s *State) Rope(r *kernel.Rope, x []float32, nHead, n int) {
	d := r.Dims
	if s.ropeFor != r || s.ropePos != s.n || s.ropeN < n {
		for i := range n {
			r.Angles(s.rope[i*d:(i+1)*d], s.n+i)
		}
		s.ropeFor, s.ropePos, s.ropeN = r, s.n, n
	}
	w := nHead * s.cfg.HeadDim
	for i := range n {
		r.Apply(x[i*w:(i+1)*w], s.cfg.HeadDim, s.rope[i*d:(i+1)*d])
	}
}

// OutputRows picks the rows of the final hidden state x (n rows of NEmbd)
// that need logits, given the logits slice the forward pass received: all
// n rows, the last one, or none. It returns them and their count.
func (s *State) OutputRows(x []float32, n int, logits []float32) ([]float32, int) {
	d, nv := s.cfg.NEmbd, s.cfg.NVocab
	switch len(logits) {
	case n * nv:
		return x[:n*d], n
	case nv:
		return x[(n-1)*d : n*d], 1
	case 0:
		return nil, 0
	}
	panic(fmt.Sprintf("model: logits of length %d for %d tokens", len(logits), n))
}
