package grammar

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestResponseFormats(t *testing.T) {
	for raw, want := range map[string]string{
		``:                       "nil",
		`{"type":"text"}`:        "nil",
		`{"type":"json_object"}`: `{"a": 1}`,
		`{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]},"strict":true}}`: `{"n": 3}`,
	} {
		g, err := ResponseFormat(json.RawMessage(raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if (g == nil) != (want == "nil") || g != nil && !accepts(g, want) {
			t.Errorf("%s: %v", raw, g)
		}
	}
	for _, raw := range []string{`{"type":"xml"}`, `{"type":"json_schema"}`, `{"type":"json_schema","json_schema":{"schema":{"type":"nope"}}}`, `[`} {
		if _, err := ResponseFormat(json.RawMessage(raw)); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: %v", raw, err)
		}
	}
	if g, err := OllamaFormat(json.RawMessage(`"json"`)); err != nil || !accepts(g, `{}`) {
		t.Error("ollama json", err)
	}
	if g, err := OllamaFormat(json.RawMessage(`{"type":"array","items":{"type":"boolean"}}`)); err != nil || !accepts(g, `[true]`) || accepts(g, `{}`) {
		t.Error("ollama schema", err)
	}
	if g, err := OllamaFormat(nil); g != nil || err != nil {
		t.Error("ollama empty")
	}
	for _, raw := range []string{`"yaml"`, `5`, `{"type":5}`} {
		if _, err := OllamaFormat(json.RawMessage(raw)); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: %v", raw, err)
		}
	}
}
