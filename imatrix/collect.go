package imatrix

import (
	"fmt"

	"github.com/slm-dev/slm/gguf"
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
// the vocabulary adds one, a trailing partial chunk dropped), and returns
// the importance matrix. dataset is recorded in the file. The activations
// are computed as llama.cpp computes them on the CPU (see Net.Native and
// Net.KVF16); each weight's statistics are taken from its input before
// ggml quantizes it for the product, as llama-imatrix's callback sees it.
func Collect(f *gguf.File, cfg model.Config, tokens []int32, dataset string, opt Options) (*Matrix, error) {
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
	net, err := NewNet(f, cfg)
	if err != nil {
		return nil, err
	}
	// llama-imatrix's activations: ggml's CPU numerics, F16 KV cache.
	net.Native, net.KVF16 = true, true
	c := &Collector{ProcessOutput: opt.ProcessOutput}
	chunk := make([]int32, opt.NCtx)
	for i := range nChunk {
		copy(chunk, tokens[i*opt.NCtx:(i+1)*opt.NCtx])
		if opt.AddBOS {
			chunk[0] = opt.BOS
		}
		if _, err := net.Forward(chunk, c.Observe, opt.ProcessOutput); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i+1, err)
		}
		c.chunks++
		if opt.OnChunk != nil {
			opt.OnChunk(i+1, nChunk)
		}
	}
	return c.Matrix(dataset), nil
}
