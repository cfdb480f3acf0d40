package server

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// lpTok is one token's logprobs as a route reports it, normalized.
type lpTok struct {
	Token   string
	Logprob float64
	Bytes   []int
	Top     []lpTok
}

// checkEntries checks the properties every dialect shares: greedy tokens
// are the first alternative, alternatives are sorted and sum to at most 1,
// bytes spell the token.
func checkEntries(t *testing.T, route string, es []lpTok, nTop int, greedy bool) {
	t.Helper()
	if len(es) == 0 {
		t.Fatalf("%s: no logprobs", route)
	}
	for i, e := range es {
		if e.Logprob > 0 || math.IsNaN(e.Logprob) {
			t.Errorf("%s token %d: logprob %v", route, i, e.Logprob)
		}
		if e.Bytes != nil {
			b := make([]byte, len(e.Bytes))
			for j, c := range e.Bytes {
				b[j] = byte(c)
			}
			if string(b) != e.Token && !strings.HasPrefix(e.Token, "bytes:") {
				t.Errorf("%s token %d: bytes %v do not spell %q", route, i, e.Bytes, e.Token)
			}
		}
		if len(e.Top) != nTop {
			t.Errorf("%s token %d: %d alternatives, want %d", route, i, len(e.Top), nTop)
			continue
		}
		sum := 0.0
		for j, a := range e.Top {
			sum += math.Exp(a.Logprob)
			if j > 0 && a.Logprob > e.Top[j-1].Logprob {
				t.Errorf("%s token %d: alternatives not sorted", route, i)
			}
		}
		if sum > 1+1e-4 {
			t.Errorf("%s token %d: alternatives sum to %v", route, i, sum)
		}
		if greedy && nTop > 0 && (e.Top[0].Token != e.Token || math.Abs(e.Top[0].Logprob-e.Logprob) > 1e-6) {
			t.Errorf("%s token %d: greedy token %q %v is not the best alternative %+v", route, i, e.Token, e.Logprob, e.Top[0])
		}
	}
}

func decodeInto(t *testing.T, v any, out any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

type oaiLP struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
	Top     []oaiLP `json:"top_logprobs"`
}

func (o oaiLP) norm() lpTok {
	e := lpTok{Token: o.Token, Logprob: o.Logprob, Bytes: o.Bytes}
	for _, a := range o.Top {
		e.Top = append(e.Top, a.norm())
	}
	return e
}

func sameEntries(t *testing.T, route string, a, b []lpTok) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d entries streamed, %d not", route, len(a), len(b))
	}
	for i := range a {
		if a[i].Token != b[i].Token || a[i].Logprob != b[i].Logprob || len(a[i].Top) != len(b[i].Top) {
			t.Errorf("%s token %d: streamed %+v, not streamed %+v", route, i, a[i], b[i])
		}
	}
}

func TestOpenAIChatLogprobs(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	body := func(extra string) string {
		return `{"model":"` + llamaName + `","messages":[{"role":"user","content":"Hello"}],"max_tokens":8,"temperature":0,"logprobs":true,"top_logprobs":3` + extra + `}`
	}
	r := post(t, ts, "/v1/chat/completions", body(""))
	expect(t, r, 200)
	m := r.json(t)
	var lp struct {
		Content []oaiLP `json:"content"`
	}
	decodeInto(t, get(m, "choices", 0, "logprobs"), &lp)
	var whole []lpTok
	for _, e := range lp.Content {
		whole = append(whole, e.norm())
	}
	checkEntries(t, "chat", whole, 3, true)
	if _, ok := get(m, "choices", 0, "logprobs").(map[string]any)["refusal"]; !ok {
		t.Errorf("no refusal field: %s", r.body)
	}

	// Streamed: the same entries, spread over the chunks.
	r = post(t, ts, "/v1/chat/completions", body(`,"stream":true`))
	expect(t, r, 200)
	var streamed []lpTok
	for _, ev := range sseEvents(t, r.body) {
		if ev == "[DONE]" {
			continue
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		if v := get(c, "choices", 0, "logprobs"); v != nil {
			decodeInto(t, v, &lp)
			for _, e := range lp.Content {
				streamed = append(streamed, e.norm())
			}
		}
	}
	sameEntries(t, "chat stream", streamed, whole)

	// Without logprobs the field is null; top_logprobs 0 gives the token only.
	r = post(t, ts, "/v1/chat/completions", `{"model":"`+llamaName+`","messages":[{"role":"user","content":"Hello"}],"max_tokens":3,"temperature":0}`)
	expect(t, r, 200)
	if v, ok := get(r.json(t), "choices", 0).(map[string]any)["logprobs"]; !ok || v != nil {
		t.Errorf("logprobs without asking: %s", r.body)
	}
	r = post(t, ts, "/v1/chat/completions", `{"model":"`+llamaName+`","messages":[{"role":"user","content":"Hello"}],"max_tokens":3,"temperature":0,"logprobs":true}`)
	expect(t, r, 200)
	decodeInto(t, get(r.json(t), "choices", 0, "logprobs"), &lp)
	var only []lpTok
	for _, e := range lp.Content {
		only = append(only, e.norm())
	}
	checkEntries(t, "chat logprobs only", only, 0, true)
	if !strings.Contains(string(r.body), `"top_logprobs":[]`) {
		t.Errorf("top_logprobs should be an empty list: %s", r.body)
	}

	// Bounds.
	for _, c := range []struct{ extra, param string }{
		{`,"logprobs":true,"top_logprobs":21`, "top_logprobs"},
		{`,"logprobs":true,"top_logprobs":-1`, "top_logprobs"},
		{`,"top_logprobs":2`, "top_logprobs"},
	} {
		r := post(t, ts, "/v1/chat/completions", `{"model":"`+llamaName+`","messages":[{"role":"user","content":"Hello"}],"max_tokens":3`+c.extra+`}`)
		expect(t, r, 400)
		if get(r.json(t), "error", "param") != c.param {
			t.Errorf("%s: %s", c.extra, r.body)
		}
	}
}

func TestOpenAICompletionLogprobs(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	type legacy struct {
		Tokens        []string             `json:"tokens"`
		TokenLogprobs []float64            `json:"token_logprobs"`
		TopLogprobs   []map[string]float64 `json:"top_logprobs"`
		TextOffset    []int                `json:"text_offset"`
	}
	norm := func(l legacy) []lpTok {
		var out []lpTok
		for i := range l.Tokens {
			out = append(out, lpTok{Token: l.Tokens[i], Logprob: l.TokenLogprobs[i]})
		}
		return out
	}
	body := `{"model":"` + llamaName + `","prompt":"Once upon a time","max_tokens":8,"temperature":0,"logprobs":4`
	r := post(t, ts, "/v1/completions", body+`}`)
	expect(t, r, 200)
	m := r.json(t)
	var l legacy
	decodeInto(t, get(m, "choices", 0, "logprobs"), &l)
	text := get(m, "choices", 0, "text").(string)
	if len(l.Tokens) != 8 || len(l.TokenLogprobs) != 8 || len(l.TopLogprobs) != 8 || len(l.TextOffset) != 8 {
		t.Fatalf("legacy logprobs: %s", r.body)
	}
	if strings.Join(l.Tokens, "") != text {
		t.Errorf("tokens %q do not spell the text %q", l.Tokens, text)
	}
	for i, tok := range l.Tokens {
		if !strings.HasPrefix(text[l.TextOffset[i]:], tok) {
			t.Errorf("text_offset[%d] = %d does not point at %q", i, l.TextOffset[i], tok)
		}
		best, bestLP := "", math.Inf(-1)
		for k, v := range l.TopLogprobs[i] {
			if v > bestLP {
				best, bestLP = k, v
			}
		}
		if len(l.TopLogprobs[i]) == 0 || len(l.TopLogprobs[i]) > 4 || best != tok || bestLP != l.TokenLogprobs[i] {
			t.Errorf("token %d %q %v: top %v", i, tok, l.TokenLogprobs[i], l.TopLogprobs[i])
		}
	}
	whole := norm(l)

	// Echo shifts the offsets by the prompt.
	r = post(t, ts, "/v1/completions", body+`,"echo":true}`)
	expect(t, r, 200)
	var le legacy
	decodeInto(t, get(r.json(t), "choices", 0, "logprobs"), &le)
	if len(le.TextOffset) == 0 || le.TextOffset[0] != len("Once upon a time") {
		t.Errorf("echo offsets %v", le.TextOffset)
	}

	r = post(t, ts, "/v1/completions", body+`,"stream":true}`)
	expect(t, r, 200)
	var streamed []lpTok
	for _, ev := range sseEvents(t, r.body) {
		if ev == "[DONE]" {
			continue
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		if v := get(c, "choices", 0, "logprobs"); v != nil {
			var part legacy
			decodeInto(t, v, &part)
			streamed = append(streamed, norm(part)...)
		}
	}
	sameEntries(t, "completions stream", streamed, whole)

	r = post(t, ts, "/v1/completions", `{"model":"`+llamaName+`","prompt":"x","logprobs":21}`)
	expect(t, r, 400)
	if get(r.json(t), "error", "param") != "logprobs" {
		t.Errorf("logprobs 21: %s", r.body)
	}
}

func TestOllamaLogprobs(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	for _, route := range []string{"/api/generate", "/api/chat"} {
		body := `{"model":"` + llamaName + `","prompt":"Why is the sky blue?","options":{"temperature":0,"num_predict":6},"logprobs":true,"top_logprobs":2`
		if route == "/api/chat" {
			body = `{"model":"` + llamaName + `","messages":[{"role":"user","content":"Why is the sky blue?"}],"options":{"temperature":0,"num_predict":6},"logprobs":true,"top_logprobs":2`
		}
		r := post(t, ts, route, body+`,"stream":false}`)
		expect(t, r, 200)
		var whole struct {
			Logprobs []oaiLP `json:"logprobs"`
		}
		if err := json.Unmarshal(r.body, &whole); err != nil {
			t.Fatal(err)
		}
		var es []lpTok
		for _, e := range whole.Logprobs {
			es = append(es, e.norm())
		}
		checkEntries(t, route, es, 2, true)
		if len(es) != 6 {
			t.Errorf("%s: %d entries for 6 tokens", route, len(es))
		}

		r = post(t, ts, route, body+`}`)
		expect(t, r, 200)
		var streamed []lpTok
		for _, line := range strings.Split(strings.TrimSpace(string(r.body)), "\n") {
			var part struct {
				Logprobs []oaiLP `json:"logprobs"`
			}
			if err := json.Unmarshal([]byte(line), &part); err != nil {
				t.Fatal(err)
			}
			for _, e := range part.Logprobs {
				streamed = append(streamed, e.norm())
			}
		}
		sameEntries(t, route+" stream", streamed, es)

		r = post(t, ts, route, strings.Replace(body, `"top_logprobs":2`, `"top_logprobs":21`, 1)+`}`)
		expect(t, r, 400)
		if msg, _ := r.json(t)["error"].(string); !strings.Contains(msg, "top_logprobs") {
			t.Errorf("%s top_logprobs 21: %s", route, r.body)
		}
	}
	// Without logprobs: no field.
	r := post(t, ts, "/api/generate", `{"model":"`+llamaName+`","prompt":"Hi","stream":false,"options":{"num_predict":2}}`)
	expect(t, r, 200)
	if _, ok := r.json(t)["logprobs"]; ok {
		t.Errorf("logprobs without asking: %s", r.body)
	}
}

func TestLlamaServerNProbs(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	type prob struct {
		ID      int32   `json:"id"`
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
		Bytes   []int   `json:"bytes"`
		Top     []prob  `json:"top_logprobs"`
	}
	norm := func(ps []prob) []lpTok {
		var out []lpTok
		for _, p := range ps {
			e := lpTok{Token: p.Token, Logprob: p.Logprob, Bytes: p.Bytes}
			for _, a := range p.Top {
				e.Top = append(e.Top, lpTok{Token: a.Token, Logprob: a.Logprob})
			}
			out = append(out, e)
		}
		return out
	}
	body := `{"prompt":"Hello","n_predict":6,"temperature":0,"n_probs":5`
	r := post(t, ts, "/completion", body+`}`)
	expect(t, r, 200)
	var whole struct {
		Probs []prob `json:"completion_probabilities"`
	}
	if err := json.Unmarshal(r.body, &whole); err != nil {
		t.Fatal(err)
	}
	es := norm(whole.Probs)
	checkEntries(t, "/completion", es, 5, true)
	for i, p := range whole.Probs {
		if p.Top[0].ID != p.ID {
			t.Errorf("token %d: id %d, best alternative %d", i, p.ID, p.Top[0].ID)
		}
	}

	r = post(t, ts, "/completion", body+`,"stream":true}`)
	expect(t, r, 200)
	var streamed []lpTok
	for _, ev := range sseEvents(t, r.body) {
		var part struct {
			Probs []prob `json:"completion_probabilities"`
		}
		if err := json.Unmarshal([]byte(ev), &part); err != nil {
			t.Fatal(err)
		}
		streamed = append(streamed, norm(part.Probs)...)
	}
	sameEntries(t, "/completion stream", streamed, es)

	for _, bad := range []string{`,"n_probs":21}`, `,"n_probs":-1}`, `,"n_probs":2,"post_sampling_probs":true}`} {
		r = post(t, ts, "/completion", `{"prompt":"Hello","n_predict":2`+bad)
		expect(t, r, 400)
	}
}

// The pool of sessions reports the same logprobs as the batcher.
func TestLogprobsSessionsPool(t *testing.T) {
	body := `{"model":"` + llamaName + `","prompt":"Request number 3 says","max_tokens":6,"temperature":0,"logprobs":3}`
	var out []string
	for _, sessions := range []bool{false, true} {
		ts, _, _ := newTestServer(t, testOpts{mcfg: ManagerConfig{Sessions: sessions}})
		r := post(t, ts, "/v1/completions", body)
		expect(t, r, 200)
		b, _ := json.Marshal(get(r.json(t), "choices", 0, "logprobs"))
		out = append(out, string(b))
	}
	if out[0] != out[1] {
		t.Errorf("batcher %s\nsessions %s", out[0], out[1])
	}
}
