package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/slm-dev/slm/chat"
	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/grammar"
)

// gramGen is a test backend with a byte-level vocabulary that honours
// Options.Constraint: ids 0 (EOS, end of generation), 1 (BOS), 2 (unused),
// 3..258 the bytes, then a few multi-byte tokens. Without a script it
// "samples" seeded random logits, biased towards closing JSON quickly;
// with a script it writes the script (unless a constraint forbids it). It
// records the prompt it was given.
type gramGen struct {
	script string

	mu      sync.Mutex
	prompts []string
	opts    engine.Options
}

var gramExtra = []string{`{"`, `":`, `", "`, `true`, `false`, `null`, `"}`, `<tool_call>`, `</tool_call>`, "\n"}

func (g *gramGen) tokens() [][]byte {
	toks := make([][]byte, 259+len(gramExtra))
	for b := range 256 {
		toks[b+3] = []byte{byte(b)}
	}
	for i, s := range gramExtra {
		toks[259+i] = []byte(s)
	}
	return toks
}

func (g *gramGen) ConstraintVocab() *grammar.Vocab { return grammar.NewVocab(g.tokens(), []int32{0}) }

func (g *gramGen) Tokenize(text string, addSpecial, _ bool) ([]int32, error) {
	var ids []int32
	if addSpecial {
		ids = append(ids, 1)
	}
	for _, b := range []byte(text) {
		ids = append(ids, int32(b)+3)
	}
	return ids, nil
}

func (g *gramGen) Detokenize(ids []int32) string {
	toks := g.tokens()
	var b []byte
	for _, id := range ids {
		if id >= 0 && int(id) < len(toks) {
			b = append(b, toks[id]...)
		}
	}
	return string(b)
}

func (g *gramGen) VocabSize() int   { return 259 + len(gramExtra) }
func (g *gramGen) ContextSize() int { return 8192 }

func (g *gramGen) lastPrompt() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.prompts) == 0 {
		return ""
	}
	return g.prompts[len(g.prompts)-1]
}

func (g *gramGen) Generate(ctx context.Context, prompt []int32, opts engine.Options, fn func(engine.Token) error) (engine.Result, error) {
	g.mu.Lock()
	g.prompts = append(g.prompts, g.Detokenize(prompt))
	g.opts = opts
	g.mu.Unlock()
	res := engine.Result{PromptTokens: len(prompt), Reason: engine.StopEOS}
	rng := rand.New(rand.NewPCG(uint64(opts.Sampling.Seed), 7))
	nv := g.VocabSize()
	logits := make([]float32, nv)
	script := []byte(g.script)
	var text strings.Builder
	for step := 0; ; step++ {
		if opts.MaxTokens > 0 && len(res.Tokens) >= opts.MaxTokens {
			res.Reason = engine.StopLength
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		for i := range logits {
			logits[i] = rng.Float32()
		}
		for _, c := range []byte(`"}],`) {
			logits[int(c)+3] += 4
		}
		logits[0] += 5
		for i := 259; i < nv; i++ {
			logits[i] += 1
		}
		if g.script != "" {
			for i := range logits {
				logits[i] = 0
			}
			if step < len(script) {
				logits[int(script[step])+3] = 100
			} else {
				logits[0] = 100
			}
		}
		if opts.Constraint != nil {
			opts.Constraint.Mask(logits)
		}
		best := int32(-1)
		for i, l := range logits {
			if !math.IsInf(float64(l), -1) && (best < 0 || l > logits[best]) {
				best = int32(i)
			}
		}
		if best < 0 {
			return res, engine.ErrNoAllowedToken
		}
		if opts.Constraint != nil {
			if err := opts.Constraint.Accept(best); err != nil {
				return res, err
			}
		}
		if best == 0 {
			break
		}
		res.Tokens = append(res.Tokens, best)
		piece := g.Detokenize([]int32{best})
		text.WriteString(piece)
		if fn != nil {
			if err := fn(engine.Token{ID: best, Text: []byte(piece)}); err != nil {
				return res, err
			}
		}
		if opts.Constraint != nil && opts.Constraint.Done() {
			break
		}
	}
	res.Text = text.String()
	return res, nil
}

// newGramServer serves gramGen backends: "gram" samples, the others follow
// their scripts.
func newGramServer(t *testing.T, cfg Config, scripts map[string]string) (*httptest.Server, map[string]*gramGen, func(string, string) response) {
	t.Helper()
	gens := map[string]*gramGen{"gram": {}}
	srcs := []ModelSource{{Name: "gram", Gen: gens["gram"]}}
	for name, sc := range scripts {
		gens[name] = &gramGen{script: sc}
		srcs = append(srcs, ModelSource{Name: name, Gen: gens[name]})
	}
	ts, _, _ := newTestServer(t, testOpts{cfg: cfg, mcfg: ManagerConfig{Sources: srcs}})
	return ts, gens, func(path, body string) response { return post(t, ts, path, body) }
}

func validatorFor(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("validator rejects %s: %v", schema, err)
	}
	return sch
}

func validates(t *testing.T, sch *jsonschema.Schema, schema, out string) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Errorf("schema %s: output %q is not JSON: %v", schema, out, err)
		return
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("schema %s: output %q does not validate: %v", schema, out, err)
	}
}

var testSchemas = []string{
	`{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":150}},"required":["name","age"],"additionalProperties":false}`,
	`{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","enum":["a","b","c"]},"minItems":1,"maxItems":3}},"required":["tags"]}`,
	`{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"number"},"kind":{"enum":["x","y",null]}},"required":["ok","kind"]}`,
	`{"$defs":{"pt":{"type":"object","properties":{"x":{"type":"integer"},"y":{"type":"integer"}},"required":["x","y"],"additionalProperties":false}},"type":"object","properties":{"from":{"$ref":"#/$defs/pt"},"to":{"$ref":"#/$defs/pt"}},"required":["from","to"],"additionalProperties":false}`,
	`{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{2}[0-9]{3}$"},"inner":{"type":"object","properties":{"v":{"type":"array","items":{"type":"integer"},"maxItems":2}},"required":["v"]}},"required":["code","inner"]}`,
	`{"type":"array","items":{"type":"integer","minimum":-5,"maximum":5},"minItems":2,"maxItems":4}`,
}

// TestStructuredOutput: every route that takes a schema returns JSON that
// validates against it, for several schemas and seeds.
func TestStructuredOutput(t *testing.T) {
	_, _, call := newGramServer(t, Config{}, nil)
	stopped := 0
	for i, schema := range testSchemas {
		sch := validatorFor(t, schema)
		for seed := range 4 {
			check := func(route, out string, finished bool) {
				t.Helper()
				if !finished {
					return
				}
				stopped++
				if seed == 0 && testing.Verbose() {
					t.Logf("%s: %s", route, out)
				}
				validates(t, sch, schema, out)
			}
			var r response
			var m map[string]any
			if !strings.HasPrefix(schema, `{"type":"array"`) { // OpenAI's json_schema wants an object at the top
				r = call("/v1/chat/completions", fmt.Sprintf(`{"model":"gram","seed":%d,"max_tokens":300,"messages":[{"role":"user","content":"give JSON"}],
					"response_format":{"type":"json_schema","json_schema":{"name":"s%d","strict":true,"schema":%s}}}`, seed, i, schema))
				expect(t, r, 200)
				m = r.json(t)
				check("openai", get(m, "choices", 0, "message", "content").(string), get(m, "choices", 0, "finish_reason") == "stop")
			}

			r = call("/api/chat", fmt.Sprintf(`{"model":"gram","stream":false,"options":{"seed":%d,"num_predict":300},"messages":[{"role":"user","content":"give JSON"}],"format":%s}`, seed, schema))
			expect(t, r, 200)
			m = r.json(t)
			check("ollama chat", get(m, "message", "content").(string), m["done_reason"] == "stop")

			r = call("/api/generate", fmt.Sprintf(`{"model":"gram","stream":false,"options":{"seed":%d,"num_predict":300},"prompt":"JSON:","format":%s}`, seed, schema))
			expect(t, r, 200)
			m = r.json(t)
			check("ollama generate", m["response"].(string), m["done_reason"] == "stop")

			r = call("/completion", fmt.Sprintf(`{"model":"gram","seed":%d,"n_predict":300,"prompt":"JSON:","json_schema":%s}`, seed, schema))
			expect(t, r, 200)
			m = r.json(t)
			check("llama-server", m["content"].(string), m["stop_type"] == "eos")

			// Streaming gives the same text.
			r = call("/completion", fmt.Sprintf(`{"model":"gram","seed":%d,"n_predict":300,"prompt":"JSON:","json_schema":%s,"stream":true}`, seed, schema))
			var streamed strings.Builder
			for _, ev := range sseEvents(t, r.body) {
				var e map[string]any
				json.Unmarshal([]byte(ev), &e)
				if c, ok := e["content"].(string); ok {
					streamed.WriteString(c)
				}
			}
			if streamed.String() != m["content"] {
				t.Errorf("streamed %q, whole %q", streamed.String(), m["content"])
			}
		}
	}
	if stopped < 60 {
		t.Errorf("only %d constrained generations finished", stopped)
	}

	// json_object / "json": any JSON object.
	r := call("/v1/chat/completions", `{"model":"gram","seed":3,"max_tokens":300,"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`)
	expect(t, r, 200)
	var obj map[string]any
	if out := get(r.json(t), "choices", 0, "message", "content").(string); json.Unmarshal([]byte(out), &obj) != nil {
		t.Errorf("json_object: %q", out)
	}
	r = call("/api/chat", `{"model":"gram","stream":false,"messages":[{"role":"user","content":"x"}],"format":"json"}`)
	if out := get(r.json(t), "message", "content").(string); json.Unmarshal([]byte(out), &obj) != nil {
		t.Errorf("format json: %q", out)
	}
	// A GBNF grammar.
	r = call("/completion", `{"model":"gram","prompt":"x","grammar":"root ::= (\"yes\" | \"no\") \"!\""}`)
	if c := r.json(t)["content"]; c != "yes!" && c != "no!" {
		t.Errorf("grammar: %q", c)
	}
}

// TestInvalidSchemas: a schema or grammar that does not compile is a 400 in
// the dialect's shape on every route that takes one, never free text.
func TestInvalidSchemas(t *testing.T) {
	_, _, call := newGramServer(t, Config{}, nil)
	bad := []string{`{"type":"frobnicate"}`, `{"type":"object","properties":{"a":{"$ref":"#/nowhere"}}}`, `{"type":"string","pattern":"(unclosed"}`, `42`}
	for _, schema := range bad {
		for _, c := range []struct{ path, body string }{
			{"/v1/chat/completions", `{"model":"gram","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":` + schema + `}}}`},
			{"/v1/chat/completions", `{"model":"gram","messages":[{"role":"user","content":"x"}],"json_schema":` + schema + `}`},
			{"/v1/completions", `{"model":"gram","prompt":"x","json_schema":` + schema + `}`},
			{"/api/chat", `{"model":"gram","messages":[{"role":"user","content":"x"}],"format":` + schema + `}`},
			{"/api/generate", `{"model":"gram","prompt":"x","format":` + schema + `}`},
			{"/completion", `{"model":"gram","prompt":"x","json_schema":` + schema + `}`},
			{"/v1/chat/completions", `{"model":"gram","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":` + schema + `}}],"tool_choice":"required"}`},
		} {
			r := call(c.path, c.body)
			if r.status != 400 {
				t.Errorf("%s with %s: status %d, want 400: %s", c.path, schema, r.status, r.body)
				continue
			}
			checkShape(t, dialectOf(c.path), 400, r.body)
		}
	}
	// A GBNF grammar that does not compile.
	for _, c := range []struct{ path, body string }{
		{"/completion", `{"model":"gram","prompt":"x","grammar":"root ::= missing"}`},
		{"/completion", `{"model":"gram","prompt":"x","grammar":"root ::= [unclosed"}`},
		{"/v1/chat/completions", `{"model":"gram","messages":[{"role":"user","content":"x"}],"grammar":"root ::= missing"}`},
		{"/v1/completions", `{"model":"gram","prompt":"x","grammar":"root ::= ("}`},
	} {
		r := call(c.path, c.body)
		if r.status != 400 {
			t.Errorf("%s: status %d, want 400: %s", c.body, r.status, r.body)
			continue
		}
		if msg := checkShape(t, dialectOf(c.path), 400, r.body); !strings.Contains(msg, "grammar") {
			t.Errorf("message %q does not name the grammar", msg)
		}
	}
}

// TestChatTemplateFallback: a backend without a template gets ChatML, with
// the tools declared in Hermes format; tool turns and calls are rendered.
func TestChatTemplateFallback(t *testing.T) {
	_, gens, call := newGramServer(t, Config{}, map[string]string{"echo": "hi"})
	r := call("/v1/chat/completions", `{"model":"echo","messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":"Hello"}]}`)
	expect(t, r, 200)
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
	if got := gens["echo"].lastPrompt(); got != want {
		t.Errorf("prompt %q, want %q", got, want)
	}
	// The same as package chat's ChatML fallback.
	ref, err := chat.Render(chat.FallbackTemplate, []chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hello"}}, chat.Options{AddGenerationPrompt: true})
	if err != nil || ref != want {
		t.Errorf("chat.FallbackTemplate gives %q, %v", ref, err)
	}

	r = call("/v1/chat/completions", `{"model":"echo","messages":[
		{"role":"system","content":"S"},
		{"role":"user","content":"weather?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"sunny"}],
		"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}`)
	expect(t, r, 200)
	p := gens["echo"].lastPrompt()
	for _, s := range []string{
		"<|im_start|>system\nS\n\n# Tools\n", `<tools>` + "\n" + `{"type": "function", "function": {"name": "get_weather"`,
		"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n",
		"<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
	} {
		if !strings.Contains(p, s) {
			t.Errorf("prompt lacks %q:\n%s", s, p)
		}
	}
	if strings.Count(p, "<|im_start|>system") != 1 {
		t.Errorf("system turn rendered twice:\n%s", p)
	}
	// tool_choice none: the tools are not shown to the model.
	call("/v1/chat/completions", `{"model":"echo","messages":[{"role":"user","content":"x"}],"tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}]}`)
	if p := gens["echo"].lastPrompt(); strings.Contains(p, "<tools>") {
		t.Errorf("tool_choice none still declares the tools:\n%s", p)
	}
	// Ollama renders the same way.
	r = call("/api/chat", `{"model":"echo","stream":false,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]}`)
	expect(t, r, 200)
	if got := gens["echo"].lastPrompt(); got != want {
		t.Errorf("ollama prompt %q, want %q", got, want)
	}
	// A model without a template of its own: /api/generate sends the prompt
	// as it is (the ChatML fallback is for chat requests only).
	r = call("/api/generate", `{"model":"echo","stream":false,"prompt":"Hello","system":"Be brief."}`)
	expect(t, r, 200)
	if got := gens["echo"].lastPrompt(); got != "Be brief.\n\nHello" {
		t.Errorf("/api/generate prompt %q", got)
	}
}

// TestChatTemplateOverride: --chat-template replaces every model's template,
// /props shows it, and the family's end-of-turn texts stop generation.
func TestChatTemplateOverride(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tmpl.jinja")
	src := "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n"
	os.WriteFile(path, []byte(src), 0o644)
	tmpl, err := chat.LoadTemplateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ts, gens, call := newGramServer(t, Config{ChatTemplate: tmpl}, map[string]string{"echo": "Sure."})
	r := call("/v1/chat/completions", `{"model":"echo","messages":[{"role":"user","content":"Hi"}]}`)
	expect(t, r, 200)
	if got, want := gens["echo"].lastPrompt(), "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"; got != want {
		t.Errorf("prompt %q, want %q", got, want)
	}
	gens["echo"].mu.Lock()
	stops := gens["echo"].opts.Stop
	gens["echo"].mu.Unlock()
	if !containsString(stops, "<end_of_turn>") || !containsString(stops, "<start_of_turn>") {
		t.Errorf("the family's end-of-turn texts are not stop strings: %q", stops)
	}
	r = call("/api/generate", `{"model":"echo","stream":false,"prompt":"Hi"}`)
	expect(t, r, 200)
	if got, want := gens["echo"].lastPrompt(), "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"; got != want {
		t.Errorf("/api/generate prompt %q, want %q", got, want)
	}
	r = do(t, ts, "GET", "/props?model=echo", "")
	if got := r.json(t)["chat_template"]; got != src {
		t.Errorf("/props chat_template %q", got)
	}
}

const testTools = `[{"type":"function","function":{"name":"get_weather","description":"Weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":10},"unit":{"enum":["C","F"]}},"required":["city","unit"],"additionalProperties":false}}},
	{"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"],"additionalProperties":false}}}]`

const twoCalls = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"C\"}}\n</tool_call>"

// checkCalls verifies OpenAI tool_calls: declared names, arguments that are
// a JSON string validating against the tool's parameters.
func checkCalls(t *testing.T, calls []any, names ...string) {
	t.Helper()
	var ts []struct {
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	}
	json.Unmarshal([]byte(testTools), &ts)
	if len(calls) == 0 {
		t.Errorf("no tool calls")
	}
	for i, c := range calls {
		m := c.(map[string]any)
		fn := m["function"].(map[string]any)
		name, _ := fn["name"].(string)
		args, ok := fn["arguments"].(string)
		if !ok || m["type"] != "function" || !strings.HasPrefix(m["id"].(string), "call_") {
			t.Errorf("call %d: %v", i, m)
			continue
		}
		if len(names) > 0 && !containsString(names, name) {
			t.Errorf("call %d names %q, want one of %v", i, name, names)
		}
		found := false
		for _, tl := range ts {
			if tl.Function.Name == name {
				found = true
				validates(t, validatorFor(t, string(tl.Function.Parameters)), string(tl.Function.Parameters), args)
			}
		}
		if !found {
			t.Errorf("call %d names an undeclared tool %q", i, name)
		}
	}
}

// TestToolChoice: required and named choices always yield valid calls,
// streamed or not; none never does; auto parses what the model writes.
func TestToolChoice(t *testing.T) {
	_, _, call := newGramServer(t, Config{}, map[string]string{"caller": twoCalls, "plain": "No tools needed."})
	msgs := `"messages":[{"role":"user","content":"What is 1+2, and the weather in Oslo?"}]`
	for seed := range 6 {
		for _, c := range []struct {
			choice string
			names  []string
		}{{`"required"`, nil}, {`{"type":"function","function":{"name":"add"}}`, []string{"add"}}, {`{"type":"function","function":{"name":"get_weather"}}`, []string{"get_weather"}}} {
			body := fmt.Sprintf(`{"model":"gram","seed":%d,"max_tokens":400,%s,"tools":%s,"tool_choice":%s}`, seed, msgs, testTools, c.choice)
			r := call("/v1/chat/completions", body)
			expect(t, r, 200)
			m := r.json(t)
			if get(m, "choices", 0, "finish_reason") != "tool_calls" {
				t.Errorf("%s seed %d: finish %v: %s", c.choice, seed, get(m, "choices", 0, "finish_reason"), r.body)
				continue
			}
			calls, _ := get(m, "choices", 0, "message", "tool_calls").([]any)
			checkCalls(t, calls, c.names...)
			if c.names != nil && len(calls) != 1 {
				t.Errorf("named choice made %d calls", len(calls))
			}
			if seed == 0 { // streamed: the deltas carry the same kind of calls
				r := call("/v1/chat/completions", strings.Replace(body, `"model":"gram"`, `"model":"gram","stream":true`, 1))
				var calls []any
				finish := ""
				for _, ev := range sseEvents(t, r.body) {
					if ev == "[DONE]" {
						continue
					}
					var e map[string]any
					json.Unmarshal([]byte(ev), &e)
					if tc, ok := get(e, "choices", 0, "delta", "tool_calls").([]any); ok {
						calls = append(calls, tc...)
					}
					if f, ok := get(e, "choices", 0, "finish_reason").(string); ok {
						finish = f
					}
					if c, _ := get(e, "choices", 0, "delta", "content").(string); strings.Contains(c, "<tool_call>") {
						t.Errorf("a call leaked into the content: %q", c)
					}
				}
				if finish != "tool_calls" {
					t.Errorf("streamed finish %q", finish)
				}
				checkCalls(t, calls, c.names...)
			}
		}
	}

	// auto: the model's calls are parsed, in parallel; parallel_tool_calls
	// false keeps one.
	body := `{"model":"caller",` + msgs + `,"tools":` + testTools + `}`
	r := call("/v1/chat/completions", body)
	m := r.json(t)
	calls, _ := get(m, "choices", 0, "message", "tool_calls").([]any)
	if len(calls) != 2 || get(m, "choices", 0, "finish_reason") != "tool_calls" || get(m, "choices", 0, "message", "content") != nil {
		t.Fatalf("auto: %s", r.body)
	}
	checkCalls(t, calls)
	if args := get(m, "choices", 0, "message", "tool_calls", 0, "function", "arguments"); args != `{"a": 1, "b": 2}` && args != `{"a":1,"b":2}` {
		t.Errorf("arguments %q", args)
	}
	r = call("/v1/chat/completions", strings.Replace(body, `"tools"`, `"parallel_tool_calls":false,"tools"`, 1))
	if calls, _ := get(r.json(t), "choices", 0, "message", "tool_calls").([]any); len(calls) != 1 {
		t.Errorf("parallel_tool_calls false: %s", r.body)
	}
	// none: never a call, even when the model writes one.
	r = call("/v1/chat/completions", strings.Replace(body, `"tools"`, `"tool_choice":"none","tools"`, 1))
	m = r.json(t)
	if get(m, "choices", 0, "message", "tool_calls") != nil || get(m, "choices", 0, "finish_reason") != "stop" || get(m, "choices", 0, "message", "content") != twoCalls {
		t.Errorf("none: %s", r.body)
	}
	for seed := range 3 {
		r = call("/v1/chat/completions", fmt.Sprintf(`{"model":"gram","seed":%d,"max_tokens":50,%s,"tools":%s,"tool_choice":"none"}`, seed, msgs, testTools))
		if get(r.json(t), "choices", 0, "message", "tool_calls") != nil {
			t.Errorf("none made a call: %s", r.body)
		}
	}
	// A plain answer stays content.
	r = call("/v1/chat/completions", `{"model":"plain",`+msgs+`,"tools":`+testTools+`}`)
	m = r.json(t)
	if get(m, "choices", 0, "message", "content") != "No tools needed." || get(m, "choices", 0, "message", "tool_calls") != nil {
		t.Errorf("plain: %s", r.body)
	}

	// Streaming auto: the calls come as deltas, no markup in the content.
	r = call("/v1/chat/completions", strings.Replace(body, `"tools"`, `"stream":true,"tools"`, 1))
	var content strings.Builder
	var streamed []any
	for _, ev := range sseEvents(t, r.body) {
		if ev == "[DONE]" {
			continue
		}
		var e map[string]any
		json.Unmarshal([]byte(ev), &e)
		c, _ := get(e, "choices", 0, "delta", "content").(string)
		content.WriteString(c)
		if tc, ok := get(e, "choices", 0, "delta", "tool_calls").([]any); ok {
			streamed = append(streamed, tc...)
		}
	}
	if content.String() != "" || len(streamed) != 2 {
		t.Errorf("streamed auto: content %q, calls %v", content.String(), streamed)
	}

	// Ollama: arguments as an object.
	r = call("/api/chat", `{"model":"caller","stream":false,`+msgs+`,"tools":`+testTools+`}`)
	expect(t, r, 200)
	m = r.json(t)
	args, ok := get(m, "message", "tool_calls", 0, "function", "arguments").(map[string]any)
	if !ok || args["a"] != 1.0 || args["b"] != 2.0 || get(m, "message", "tool_calls", 1, "function", "name") != "get_weather" {
		t.Errorf("ollama tool calls: %s", r.body)
	}
	r = call("/api/chat", `{"model":"caller",`+msgs+`,"tools":`+testTools+`}`)
	if !strings.Contains(string(r.body), `"tool_calls":[{"function":{"arguments":{"a":1,"b":2}`) {
		t.Errorf("ollama streamed tool calls: %s", r.body)
	}
}

// TestReasoning: a <think> block is returned apart, streamed or not, and the
// thinking switch reaches templates that read enable_thinking.
func TestReasoning(t *testing.T) {
	src := "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n" +
		"{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
	path := filepath.Join(t.TempDir(), "qwen3ish.jinja")
	os.WriteFile(path, []byte(src), 0o644)
	tmpl, err := chat.LoadTemplateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, gens, call := newGramServer(t, Config{ChatTemplate: tmpl}, map[string]string{"thinker": "<think>\nLet me see.\n</think>\n\nThe answer is 4."})
	msgs := `"messages":[{"role":"user","content":"2+2?"}]`
	r := call("/v1/chat/completions", `{"model":"thinker",`+msgs+`}`)
	m := r.json(t)
	if get(m, "choices", 0, "message", "reasoning_content") != "Let me see." || get(m, "choices", 0, "message", "content") != "The answer is 4." {
		t.Errorf("openai: %s", r.body)
	}
	r = call("/v1/chat/completions", `{"model":"thinker","stream":true,`+msgs+`}`)
	var rc, c strings.Builder
	for _, ev := range sseEvents(t, r.body) {
		var e map[string]any
		json.Unmarshal([]byte(ev), &e)
		s, _ := get(e, "choices", 0, "delta", "reasoning_content").(string)
		rc.WriteString(s)
		s, _ = get(e, "choices", 0, "delta", "content").(string)
		c.WriteString(s)
	}
	if rc.String() != "Let me see." || c.String() != "The answer is 4." {
		t.Errorf("openai stream: %q %q", rc.String(), c.String())
	}
	r = call("/api/chat", `{"model":"thinker","stream":false,`+msgs+`}`)
	m = r.json(t)
	if get(m, "message", "thinking") != "Let me see." || get(m, "message", "content") != "The answer is 4." {
		t.Errorf("ollama: %s", r.body)
	}
	r = call("/api/chat", `{"model":"thinker",`+msgs+`}`)
	rc.Reset()
	c.Reset()
	for _, line := range strings.Split(strings.TrimSpace(string(r.body)), "\n") {
		var e map[string]any
		json.Unmarshal([]byte(line), &e)
		s, _ := get(e, "message", "thinking").(string)
		rc.WriteString(s)
		s, _ = get(e, "message", "content").(string)
		c.WriteString(s)
	}
	if rc.String() != "Let me see." || c.String() != "The answer is 4." {
		t.Errorf("ollama stream: %q %q", rc.String(), c.String())
	}

	// The switch.
	off := "<think>\n\n</think>\n\n"
	call("/v1/chat/completions", `{"model":"thinker",`+msgs+`}`)
	if strings.Contains(gens["thinker"].lastPrompt(), off) {
		t.Errorf("thinking is off by default")
	}
	call("/v1/chat/completions", `{"model":"thinker",`+msgs+`,"chat_template_kwargs":{"enable_thinking":false}}`)
	if !strings.HasSuffix(gens["thinker"].lastPrompt(), off) {
		t.Errorf("chat_template_kwargs did not turn thinking off: %q", gens["thinker"].lastPrompt())
	}
	call("/api/chat", `{"model":"thinker","think":false,`+msgs+`}`)
	if !strings.HasSuffix(gens["thinker"].lastPrompt(), off) {
		t.Errorf("think:false did not turn thinking off: %q", gens["thinker"].lastPrompt())
	}
	expect(t, call("/api/chat", `{"model":"thinker","think":true,"stream":false,`+msgs+`}`), 200)
}

// withTemplate copies a GGUF model with tokenizer.chat_template set.
func withTemplate(t *testing.T, name, tmpl string) string {
	t.Helper()
	f, err := gguf.Open(filepath.Join(modelDir, name+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	for _, kv := range f.KVs {
		if kv.Key != "tokenizer.chat_template" {
			w.AddKV(kv.Key, kv.Value)
		}
	}
	w.AddKV("tokenizer.chat_template", tmpl)
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		w.AddTensor(ti.Name, ti.Dims, ti.Type)
	}
	if _, err := w.WriteHeader(); err != nil {
		t.Fatal(err)
	}
	for i := range f.Tensors {
		if err := w.WriteTensorData(f.Tensors[i].Name, f.Data(&f.Tensors[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+"-tmpl.gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestModelTemplate: a real model's tokenizer.chat_template renders the
// prompt, a BOS the template writes is not doubled, a template's
// raise_exception is a 400, an unusable template a 500; structured output
// and forced calls work on the real model (sessions apply constraints).
func TestModelTemplate(t *testing.T) {
	good := withTemplate(t, llamaName, "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant]")
	raising := withTemplate(t, llamaName, "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ messages[0].content }}")
	broken := withTemplate(t, llamaName, "{% for m in messages %}{{ m.content }")
	hostile := withTemplate(t, llamaName, "{% for i in range(1000000) %}{% for j in range(1000000) %}{{ i }}{% endfor %}{% endfor %}")
	ts, srv, _ := newTestServer(t, testOpts{mcfg: ManagerConfig{Sessions: true, Sources: []ModelSource{
		{Name: "good", Path: good}, {Name: "raising", Path: raising}, {Name: "broken", Path: broken}, {Name: "hostile", Path: hostile},
	}}})
	r := post(t, ts, "/v1/chat/completions", `{"model":"good","max_tokens":2,"temperature":0,"messages":[{"role":"user","content":"Hi"}]}`)
	expect(t, r, 200)
	n := get(r.json(t), "usage", "prompt_tokens").(float64)
	r = post(t, ts, "/tokenize", `{"model":"good","content":"[user] Hi\n[assistant]","add_special":true}`)
	toks := r.json(t)["tokens"].([]any)
	if int(n) != len(toks) || toks[0] != 1.0 || toks[1] == 1.0 {
		t.Errorf("prompt has %v tokens, the rendering with one BOS %d: %v", n, len(toks), toks)
	}
	r = post(t, ts, "/api/chat", `{"model":"good","stream":false,"options":{"num_predict":2},"messages":[{"role":"user","content":"Hi"}]}`)
	if got := r.json(t)["prompt_eval_count"]; got != n {
		t.Errorf("ollama prompt_eval_count %v, openai %v", got, n)
	}
	// Ollama's /api/generate wraps the prompt in the model's template as one
	// user turn (after the system text), unless raw.
	r = post(t, ts, "/api/generate", `{"model":"good","stream":false,"prompt":"Hi","options":{"num_predict":2}}`)
	if got := r.json(t)["prompt_eval_count"]; got != n {
		t.Errorf("/api/generate prompt_eval_count %v, want the templated %v", got, n)
	}
	r = post(t, ts, "/api/generate", `{"model":"good","stream":false,"prompt":"Hi","system":"Be brief.","options":{"num_predict":2}}`)
	sys := post(t, ts, "/tokenize", `{"model":"good","content":"[system] Be brief.\n[user] Hi\n[assistant]","add_special":true}`).json(t)["tokens"].([]any)
	if got := r.json(t)["prompt_eval_count"]; got != float64(len(sys)) {
		t.Errorf("/api/generate with system: prompt_eval_count %v, want %d", got, len(sys))
	}
	r = post(t, ts, "/api/generate", `{"model":"good","stream":false,"raw":true,"prompt":"Hi","options":{"num_predict":2}}`)
	raw := post(t, ts, "/tokenize", `{"model":"good","content":"Hi","add_special":true}`).json(t)["tokens"].([]any)
	if got := r.json(t)["prompt_eval_count"]; got != float64(len(raw)) {
		t.Errorf("raw /api/generate: prompt_eval_count %v, want %d", got, len(raw))
	}
	r = post(t, ts, "/api/generate", `{"model":"raising","stream":false,"prompt":"Hi","system":"S"}`)
	expect(t, r, 400)
	checkShape(t, dialectOllama, 400, r.body)

	r = do(t, ts, "GET", "/props?model=good", "")
	if !strings.Contains(r.json(t)["chat_template"].(string), "[assistant]") {
		t.Errorf("/props: %s", r.body)
	}

	r = post(t, ts, "/v1/chat/completions", `{"model":"raising","messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}]}`)
	expect(t, r, 400)
	if msg := checkShape(t, dialectOpenAI, 400, r.body); !strings.Contains(msg, "System role not supported") {
		t.Errorf("raise_exception: %s", msg)
	}
	r = post(t, ts, "/api/chat", `{"model":"raising","messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"}]}`)
	expect(t, r, 400)
	checkShape(t, dialectOllama, 400, r.body)
	r = post(t, ts, "/v1/chat/completions", `{"model":"broken","messages":[{"role":"user","content":"Hi"}]}`)
	expect(t, r, 500)
	if msg := checkShape(t, dialectOpenAI, 500, r.body); !strings.Contains(msg, "--chat-template") {
		t.Errorf("broken template: %s", msg)
	}

	start := time.Now()
	r = post(t, ts, "/v1/chat/completions", `{"model":"hostile","messages":[{"role":"user","content":"Hi"}]}`)
	expect(t, r, 500)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a hostile template ran for %v", d)
	}
	checkShape(t, dialectOpenAI, 500, r.body)

	// /api/show reports the template and what it can do.
	r = post(t, ts, "/api/show", `{"model":"good"}`)
	if m := r.json(t); !strings.Contains(m["template"].(string), "[assistant]") {
		t.Errorf("/api/show: %s", r.body)
	}

	// Constrained decoding on the real model and vocabulary.
	schema := `{"type":"object","properties":{"answer":{"enum":["yes","no","maybe"]},"n":{"type":"integer","minimum":0,"maximum":9}},"required":["answer","n"],"additionalProperties":false}`
	sch := validatorFor(t, schema)
	for seed := range 2 {
		r = post(t, ts, "/v1/chat/completions", fmt.Sprintf(`{"model":"good","seed":%d,"max_tokens":60,"messages":[{"role":"user","content":"Answer"}],"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":%s}}}`, seed, schema))
		expect(t, r, 200)
		m := r.json(t)
		out := get(m, "choices", 0, "message", "content").(string)
		if get(m, "choices", 0, "finish_reason") != "stop" {
			t.Errorf("seed %d: unfinished %q", seed, out)
			continue
		}
		validates(t, sch, schema, out)
	}
	r = post(t, ts, "/v1/chat/completions", `{"model":"good","seed":1,"max_tokens":200,"messages":[{"role":"user","content":"Add"}],"tools":`+testTools+`,"tool_choice":{"type":"function","function":{"name":"add"}}}`)
	expect(t, r, 200)
	if m := r.json(t); get(m, "choices", 0, "finish_reason") == "tool_calls" {
		checkCalls(t, get(m, "choices", 0, "message", "tool_calls").([]any), "add")
	} else {
		t.Logf("the random model ran out of tokens inside the call: %s", r.body)
	}

	// Unloading a model drops its cached chat profile.
	srv.profiles.mu.Lock()
	n0 := len(srv.profiles.byModel)
	srv.profiles.mu.Unlock()
	if n0 == 0 {
		t.Fatal("no profile cached")
	}
	for _, name := range []string{"good", "raising", "broken", "hostile"} {
		post(t, ts, "/api/generate", `{"model":"`+name+`","keep_alive":0}`)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		srv.profiles.mu.Lock()
		n := len(srv.profiles.byModel)
		srv.profiles.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d of %d chat profiles outlive their unloaded models", n, n0)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConstrainedBatched: the continuous-batching scheduler (the default
// backend) applies the constraint too, to requests decoded together.
func TestConstrainedBatched(t *testing.T) {
	ts, _, _ := newTestServer(t, testOpts{})
	schema := `{"type":"object","properties":{"ok":{"type":"boolean"},"k":{"enum":["a","b"]}},"required":["ok","k"],"additionalProperties":false}`
	sch := validatorFor(t, schema)
	var wg sync.WaitGroup
	outs := make([]response, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = post(t, ts, "/v1/chat/completions", fmt.Sprintf(`{"model":%q,"seed":%d,"max_tokens":40,"messages":[{"role":"user","content":"JSON please"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":%s}}}`, llamaName, i, schema))
		}()
	}
	wg.Wait()
	for i, r := range outs {
		expect(t, r, 200)
		m := r.json(t)
		out := get(m, "choices", 0, "message", "content").(string)
		if get(m, "choices", 0, "finish_reason") != "stop" {
			t.Errorf("request %d unfinished: %q", i, out)
			continue
		}
		validates(t, sch, schema, out)
	}
}
