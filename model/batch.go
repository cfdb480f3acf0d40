package model

import (
	"fmt"

	"github.com/slm-dev/slm/internal/parallel"
	"github.com/slm-dev/slm/kernel"
)

// Seq is one sequence's share of a batch: tokens evaluated at positions
// State.Len(), State.Len()+1, ... against that State's own KV cache.
type Seq struct {
	State  *State
	Tokens []int32
	Logits Want // which of its tokens need logits
}

// Want says which of a sequence's tokens need logits.
type Want uint8

const (
	NoLogits   Want = iota // none: a prompt chunk that is not the prompt's last
	LastLogits             // the last token's: decoding, or a prompt's last chunk
	AllLogits              // every token's: scoring
)

// MaxBatchTokens bounds the tokens of one Batch.
const MaxBatchTokens = 1 << 16

// Batch is the working memory of one forward pass over the tokens of
// several sequences at once: the activations of all their tokens stacked as
// rows (so that every weight matrix is read once per pass for all of them),
// and for each token its sequence and position. Everything is sized when
// the Batch is made, so a pass allocates nothing. A Batch is not safe for
// concurrent use.
type Batch struct {
	net *Net
	cfg *Config
	cap int // most tokens per pass

	// Buf holds the activations of the pass, one row per token, sequences
	// in order. Contents are undefined between passes.
	Buf Buffers

	// The current pass.
	seqs   []Seq
	n      int     // tokens
	tokens []int32 // (cap) the sequences' tokens, concatenated
	pos    []int32 // (cap) each token's position in its sequence
	seq    []int32 // (cap) each token's index in seqs
	out    []int32 // (cap) the rows that need logits, increasing
	nOut   int
	work   int // multiply-adds of attention in one layer

	rope    []float32    // (cap, RopeDims) cos/sin of the tokens' positions
	ropeFor *kernel.Rope // the rope the angles were computed for in this pass

	attn attnJob
	silu siluJob
	one  [1]Seq   // Eval's sequence
	obs  Observer // sees the inputs of the weight products; nil: none

	hidden bool // this pass returns hidden states, not logits (EvalHidden)
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

// NewBatch implements Model.
func (m *Net) NewBatch(maxTokens int) (*Batch, error) {
	if maxTokens < 1 || maxTokens > MaxBatchTokens {
		return nil, fmt.Errorf("model: batch of %d tokens: want 1 to %d", maxTokens, MaxBatchTokens)
	}
	return m.newBatch(maxTokens, 0), nil
}

// newBatch allocates a batch of up to b tokens whose attention scratch
// covers contexts of nCtx positions (more is allocated on first need).
func (m *Net) newBatch(b, nCtx int) *Batch {
	c := &m.cfg
	kvd := c.KVDim()
	bt := &Batch{net: m, cfg: c, cap: b}
	bt.Buf = Buffers{
		X:   make([]float32, b*c.NEmbd),
		XB:  make([]float32, b*c.NEmbd),
		Q:   make([]float32, b*c.QDim()),
		K:   make([]float32, b*kvd),
		V:   make([]float32, b*kvd),
		Att: make([]float32, b*c.QDim()),
		H:   make([]float32, b*c.NFF),
		H2:  make([]float32, b*c.NFF),
	}
	bt.tokens = make([]int32, b)
	bt.pos = make([]int32, b)
	bt.seq = make([]int32, b)
	bt.out = make([]int32, b)
	bt.rope = make([]float32, b*c.RopeDims)
	bt.attn.scores = make([][]float32, parallel.Default().Size())
	bt.attn.qh = make([][]float32, parallel.Default().Size())
	for w := range bt.attn.qh {
		bt.attn.qh[w] = make([]float32, c.HeadDim)
	}
	bt.reserveScores(nCtx)
	return bt
}

// reserveScores makes the attention scratch hold n positions.
func (b *Batch) reserveScores(n int) {
	for w := range b.attn.scores {
		if len(b.attn.scores[w]) < n {
			b.attn.scores[w] = make([]float32, n)
		}
	}
}

// Cap is the most tokens one pass of the batch processes.
func (b *Batch) Cap() int { return b.cap }

// Len is the number of tokens in the current pass.
func (b *Batch) Len() int { return b.n }

// Tokens are the current pass's tokens, all sequences concatenated.
func (b *Batch) Tokens() []int32 { return b.tokens[:b.n] }

// Pos is the position of token i of the pass in its own sequence.
func (b *Batch) Pos(i int) int { return int(b.pos[i]) }

// EvalBatch implements Model.
func (m *Net) EvalBatch(b *Batch, seqs []Seq, logits []float32) error {
	if b == nil || b.net != m {
		return fmt.Errorf("model: the batch was not made by this model's NewBatch")
	}
	if err := b.plan(seqs); err != nil {
		return err
	}
	if want := b.nOut * m.cfg.NVocab; len(logits) != want {
		b.seqs = nil
		return fmt.Errorf("model: logits has %d values, want %d (%d rows × %d vocabulary)", len(logits), want, b.nOut, m.cfg.NVocab)
	}
	m.forward(b, logits)
	return nil
}

// forward runs the planned pass and advances the sequences.
func (m *Net) forward(b *Batch, logits []float32) {
	m.fwd.Forward(b, logits)
	for _, sq := range b.seqs {
		sq.State.n += len(sq.Tokens)
	}
	b.seqs = nil
}

// plan checks the sequences and lays their tokens out as the rows of one
// pass. It changes no State.
func (b *Batch) plan(seqs []Seq) error {
	m, c := b.net, b.cfg
	n, maxCtx := 0, 0
	var err error
	for i, sq := range seqs {
		s := sq.State
		switch {
		case s == nil || s.net != m:
			err = fmt.Errorf("model: sequence %d: the state was not made by this model", i)
		case s.inBatch:
			err = fmt.Errorf("model: sequence %d: its state is already in the batch", i)
		case len(sq.Tokens) == 0:
			err = fmt.Errorf("model: sequence %d: no tokens to evaluate", i)
		case len(sq.Tokens) > s.nCtx-s.n:
			err = fmt.Errorf("model: sequence %d: context overflow: %d positions in use + %d new tokens > context size %d", i, s.n, len(sq.Tokens), s.nCtx)
		case sq.Logits > AllLogits:
			err = fmt.Errorf("model: sequence %d: unknown logits choice %d", i, sq.Logits)
		case n+len(sq.Tokens) > b.cap:
			err = fmt.Errorf("model: the batch has room for %d tokens, the sequences bring more", b.cap)
		}
		if err != nil {
			break
		}
		for j, id := range sq.Tokens {
			if id < 0 || int(id) >= c.NVocab {
				err = fmt.Errorf("model: sequence %d: token %d (at index %d) is outside the vocabulary [0, %d)", i, id, j, c.NVocab)
				break
			}
		}
		if err != nil {
			break
		}
		s.inBatch = true
		n += len(sq.Tokens)
		maxCtx = max(maxCtx, s.nCtx)
	}
	for _, sq := range seqs {
		if sq.State != nil {
			sq.State.inBatch = false
		}
	}
	if err != nil {
		return err
	}
	if len(seqs) == 0 {
		return fmt.Errorf("model: no sequences to evaluate")
	}
	b.reserveScores(maxCtx)

	b.seqs, b.n, b.nOut, b.work, b.ropeFor = seqs, n, 0, 0, nil
	r := 0
	for i, sq := range seqs {
		p0 := sq.State.n
		for j, id := range sq.Tokens {
			b.tokens[r], b.pos[r], b.seq[r] = id, int32(p0+j), int32(i)
			if sq.Logits == AllLogits || sq.Logits == LastLogits && j == len(sq.Tokens)-1 {
				b.out[b.nOut] = int32(r)
				b.nOut++
			}
			b.work += c.NHead * (p0 + j + 1) * c.HeadDim
			r++
		}
	}
	return nil
}

// Rope rotates the rows of x (each nHead heads of HeadDim) by the angles of
// their tokens' positions. The angles of a pass are computed once and
// reused for q and k in every layer.
func (b *Batch) Rope(r *kernel.Rope, x []float32, nHead int) {
	d, hd := r.Dims, b.cfg.HeadDim
	if b.ropeFor != r {
		for i := range b.n {
			r.Angles(b.rope[i*d:(i+1)*d], int(b.pos[i]))
		}
		b.ropeFor = r
	}
	w := nHead * hd
	for i := range b.n {
		r.Apply(x[i*w:(i+1)*w], hd, b.rope[i*d:(i+1)*d])
	}
}

// OutputRows gathers the rows of the final hidden state x (one row of
// NEmbd per token) that need logits at the front of x, in order, and
// returns them and their count.
func (b *Batch) OutputRows(x []float32) ([]float32, int) {
	d := b.cfg.NEmbd
	for j, i := range b.out[:b.nOut] {
		if int(i) != j {
			copy(x[j*d:(j+1)*d], x[int(i)*d:(int(i)+1)*d])
		}
	}
	return x[:b.nOut*d], b.nOut
}
