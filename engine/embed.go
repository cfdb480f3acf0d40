package engine

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/slm-dev/slm/model"
)

// Pooling is how the hidden states of an input's tokens become one vector,
// numbered as llama.cpp's enum llama_pooling_type (the GGUF key
// <arch>.pooling_type).
type Pooling int

const (
	PoolingNone Pooling = 0 // one vector per token (not offered by Embed)
	PoolingMean Pooling = 1 // the mean of every token's hidden state
	PoolingCLS  Pooling = 2 // the first token's
	PoolingLast Pooling = 3 // the last token's
	PoolingRank Pooling = 4 // a classification head (rerankers; not supported)
)

func (p Pooling) String() string {
	switch p {
	case PoolingNone:
		return "none"
	case PoolingMean:
		return "mean"
	case PoolingCLS:
		return "cls"
	case PoolingLast:
		return "last"
	case PoolingRank:
		return "rank"
	}
	return fmt.Sprintf("pooling(%d)", int(p))
}

// Pooling is the model's pooling: <arch>.pooling_type from the GGUF
// metadata, or PoolingLast when the file has none, as decoder-only models
// do. (llama.cpp then pools nothing and its OpenAI route refuses; the last
// token is the only one whose hidden state has seen the whole input under
// causal attention, and what decoder-based embedding models such as
// Qwen3-Embedding and e5-mistral use.)
func (m *Model) Pooling() Pooling {
	key := m.net.Config().Arch + ".pooling_type"
	if v, ok := m.file.Int(key); ok && v >= -1 && v <= math.MaxInt32 {
		if v == -1 { // LLAMA_POOLING_TYPE_UNSPECIFIED
			return PoolingLast
		}
		return Pooling(v)
	}
	return PoolingLast
}

// EmbedOptions tune Embed.
type EmbedOptions struct {
	// Raw returns the pooled vectors as they are; by default each is
	// L2-normalized (a zero vector stays zero).
	Raw bool
	// MaxTokens is the most tokens of one input; 0: ContextSize(). It is
	// also bounded by the positions the model has embeddings for.
	MaxTokens int
	// Truncate keeps the first MaxTokens tokens of a longer input; without
	// it such an input is an error (*TooLongError).
	Truncate bool
	// Pooling overrides the model's (Pooling()) when not zero: "mean",
	// "cls" or "last".
	Pooling string
}

// TooLongError is an input that does not fit the context.
type TooLongError struct {
	Index, Tokens, Context int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("input %d has %d tokens, more than the context size of %d", e.Index, e.Tokens, e.Context)
}

// ErrUnsupportedPooling is a model whose pooling Embed does not offer.
var ErrUnsupportedPooling = errors.New("unsupported pooling")

// ErrEmptyInput is an input without tokens.
var ErrEmptyInput = errors.New("input is empty")

// embedBatch is the most tokens of one forward pass of Embed (a variable
// so that tests can force inputs across passes).
var embedBatch = model.MaxBatch

// EmbedTexts tokenizes the texts (special tokens added as the vocabulary
// asks, special-token text parsed, as llama-server does) and embeds them.
// It also returns the token count of each input after truncation.
func (m *Model) EmbedTexts(ctx context.Context, texts []string, opts EmbedOptions) ([][]float32, []int, error) {
	inputs := make([][]int32, len(texts))
	for i, s := range texts {
		ids, err := m.Tokenize(s, true, true)
		if err != nil {
			return nil, nil, fmt.Errorf("input %d: %w", i, err)
		}
		inputs[i] = ids
	}
	return m.Embed(ctx, inputs, opts)
}

// Embed turns each input (token ids) into one vector of NEmbd values: the
// final hidden states of its tokens (after the output norm, before the
// output projection) pooled as the model says (see Pooling), then
// L2-normalized unless opts.Raw. Each input is its own sequence, from
// position 0, so an input gets the same vector, bit for bit, alone or with
// others; several inputs share each forward pass. It also returns the
// token count of each input (after truncation).
func (m *Model) Embed(ctx context.Context, inputs [][]int32, opts EmbedOptions) ([][]float32, []int, error) {
	hm, ok := m.net.(model.Hidden)
	if !ok {
		return nil, nil, errors.New("embeddings: the model does not give hidden states")
	}
	pool := m.Pooling()
	switch opts.Pooling {
	case "":
	case "mean":
		pool = PoolingMean
	case "cls":
		pool = PoolingCLS
	case "last":
		pool = PoolingLast
	default:
		return nil, nil, fmt.Errorf("embeddings: unknown pooling %q", opts.Pooling)
	}
	if pool != PoolingMean && pool != PoolingCLS && pool != PoolingLast {
		return nil, nil, fmt.Errorf("embeddings: %w: the model's pooling type is %s (mean, cls and last are supported)", ErrUnsupportedPooling, pool)
	}
	if len(inputs) == 0 {
		return nil, nil, errors.New("embeddings: no input")
	}
	nCtx := m.nCtx
	if opts.MaxTokens > 0 {
		nCtx = opts.MaxTokens
	}
	if mp := m.net.Config().MaxPos; mp > 0 {
		nCtx = min(nCtx, mp)
	}
	counts := make([]int, len(inputs))
	toks := make([][]int32, len(inputs))
	for i, in := range inputs {
		if len(in) == 0 {
			return nil, nil, fmt.Errorf("input %d: %w", i, ErrEmptyInput)
		}
		if len(in) > nCtx {
			if !opts.Truncate {
				return nil, nil, &TooLongError{Index: i, Tokens: len(in), Context: nCtx}
			}
			in = in[:nCtx]
		}
		toks[i], counts[i] = in, len(in)
	}

	cfg := m.net.Config()
	d := cfg.NEmbd
	total := 0
	for _, t := range toks {
		total += len(t)
	}
	b, err := m.net.NewBatch(min(total, embedBatch))
	if err != nil {
		return nil, nil, err
	}
	sums := make([][]float64, len(toks)) // pooled sums, float64 in token order
	for i := range sums {
		sums[i] = make([]float64, d)
	}
	states := make([]*model.State, len(toks))
	done := make([]int, len(toks)) // tokens evaluated
	var hidden []float32
	var seqs []model.Seq
	var owners []int
	next := 0 // first input not finished
	for next < len(toks) {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		seqs, owners = seqs[:0], owners[:0]
		room, rows := b.Cap(), 0
		for i := next; i < len(toks) && room > 0; i++ {
			if done[i] == len(toks[i]) {
				continue
			}
			if states[i] == nil {
				st, err := m.newBatchState(len(toks[i]))
				if err != nil {
					return nil, nil, err
				}
				states[i] = st
			}
			chunk := toks[i][done[i]:min(len(toks[i]), done[i]+room)]
			want := model.NoLogits
			switch {
			case pool == PoolingMean:
				want, rows = model.AllLogits, rows+len(chunk)
			case pool == PoolingCLS && done[i] == 0:
				want, rows = model.AllLogits, rows+len(chunk)
			case pool == PoolingLast && done[i]+len(chunk) == len(toks[i]):
				want, rows = model.LastLogits, rows+1
			}
			seqs = append(seqs, model.Seq{State: states[i], Tokens: chunk, Logits: want})
			owners = append(owners, i)
			room -= len(chunk)
		}
		if cap(hidden) < rows*d {
			hidden = make([]float32, rows*d)
		}
		hidden = hidden[:rows*d]
		if err := hm.EvalHidden(b, seqs, hidden); err != nil {
			return nil, nil, err
		}
		off := 0
		for k, sq := range seqs {
			i := owners[k]
			var n int
			switch sq.Logits {
			case model.AllLogits:
				n = len(sq.Tokens)
			case model.LastLogits:
				n = 1
			}
			h := hidden[off*d : (off+n)*d]
			off += n
			switch {
			case pool == PoolingMean:
				for r := range n {
					for j, v := range h[r*d : (r+1)*d] {
						sums[i][j] += float64(v)
					}
				}
			case n > 0: // cls: the first row of the first chunk; last: the one row
				for j, v := range h[:d] {
					sums[i][j] = float64(v)
				}
			}
			done[i] += len(sq.Tokens)
			if done[i] == len(toks[i]) {
				states[i] = nil // let the cache go
			}
		}
		for next < len(toks) && done[next] == len(toks[next]) {
			next++
		}
	}

	out := make([][]float32, len(toks))
	for i, s := range sums {
		if pool == PoolingMean {
			for j := range s {
				s[j] /= float64(len(toks[i]))
			}
		}
		scale := 1.0
		if !opts.Raw {
			var ss float64
			for _, v := range s {
				ss += v * v
			}
			if ss > 0 {
				scale = 1 / math.Sqrt(ss)
			}
		}
		v := make([]float32, d)
		for j := range s {
			v[j] = float32(s[j] * scale)
		}
		out[i] = v
	}
	return out, counts, nil
}
