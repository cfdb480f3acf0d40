package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/grammar"
)

// Structured output fails closed: a schema or grammar that does not compile
// is a 400 in the route's dialect, and a backend that does not apply the
// constraint (it generates a token the constraint never saw) is stopped
// with a 500 before that token reaches the client: never unconstrained
// text when a format was asked for.

// guard wraps a request's constraint and counts the tokens it accepted.
type guard struct {
	c        engine.Constraint
	accepted atomic.Int64
}

func newGuard(c engine.Constraint) *guard { return &guard{c: c} }

func (g *guard) Mask(logits []float32) { g.c.Mask(logits) }
func (g *guard) Done() bool            { return g.c.Done() }
func (g *guard) Accept(tok int32) error {
	g.accepted.Add(1)
	return g.c.Accept(tok)
}

var errUnconstrained = &apiError{Status: http.StatusInternalServerError,
	Message: "the model's backend does not apply output constraints (grammar, JSON schema, forced tool call): refusing to return unconstrained text"}

// guardFn checks, before each token reaches fn, that the constraint saw it.
func guardFn(g *guard, fn func(engine.Token) error) func(engine.Token) error {
	var seen int64
	return func(t engine.Token) error {
		if t.ID >= 0 {
			seen++
			if seen > g.accepted.Load() {
				return errUnconstrained
			}
		}
		if fn != nil {
			return fn(t)
		}
		return nil
	}
}

// schemaError is the 400 for a format that does not compile.
func schemaError(param string, err error) error {
	return &apiError{Status: http.StatusBadRequest, Param: param,
		Message: fmt.Sprintf("invalid %q: %v", param, err)}
}

// responseFormat compiles OpenAI's response_format (nil: free text).
func responseFormat(raw json.RawMessage) (*grammar.Grammar, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	g, err := grammar.ResponseFormat(raw)
	if err != nil {
		return nil, schemaError("response_format", err)
	}
	return g, nil
}

// ollamaFormat compiles Ollama's format: "json" or a JSON schema.
func ollamaFormat(raw json.RawMessage) (*grammar.Grammar, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	g, err := grammar.OllamaFormat(raw)
	if err != nil {
		return nil, schemaError("format", err)
	}
	return g, nil
}

// llamaGrammar compiles llama-server's grammar (GBNF) or json_schema.
func llamaGrammar(gbnf string, schema json.RawMessage) (*grammar.Grammar, string, error) {
	hasSchema := len(schema) > 0 && string(schema) != "null"
	switch {
	case gbnf != "" && hasSchema:
		return nil, "", &apiError{Status: http.StatusBadRequest, Param: "grammar",
			Message: "give \"grammar\" or \"json_schema\", not both"}
	case gbnf != "":
		g, err := grammar.CompileGBNF(gbnf)
		if err != nil {
			return nil, "", schemaError("grammar", err)
		}
		return g, "grammar", nil
	case hasSchema:
		g, err := grammar.CompileJSONSchema(schema)
		if err != nil {
			return nil, "", schemaError("json_schema", err)
		}
		return g, "json_schema", nil
	}
	return nil, "", nil
}

// constrain sets opts.Constraint to g's matcher over the leased model's
// vocabulary.
func (s *Server) constrain(l *Lease, g *grammar.Grammar, opts *engine.Options) {
	if g != nil {
		opts.Constraint = newGuard(g.Matcher(s.profile(l).vocabulary()))
	}
}

// constraintError maps the engine's constraint failures.
func constraintError(err error) error {
	if errors.Is(err, engine.ErrNoAllowedToken) {
		return &apiError{Status: http.StatusInternalServerError,
			Message: "constrained generation reached a state where the grammar allows no token of the model's vocabulary: " + err.Error()}
	}
	return err
}
