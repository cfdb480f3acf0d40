package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/slm-dev/slm/engine"
)

// Embeddings: OpenAI POST /v1/embeddings, Ollama POST /api/embed and the
// legacy POST /api/embeddings, llama-server POST /embedding (and
// /embeddings). Every input is embedded in a sequence of its own (see
// engine.Model.Embed), so a text gets the same vector alone or in a batch;
// the inputs of one request share the forward passes.

func (s *Server) routeEmbed() {
	s.handle("POST /v1/embeddings", s.oaiEmbeddings)
	s.handle("POST /api/embed", s.ollamaEmbed)
	s.handle("POST /api/embeddings", s.ollamaEmbeddings)
	s.handle("POST /embedding", s.llamaEmbedding)
	s.handle("POST /embeddings", s.llamaEmbedding)
}

// maxEmbedInputs bounds the inputs of one request (OpenAI's limit).
const maxEmbedInputs = 2048

// embedInput is one input: text, or token ids when isIDs.
type embedInput struct {
	text  string
	ids   []int32
	isIDs bool
}

// parseEmbedInput reads an input field: a string, an array of strings, an
// array of token ids (one input) or an array of such arrays; tokens says
// whether ids are accepted. An absent field or an empty array is nil.
func parseEmbedInput(raw json.RawMessage, field string, tokens bool) ([]embedInput, error) {
	want := "a string or an array of strings"
	if tokens {
		want = "a string, an array of strings, an array of token ids or an array of arrays of token ids"
	}
	bad := &apiError{Status: http.StatusBadRequest, Param: field, Message: fmt.Sprintf("invalid type for %q: expected %s", field, want)}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return []embedInput{{text: str}}, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, bad
	}
	if len(items) == 0 {
		return nil, nil
	}
	if len(items) > maxEmbedInputs {
		return nil, &apiError{Status: http.StatusBadRequest, Param: field, Message: fmt.Sprintf("%q has %d inputs, more than the limit of %d", field, len(items), maxEmbedInputs)}
	}
	var ids []int32
	if json.Unmarshal(raw, &ids) == nil {
		if !tokens {
			return nil, bad
		}
		return []embedInput{{ids: ids, isIDs: true}}, nil
	}
	var strs []string
	if json.Unmarshal(raw, &strs) == nil {
		out := make([]embedInput, len(strs))
		for i, s := range strs {
			out[i] = embedInput{text: s}
		}
		return out, nil
	}
	var lists [][]int32
	if tokens && json.Unmarshal(raw, &lists) == nil {
		out := make([]embedInput, len(lists))
		for i, l := range lists {
			out[i] = embedInput{ids: l, isIDs: true}
		}
		return out, nil
	}
	return nil, bad
}

// embed tokenizes and embeds the inputs with l's model. It returns the
// vectors and the total of the inputs' tokens.
func (s *Server) embed(ctx context.Context, l *Lease, field string, inputs []embedInput, opts engine.EmbedOptions) ([][]float32, int, error) {
	m := l.Model
	if m == nil {
		return nil, 0, &apiError{Status: http.StatusBadRequest, Param: "model", Message: fmt.Sprintf("model %q does not support embeddings", l.Name)}
	}
	if opts.MaxTokens <= 0 || opts.MaxTokens > l.Gen.ContextSize() {
		opts.MaxTokens = l.Gen.ContextSize()
	}
	nv := m.Config().NVocab
	toks := make([][]int32, len(inputs))
	for i, in := range inputs {
		if in.isIDs {
			for _, id := range in.ids {
				if id < 0 || int(id) >= nv {
					return nil, 0, &apiError{Status: http.StatusBadRequest, Param: field,
						Message: fmt.Sprintf("input %d: token id %d is outside the vocabulary (0..%d)", i, id, nv-1)}
				}
			}
			toks[i] = in.ids
		} else {
			ids, err := m.Tokenize(in.text, true, true)
			if err != nil {
				return nil, 0, &apiError{Status: http.StatusBadRequest, Param: field, Message: fmt.Sprintf("input %d: %v", i, err)}
			}
			toks[i] = ids
		}
		if len(toks[i]) == 0 {
			return nil, 0, &apiError{Status: http.StatusBadRequest, Param: field,
				Message: fmt.Sprintf("input %d is empty: at least one token is needed", i)}
		}
	}
	vecs, counts, err := m.Embed(ctx, toks, opts)
	var tl *engine.TooLongError
	switch {
	case errors.As(err, &tl):
		return nil, 0, &apiError{Status: http.StatusBadRequest, Code: "context_length_exceeded", Param: field,
			Message: fmt.Sprintf("input %d has %d tokens, more than the model's context of %d tokens: shorten it (or truncate)", tl.Index, tl.Tokens, tl.Context)}
	case errors.Is(err, engine.ErrUnsupportedPooling):
		return nil, 0, &apiError{Status: http.StatusBadRequest, Param: "model", Message: fmt.Sprintf("model %q: %v", l.Name, err)}
	case err != nil:
		return nil, 0, err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	return vecs, total, nil
}

// OpenAI.

type oaiEmbeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"`
}

func (s *Server) oaiEmbeddings(w http.ResponseWriter, r *http.Request) error {
	var req oaiEmbeddingRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.Model == "" {
		return &apiError{Status: http.StatusBadRequest, Param: "model", Message: "you must provide a model parameter (GET /v1/models lists them)"}
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return &apiError{Status: http.StatusBadRequest, Param: "encoding_format",
			Message: fmt.Sprintf("invalid encoding_format %q: want \"float\" or \"base64\"", req.EncodingFormat)}
	}
	inputs, err := parseEmbedInput(req.Input, "input", true)
	if err != nil {
		return err
	}
	if len(req.Input) == 0 || string(bytes.TrimSpace(req.Input)) == "null" {
		return &apiError{Status: http.StatusBadRequest, Param: "input", Message: "you must provide an input parameter"}
	}
	if len(inputs) == 0 {
		return &apiError{Status: http.StatusBadRequest, Param: "input", Message: "\"input\" is empty: give a string or a non-empty array"}
	}
	for i, in := range inputs {
		if !in.isIDs && in.text == "" || in.isIDs && len(in.ids) == 0 {
			return &apiError{Status: http.StatusBadRequest, Param: "input", Message: fmt.Sprintf("input %d is empty", i)}
		}
	}
	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(nil)
	if req.Dimensions != nil && l.Model != nil && *req.Dimensions != l.Model.Config().NEmbd {
		return &apiError{Status: http.StatusBadRequest, Param: "dimensions",
			Message: fmt.Sprintf("dimensions=%d is not supported: this model's embeddings have %d dimensions", *req.Dimensions, l.Model.Config().NEmbd)}
	}
	vecs, total, err := s.embed(r.Context(), l, "input", inputs, engine.EmbedOptions{})
	if err != nil {
		return err
	}
	data := make([]map[string]any, len(vecs))
	for i, v := range vecs {
		var e any = v
		if req.EncodingFormat == "base64" {
			e = base64Floats(v)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": e}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   data,
		"model":  l.Name,
		"usage":  map[string]int{"prompt_tokens": total, "total_tokens": total},
	})
	return nil
}

// base64Floats is OpenAI's base64 encoding: the float32 values little-endian.
func base64Floats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Ollama.

type ollamaEmbedRequest struct {
	Model      string          `json:"model"`
	Input      json.RawMessage `json:"input"`
	Truncate   *bool           `json:"truncate"`
	KeepAlive  json.RawMessage `json:"keep_alive"`
	Options    *ollamaOptions  `json:"options"`
	Dimensions int             `json:"dimensions"`
}

func (s *Server) ollamaEmbed(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	var req ollamaEmbedRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.Model == "" {
		return errorf(http.StatusBadRequest, "model is required")
	}
	keep, err := parseKeepAlive(req.KeepAlive)
	if err != nil {
		return err
	}
	inputs, err := parseEmbedInput(req.Input, "input", false)
	if err != nil {
		return err
	}
	if len(inputs) == 1 && inputs[0].text == "" {
		inputs = nil // Ollama: an empty string loads the model and embeds nothing
	}
	if req.Dimensions < 0 {
		return errorf(http.StatusBadRequest, "invalid dimensions %d: want a positive number", req.Dimensions)
	}
	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(keep)
	opts := engine.EmbedOptions{Truncate: req.Truncate == nil || *req.Truncate}
	if req.Options != nil && req.Options.NumCtx != nil && *req.Options.NumCtx > 0 {
		opts.MaxTokens = *req.Options.NumCtx
	}
	vecs, total := [][]float32{}, 0
	if len(inputs) > 0 {
		if vecs, total, err = s.embed(r.Context(), l, "input", inputs, opts); err != nil {
			return ollamaEmbedError(err)
		}
	}
	if d := req.Dimensions; d > 0 && l.Model != nil {
		if n := l.Model.Config().NEmbd; d > n {
			return errorf(http.StatusBadRequest, "invalid dimensions %d: this model's embeddings have %d", d, n)
		}
		for i, v := range vecs { // Ollama: keep the first d values, normalize again
			vecs[i] = l2Normalize(v[:d])
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model":             req.Model,
		"embeddings":        vecs,
		"total_duration":    time.Since(start).Nanoseconds(),
		"load_duration":     l.LoadDuration.Nanoseconds(),
		"prompt_eval_count": total,
	})
	return nil
}

// ollamaEmbedError words a too-long input as Ollama does.
func ollamaEmbedError(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "context_length_exceeded" {
		return errorf(http.StatusBadRequest, "input exceeds maximum context length: %s", ae.Message)
	}
	return err
}

func l2Normalize(v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if ss == 0 {
		copy(out, v)
		return out
	}
	k := 1 / math.Sqrt(ss)
	for i, x := range v {
		out[i] = float32(float64(x) * k)
	}
	return out
}

type ollamaEmbeddingsRequest struct {
	Model     string          `json:"model"`
	Prompt    string          `json:"prompt"`
	KeepAlive json.RawMessage `json:"keep_alive"`
	Options   *ollamaOptions  `json:"options"`
}

// ollamaEmbeddings is Ollama's legacy route: one prompt, one vector, not
// normalized (as Ollama's /api/embeddings).
func (s *Server) ollamaEmbeddings(w http.ResponseWriter, r *http.Request) error {
	var req ollamaEmbeddingsRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.Model == "" {
		return errorf(http.StatusBadRequest, "model is required")
	}
	keep, err := parseKeepAlive(req.KeepAlive)
	if err != nil {
		return err
	}
	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(keep)
	if req.Prompt == "" {
		writeJSON(w, http.StatusOK, map[string]any{"embedding": []float32{}})
		return nil
	}
	opts := engine.EmbedOptions{Raw: true}
	if req.Options != nil && req.Options.NumCtx != nil && *req.Options.NumCtx > 0 {
		opts.MaxTokens = *req.Options.NumCtx
	}
	vecs, _, err := s.embed(r.Context(), l, "prompt", []embedInput{{text: req.Prompt}}, opts)
	if err != nil {
		return ollamaEmbedError(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"embedding": vecs[0]})
	return nil
}

// llama-server.

type llamaEmbeddingRequest struct {
	Model     string          `json:"model"`
	Content   json.RawMessage `json:"content"`
	Input     json.RawMessage `json:"input"`
	Normalize *int            `json:"embd_normalize"`
}

// llamaEmbedding is llama-server's /embedding: [{"index": i, "embedding":
// [vector]}] per input (one pooled vector each). embd_normalize: 2 (the
// default) L2-normalizes, -1 returns the raw vectors; other norms are not
// supported.
func (s *Server) llamaEmbedding(w http.ResponseWriter, r *http.Request) error {
	var req llamaEmbeddingRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	field, raw := "content", req.Content
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		field, raw = "input", req.Input
	}
	inputs, err := parseEmbedInput(raw, field, true)
	if err != nil {
		return err
	}
	if len(inputs) == 0 {
		return errorf(http.StatusBadRequest, "\"content\" is required: a string, an array of strings or of token ids")
	}
	opts := engine.EmbedOptions{}
	if req.Normalize != nil {
		switch *req.Normalize {
		case 2:
		case -1:
			opts.Raw = true
		default:
			return errorf(http.StatusBadRequest, "embd_normalize %d is not supported: want 2 (Euclidean) or -1 (none)", *req.Normalize)
		}
	}
	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(nil)
	vecs, _, err := s.embed(r.Context(), l, field, inputs, opts)
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(vecs))
	for i, v := range vecs {
		out[i] = map[string]any{"index": i, "embedding": [][]float32{v}}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
