// Package engine turns a model file into text: it owns the tokenizer, the
// forward pass, the KV cache and the sampling loop behind one small API that
// the CLI and the server share.
package engine

import (
	"errors"
	"fmt"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
	_ "github.com/slm-dev/slm/model/all" // register every architecture
	"github.com/slm-dev/slm/tokenizer"
)

// Model is a loaded model: weights, configuration and tokenizer.
type Model struct {
	Name string // file path or label

	file  *gguf.File
	net   model.Model
	tok   *tokenizer.Tokenizer
	nCtx  int // default context for sessions
	owned bool
	kvF16 bool // caches round to fp16 (SetKVF16)
}

// MaxDefaultContext caps the default context so that a model trained on a
// long context does not reserve gigabytes of KV cache unasked.
const MaxDefaultContext = 4096

// Open loads a GGUF model file from disk (into huge-page memory where the
// system offers it, else memory-mapped: see gguf.OpenResident).
func Open(path string) (*Model, error) {
	f, err := gguf.OpenResident(path)
	if err != nil {
		return nil, err
	}
	m, err := load(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.owned = true
	return m, nil
}

// OpenBytes loads a GGUF model held in memory, such as one embedded in the
// binary. data must stay unchanged while the model is in use.
func OpenBytes(name string, data []byte) (*Model, error) {
	f, err := gguf.Parse(name, data)
	if err != nil {
		return nil, err
	}
	return load(name, f)
}

func load(name string, f *gguf.File) (*Model, error) {
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: tokenizer: %w", name, err)
	}
	net, err := model.Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cfg := net.Config()
	if cfg.NVocab != tok.NVocab() {
		return nil, fmt.Errorf("%s: the tokenizer has %d tokens but the model's output has %d", name, tok.NVocab(), cfg.NVocab)
	}
	nCtx := cfg.NCtxTrain
	if nCtx <= 0 || nCtx > MaxDefaultContext {
		nCtx = MaxDefaultContext
	}
	return &Model{Name: name, file: f, net: net, tok: tok, nCtx: nCtx}, nil
}

// Close releases the model file. The model must not be used afterwards.
func (m *Model) Close() error {
	if m.owned {
		return m.file.Close()
	}
	return nil
}

// Config is the model's hyperparameters.
func (m *Model) Config() model.Config { return m.net.Config() }

// Net is the forward pass, for callers that drive model states and
// batches themselves (such as the importance-matrix collection).
func (m *Model) Net() model.Model { return m.net }

// SetKVF16 makes the KV caches created from now on (sessions, scheduler
// slots, Logits) hold fp16-rounded keys and values, llama.cpp's default
// cache type (see model.State.SetKVF16): perplexity then matches
// llama-perplexity's. The default is float32. Set it before the model is
// in use; it is not safe to call concurrently with evaluation.
func (m *Model) SetKVF16(on bool) { m.kvF16 = on }

// newState is net.NewState with the model's cache type.
func (m *Model) newState(nCtx int) (*model.State, error) {
	st, err := m.net.NewState(nCtx)
	if err == nil {
		st.SetKVF16(m.kvF16)
	}
	return st, err
}

// newBatchState is net.NewBatchState with the model's cache type.
func (m *Model) newBatchState(nCtx int) (*model.State, error) {
	st, err := m.net.NewBatchState(nCtx)
	if err == nil {
		st.SetKVF16(m.kvF16)
	}
	return st, err
}

// File is the parsed GGUF file behind the model.
func (m *Model) File() *gguf.File { return m.file }

// Tokenizer is the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// ContextSize is the context a session gets when none is asked for.
func (m *Model) ContextSize() int { return m.nCtx }

// Tokenize encodes text. addSpecial adds BOS/EOS as the vocabulary asks;
// parseSpecial turns special-token text such as "<s>" into its id.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	return m.tok.Encode([]byte(text), addSpecial, parseSpecial)
}

// Detokenize turns ids back into text.
func (m *Model) Detokenize(ids []int32) string { return string(m.tok.Decode(ids)) }

// Logits evaluates tokens from position 0 in one batched forward pass and
// returns one row of NVocab logits per token.
func (m *Model) Logits(tokens []int32) ([][]float32, error) {
	if len(tokens) == 0 {
		return nil, errors.New("no tokens to evaluate")
	}
	st, err := m.newState(len(tokens))
	if err != nil {
		return nil, err
	}
	nv := m.Config().NVocab
	flat := make([]float32, len(tokens)*nv)
	if err := m.net.Eval(st, tokens, flat, true); err != nil {
		return nil, err
	}
	rows := make([][]float32, len(tokens))
	for i := range rows {
		rows[i] = flat[i*nv : (i+1)*nv : (i+1)*nv]
	}
	return rows, nil
}

// Vocab is a tokenizer opened on its own, from any GGUF file that carries
// tokenizer metadata, including vocabulary-only files without weights.
type Vocab struct {
	*tokenizer.Tokenizer
	file *gguf.File
}

// OpenVocab opens the tokenizer of the GGUF file at path ("" for the
// embedded default model is handled by callers that have one).
func OpenVocab(path string) (*Vocab, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: tokenizer: %w", path, err)
	}
	return &Vocab{Tokenizer: tok, file: f}, nil
}

// Close releases the file.
func (v *Vocab) Close() error { return v.file.Close() }

// UseExactFloat switches every model in the process between the two
// numerics: false (the default) quantizes activations before each matmul as
// llama.cpp's CPU backend does, which is fast and tracks llama.cpp's own
// logits; true computes with float32 activations on exactly dequantized
// weights, which matches llama.cpp's F32-dequantized reference to ~1e-5 but
// is slower. It returns the previous setting.
func UseExactFloat(on bool) bool { return kernel.SetExactFloat(on) }
