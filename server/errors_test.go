package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// checkShape verifies that body is d's error shape for status.
func checkShape(t *testing.T, d dialect, status int, body []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Errorf("error body is not JSON: %s", body)
		return ""
	}
	switch d {
	case dialectOpenAI:
		e, ok := m["error"].(map[string]any)
		if !ok {
			t.Errorf("not an OpenAI error object: %s", body)
			return ""
		}
		msg, _ := e["message"].(string)
		if msg == "" || e["type"] == nil {
			t.Errorf("OpenAI error without message or type: %s", body)
		}
		for _, k := range []string{"param", "code"} {
			if _, ok := e[k]; !ok {
				t.Errorf("OpenAI error without %q: %s", k, body)
			}
		}
		return msg
	case dialectOllama:
		msg, ok := m["error"].(string)
		if !ok || msg == "" || len(m) != 1 {
			t.Errorf("not an Ollama error: %s", body)
		}
		return msg
	case dialectLlama:
		e, ok := m["error"].(map[string]any)
		if !ok || e["code"] != float64(status) || e["type"] == nil {
			t.Errorf("not a llama-server error for %d: %s", status, body)
			return ""
		}
		msg, _ := e["message"].(string)
		return msg
	default:
		msg, ok := m["error"].(string)
		if !ok || msg == "" || m["error_type"] == nil {
			t.Errorf("not a /generate error: %s", body)
		}
		return msg
	}
}

func TestBadRequests(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{cfg: Config{MaxBodyBytes: 8 << 10}})
	L, G := llamaName, gpt2Name
	long := strings.Repeat("word ", 600) // > 512 tokens
	chat := func(extra string) string {
		return `{"model":"` + L + `","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string // in the message
	}{
		// OpenAI
		{"syntax", "POST", "/v1/chat/completions", `{"model":`, 400, "JSON"},
		{"empty body", "POST", "/v1/chat/completions", ``, 400, "empty"},
		{"trailing data", "POST", "/v1/chat/completions", chat("") + `{}`, 400, "after"},
		{"max_tokens type", "POST", "/v1/chat/completions", chat(`,"max_tokens":"ten"`), 400, "max_tokens"},
		{"unknown field", "POST", "/v1/chat/completions", chat(`,"temprature":0.5`), 400, "temprature"},
		{"missing model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "model"},
		{"unknown model", "POST", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, 404, "nope"},
		{"path model", "POST", "/v1/chat/completions", `{"model":"../models/x","messages":[{"role":"user","content":"hi"}]}`, 400, "not paths"},
		{"messages type", "POST", "/v1/chat/completions", `{"model":"` + L + `","messages":"hi"}`, 400, "messages"},
		{"messages missing", "POST", "/v1/chat/completions", `{"model":"` + L + `"}`, 400, "messages"},
		{"messages empty", "POST", "/v1/chat/completions", `{"model":"` + L + `","messages":[]}`, 400, "empty"},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"` + L + `","messages":[{"role":"wizard","content":"hi"}]}`, 400, "wizard"},
		{"content type", "POST", "/v1/chat/completions", `{"model":"` + L + `","messages":[{"role":"user","content":42}]}`, 400, "content"},
		{"image part", "POST", "/v1/chat/completions", `{"model":"` + L + `","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "image_url"},
		{"max_tokens zero", "POST", "/v1/chat/completions", chat(`,"max_tokens":0`), 400, ">= 1"},
		{"max_tokens over context", "POST", "/v1/chat/completions", chat(`,"max_tokens":600`), 400, "600"},
		{"prompt over context", "POST", "/v1/completions", `{"model":"` + L + `","prompt":"` + long + `"}`, 400, "512"},
		{"temperature range", "POST", "/v1/chat/completions", chat(`,"temperature":3`), 400, "temperature"},
		{"top_p range", "POST", "/v1/chat/completions", chat(`,"top_p":1.5`), 400, "top_p"},
		{"n>1", "POST", "/v1/chat/completions", chat(`,"n":2`), 400, "n=2"},
		{"five stops", "POST", "/v1/chat/completions", chat(`,"stop":["a","b","c","d","e"]`), 400, "at most 4"},
		{"stop type", "POST", "/v1/chat/completions", chat(`,"stop":7`), 400, "stop"},
		{"logit_bias key", "POST", "/v1/chat/completions", chat(`,"logit_bias":{"abc":1}`), 400, "logit_bias"},
		{"stream type", "POST", "/v1/chat/completions", chat(`,"stream":"yes"`), 400, "stream"},
		{"response_format", "POST", "/v1/chat/completions", chat(`,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"frobnicate"}}}`), 400, "response_format"},
		{"response_format type", "POST", "/v1/chat/completions", chat(`,"response_format":{"type":"xml"}`), 400, "response_format"},
		{"tool_choice", "POST", "/v1/chat/completions", chat(`,"tool_choice":"always"`), 400, "tool_choice"},
		{"tool_choice without tools", "POST", "/v1/chat/completions", chat(`,"tool_choice":"required"`), 400, "tools"},
		{"tool_choice unknown function", "POST", "/v1/chat/completions", chat(`,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`), 400, "g"},
		{"tools type", "POST", "/v1/chat/completions", chat(`,"tools":{"name":"f"}`), 400, "tools"},
		{"prompt type", "POST", "/v1/completions", `{"model":"` + G + `","prompt":{"text":"hi"}}`, 400, "prompt"},
		{"prompt missing", "POST", "/v1/completions", `{"model":"` + G + `"}`, 400, "prompt"},
		{"token out of vocab", "POST", "/v1/completions", `{"model":"` + G + `","prompt":[1,99999999]}`, 400, "vocabulary"},
		{"gpt2 over context", "POST", "/v1/completions", `{"model":"` + G + `","prompt":"hi","max_tokens":200}`, 400, "128"},
		{"body too large", "POST", "/v1/completions", `{"model":"` + G + `","prompt":"` + strings.Repeat("x", 9000) + `"}`, 413, "limit"},
		{"unknown model id", "GET", "/v1/models/nope", ``, 404, "nope"},
		{"wrong method", "GET", "/v1/chat/completions", ``, 405, "POST"},
		{"no such route", "GET", "/v1/nothing", ``, 404, "nothing"},
		// Ollama
		{"ollama syntax", "POST", "/api/generate", `{"model":"` + L + `",`, 400, "JSON"},
		{"ollama missing model", "POST", "/api/generate", `{"prompt":"hi"}`, 400, "model is required"},
		{"ollama unknown model", "POST", "/api/generate", `{"model":"nope","prompt":"hi"}`, 404, "nope"},
		{"ollama option type", "POST", "/api/generate", `{"model":"` + L + `","prompt":"hi","options":{"temperature":"hot"}}`, 400, "temperature"},
		{"ollama stream type", "POST", "/api/generate", `{"model":"` + L + `","prompt":"hi","stream":"no"}`, 400, "stream"},
		{"ollama num_predict over context", "POST", "/api/generate", `{"model":"` + L + `","prompt":"hi","options":{"num_predict":1000}}`, 400, "1000"},
		{"ollama prompt over context", "POST", "/api/generate", `{"model":"` + L + `","prompt":"` + long + `"}`, 400, "512"},
		{"ollama keep_alive", "POST", "/api/generate", `{"model":"` + L + `","prompt":"hi","keep_alive":"forever"}`, 400, "keep_alive"},
		{"ollama format", "POST", "/api/generate", `{"model":"` + L + `","prompt":"hi","format":"yaml"}`, 400, "format"},
		{"ollama chat format schema", "POST", "/api/chat", `{"model":"` + L + `","messages":[{"role":"user","content":"hi"}],"format":{"type":"object","properties":{"a":{"type":"frobnicate"}}}}`, 400, "format"},
		{"ollama think", "POST", "/api/chat", `{"model":"` + L + `","messages":[{"role":"user","content":"hi"}],"think":true}`, 400, "thinking"},
		{"ollama images", "POST", "/api/generate", `{"model":"` + L + `","prompt":"hi","images":["aGk="]}`, 400, "images"},
		{"ollama chat role", "POST", "/api/chat", `{"model":"` + L + `","messages":[{"role":"wizard","content":"hi"}]}`, 400, "wizard"},
		{"ollama chat messages type", "POST", "/api/chat", `{"model":"` + L + `","messages":{"role":"user"}}`, 400, "messages"},
		{"ollama show unknown", "POST", "/api/show", `{"model":"nope"}`, 404, "nope"},
		{"ollama show missing", "POST", "/api/show", `{}`, 400, "model"},
		{"ollama wrong method", "POST", "/api/tags", `{}`, 405, "GET"},
		// llama-server
		{"completion prompt type", "POST", "/completion", `{"prompt":5}`, 400, "prompt"},
		{"completion prompt missing", "POST", "/completion", `{"n_predict":5}`, 400, "prompt"},
		{"completion n_predict type", "POST", "/completion", `{"prompt":"hi","n_predict":"x"}`, 400, "n_predict"},
		{"completion over context", "POST", "/completion", `{"prompt":"hi","n_predict":600}`, 400, "512"},
		{"completion unknown model", "POST", "/completion", `{"prompt":"hi","model":"nope"}`, 404, "nope"},
		{"completion top_k", "POST", "/completion", `{"prompt":"hi","top_k":-3}`, 400, "top_k"},
		{"completion grammar", "POST", "/completion", `{"prompt":"hi","grammar":"root ::= undefined-rule"}`, 400, "grammar"},
		{"completion json_schema", "POST", "/completion", `{"prompt":"hi","json_schema":{"type":"frobnicate"}}`, 400, "json_schema"},
		{"tokenize content type", "POST", "/tokenize", `{"content":12}`, 400, "content"},
		{"detokenize range", "POST", "/detokenize", `{"tokens":[-1]}`, 400, "vocabulary"},
		{"detokenize type", "POST", "/detokenize", `{"tokens":"1 2"}`, 400, "tokens"},
		// POST /generate
		{"generate missing prompt", "POST", "/generate", `{"max_tokens":5}`, 400, "prompt"},
		{"generate unknown field", "POST", "/generate", `{"prompt":"hi","max_token":5}`, 400, "max_token"},
		{"generate max_tokens", "POST", "/generate", `{"prompt":"hi","max_tokens":-1}`, 400, "max_tokens"},
		{"generate over context", "POST", "/generate", `{"prompt":"hi","max_tokens":1000}`, 400, "1000"},
		{"generate prompt type", "POST", "/generate", `{"prompt":["hi"]}`, 400, "prompt"},
		{"generate unknown model", "POST", "/generate", `{"prompt":"hi","model":"nope"}`, 404, "nope"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, ts, c.method, c.path, c.body)
			if r.status != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, r.status, c.status, r.body)
			}
			msg := checkShape(t, dialectOf(c.path), c.status, r.body)
			if strings.Contains(msg, "Common.") || strings.Contains(msg, "hfParams") {
				t.Errorf("message %q names a Go type", msg)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("message %q does not mention %q", msg, c.want)
			}
		})
	}
}

// TestContextMessageNumbers: the 400 for a request that does not fit says
// the numbers.
func TestContextMessageNumbers(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	r := post(t, ts, "/v1/completions", `{"model":"`+gpt2Name+`","prompt":"Hello world","max_tokens":127}`)
	expect(t, r, 400)
	msg := get(r.json(t), "error", "message").(string)
	for _, n := range []int{2, 127, 129, 128, 126} {
		if !strings.Contains(msg, fmt.Sprint(n)) {
			t.Errorf("message %q lacks %d", msg, n)
		}
	}
	if get(r.json(t), "error", "code") != "context_length_exceeded" {
		t.Errorf("code: %s", r.body)
	}
}
