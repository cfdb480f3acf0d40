package imatrix

import (
	"fmt"
	"sort"
	"strings"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/model"
)

// Options steer a collection.
type Options struct {
	NCtx          int  // chunk length (tokens); at least 16 for anything to be collected
	Chunks        int  // at most this many chunks; 0 or less means all
	ProcessOutput bool // also collect output.weight (llama-imatrix --process-output)
	BOS           int32
	AddBOS        bool // the vocabulary adds BOS: each chunk starts with it
	// OnChunk, when set, is called after each chunk (counting from 1).
	OnChunk func(done, total int)
}

// Collect runs the text's tokens through the model chunk by chunk, as
// llama-imatrix does (chunks of NCtx tokens, the first replaced by BOS when
// the vocabulary adds one, a trailing partial chunk dropped, each chunk
// one batch from position 0), and returns the importance matrix. dataset
// is recorded in the file. The activations are the engine's own forward
// pass (llama.cpp's CPU numerics) with an fp16 KV cache, llama-imatrix's
// default; each weight's statistics are taken from its input before the
// kernels quantize it for the product, as llama-imatrix's callback sees it.
func Collect(m *engine.Model, tokens []int32, dataset string, opt Options) (*Matrix, error) {
	if opt.NCtx < 16 {
		return nil, fmt.Errorf("context of %d tokens is too small: llama-imatrix ignores batches under 16 tokens", opt.NCtx)
	}
	nChunk := len(tokens) / opt.NCtx
	if opt.Chunks > 0 {
		nChunk = min(nChunk, opt.Chunks)
	}
	if nChunk < 1 {
		return nil, fmt.Errorf("the text tokenizes to %d tokens, less than one chunk of %d: use a longer text or a smaller --ctx", len(tokens), opt.NCtx)
	}
	net := m.Net()
	b, err := net.NewBatch(opt.NCtx)
	if err != nil {
		return nil, err
	}
	st, err := net.NewBatchState(opt.NCtx)
	if err != nil {
		return nil, err
	}
	st.SetKVF16(true)
	c := &Collector{ProcessOutput: opt.ProcessOutput}
	b.SetObserver(c)
	// llama-imatrix computes every token's logits; they are needed only
	// when the output matrix is observed.
	want, logits := model.NoLogits, []float32(nil)
	if opt.ProcessOutput {
		want, logits = model.AllLogits, make([]float32, opt.NCtx*net.Config().NVocab)
	}
	chunk := make([]int32, opt.NCtx)
	for i := range nChunk {
		copy(chunk, tokens[i*opt.NCtx:(i+1)*opt.NCtx])
		if opt.AddBOS {
			chunk[0] = opt.BOS
		}
		st.Truncate(0)
		if err := net.EvalBatch(b, []model.Seq{{State: st, Tokens: chunk, Logits: want}}, logits); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i+1, err)
		}
		c.chunks++
		if opt.OnChunk != nil {
			opt.OnChunk(i+1, nChunk)
		}
	}
	return c.Matrix(dataset), nil
}

// Collector accumulates llama-imatrix's statistics: for each weight of the
// blocks (and output.weight with ProcessOutput), the sum of x² per input
// column over every token of every batch of at least 16 tokens. It is a
// model.Observer.
type Collector struct {
	ProcessOutput bool
	stats         map[string]*stat
	chunks        int32
}

type stat struct {
	sum   []float64
	count int64
	ncall int32
}

// ObserveMatMul implements model.Observer: it accumulates x².
func (c *Collector) ObserveMatMul(name string, x []float32, T, nIn int) {
	if T < 16 { // as llama-imatrix: small batches are ignored
		return
	}
	if !strings.HasPrefix(name, "blk.") && !(c.ProcessOutput && name == "output.weight") {
		return
	}
	if c.stats == nil {
		c.stats = map[string]*stat{}
	}
	s := c.stats[name]
	if s == nil {
		s = &stat{sum: make([]float64, nIn)}
		c.stats[name] = s
	}
	for t := range T {
		for j, v := range x[t*nIn : (t+1)*nIn] {
			s.sum[j] += float64(v) * float64(v)
		}
	}
	s.count += int64(T)
	s.ncall++
}

// Matrix returns the collected importance matrix.
func (c *Collector) Matrix(dataset string) *Matrix {
	m := &Matrix{Chunks: c.chunks, Dataset: dataset}
	names := make([]string, 0, len(c.stats))
	for k := range c.stats {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if a, b := layer(names[i]), layer(names[j]); a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		s := c.stats[name]
		vals := make([]float32, len(s.sum))
		for j, v := range s.sum {
			vals[j] = float32(v / float64(s.count))
		}
		m.Entries = append(m.Entries, Entry{Name: name, NCall: s.ncall, Values: vals})
	}
	return m
}

func layer(name string) int {
	var l int
	if _, err := fmt.Sscanf(name, "blk.%d.", &l); err != nil {
		return -1
	}
	return l
}
