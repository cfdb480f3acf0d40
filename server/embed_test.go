package server

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// vectors decodes the float vectors of a response at path (an array of
// vectors).
func vectors(t *testing.T, body []byte, pick func(map[string]any) []any) [][]float32 {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a JSON object: %s", body)
	}
	var out [][]float32
	for _, row := range pick(m) {
		a, ok := row.([]any)
		if !ok {
			t.Fatalf("not a vector: %v", row)
		}
		v := make([]float32, len(a))
		for i, x := range a {
			v[i] = float32(x.(float64))
		}
		out = append(out, v)
	}
	return out
}

func oaiVectors(t *testing.T, r response) [][]float32 {
	t.Helper()
	expect(t, r, 200)
	return vectors(t, r.body, func(m map[string]any) []any {
		var rows []any
		for i, d := range m["data"].([]any) {
			dm := d.(map[string]any)
			if dm["object"] != "embedding" || dm["index"] != float64(i) {
				t.Errorf("data[%d]: %v", i, dm)
			}
			rows = append(rows, dm["embedding"])
		}
		return rows
	})
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func equalVec(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestOpenAIEmbeddings(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	for _, name := range []string{llamaName, gpt2Name} {
		req := func(extra string) string { return `{"model":"` + name + `"` + extra + `}` }
		texts := []string{"Once upon a time", "The quick brown fox", "hello"}
		var alone [][]float32
		for _, s := range texts {
			v := oaiVectors(t, post(t, ts, "/v1/embeddings", req(`,"input":`+fmt.Sprintf("%q", s))))
			if len(v) != 1 || len(v[0]) == 0 {
				t.Fatalf("%d vectors", len(v))
			}
			if n := norm(v[0]); math.Abs(n-1) > 1e-6 {
				t.Errorf("norm %v", n)
			}
			alone = append(alone, v[0])
		}
		r := post(t, ts, "/v1/embeddings", req(`,"input":["Once upon a time","The quick brown fox","hello","Once upon a time"]`))
		m := r.json(t)
		if m["object"] != "list" || m["model"] != name {
			t.Errorf("response: %s", r.body)
		}
		batch := oaiVectors(t, r)
		for i := range texts {
			if !equalVec(batch[i], alone[i]) {
				t.Errorf("%s: input %d batched differs from alone", name, i)
			}
		}
		if !equalVec(batch[3], alone[0]) {
			t.Errorf("%s: a repeated input differs", name)
		}
		// usage: the tokens of the inputs.
		var tokens float64
		for _, s := range []string{"Once upon a time", "The quick brown fox", "hello", "Once upon a time"} {
			tr := post(t, ts, "/tokenize", `{"model":"`+name+`","content":`+fmt.Sprintf("%q", s)+`,"add_special":true}`)
			expect(t, tr, 200)
			tokens += float64(len(tr.json(t)["tokens"].([]any)))
		}
		if get(m, "usage", "prompt_tokens") != tokens || get(m, "usage", "total_tokens") != tokens {
			t.Errorf("usage %v, want %v tokens", m["usage"], tokens)
		}

		// Token ids: one list, or several.
		tr := post(t, ts, "/tokenize", `{"model":"`+name+`","content":"Once upon a time","add_special":true}`)
		ids, _ := json.Marshal(tr.json(t)["tokens"])
		v := oaiVectors(t, post(t, ts, "/v1/embeddings", req(`,"input":`+string(ids))))
		if len(v) != 1 || !equalVec(v[0], alone[0]) {
			t.Errorf("%s: token ids give a different vector than the text", name)
		}
		v = oaiVectors(t, post(t, ts, "/v1/embeddings", req(`,"input":[`+string(ids)+`,[5,6,7]]`)))
		if len(v) != 2 || !equalVec(v[0], alone[0]) {
			t.Errorf("%s: arrays of token ids: %d vectors", name, len(v))
		}

		// base64: the same float32 values, little-endian.
		r = post(t, ts, "/v1/embeddings", req(`,"input":"Once upon a time","encoding_format":"base64"`))
		expect(t, r, 200)
		b, err := base64.StdEncoding.DecodeString(get(r.json(t), "data", 0, "embedding").(string))
		if err != nil || len(b) != 4*len(alone[0]) {
			t.Fatalf("base64: %v, %d bytes", err, len(b))
		}
		for i := range alone[0] {
			if math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])) != alone[0][i] {
				t.Fatalf("base64 value %d differs", i)
			}
		}
		// dimensions: only the model's own.
		expect(t, post(t, ts, "/v1/embeddings", req(fmt.Sprintf(`,"input":"hi","dimensions":%d`, len(alone[0])))), 200)
	}
}

func TestOllamaEmbed(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	r := post(t, ts, "/api/embed", `{"model":"`+gpt2Name+`","input":["Once upon a time","hello"]}`)
	expect(t, r, 200)
	m := r.json(t)
	for _, k := range []string{"model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q: %s", k, r.body)
		}
	}
	vs := vectors(t, r.body, func(m map[string]any) []any { return m["embeddings"].([]any) })
	if len(vs) != 2 || math.Abs(norm(vs[0])-1) > 1e-6 {
		t.Fatalf("embeddings: %d", len(vs))
	}
	one := oaiVectors(t, post(t, ts, "/v1/embeddings", `{"model":"`+gpt2Name+`","input":"hello"}`))
	if !equalVec(one[0], vs[1]) {
		t.Error("/api/embed and /v1/embeddings differ")
	}
	// A single string.
	r = post(t, ts, "/api/embed", `{"model":"`+gpt2Name+`","input":"hello","keep_alive":"1m"}`)
	expect(t, r, 200)
	if s := vectors(t, r.body, func(m map[string]any) []any { return m["embeddings"].([]any) }); len(s) != 1 || !equalVec(s[0], vs[1]) {
		t.Error("a string input differs from the same string in a list")
	}
	// truncate (default true): a long input fills the context.
	long := strings.Repeat("word ", 300)
	r = post(t, ts, "/api/embed", `{"model":"`+gpt2Name+`","input":"`+long+`"}`)
	expect(t, r, 200)
	if n := r.json(t)["prompt_eval_count"]; n != float64(128) {
		t.Errorf("truncated prompt_eval_count %v, want 128", n)
	}
	r = post(t, ts, "/api/embed", `{"model":"`+gpt2Name+`","input":"`+long+`","options":{"num_ctx":16}}`)
	expect(t, r, 200)
	if n := r.json(t)["prompt_eval_count"]; n != float64(16) {
		t.Errorf("num_ctx 16: prompt_eval_count %v", n)
	}
	// Empty input: the model loads, nothing is embedded.
	r = post(t, ts, "/api/embed", `{"model":"`+gpt2Name+`","input":[]}`)
	expect(t, r, 200)
	if e, ok := r.json(t)["embeddings"].([]any); !ok || len(e) != 0 {
		t.Errorf("empty input: %s", r.body)
	}
	// dimensions: the first d values, normalized again.
	r = post(t, ts, "/api/embed", `{"model":"`+gpt2Name+`","input":"hello","dimensions":8}`)
	expect(t, r, 200)
	if s := vectors(t, r.body, func(m map[string]any) []any { return m["embeddings"].([]any) }); len(s[0]) != 8 || math.Abs(norm(s[0])-1) > 1e-6 {
		t.Errorf("dimensions 8: %d values, norm %v", len(s[0]), norm(s[0]))
	}

	// Legacy /api/embeddings: one vector, not normalized.
	r = post(t, ts, "/api/embeddings", `{"model":"`+gpt2Name+`","prompt":"hello"}`)
	expect(t, r, 200)
	var legacy struct{ Embedding []float32 }
	if err := json.Unmarshal(r.body, &legacy); err != nil || len(legacy.Embedding) != len(vs[1]) {
		t.Fatalf("legacy: %v %s", err, r.body)
	}
	n := norm(legacy.Embedding)
	if math.Abs(n-1) < 1e-3 {
		t.Errorf("legacy vector has norm %v: normalized", n)
	}
	for i, x := range legacy.Embedding {
		if math.Abs(float64(x)/n-float64(vs[1][i])) > 1e-6 {
			t.Fatalf("legacy [%d]/norm = %v, want %v", i, float64(x)/n, vs[1][i])
		}
	}
}

func TestLlamaServerEmbedding(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	r := post(t, ts, "/embedding", `{"content":["hello","Once upon a time"]}`)
	expect(t, r, 200)
	var out []struct {
		Index     int         `json:"index"`
		Embedding [][]float32 `json:"embedding"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || len(out) != 2 || out[1].Index != 1 || len(out[0].Embedding) != 1 {
		t.Fatalf("%v: %s", err, r.body)
	}
	want := oaiVectors(t, post(t, ts, "/v1/embeddings", `{"model":"`+llamaName+`","input":"hello"}`))
	if !equalVec(out[0].Embedding[0], want[0]) {
		t.Error("/embedding and /v1/embeddings differ")
	}
	r = post(t, ts, "/embedding", `{"content":"hello","embd_normalize":-1}`)
	expect(t, r, 200)
	if err := json.Unmarshal(r.body, &out); err != nil || math.Abs(norm(out[0].Embedding[0])-1) < 1e-3 {
		t.Errorf("embd_normalize -1: %v, norm %v", err, norm(out[0].Embedding[0]))
	}
}

func TestEmbeddingErrors(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	G := gpt2Name
	long := strings.Repeat("word ", 300) // > 128 tokens
	cases := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"missing input", "/v1/embeddings", `{"model":"` + G + `"}`, 400, "input"},
		{"empty string", "/v1/embeddings", `{"model":"` + G + `","input":""}`, 400, "empty"},
		{"empty array", "/v1/embeddings", `{"model":"` + G + `","input":[]}`, 400, "empty"},
		{"empty string in array", "/v1/embeddings", `{"model":"` + G + `","input":["a",""]}`, 400, "input 1"},
		{"empty token list", "/v1/embeddings", `{"model":"` + G + `","input":[[1],[]]}`, 400, "input 1"},
		{"input type", "/v1/embeddings", `{"model":"` + G + `","input":{"text":"hi"}}`, 400, "input"},
		{"mixed input", "/v1/embeddings", `{"model":"` + G + `","input":["a",1]}`, 400, "input"},
		{"token out of vocab", "/v1/embeddings", `{"model":"` + G + `","input":[1,99999999]}`, 400, "vocabulary"},
		{"too long", "/v1/embeddings", `{"model":"` + G + `","input":"` + long + `"}`, 400, "128"},
		{"missing model", "/v1/embeddings", `{"input":"hi"}`, 400, "model"},
		{"unknown model", "/v1/embeddings", `{"model":"nope","input":"hi"}`, 404, "nope"},
		{"unknown field", "/v1/embeddings", `{"model":"` + G + `","input":"hi","pooling":"mean"}`, 400, "pooling"},
		{"encoding_format", "/v1/embeddings", `{"model":"` + G + `","input":"hi","encoding_format":"int8"}`, 400, "encoding_format"},
		{"dimensions", "/v1/embeddings", `{"model":"` + G + `","input":"hi","dimensions":7}`, 400, "dimensions"},
		{"ollama missing model", "/api/embed", `{"input":"hi"}`, 400, "model is required"},
		{"ollama unknown model", "/api/embed", `{"model":"nope","input":"hi"}`, 404, "nope"},
		{"ollama input type", "/api/embed", `{"model":"` + G + `","input":5}`, 400, "input"},
		{"ollama token ids", "/api/embed", `{"model":"` + G + `","input":[1,2]}`, 400, "input"},
		{"ollama too long", "/api/embed", `{"model":"` + G + `","input":"` + long + `","truncate":false}`, 400, "context length"},
		{"ollama keep_alive", "/api/embed", `{"model":"` + G + `","input":"hi","keep_alive":"forever"}`, 400, "keep_alive"},
		{"ollama dimensions", "/api/embed", `{"model":"` + G + `","input":"hi","dimensions":100000}`, 400, "dimensions"},
		{"ollama legacy too long", "/api/embeddings", `{"model":"` + G + `","prompt":"` + long + `"}`, 400, "context length"},
		{"ollama legacy prompt type", "/api/embeddings", `{"model":"` + G + `","prompt":["hi"]}`, 400, "prompt"},
		{"llama content missing", "/embedding", `{}`, 400, "content"},
		{"llama content type", "/embedding", `{"content":{"a":1}}`, 400, "content"},
		{"llama too long", "/embedding", `{"model":"` + G + `","content":"` + long + `"}`, 400, "128"},
		{"llama normalize", "/embedding", `{"content":"hi","embd_normalize":1}`, 400, "embd_normalize"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, ts, c.path, c.body)
			if r.status != c.status {
				t.Fatalf("%s: status %d, want %d: %s", c.path, r.status, c.status, r.body)
			}
			msg := checkShape(t, dialectOf(c.path), c.status, r.body)
			if !strings.Contains(msg, c.want) {
				t.Errorf("message %q does not mention %q", msg, c.want)
			}
		})
	}
	r := post(t, ts, "/v1/embeddings", `{"model":"`+G+`","input":"`+long+`"}`)
	if get(r.json(t), "error", "code") != "context_length_exceeded" {
		t.Errorf("too long: code: %s", r.body)
	}
}

// Embeddings run beside generations of the same model (their own states and
// batch): the vectors do not change.
func TestEmbeddingsBesideGeneration(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	body := `{"model":"` + llamaName + `","input":["Once upon a time","hello"]}`
	want := oaiVectors(t, post(t, ts, "/v1/embeddings", body))
	done := make(chan struct{})
	errs := make(chan string, 16)
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			r := post(t, ts, "/v1/completions", `{"model":"`+llamaName+`","prompt":"Once upon a time","max_tokens":24,"temperature":0}`)
			if r.status != 200 {
				errs <- string(r.body)
			}
		}()
	}
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			r := post(t, ts, "/v1/embeddings", body)
			var m struct {
				Data []struct{ Embedding []float32 }
			}
			if r.status != 200 || json.Unmarshal(r.body, &m) != nil || len(m.Data) != 2 {
				errs <- string(r.body)
				return
			}
			for i := range want {
				if !equalVec(m.Data[i].Embedding, want[i]) {
					errs <- "a vector changed beside generations"
				}
			}
		}()
	}
	for range 6 {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
