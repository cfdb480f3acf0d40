package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	modelDir  = "../testdata/models"
	llamaName = "llama-vocab-spm-f16"  // real LLaMA SentencePiece vocabulary, context 512
	gpt2Name  = "gpt2-vocab-gpt2-q8_0" // real GPT-2 BPE vocabulary, context 128
)

type testOpts struct {
	cfg      Config
	mcfg     ManagerConfig
	loopback bool
}

// newTestServer serves the two tiny models with real vocabularies.
func newTestServer(t *testing.T, o testOpts) (*httptest.Server, *Server, *Manager) {
	t.Helper()
	mc := o.mcfg
	if mc.Sources == nil && mc.Dir == "" {
		mc.Sources = []ModelSource{
			{Name: llamaName, Path: filepath.Join(modelDir, llamaName+".gguf")},
			{Name: gpt2Name, Path: filepath.Join(modelDir, gpt2Name+".gguf")},
		}
	}
	if mc.Parallel == 0 {
		mc.Parallel = 4
	}
	if mc.Queue == 0 {
		mc.Queue = 32
	}
	if mc.KeepAlive == 0 {
		mc.KeepAlive = -1
	}
	m, err := NewManager(mc)
	if err != nil {
		t.Fatal(err)
	}
	s := New(o.cfg, m)
	s.SetLoopback(o.loopback)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		m.Close()
	})
	return ts, s, m
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return v
}

func do(t *testing.T, ts *httptest.Server, method, path, body string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

func post(t *testing.T, ts *httptest.Server, path, body string) response {
	t.Helper()
	return do(t, ts, "POST", path, body)
}

func expect(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

// sseEvents splits an SSE body into its data payloads.
func sseEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for _, block := range strings.Split(string(body), "\n\n") {
		block = strings.TrimSpace(block)
		if block == "" {
			continue
		}
		if !strings.HasPrefix(block, "data: ") {
			t.Fatalf("not an SSE data event: %q", block)
		}
		out = append(out, strings.TrimPrefix(block, "data: "))
	}
	return out
}

func get(m map[string]any, path ...any) any {
	var v any = m
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = mm[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func TestGenerateRoute(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	r := post(t, ts, "/generate", `{"prompt":"Once upon a time","max_tokens":8,"temperature":0}`)
	expect(t, r, 200)
	var out []map[string]string
	if err := json.Unmarshal(r.body, &out); err != nil || len(out) != 1 {
		t.Fatalf("want [{generated_text}], got %s", r.body)
	}
	if !strings.HasPrefix(out[0]["generated_text"], "Once upon a time") || len(out[0]["generated_text"]) <= len("Once upon a time") {
		t.Errorf("generated_text %q does not extend the prompt", out[0]["generated_text"])
	}
	// The pipeline's names and a parameters object work too, and greedy
	// decoding is deterministic.
	r2 := post(t, ts, "/generate", `{"inputs":"Once upon a time","parameters":{"max_new_tokens":8,"do_sample":false}}`)
	expect(t, r2, 200)
	if !bytes.Equal(r.body, r2.body) {
		t.Errorf("same greedy request, different text:\n%s\n%s", r.body, r2.body)
	}
	// With no max_tokens, the default is fitted to a small context (GPT-2's 128).
	r4 := post(t, ts, "/generate", `{"prompt":"`+strings.Repeat("hello ", 100)+`","model":"`+gpt2Name+`","temperature":0}`)
	expect(t, r4, 200)
	r3 := post(t, ts, "/generate", `{"prompt":"Once upon a time","max_tokens":8,"temperature":0,"return_full_text":false,"model":"`+gpt2Name+`"}`)
	expect(t, r3, 200)
	if strings.HasPrefix(string(r3.body), `[{"generated_text":"Once`) {
		t.Errorf("return_full_text=false still returned the prompt: %s", r3.body)
	}
}

func TestOpenAIRoutes(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})

	r := do(t, ts, "GET", "/v1/models", "")
	expect(t, r, 200)
	m := r.json(t)
	if m["object"] != "list" || get(m, "data", 0, "id") != llamaName || get(m, "data", 1, "id") != gpt2Name {
		t.Errorf("/v1/models: %s", r.body)
	}
	r = do(t, ts, "GET", "/v1/models/"+gpt2Name, "")
	expect(t, r, 200)
	if m := r.json(t); m["id"] != gpt2Name || m["object"] != "model" {
		t.Errorf("/v1/models/{id}: %s", r.body)
	}

	chat := `{"model":"` + llamaName + `","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hello"}]}],"max_tokens":6,"temperature":0}`
	r = post(t, ts, "/v1/chat/completions", chat)
	expect(t, r, 200)
	m = r.json(t)
	if m["object"] != "chat.completion" || !strings.HasPrefix(m["id"].(string), "chatcmpl-") ||
		get(m, "choices", 0, "message", "role") != "assistant" || get(m, "choices", 0, "finish_reason") == nil {
		t.Errorf("chat completion: %s", r.body)
	}
	content := get(m, "choices", 0, "message", "content").(string)
	usage := m["usage"].(map[string]any)
	if usage["completion_tokens"].(float64) < 1 || usage["total_tokens"].(float64) != usage["prompt_tokens"].(float64)+usage["completion_tokens"].(float64) {
		t.Errorf("usage %v", usage)
	}

	// Streaming gives the same text, then finish_reason, usage and [DONE].
	r = post(t, ts, "/v1/chat/completions", strings.Replace(chat, `"max_tokens"`, `"stream":true,"stream_options":{"include_usage":true},"max_tokens"`, 1))
	expect(t, r, 200)
	if ct := r.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	ev := sseEvents(t, r.body)
	if ev[len(ev)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", ev[len(ev)-1])
	}
	var streamed strings.Builder
	var finish any
	var streamUsage map[string]any
	for i, e := range ev[:len(ev)-1] {
		var c map[string]any
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, e)
		}
		if c["object"] != "chat.completion.chunk" {
			t.Errorf("event %d object %v", i, c["object"])
		}
		if i == 0 && get(c, "choices", 0, "delta", "role") != "assistant" {
			t.Errorf("first chunk has no role: %s", e)
		}
		if s, ok := get(c, "choices", 0, "delta", "content").(string); ok {
			streamed.WriteString(s)
		}
		if f := get(c, "choices", 0, "finish_reason"); f != nil {
			finish = f
		}
		if u, ok := c["usage"].(map[string]any); ok {
			streamUsage = u
		}
	}
	if streamed.String() != content {
		t.Errorf("streamed %q, non-streamed %q", streamed.String(), content)
	}
	if finish != get(m, "choices", 0, "finish_reason") {
		t.Errorf("stream finish_reason %v", finish)
	}
	if streamUsage == nil || streamUsage["completion_tokens"] != usage["completion_tokens"] {
		t.Errorf("stream usage %v, want %v", streamUsage, usage)
	}

	// Completions: string prompt, token prompt, echo, streaming.
	r = post(t, ts, "/v1/completions", `{"model":"`+gpt2Name+`","prompt":"Hello world","max_tokens":5,"temperature":0}`)
	expect(t, r, 200)
	m = r.json(t)
	text := get(m, "choices", 0, "text").(string)
	if m["object"] != "text_completion" || get(m, "choices", 0, "finish_reason") != "length" || get(m, "usage", "completion_tokens") != 5.0 {
		t.Errorf("completion: %s", r.body)
	}
	r = post(t, ts, "/v1/completions", `{"model":"`+gpt2Name+`","prompt":"Hello world","max_tokens":5,"temperature":0,"echo":true}`)
	expect(t, r, 200)
	if got := get(r.json(t), "choices", 0, "text"); got != "Hello world"+text {
		t.Errorf("echo: %q, want %q", got, "Hello world"+text)
	}
	r = post(t, ts, "/v1/completions", `{"model":"`+gpt2Name+`","prompt":"Hello world","max_tokens":5,"temperature":0,"stream":true}`)
	expect(t, r, 200)
	ev = sseEvents(t, r.body)
	if ev[len(ev)-1] != "[DONE]" {
		t.Fatal("no [DONE]")
	}
	streamed.Reset()
	for _, e := range ev[:len(ev)-1] {
		var c map[string]any
		json.Unmarshal([]byte(e), &c)
		streamed.WriteString(get(c, "choices", 0, "text").(string))
	}
	if streamed.String() != text {
		t.Errorf("streamed completion %q, want %q", streamed.String(), text)
	}
	// Token-id prompt: GPT-2's "Hello world" is [15496, 995].
	r = post(t, ts, "/v1/completions", `{"model":"`+gpt2Name+`","prompt":[15496,995],"max_tokens":5,"temperature":0}`)
	expect(t, r, 200)
	if got := get(r.json(t), "choices", 0, "text"); got != text {
		t.Errorf("token prompt gave %q, want %q", got, text)
	}
}

func TestOllamaRoutes(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	r := do(t, ts, "GET", "/api/version", "")
	expect(t, r, 200)
	if r.json(t)["version"] == nil {
		t.Error("no version")
	}
	r = do(t, ts, "GET", "/api/tags", "")
	expect(t, r, 200)
	m := r.json(t)
	if get(m, "models", 0, "name") != llamaName || get(m, "models", 0, "details", "family") != "llama" ||
		get(m, "models", 1, "details", "quantization_level") != "Q8_0" || get(m, "models", 0, "size") == nil {
		t.Errorf("/api/tags: %s", r.body)
	}
	r = post(t, ts, "/api/show", `{"model":"`+llamaName+`"}`)
	expect(t, r, 200)
	if m := r.json(t); get(m, "model_info", "general.architecture") != "llama" || get(m, "details", "format") != "gguf" {
		t.Errorf("/api/show: %s", r.body)
	}

	// Non-streaming generate, then the same streamed (the default).
	r = post(t, ts, "/api/generate", `{"model":"`+llamaName+`","prompt":"Why is the sky blue?","stream":false,"options":{"temperature":0,"num_predict":6}}`)
	expect(t, r, 200)
	m = r.json(t)
	if m["done"] != true || m["done_reason"] != "length" || m["eval_count"] != 6.0 || m["prompt_eval_count"].(float64) < 2 ||
		m["total_duration"].(float64) <= 0 || m["eval_duration"] == nil || m["context"] == nil {
		t.Errorf("/api/generate: %s", r.body)
	}
	want := m["response"].(string)
	r = post(t, ts, "/api/generate", `{"model":"`+llamaName+`:latest","prompt":"Why is the sky blue?","options":{"temperature":0,"num_predict":6}}`)
	expect(t, r, 200)
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	var got strings.Builder
	var last map[string]any
	for _, ln := range lines {
		last = map[string]any{}
		if err := json.Unmarshal([]byte(ln), &last); err != nil {
			t.Fatalf("bad NDJSON line %q", ln)
		}
		got.WriteString(last["response"].(string))
	}
	if got.String() != want || last["done"] != true || last["eval_count"] != 6.0 {
		t.Errorf("streamed %q (last %v), want %q", got.String(), last, want)
	}

	// The returned context continues the conversation: its tokens are the
	// prompt's prefix and are reused from the slot's cache.
	ctxJSON, _ := json.Marshal(m["context"])
	r = post(t, ts, "/api/generate", `{"model":"`+llamaName+`","prompt":" And then?","stream":false,"context":`+string(ctxJSON)+`,"options":{"temperature":0,"num_predict":2}}`)
	expect(t, r, 200)
	if n := r.json(t)["prompt_eval_count"].(float64); int(n) <= len(m["context"].([]any)) {
		t.Errorf("continuation prompt has %v tokens, context alone %d", n, len(m["context"].([]any)))
	}

	// Chat, streamed and not.
	chat := `{"model":"` + gpt2Name + `","messages":[{"role":"user","content":"Hi there"}],"options":{"temperature":0,"num_predict":5}`
	r = post(t, ts, "/api/chat", chat+`,"stream":false}`)
	expect(t, r, 200)
	m = r.json(t)
	if get(m, "message", "role") != "assistant" || m["done"] != true || m["done_reason"] == nil {
		t.Errorf("/api/chat: %s", r.body)
	}
	want = get(m, "message", "content").(string)
	r = post(t, ts, "/api/chat", chat+`}`)
	expect(t, r, 200)
	got.Reset()
	for _, ln := range strings.Split(strings.TrimSpace(string(r.body)), "\n") {
		var c map[string]any
		json.Unmarshal([]byte(ln), &c)
		got.WriteString(get(c, "message", "content").(string))
		last = c
	}
	if got.String() != want || last["done"] != true {
		t.Errorf("streamed chat %q, want %q", got.String(), want)
	}

	// /api/ps lists loaded models; keep_alive 0 unloads.
	r = do(t, ts, "GET", "/api/ps", "")
	expect(t, r, 200)
	if n := len(r.json(t)["models"].([]any)); n != 2 {
		t.Errorf("/api/ps lists %d models, want 2: %s", n, r.body)
	}
	r = post(t, ts, "/api/generate", `{"model":"`+gpt2Name+`","keep_alive":0}`)
	expect(t, r, 200)
	if r.json(t)["done_reason"] != "unload" {
		t.Errorf("keep_alive 0: %s", r.body)
	}
	r = do(t, ts, "GET", "/api/ps", "")
	if n := len(r.json(t)["models"].([]any)); n != 1 {
		t.Errorf("after unloading, /api/ps lists %d models, want 1: %s", n, r.body)
	}
	r = post(t, ts, "/api/chat", `{"model":"`+gpt2Name+`","messages":[]}`)
	expect(t, r, 200)
	if r.json(t)["done_reason"] != "load" {
		t.Errorf("empty chat: %s", r.body)
	}
}

func TestLlamaServerRoutes(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	r := do(t, ts, "GET", "/health", "")
	expect(t, r, 200)
	if r.json(t)["status"] != "ok" {
		t.Errorf("/health: %s", r.body)
	}
	r = post(t, ts, "/tokenize", `{"content":"Hello world","add_special":true}`)
	expect(t, r, 200)
	if string(r.body) != `{"tokens":[1,15043,3186]}`+"\n" {
		t.Errorf("/tokenize: %s", r.body)
	}
	r = post(t, ts, "/tokenize", `{"content":"Hello","with_pieces":true,"model":"`+gpt2Name+`"}`)
	expect(t, r, 200)
	if string(r.body) != `{"tokens":[{"id":15496,"piece":"Hello"}]}`+"\n" {
		t.Errorf("/tokenize with pieces: %s", r.body)
	}
	r = post(t, ts, "/detokenize", `{"tokens":[15043,3186]}`)
	expect(t, r, 200)
	if r.json(t)["content"] != "Hello world" {
		t.Errorf("/detokenize: %s", r.body)
	}

	r = post(t, ts, "/completion", `{"prompt":"Hello","n_predict":6,"temperature":0}`)
	expect(t, r, 200)
	m := r.json(t)
	if m["stop"] != true || m["tokens_predicted"] != 6.0 || m["stop_type"] != "limit" || get(m, "timings", "predicted_n") != 6.0 {
		t.Errorf("/completion: %s", r.body)
	}
	want := m["content"].(string)
	r = post(t, ts, "/completion", `{"prompt":"Hello","n_predict":6,"temperature":0,"stream":true}`)
	expect(t, r, 200)
	ev := sseEvents(t, r.body)
	var got strings.Builder
	var last map[string]any
	for _, e := range ev {
		last = map[string]any{}
		if err := json.Unmarshal([]byte(e), &last); err != nil {
			t.Fatalf("bad event %q", e)
		}
		got.WriteString(last["content"].(string))
	}
	if got.String() != want || last["stop"] != true || last["timings"] == nil {
		t.Errorf("streamed %q, want %q; last %v", got.String(), want, last)
	}
	// A stop word.
	if len(want) > 3 {
		word := want[1:3]
		r = post(t, ts, "/completion", fmt.Sprintf(`{"prompt":"Hello","n_predict":6,"temperature":0,"stop":[%q]}`, word))
		m = r.json(t)
		if m["stop_type"] != "word" || m["stopping_word"] != word || m["content"] != want[:strings.Index(want, word)] {
			t.Errorf("stop word %q: %s", word, r.body)
		}
	}

	r = do(t, ts, "GET", "/props", "")
	expect(t, r, 200)
	if m := r.json(t); get(m, "default_generation_settings", "n_ctx") != 512.0 || m["total_slots"] != 4.0 {
		t.Errorf("/props: %s", r.body)
	}
	r = do(t, ts, "GET", "/metrics", "")
	expect(t, r, 200)
	for _, s := range []string{"# TYPE slm_requests_total counter", `slm_requests_total{route="/completion",code="200"} 3`,
		"slm_generated_tokens_total ", "slm_queue_depth 0", "slm_busy_sequences 0", "llamacpp:tokens_predicted_total "} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("/metrics lacks %q:\n%s", s, r.body)
		}
	}
}

// TestConcurrentGreedy: 16 clients at once get exactly what each gets alone.
func TestConcurrentGreedy(t *testing.T) {
	ts, _, mgr := newTestServer(t, testOpts{})
	body := func(i int) string {
		model := llamaName
		if i%2 == 1 {
			model = gpt2Name
		}
		return fmt.Sprintf(`{"model":%q,"prompt":"Request number %d says","max_tokens":12,"temperature":0}`, model, i%5)
	}
	want := make([]string, 16)
	for i := range want {
		r := post(t, ts, "/v1/completions", body(i))
		expect(t, r, 200)
		want[i] = get(r.json(t), "choices", 0, "text").(string)
	}
	got := make([]string, 16)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			r := post(t, ts, "/v1/completions", body(i))
			if r.status == 200 {
				var m map[string]any
				json.Unmarshal(r.body, &m)
				got[i], _ = get(m, "choices", 0, "text").(string)
			} else {
				got[i] = fmt.Sprintf("status %d: %s", r.status, r.body)
			}
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("request %d: concurrent %q, alone %q", i, got[i], want[i])
		}
	}
	// The concurrent requests were decoded together, several per step.
	for _, name := range []string{llamaName, gpt2Name} {
		mgr.mu.Lock()
		b, ok := mgr.entries[name].gen.(*Batcher)
		mgr.mu.Unlock()
		if !ok {
			t.Fatalf("%s is not served by a Batcher", name)
		}
		st := b.Scheduler().Stats()
		t.Logf("%s: %+v", name, st)
		if st.MaxBatchSeqs < 2 {
			t.Errorf("%s: no step decoded more than one sequence: %+v", name, st)
		}
	}
}

// TestSessionsPool: the pool of independent sessions is still available
// and gives the same greedy text as the batcher.
func TestSessionsPool(t *testing.T) {
	body := `{"model":"` + llamaName + `","prompt":"Request number 3 says","max_tokens":12,"temperature":0}`
	var texts []string
	for _, sessions := range []bool{false, true} {
		ts, _, _ := newTestServer(t, testOpts{mcfg: ManagerConfig{Sessions: sessions}})
		r := post(t, ts, "/v1/completions", body)
		expect(t, r, 200)
		texts = append(texts, get(r.json(t), "choices", 0, "text").(string))
	}
	if texts[0] != texts[1] {
		t.Errorf("batcher %q, sessions %q", texts[0], texts[1])
	}
}

// settleGoroutines waits for the goroutine count to come back to base.
func settleGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, %d before:\n%s", n, base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCancelMidStream: a client that goes away mid-stream frees its slot at
// once and leaves no goroutine behind, in every streaming dialect.
func TestCancelMidStream(t *testing.T) {
	ts, _, m := newTestServer(t, testOpts{mcfg: ManagerConfig{Parallel: 1}})
	// Load the model first so its timers and pools exist before counting.
	expect(t, post(t, ts, "/completion", `{"prompt":"x","n_predict":1}`), 200)
	ts.Client().CloseIdleConnections()
	base := runtime.NumGoroutine()

	cases := []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"` + llamaName + `","messages":[{"role":"user","content":"go"}],"stream":true,"ignore_eos":true}`},
		{"/v1/completions", `{"model":"` + llamaName + `","prompt":"go","stream":true,"ignore_eos":true,"max_tokens":500}`},
		{"/api/generate", `{"model":"` + llamaName + `","prompt":"go"}`},
		{"/api/chat", `{"model":"` + llamaName + `","messages":[{"role":"user","content":"go"}]}`},
		{"/completion", `{"prompt":"go","stream":true,"ignore_eos":true}`},
	}
	for _, c := range cases {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+c.path, strings.NewReader(c.body))
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(res.Body)
		for i := 0; i < 3; i++ { // a few events
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatalf("%s: %v", c.path, err)
			}
		}
		cancel()
		res.Body.Close()
		deadline := time.Now().Add(3 * time.Second)
		for m.Stats().Busy != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the slot is still busy after the client left", c.path)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ts.Client().CloseIdleConnections()
	settleGoroutines(t, base)
}

// TestQueueFull: with one slot and no queue, a second request gets 503 with
// Retry-After in its dialect's shape.
func TestQueueFull(t *testing.T) {
	ts, _, m := newTestServer(t, testOpts{mcfg: ManagerConfig{Parallel: 1, Queue: -1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/completion", strings.NewReader(`{"prompt":"go","stream":true,"ignore_eos":true}`))
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	bufio.NewReader(res.Body).ReadString('\n')
	if m.Stats().Busy != 1 {
		t.Fatalf("stats %+v", m.Stats())
	}
	r := post(t, ts, "/v1/completions", `{"model":"`+llamaName+`","prompt":"hi","max_tokens":2}`)
	expect(t, r, 503)
	if r.header.Get("Retry-After") == "" || get(r.json(t), "error", "message") == nil {
		t.Errorf("503 without Retry-After or error object: %v %s", r.header, r.body)
	}
	r = post(t, ts, "/api/generate", `{"model":"`+llamaName+`","prompt":"hi","stream":true}`)
	expect(t, r, 503)
	if _, ok := r.json(t)["error"].(string); !ok {
		t.Errorf("ollama 503 shape: %s", r.body)
	}
}

// TestQueuedClientLeaves: a request that gives up while queued leaves the
// queue at once and never takes a slot.
func TestQueuedClientLeaves(t *testing.T) {
	ts, _, m := newTestServer(t, testOpts{mcfg: ManagerConfig{Parallel: 1, Queue: 4}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/completion", strings.NewReader(`{"prompt":"go","stream":true,"ignore_eos":true}`))
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	bufio.NewReader(res.Body).ReadString('\n')

	ctx2, cancel2 := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx2, "POST", ts.URL+"/completion", strings.NewReader(`{"prompt":"hi","n_predict":2}`))
		res, err := ts.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	waitFor := func(what string, cond func(Stats) bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !cond(m.Stats()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: stats %+v", what, m.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("queued", func(s Stats) bool { return s.Queued == 1 })
	cancel2()
	<-errc
	waitFor("left the queue", func(s Stats) bool { return s.Queued == 0 && s.Busy == 1 })
	cancel()
	waitFor("slot freed", func(s Stats) bool { return s.Busy == 0 })
}

func TestQueueWaits(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{mcfg: ManagerConfig{Parallel: 1, Queue: 8}})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			r := post(t, ts, "/completion", `{"prompt":"hi","n_predict":4}`)
			if r.status != 200 {
				t.Errorf("status %d: %s", r.status, r.body)
			}
		})
	}
	wg.Wait()
}

func TestPrefixReuse(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{mcfg: ManagerConfig{Parallel: 2}})
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8)
	post(t, ts, "/completion", fmt.Sprintf(`{"prompt":%q,"n_predict":2}`, long))
	post(t, ts, "/completion", `{"prompt":"Something else entirely","n_predict":2}`)
	r := post(t, ts, "/completion", fmt.Sprintf(`{"prompt":%q,"n_predict":2}`, long+"And then"))
	expect(t, r, 200)
	m := r.json(t)
	if cached := m["tokens_cached"].(float64); cached < 80 {
		t.Errorf("only %v of %v prompt tokens reused", cached, m["tokens_evaluated"])
	}
}

func TestAuth(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{cfg: Config{APIKey: "s3cret"}})
	cases := []struct {
		path, body string
		hdr        []string
		status     int
	}{
		{"/health", "", nil, 200},
		{"/v1/models", "", nil, 401},
		{"/v1/models", "", []string{"Authorization", "Bearer wrong"}, 401},
		{"/v1/models", "", []string{"Authorization", "Bearer s3cret"}, 200},
		{"/v1/models", "", []string{"x-api-key", "s3cret"}, 200},
		{"/v1/models", "", []string{"x-api-key", "s3cret!"}, 401},
		{"/api/tags", "", []string{"Authorization", "Basic czNjcmV0"}, 401},
		{"/api/tags", "", []string{"Authorization", "bearer s3cret"}, 200},
		{"/props", "", []string{"Authorization", "Bearer nope"}, 401},
		{"/metrics", "", nil, 401},
	}
	for _, c := range cases {
		r := do(t, ts, "GET", c.path, c.body, c.hdr...)
		if r.status != c.status {
			t.Errorf("%s %v: status %d, want %d: %s", c.path, c.hdr, r.status, c.status, r.body)
		}
	}
	r := do(t, ts, "GET", "/v1/models", "", "Authorization", "Bearer wrong")
	if get(r.json(t), "error", "code") != "invalid_api_key" {
		t.Errorf("OpenAI 401 shape: %s", r.body)
	}
	r = post(t, ts, "/generate", `{"prompt":"x"}`)
	expect(t, r, 401)
	if r.json(t)["error_type"] != "authentication" {
		t.Errorf("/generate 401 shape: %s", r.body)
	}
}

func TestHostRebinding(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{loopback: true})
	for _, host := range []string{"localhost", "localhost:8089", "127.0.0.1:8089", "[::1]:8089", "app.localhost"} {
		if r := do(t, ts, "GET", "/v1/models", "", "Host", host); r.status != 200 {
			t.Errorf("Host %q: status %d", host, r.status)
		}
	}
	for _, host := range []string{"evil.example.com", "evil.example.com:8089", "127.0.0.1.nip.io", "10.0.0.1:8089"} {
		r := do(t, ts, "GET", "/v1/models", "", "Host", host)
		if r.status != 403 || get(r.json(t), "error", "message") == nil {
			t.Errorf("Host %q: status %d, want 403: %s", host, r.status, r.body)
		}
	}
	// Without the loopback flag (a keyed public listener), any Host is fine.
	ts2, _, _ := newTestServer(t, testOpts{})
	if r := do(t, ts2, "GET", "/v1/models", "", "Host", "slm.example.com"); r.status != 200 {
		t.Errorf("public listener rejected a Host: %d", r.status)
	}
}

func TestCORS(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	r := do(t, ts, "GET", "/v1/models", "", "Origin", "https://evil.example")
	if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin with CORS off: %d %v", r.status, r.header)
	}
	r = do(t, ts, "GET", "/v1/models", "", "Origin", ts.URL) // same origin
	expect(t, r, 200)

	ts2, _, _ := newTestServer(t, testOpts{cfg: Config{AllowedOrigins: []string{"https://app.example"}, APIKey: "k"}})
	r = do(t, ts2, "OPTIONS", "/v1/chat/completions", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
	r = do(t, ts2, "GET", "/v1/models", "", "Origin", "https://app.example", "Authorization", "Bearer k")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("allowed origin: %d %v", r.status, r.header)
	}
	r = do(t, ts2, "GET", "/v1/models", "", "Origin", "https://other.example", "Authorization", "Bearer k")
	expect(t, r, 403)
}

func TestPanicRecovery(t *testing.T) {
	ts, s, _ := newTestServer(t, testOpts{})
	s.handle("GET /v1/boom", func(w http.ResponseWriter, r *http.Request) error { panic("boom") })
	s.handle("GET /api/boom", func(w http.ResponseWriter, r *http.Request) error { panic("boom") })
	r := do(t, ts, "GET", "/v1/boom", "")
	expect(t, r, 500)
	if get(r.json(t), "error", "type") != "server_error" {
		t.Errorf("OpenAI 500 shape: %s", r.body)
	}
	r = do(t, ts, "GET", "/api/boom", "")
	expect(t, r, 500)
	if _, ok := r.json(t)["error"].(string); !ok {
		t.Errorf("Ollama 500 shape: %s", r.body)
	}
	expect(t, do(t, ts, "GET", "/health", ""), 200) // still serving
	r = do(t, ts, "GET", "/metrics", "")
	if !strings.Contains(string(r.body), "slm_panics_total 2") {
		t.Errorf("panics not counted")
	}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr, key string
		ok        bool
	}{
		{"127.0.0.1:8089", "", true},
		{"localhost:0", "", true},
		{"[::1]:8089", "", true},
		{"0.0.0.0:8089", "", false},
		{":8089", "", false},
		{"192.168.1.5:8089", "", false},
		{"0.0.0.0:8089", "k", true},
		{"nonsense", "", false},
	} {
		err := CheckListen(c.addr, c.key)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %q) = %v", c.addr, c.key, err)
		}
		if err != nil && c.addr != "nonsense" && !strings.Contains(err.Error(), "API key") {
			t.Errorf("message does not say what to do: %v", err)
		}
	}
}

// TestServeGracefulShutdown runs a real listener: canceling the context
// stops accepting, lets a short in-flight request finish, and cancels a
// long one after the grace period; Serve returns nil.
func TestServeGracefulShutdown(t *testing.T) {
	m, err := NewManager(ManagerConfig{Sources: []ModelSource{{Name: llamaName, Path: filepath.Join(modelDir, llamaName+".gguf")}}, Parallel: 2, Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := New(Config{}, m)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, 300*time.Millisecond) }()
	url := "http://" + ln.Addr().String()

	// A request with a foreign Host is refused: Serve turned the check on.
	req, _ := http.NewRequest("GET", url+"/v1/models", nil)
	req.Host = "rebind.example"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("foreign Host on a loopback listener: %d", res.StatusCode)
	}

	// A never-ending stream is in flight when shutdown starts.
	res, err = http.Post(url+"/completion", "application/json", strings.NewReader(`{"prompt":"go","stream":true,"ignore_eos":true}`))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	br.ReadString('\n')
	start := time.Now()
	cancel()
	io.Copy(io.Discard, br) // ends when the server cancels the generation
	res.Body.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if _, err := http.Get(url + "/health"); err == nil {
		t.Error("still accepting after shutdown")
	}
}

func TestModelNames(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	for _, name := range []string{"../llama-f16", "..", "/etc/passwd", `..\x`, "models/llama-f16", "llama-f16"} {
		r := post(t, ts, "/api/generate", fmt.Sprintf(`{"model":%q,"prompt":"x","stream":false}`, name))
		if r.status != 400 && r.status != 404 {
			t.Errorf("model %q: status %d: %s", name, r.status, r.body)
		}
	}
	for _, bad := range []string{"", "a/b", `a\b`, "..", "a..b", "x\x00"} {
		if validName(bad) == nil {
			t.Errorf("validName(%q) accepted", bad)
		}
	}
}

func TestModelsDirAndEviction(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{llamaName, gpt2Name} {
		b, err := os.ReadFile(filepath.Join(modelDir, n+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, n+".gguf"), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	// A budget that holds either model but not both.
	ts, _, m := newTestServer(t, testOpts{mcfg: ManagerConfig{Dir: dir, Parallel: 1, MaxMemory: 7 << 20}})
	r := do(t, ts, "GET", "/v1/models", "")
	if n := len(r.json(t)["data"].([]any)); n != 2 {
		t.Fatalf("%d models in the directory: %s", n, r.body)
	}
	expect(t, post(t, ts, "/completion", `{"model":"`+llamaName+`","prompt":"a","n_predict":2}`), 200)
	expect(t, post(t, ts, "/completion", `{"model":"`+gpt2Name+`","prompt":"a","n_predict":2}`), 200)
	loaded := m.Loaded()
	if len(loaded) != 1 || loaded[0].Name != gpt2Name {
		t.Errorf("after LRU eviction loaded = %+v, want only %s", loaded, gpt2Name)
	}
	// A model added later is found by name.
	b, _ := os.ReadFile(filepath.Join(modelDir, "llama-q4_0.gguf"))
	os.WriteFile(filepath.Join(dir, "late.gguf"), b, 0o644)
	expect(t, post(t, ts, "/v1/completions", `{"model":"late","prompt":"a","max_tokens":2}`), 200)
	// Too big for the budget at all.
	m2, _ := NewManager(ManagerConfig{Dir: dir, Parallel: 1, MaxMemory: 1 << 20})
	defer m2.Close()
	if _, err := m2.Acquire(context.Background(), llamaName); err == nil || !strings.Contains(err.Error(), "max-memory") {
		t.Errorf("over-budget load: %v", err)
	}
}

func TestKeepAlive(t *testing.T) {
	ts, _, m := newTestServer(t, testOpts{mcfg: ManagerConfig{KeepAlive: 50 * time.Millisecond}})
	expect(t, post(t, ts, "/completion", `{"prompt":"a","n_predict":1}`), 200)
	if len(m.Loaded()) != 1 {
		t.Fatal("not loaded")
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(m.Loaded()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("not unloaded after keep-alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// keep_alive -1 keeps it; "10m" sets an expiry.
	expect(t, post(t, ts, "/api/generate", `{"model":"`+llamaName+`","prompt":"a","stream":false,"keep_alive":-1,"options":{"num_predict":1}}`), 200)
	time.Sleep(100 * time.Millisecond)
	if len(m.Loaded()) != 1 || !m.Loaded()[0].ExpiresAt.IsZero() {
		t.Errorf("keep_alive -1: %+v", m.Loaded())
	}
	expect(t, post(t, ts, "/api/generate", `{"model":"`+llamaName+`","prompt":"a","stream":false,"keep_alive":"10m","options":{"num_predict":1}}`), 200)
	if l := m.Loaded(); len(l) != 1 || time.Until(l[0].ExpiresAt) < 9*time.Minute {
		t.Errorf("keep_alive 10m: %+v", l)
	}
}
