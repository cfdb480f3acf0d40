package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slm-dev/slm/engine"
)

// fakeGen is a Generator with no model behind it: the server must work
// with any backend (a remote endpoint, the hybrid router) through the seam.
// Tokens are bytes + 3; it "generates" the prompt's text reversed.
type fakeGen struct {
	mode string // "", "fail" (error after two tokens), "busy", "panic"
}

func (f *fakeGen) Tokenize(text string, addSpecial, _ bool) ([]int32, error) {
	var ids []int32
	if addSpecial {
		ids = append(ids, 1)
	}
	for _, b := range []byte(text) {
		ids = append(ids, int32(b)+3)
	}
	return ids, nil
}

func (f *fakeGen) Detokenize(ids []int32) string {
	var b []byte
	for _, id := range ids {
		if id >= 3 {
			b = append(b, byte(id-3))
		}
	}
	return string(b)
}

func (f *fakeGen) VocabSize() int   { return 259 }
func (f *fakeGen) ContextSize() int { return 256 }

func (f *fakeGen) Generate(ctx context.Context, prompt []int32, opts engine.Options, fn func(engine.Token) error) (engine.Result, error) {
	res := engine.Result{PromptTokens: len(prompt), Reason: engine.StopLength}
	switch f.mode {
	case "busy":
		return engine.Result{}, ErrBusy
	case "panic":
		panic("backend exploded")
	}
	for i := len(prompt) - 1; i >= 0 && (opts.MaxTokens <= 0 || len(res.Tokens) < opts.MaxTokens); i-- {
		if f.mode == "fail" && len(res.Tokens) == 2 {
			return res, errors.New("the remote endpoint hung up")
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		id := prompt[i]
		res.Tokens = append(res.Tokens, id)
		if fn != nil {
			if err := fn(engine.Token{ID: id, Text: []byte(f.Detokenize([]int32{id}))}); err != nil {
				return res, err
			}
		}
	}
	res.Text = f.Detokenize(res.Tokens)
	return res, nil
}

func newFakeServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts, _, _ := newTestServer(t, testOpts{mcfg: ManagerConfig{Sources: []ModelSource{
		{Name: "fake", Gen: &fakeGen{}},
		{Name: "fail", Gen: &fakeGen{mode: "fail"}},
		{Name: "busy", Gen: &fakeGen{mode: "busy"}},
		{Name: "panic", Gen: &fakeGen{mode: "panic"}},
	}}})
	return ts
}

func TestGeneratorSeam(t *testing.T) {
	ts := newFakeServer(t)
	r := post(t, ts, "/v1/completions", `{"model":"fake","prompt":"abc","max_tokens":3}`)
	expect(t, r, 200)
	if got := get(r.json(t), "choices", 0, "text"); got != "cba" {
		t.Errorf("fake backend through OpenAI: %q", got)
	}
	r = post(t, ts, "/generate", `{"prompt":"hello","max_tokens":5,"model":"fake"}`)
	expect(t, r, 200)
	if string(r.body) != `[{"generated_text":"helloolleh"}]`+"\n" {
		t.Errorf("/generate: %s", r.body)
	}
	r = do(t, ts, "GET", "/api/tags", "")
	expect(t, r, 200)
	if n := len(r.json(t)["models"].([]any)); n != 4 {
		t.Errorf("/api/tags lists %d backends: %s", n, r.body)
	}
	r = do(t, ts, "GET", "/api/ps", "")
	expect(t, r, 200)
}

// TestStreamErrors: a backend failing mid-stream ends the stream with the
// dialect's error event; before any token, the error is the response.
func TestStreamErrors(t *testing.T) {
	ts := newFakeServer(t)

	r := post(t, ts, "/v1/chat/completions", `{"model":"fail","messages":[{"role":"user","content":"hello"}],"stream":true}`)
	expect(t, r, 200)
	ev := sseEvents(t, r.body)
	if ev[len(ev)-1] != "[DONE]" || !strings.Contains(ev[len(ev)-2], `"error"`) || !strings.Contains(ev[len(ev)-2], "hung up") {
		t.Errorf("OpenAI stream error: %q", ev)
	}
	r = post(t, ts, "/v1/chat/completions", `{"model":"fail","messages":[{"role":"user","content":"hello"}]}`)
	expect(t, r, 500)
	checkShape(t, dialectOpenAI, 500, r.body)

	r = post(t, ts, "/api/generate", `{"model":"fail","prompt":"hello"}`)
	expect(t, r, 200)
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	var last map[string]any
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if !strings.Contains(last["error"].(string), "hung up") {
		t.Errorf("Ollama stream error: %s", r.body)
	}

	r = post(t, ts, "/completion", `{"model":"fail","prompt":"hello","stream":true}`)
	expect(t, r, 200)
	ev = sseEvents(t, r.body)
	if !strings.Contains(ev[len(ev)-1], `"error":{"code":500`) {
		t.Errorf("llama-server stream error: %q", ev)
	}

	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"busy","messages":[{"role":"user","content":"x"}],"stream":true}`},
		{"/v1/completions", `{"model":"busy","prompt":"x"}`},
		{"/api/chat", `{"model":"busy","messages":[{"role":"user","content":"x"}]}`},
		{"/completion", `{"model":"busy","prompt":"x","stream":true}`},
		{"/generate", `{"model":"busy","prompt":"x"}`},
	} {
		r := post(t, ts, c.path, c.body)
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Errorf("%s busy: %d %v", c.path, r.status, r.header)
		}
		checkShape(t, dialectOf(c.path), 503, r.body)
	}

	r = post(t, ts, "/v1/completions", `{"model":"panic","prompt":"x"}`)
	expect(t, r, 500)
	checkShape(t, dialectOpenAI, 500, r.body)
	expect(t, post(t, ts, "/v1/completions", `{"model":"fake","prompt":"x"}`), 200)
}
