// Package model runs the forward pass of decoder-only transformers stored in
// GGUF files: the architecture registry, the hyperparameters (Config), the
// binding of tensors to weights (Bind), the per-sequence state with its KV
// cache (State), and the blocks the families share (attention with GQA,
// MLPs, norms, RoPE).
//
// Each family lives in its own package (model/llama, model/qwen2,
// model/gpt2, ...) as one short forward pass that reads like the maths, and
// registers itself with Register; import model/all to get them all.
package model

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
)

// Model is a loaded network.
type Model interface {
	// Config is the model's hyperparameters.
	Config() Config
	// NewState allocates a sequence state: the KV cache for nCtx positions
	// and all scratch buffers of Eval.
	NewState(nCtx int) (*State, error)
	// Eval runs tokens at positions s.Len(), s.Len()+1, ... and appends their
	// keys and values to the cache. With all, logits receives one row of
	// NVocab logits per token (len(tokens)·NVocab values); otherwise only
	// the last token's NVocab logits.
	Eval(s *State, tokens []int32, logits []float32, all bool) error

	// NewBatchState allocates a sequence state with only its KV cache (for
	// nCtx positions), for sequences evaluated through EvalBatch; an Eval
	// on it allocates Eval's scratch the first time.
	NewBatchState(nCtx int) (*State, error)
	// NewBatch allocates the working memory of EvalBatch for passes of up
	// to maxTokens tokens in all.
	NewBatch(maxTokens int) (*Batch, error)
	// EvalBatch runs several sequences in one forward pass: their tokens
	// are stacked so that each weight matrix is read once for all of them,
	// while positions, RoPE and attention are each sequence's own (each
	// Seq as one Eval of its tokens would be). Each state must appear at
	// most once, and the tokens must fit b.Cap(). logits receives, in the
	// order of seqs, the rows each Seq asks for (none, its last token's, or
	// one per token), NVocab values each. On error no state changes.
	EvalBatch(b *Batch, seqs []Seq, logits []float32) error
}

// Forwarder is the forward pass a family implements. Forward runs one
// planned pass over b.Len() tokens (b.Tokens(), at positions b.Pos(i) of
// their own sequences); it stores their keys and values with
// Batch.Attention and writes the logits of the rows Batch.OutputRows
// picks, NVocab values each, into logits, through Batch.Output (which
// writes the normed hidden rows instead in a pass of EvalHidden). Inputs
// have been validated.
type Forwarder interface {
	Forward(b *Batch, logits []float32)
}

// Net is a Model made of a Config and a family's forward pass; families
// return one from their load function.
type Net struct {
	cfg   Config
	fwd   Forwarder
	names map[*kernel.Matrix]string // the bound weights' tensor names, for Observer
}

// New makes a Model from a config and a forward pass. When fwd is a
// pointer to the weights struct that Bind filled, its matrices are known by
// their tensor names to an Observer.
func New(cfg Config, fwd Forwarder) *Net {
	return &Net{cfg: cfg, fwd: fwd, names: weightNames(fwd)}
}

// Config is the model's hyperparameters.
func (m *Net) Config() Config { return m.cfg }

// Eval implements Model.
func (m *Net) Eval(s *State, tokens []int32, logits []float32, all bool) error {
	if s == nil || s.net != m {
		return fmt.Errorf("model: the state was not made by this model's NewState")
	}
	nv := m.cfg.NVocab
	switch {
	case len(tokens) == 0:
		return fmt.Errorf("model: no tokens to evaluate")
	case len(tokens) > s.nCtx-s.n:
		return fmt.Errorf("model: context overflow: %d positions in use + %d new tokens > context size %d", s.n, len(tokens), s.nCtx)
	case all && len(logits) != len(tokens)*nv:
		return fmt.Errorf("model: logits has %d values, want %d (%d tokens × %d vocabulary)", len(logits), len(tokens)*nv, len(tokens), nv)
	case !all && len(logits) != nv:
		return fmt.Errorf("model: logits has %d values, want %d (the vocabulary size)", len(logits), nv)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= nv {
			return fmt.Errorf("model: token %d (at index %d) is outside the vocabulary [0, %d)", id, i, nv)
		}
	}
	if s.own == nil || s.own.cap < s.batch {
		s.own = m.newBatch(s.batch, s.nCtx)
	}
	b := s.own
	b.obs = s.obs
	for start := 0; start < len(tokens); start += s.batch {
		end := min(start+s.batch, len(tokens))
		var out []float32
		want := NoLogits
		switch {
		case all:
			out, want = logits[start*nv:end*nv], AllLogits
		case end == len(tokens):
			out, want = logits, LastLogits
		}
		b.one[0] = Seq{State: s, Tokens: tokens[start:end], Logits: want}
		if err := b.plan(b.one[:]); err != nil {
			return err
		}
		m.forward(b, out)
	}
	b.one[0] = Seq{}
	return nil
}

var (
	regMu    sync.RWMutex
	registry = map[string]func(*gguf.File) (Model, error){}
)

// Register makes an architecture loadable. load reads the config and binds
// the weights of a file whose general.architecture is arch. Registering an
// architecture twice panics.
func Register(arch string, load func(*gguf.File) (Model, error)) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[arch]; dup {
		panic("model: architecture " + arch + " registered twice")
	}
	registry[arch] = load
}

// Architectures lists the registered architectures, sorted.
func Architectures() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var names []string
	for a := range registry {
		names = append(names, a)
	}
	sort.Strings(names)
	return names
}

// Load builds the model described by a GGUF file. Its tensors stay views
// into f, which must stay open while the model is in use.
func Load(f *gguf.File) (Model, error) {
	arch := f.Arch()
	if arch == "" {
		return nil, fmt.Errorf("model: the file has no general.architecture")
	}
	regMu.RLock()
	load, ok := registry[arch]
	regMu.RUnlock()
	if !ok {
		supported := Architectures()
		if len(supported) == 0 {
			return nil, fmt.Errorf("model: unsupported architecture %q (no architectures are registered; import github.com/slm-dev/slm/model/all)", arch)
		}
		return nil, fmt.Errorf("model: unsupported architecture %q (supported: %s)", arch, strings.Join(supported, ", "))
	}
	m, err := load(f)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", arch, err)
	}
	return m, nil
}
