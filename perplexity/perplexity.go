// Package perplexity measures how well a model predicts a text, with
// llama.cpp's llama-perplexity procedure so that the numbers compare:
//
//   - the whole text is tokenized once, with BOS if the vocabulary adds it;
//   - it is cut into chunks of n_ctx tokens (a trailing partial chunk is
//     dropped) and each chunk is evaluated from an empty cache, with its
//     first token replaced by BOS when the vocabulary adds BOS;
//   - only the second half of each chunk is scored: the logits at positions
//     n_ctx/2 … n_ctx-2 predict tokens n_ctx/2+1 … n_ctx-1;
//   - after each chunk the running perplexity exp(mean NLL) is reported,
//     and at the end the estimate with its standard error.
//
// It can also save the base model's log-probabilities (llama.cpp's
// --kl-divergence-base file format, see WriteBase) and compare another
// model against such a file (KL-divergence, top-token agreement).
package perplexity

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Model evaluates a sequence of tokens from position 0 in one pass and
// returns a row of logits per token (engine.Model does).
type Model interface {
	Logits(tokens []int32) ([][]float32, error)
}

// Vocab is what the procedure needs to know of the tokenizer.
type Vocab struct {
	NVocab int
	BOS    int32
	AddBOS bool
}

// Options steer a run.
type Options struct {
	NCtx   int // chunk length; at least 4
	Chunks int // evaluate at most this many chunks; 0 or less means all
	// OnChunk, when set, is called after each chunk with its number (from 1)
	// and the running perplexity.
	OnChunk func(chunk int, ppl float64)
}

// Result of a perplexity run.
type Result struct {
	NTokens int       // tokens in the text
	Chunks  int       // chunks evaluated
	Scored  int       // tokens scored
	Running []float64 // perplexity after each chunk
	PPL     float64   // final estimate
	Stderr  float64   // its standard error (llama.cpp's "±")
}

// chunking checks the sizes and returns the number of chunks.
func chunking(nTokens int, opt Options) (int, error) {
	if opt.NCtx < 4 {
		return 0, fmt.Errorf("context of %d tokens is too small (at least 4)", opt.NCtx)
	}
	if nTokens < 2*opt.NCtx {
		return 0, fmt.Errorf("the text tokenizes to only %d tokens; perplexity with a context of %d needs at least %d (2 chunks): use a longer text or a smaller --ctx", nTokens, opt.NCtx, 2*opt.NCtx)
	}
	n := nTokens / opt.NCtx
	if opt.Chunks > 0 {
		n = min(n, opt.Chunks)
	}
	return n, nil
}

// chunkLogits evaluates chunk i of tokens (BOS first when the vocabulary
// adds it) and returns the logits of its scored positions.
func chunkLogits(m Model, tokens []int32, i int, v Vocab, nCtx int) ([][]float32, error) {
	in := make([]int32, nCtx)
	copy(in, tokens[i*nCtx:(i+1)*nCtx])
	if v.AddBOS {
		in[0] = v.BOS
	}
	rows, err := m.Logits(in)
	if err != nil {
		return nil, fmt.Errorf("chunk %d: %w", i+1, err)
	}
	if len(rows) != nCtx {
		return nil, fmt.Errorf("chunk %d: the model returned %d rows of logits for %d tokens", i+1, len(rows), nCtx)
	}
	for _, r := range rows[nCtx/2 : nCtx-1] {
		if len(r) != v.NVocab {
			return nil, fmt.Errorf("chunk %d: logits rows of %d values, vocabulary of %d", i+1, len(r), v.NVocab)
		}
	}
	return rows[nCtx/2 : nCtx-1], nil
}

// Run computes the perplexity of tokens (the whole text, tokenized with
// BOS as the vocabulary asks).
func Run(m Model, tokens []int32, v Vocab, opt Options) (*Result, error) {
	return run(m, tokens, v, opt, nil)
}

func run(m Model, tokens []int32, v Vocab, opt Options, base *baseWriter) (*Result, error) {
	nChunk, err := chunking(len(tokens), opt)
	if err != nil {
		return nil, err
	}
	if base != nil {
		if err := base.header(opt.NCtx, v.NVocab, tokens[:nChunk*opt.NCtx]); err != nil {
			return nil, err
		}
	}
	res := &Result{NTokens: len(tokens), Chunks: nChunk}
	first := opt.NCtx / 2
	var nll, nll2 float64
	for i := range nChunk {
		rows, err := chunkLogits(m, tokens, i, v, opt.NCtx)
		if err != nil {
			return nil, err
		}
		next := tokens[i*opt.NCtx+first+1 : (i+1)*opt.NCtx]
		for k, row := range rows {
			var x float64
			if base != nil {
				x = base.record(row, next[k])
			} else {
				x = -logSoftmax(row, next[k])
			}
			nll += x
			nll2 += x * x
		}
		if base != nil {
			if err := base.flush(); err != nil {
				return nil, err
			}
		}
		res.Scored += len(rows)
		ppl := math.Exp(nll / float64(res.Scored))
		res.Running = append(res.Running, ppl)
		if opt.OnChunk != nil {
			opt.OnChunk(i+1, ppl)
		}
	}
	n := float64(res.Scored)
	mean, mean2 := nll/n, nll2/n
	res.PPL = math.Exp(mean)
	if v := mean2 - mean*mean; v > 0 && res.Scored > 1 {
		res.Stderr = math.Sqrt(v/(n-1)) * res.PPL
	}
	return res, nil
}

// logSoftmax is log p(tok) as llama.cpp computes it: float32 logits shifted
// by their maximum, exponentials in float32 summed in float64.
func logSoftmax(logits []float32, tok int32) float64 {
	maxL := logits[0]
	for _, l := range logits[1:] {
		maxL = max(maxL, l)
	}
	var sum float64
	for _, l := range logits {
		sum += float64(expf(l - maxL))
	}
	return float64(logits[tok]-maxL) - math.Log(sum)
}

// expf is a correctly rounded float32 exponential.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }

// errShort reports a truncated base file.
var errShort = errors.New("the file ends early (truncated?)")

// TrimText prepares a text file's contents as llama.cpp's -f option does:
// one trailing newline is dropped.
func TrimText(s string) string {
	return strings.TrimSuffix(s, "\n")
}
