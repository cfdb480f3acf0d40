package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/sample"
)

// This file holds what every dialect shares: sampling fields, the context
// check, running a generation through the Generator, and the streaming
// writers (SSE and NDJSON).

// sampling is the union of the sampling fields the dialects accept; nil
// means "not given" (the llama.cpp default from sample.DefaultParams).
type sampling struct {
	Temperature      *float64
	TopK             *int
	TopP             *float64
	MinP             *float64
	Seed             *int64
	RepeatPenalty    *float64
	RepeatLastN      *int
	PresencePenalty  *float64
	FrequencyPenalty *float64
	LogitBias        map[int32]float32
}

// params turns the given fields into sampler parameters, checking ranges.
func (s *sampling) params() (sample.Params, error) {
	p := sample.DefaultParams()
	finite := func(name string, v *float64, lo, hi float64) (float32, error) {
		if math.IsNaN(*v) || *v < lo || *v > hi {
			return 0, &apiError{Status: http.StatusBadRequest, Param: name,
				Message: fmt.Sprintf("invalid %q: %g is outside [%g, %g]", name, *v, lo, hi)}
		}
		return float32(*v), nil
	}
	var err error
	if s.Temperature != nil {
		if p.Temperature, err = finite("temperature", s.Temperature, 0, 100); err != nil {
			return p, err
		}
	}
	if s.TopK != nil {
		if *s.TopK < 0 {
			return p, &apiError{Status: http.StatusBadRequest, Param: "top_k", Message: fmt.Sprintf("invalid \"top_k\": %d is negative", *s.TopK)}
		}
		p.TopK = *s.TopK
	}
	if s.TopP != nil {
		if p.TopP, err = finite("top_p", s.TopP, 0, 1); err != nil {
			return p, err
		}
		if p.TopP == 0 { // OpenAI allows 0: keep only the most likely token
			p.TopP, p.TopK = 1, 1
		}
	}
	if s.MinP != nil {
		if p.MinP, err = finite("min_p", s.MinP, 0, 1); err != nil {
			return p, err
		}
	}
	if s.Seed != nil {
		p.Seed = *s.Seed
	}
	if s.RepeatPenalty != nil {
		if p.RepeatPenalty, err = finite("repeat_penalty", s.RepeatPenalty, 1e-6, 100); err != nil {
			return p, err
		}
	}
	if s.RepeatLastN != nil {
		if *s.RepeatLastN < -1 {
			return p, &apiError{Status: http.StatusBadRequest, Param: "repeat_last_n", Message: fmt.Sprintf("invalid \"repeat_last_n\": %d", *s.RepeatLastN)}
		}
		p.RepeatLastN = *s.RepeatLastN
	}
	if s.PresencePenalty != nil {
		if p.PresencePenalty, err = finite("presence_penalty", s.PresencePenalty, -2, 2); err != nil {
			return p, err
		}
	}
	if s.FrequencyPenalty != nil {
		if p.FrequencyPenalty, err = finite("frequency_penalty", s.FrequencyPenalty, -2, 2); err != nil {
			return p, err
		}
	}
	p.LogitBias = s.LogitBias
	return p, nil
}

// checkFit is the context check every dialect makes before queueing: the
// prompt, plus max new tokens when bounded, must fit. It never truncates.
func checkFit(promptTokens, maxTokens, nCtx int, maxName string) error {
	if promptTokens == 0 {
		return &apiError{Status: http.StatusBadRequest, Param: "prompt",
			Message: "the prompt is empty and the model adds no BOS token: at least one token is needed"}
	}
	if promptTokens >= nCtx {
		return &apiError{Status: http.StatusBadRequest, Code: "context_length_exceeded",
			Message: fmt.Sprintf("the prompt has %d tokens but the model's context holds %d (at least one more is needed to generate): shorten the prompt", promptTokens, nCtx)}
	}
	if maxTokens > 0 && promptTokens+maxTokens > nCtx {
		return &apiError{Status: http.StatusBadRequest, Code: "context_length_exceeded", Param: maxName,
			Message: fmt.Sprintf("the prompt's %d tokens plus %s=%d make %d, more than the model's context of %d tokens: lower %s to at most %d or shorten the prompt",
				promptTokens, maxName, maxTokens, promptTokens+maxTokens, nCtx, maxName, nCtx-promptTokens)}
	}
	return nil
}

// acquire resolves and loads the requested model.
func (s *Server) acquire(ctx context.Context, name string) (*Lease, error) {
	l, err := s.models.Acquire(ctx, name)
	if err != nil {
		return nil, modelError(err, name)
	}
	return l, nil
}

// generate runs one generation and accounts for it.
// A constrained request (opts.Constraint is a *guard) is checked token by
// token: text the constraint did not accept never reaches fn.
func (s *Server) generate(ctx context.Context, l *Lease, prompt []int32, opts engine.Options, fn func(engine.Token) error) (engine.Result, error) {
	g, _ := opts.Constraint.(*guard)
	if g != nil {
		fn = guardFn(g, fn)
	}
	res, err := l.Gen.Generate(ctx, prompt, opts, fn)
	if g != nil && err == nil && int64(len(res.Tokens)) > g.accepted.Load() {
		err = errUnconstrained
	}
	s.metrics.generation(res)
	return res, genError(constraintError(err))
}

// genError maps a Generator's errors to HTTP errors.
func genError(err error) error {
	var ae *apiError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, ErrBusy):
		return &apiError{Status: http.StatusServiceUnavailable, RetryAfter: 1, Message: err.Error()}
	case errors.Is(err, engine.ErrContextFull):
		return &apiError{Status: http.StatusBadRequest, Code: "context_length_exceeded", Message: err.Error()}
	case errors.Is(err, sample.ErrInvalidParams):
		return &apiError{Status: http.StatusBadRequest, Message: err.Error()}
	}
	return err
}

// stream writes a streaming response: SSE ("data: …\n\n") or NDJSON. The
// status line and headers go out with the first event, so an error that
// happens before any token (queue full, bad parameters) still gets a proper
// status. A failed write (the client went away) is returned, which stops
// the generation.
type stream struct {
	w       http.ResponseWriter
	sse     bool
	started bool
	buf     bytes.Buffer
}

func newStream(w http.ResponseWriter, sse bool) *stream { return &stream{w: w, sse: sse} }

func (st *stream) start() {
	if st.started {
		return
	}
	st.started = true
	h := st.w.Header()
	if st.sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	st.w.WriteHeader(http.StatusOK)
}

// send writes one event.
func (st *stream) send(v any) error {
	st.start()
	st.buf.Reset()
	if st.sse {
		st.buf.WriteString("data: ")
	}
	enc := json.NewEncoder(&st.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	if st.sse {
		st.buf.WriteByte('\n')
	}
	return st.flush()
}

// raw writes text as is (e.g. "data: [DONE]\n\n").
func (st *stream) raw(s string) error {
	st.start()
	st.buf.Reset()
	st.buf.WriteString(s)
	return st.flush()
}

func (st *stream) flush() error {
	if _, err := st.w.Write(st.buf.Bytes()); err != nil {
		return err
	}
	return http.NewResponseController(st.w).Flush()
}

// isCanceled reports a generation stopped because the client went away.
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// parseKeepAlive parses Ollama's keep_alive: a duration string ("5m",
// "-1s"), or a number of seconds (as a number or a string). Negative means
// forever, 0 unload at once.
func parseKeepAlive(raw json.RawMessage) (*time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	bad := &apiError{Status: http.StatusBadRequest, Param: "keep_alive",
		Message: fmt.Sprintf("invalid keep_alive %s: want a duration such as \"5m\", \"1h\", \"-1\" or a number of seconds", raw)}
	var d time.Duration
	var num float64
	var str string
	switch {
	case json.Unmarshal(raw, &num) == nil:
		d = time.Duration(num * float64(time.Second))
	case json.Unmarshal(raw, &str) == nil:
		str = strings.TrimSpace(str)
		if f, err := strconv.ParseFloat(str, 64); err == nil {
			d = time.Duration(f * float64(time.Second))
		} else if d, err = time.ParseDuration(str); err != nil {
			return nil, bad
		}
	default:
		return nil, bad
	}
	if d < 0 {
		d = -1
	}
	return &d, nil
}

// stopList parses a "stop" field: a string or an array of strings.
func stopList(raw json.RawMessage, name string) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Param: name,
			Message: fmt.Sprintf("invalid type for %q: expected a string or an array of strings", name)}
	}
	return many, nil
}

// logitBias parses {"token id": bias}.
func logitBias(raw map[string]float64, nVocab int) (map[int32]float32, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[int32]float32, len(raw))
	for k, v := range raw {
		id, err := strconv.ParseInt(k, 10, 32)
		if err != nil || id < 0 || int(id) >= nVocab {
			return nil, &apiError{Status: http.StatusBadRequest, Param: "logit_bias",
				Message: fmt.Sprintf("invalid logit_bias key %q: want a token id in 0..%d", k, nVocab-1)}
		}
		if math.IsNaN(v) || v > 100 || v < -100 {
			return nil, &apiError{Status: http.StatusBadRequest, Param: "logit_bias",
				Message: fmt.Sprintf("invalid logit_bias value %g for token %d: want -100..100", v, id)}
		}
		b := float32(v)
		if v == -100 {
			b = float32(math.Inf(-1)) // OpenAI: -100 bans the token
		}
		out[int32(id)] = b
	}
	return out, nil
}
