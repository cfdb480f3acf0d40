package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/grammar"
	"github.com/slm-dev/slm/tokenizer"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		f       Format
		text    string
		names   []string
		content string
		calls   []Call
		err     error
	}{
		{"hermes one", FormatHermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", nil,
			"", []Call{{Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}}, nil},
		{"hermes two with text", FormatHermes, "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"x\\\": 1}\"}\n</tool_call>", nil,
			"Let me check.", []Call{{Name: "a", Arguments: json.RawMessage(`{}`)}, {Name: "b", Arguments: json.RawMessage(`{"x":1}`)}}, nil},
		{"hermes unclosed", FormatHermes, "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"q\": [1, 2]}}", nil,
			"", []Call{{Name: "a", Arguments: json.RawMessage(`{"q":[1,2]}`)}}, nil},
		{"hermes none", FormatHermes, "Just text.", nil, "Just text.", nil, nil},
		{"hermes bad json", FormatHermes, "<tool_call>{\"name\": \"a\", </tool_call>", nil, "", nil, ErrBadCall},
		{"hermes unknown", FormatHermes, "<tool_call>{\"name\": \"zz\", \"arguments\": {}}</tool_call>", []string{"a"}, "", nil, ErrUnknownTool},
		{"hermes args not object", FormatHermes, "<tool_call>{\"name\": \"a\", \"arguments\": [1]}</tool_call>", nil, "", nil, ErrBadCall},
		{"llama3 json", FormatLlama3, `{"name": "get_weather", "parameters": {"city": "Oslo"}}`, []string{"get_weather"},
			"", []Call{{Name: "get_weather", Arguments: json.RawMessage(`{"city":"Oslo"}`)}}, nil},
		{"llama3 python tag", FormatLlama3, `<|python_tag|>{"name": "f", "parameters": {}}`, nil,
			"", []Call{{Name: "f", Arguments: json.RawMessage(`{}`)}}, nil},
		{"llama3 two", FormatLlama3, `{"name": "f", "parameters": {"a": 1}}; {"name": "g", "arguments": {"b": 2}}`, nil,
			"", []Call{{Name: "f", Arguments: json.RawMessage(`{"a":1}`)}, {Name: "g", Arguments: json.RawMessage(`{"b":2}`)}}, nil},
		{"llama3 json answer", FormatLlama3, `{"answer": 42}`, []string{"f"}, `{"answer": 42}`, nil, nil},
		{"llama3 other name", FormatLlama3, `{"name": "Bob", "parameters": {}}`, []string{"f"}, `{"name": "Bob", "parameters": {}}`, nil, nil},
		{"llama3 text", FormatLlama3, "The weather is fine.", nil, "The weather is fine.", nil, nil},
		{"mistral array", FormatMistral, `[TOOL_CALLS][{"name": "f", "arguments": {"a": "b"}, "id": "abc123XYZ"}, {"name": "g", "arguments": {}}]`, nil,
			"", []Call{{ID: "abc123XYZ", Name: "f", Arguments: json.RawMessage(`{"a":"b"}`)}, {Name: "g", Arguments: json.RawMessage(`{}`)}}, nil},
		{"mistral args form", FormatMistral, `[TOOL_CALLS]f[ARGS]{"a": 1}[TOOL_CALLS]g[ARGS]{}`, nil,
			"", []Call{{Name: "f", Arguments: json.RawMessage(`{"a":1}`)}, {Name: "g", Arguments: json.RawMessage(`{}`)}}, nil},
		{"mistral text", FormatMistral, "No calls here", nil, "No calls here", nil, nil},
		{"mistral bad", FormatMistral, `[TOOL_CALLS][{"name": }]`, nil, "", nil, ErrBadCall},
		{"none format", FormatNone, `<tool_call>{"name":"a"}</tool_call>`, nil, `<tool_call>{"name":"a"}</tool_call>`, nil, nil},
	}
	for _, tc := range cases {
		content, calls, err := Parse(tc.f, tc.text, tc.names)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if content != tc.content {
			t.Errorf("%s: content %q, want %q", tc.name, content, tc.content)
		}
		if len(calls) != len(tc.calls) {
			t.Errorf("%s: %d calls, want %d: %+v", tc.name, len(calls), len(tc.calls), calls)
			continue
		}
		for i := range calls {
			if calls[i].Name != tc.calls[i].Name || calls[i].ID != tc.calls[i].ID || string(calls[i].Arguments) != string(tc.calls[i].Arguments) {
				t.Errorf("%s: call %d = %+v (%s), want %+v (%s)", tc.name, i, calls[i], calls[i].Arguments, tc.calls[i], tc.calls[i].Arguments)
			}
		}
	}
}

func TestParseChoice(t *testing.T) {
	for raw, want := range map[string]Choice{
		``: {Mode: "auto"}, `"auto"`: {Mode: "auto"}, `"none"`: {Mode: "none"}, `"required"`: {Mode: "required"},
		`{"type":"function","function":{"name":"f"}}`: {Mode: "function", Name: "f"},
	} {
		got, err := ParseChoice(json.RawMessage(raw))
		if err != nil || got != want {
			t.Errorf("%s: %+v %v", raw, got, err)
		}
	}
	for _, raw := range []string{`"always"`, `{"type":"function"}`, `{"type":"x","function":{"name":"f"}}`, `5`} {
		if _, err := ParseChoice(json.RawMessage(raw)); !errors.Is(err, ErrChoice) {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

func TestDetectFormat(t *testing.T) {
	b, err := os.ReadFile("../testdata/tokenizer/chat_templates.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Templates []struct {
			Family   string `json:"family"`
			Template string `json:"chat_template"`
		}
	}
	json.Unmarshal(b, &f)
	want := map[string]Format{"qwen3": FormatHermes, "llama3": FormatNone, "llama3-legacy-template": FormatNone, "gemma3": FormatNone, "phi-3": FormatNone}
	for _, tm := range f.Templates {
		if got := DetectFormat(tm.Template); got != want[tm.Family] {
			t.Errorf("%s: %q want %q", tm.Family, got, want[tm.Family])
		}
	}
	if DetectFormat("{{ '[TOOL_CALLS]' }}") != FormatMistral {
		t.Error("mistral")
	}
	if DetectFormat("<|start_header_id|>{% if tools %}<|python_tag|>{% endif %}") != FormatLlama3 {
		t.Error("llama3")
	}
}

var testTools = []Tool{
	{Type: "function", Function: Function{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string","maxLength":12},"unit":{"enum":["c","f"]}},"required":["city"],"additionalProperties":false}`)}},
	{Type: "function", Function: Function{Name: "add", Parameters: json.RawMessage(`{"type":"object","properties":{"a":{"type":"integer","minimum":0,"maximum":100},"b":{"type":"integer"}},"required":["a","b"]}`)}},
	{Type: "function", Function: Function{Name: "now"}},
	{Type: "function", Function: Function{Name: "tree", Parameters: json.RawMessage(`{"$ref":"#/$defs/n","$defs":{"n":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/n"},"maxItems":2}},"additionalProperties":false}}}`)}},
}

func gpt2Vocab(t *testing.T) *grammar.Vocab {
	f, err := gguf.Open("../testdata/tokenizer/gguf/ggml-vocab-gpt-2.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([][]byte, tok.NVocab())
	var eog []int32
	for i := range tokens {
		if tok.IsEOG(int32(i)) {
			eog = append(eog, int32(i))
			continue
		}
		tokens[i] = bytes.Clone(tok.Piece(int32(i)))
	}
	return grammar.NewVocab(tokens, eog)
}

// generate samples random tokens under the grammar until it ends, favouring
// closing characters after a while.
func generate(t *testing.T, g *grammar.Grammar, v *grammar.Vocab, tokens [][]byte, rng *rand.Rand, prefix string) string {
	m := g.Matcher(v)
	if err := m.AcceptBytes([]byte(prefix)); err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, v.NVocab())
	out := []byte(prefix)
	for step := 0; step < 3000; step++ {
		if m.Done() {
			return string(out)
		}
		for i := range logits {
			logits[i] = rng.Float32()
			if step > 40 && tokens[i] != nil && len(tokens[i]) > 0 {
				switch tokens[i][0] {
				case '"', '}', ']', '<', '\n':
					logits[i] += 3
				}
			}
			if tokens[i] == nil && step > 40 {
				logits[i] += 10 // end of generation
			}
		}
		m.Mask(logits)
		best, bv := 0, float32(math.Inf(-1))
		for i, l := range logits {
			if l > bv {
				best, bv = i, l
			}
		}
		if err := m.Accept(int32(best)); err != nil {
			t.Fatal(err)
		}
		if tokens[best] == nil {
			return string(out)
		}
		out = append(out, tokens[best]...)
	}
	t.Fatalf("no end: %q", out)
	return ""
}

// TestForcedCalls: under a forced constraint, random generations always
// parse into calls of the allowed tools whose arguments validate.
func TestForcedCalls(t *testing.T) {
	v := gpt2Vocab(t)
	f, _ := gguf.Open("../testdata/tokenizer/gguf/ggml-vocab-gpt-2.gguf")
	tok, _ := tokenizer.FromGGUF(f)
	tokens := make([][]byte, tok.NVocab())
	for i := range tokens {
		if !tok.IsEOG(int32(i)) {
			tokens[i] = tok.Piece(int32(i))
		}
	}
	defer f.Close()
	validators := map[string]*jsonschema.Schema{}
	for _, tl := range testTools {
		p := tl.Function.Parameters
		if p == nil {
			p = json.RawMessage(`{"type":"object"}`)
		}
		doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(p))
		c := jsonschema.NewCompiler()
		c.AddResource("s.json", doc)
		sch, err := c.Compile("s.json")
		if err != nil {
			t.Fatal(err)
		}
		validators[tl.Function.Name] = sch
	}
	names := []string{"get_weather", "add", "now", "tree"}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, format := range []Format{FormatHermes, FormatLlama3, FormatMistral} {
		for _, choice := range []Choice{{Mode: "required"}, {Mode: "function", Name: "add"}, {Mode: "function", Name: "tree"}} {
			for _, thinking := range []bool{false, true} {
				if thinking && format != FormatHermes {
					continue
				}
				forced, err := Force(format, testTools, choice, ForceOptions{Parallel: true, MaxCalls: 3, Thinking: thinking})
				if err != nil {
					t.Fatalf("%s %+v: %v", format, choice, err)
				}
				g, err := grammar.CompileGBNF(forced.Grammar)
				if err != nil {
					t.Fatal(err)
				}
				for k := 0; k < 4; k++ {
					prefix := ""
					if thinking {
						// Random text never closes a thinking block by
						// chance: start inside or past it.
						prefix = "<think>\nThe user wants </thin a call.\n</think>\n\n"
						if k%2 == 1 {
							prefix = "<tool_call>\n"
						}
					}
					text := generate(t, g, v, tokens, rng, prefix)
					content, calls, err := Parse(format, forced.Prefill+text, names)
					if err != nil {
						t.Fatalf("%s %+v: %q: %v", format, choice, text, err)
					}
					if len(calls) == 0 {
						t.Fatalf("%s %+v: no call in %q", format, choice, text)
					}
					if !thinking && content != "" {
						t.Fatalf("%s %+v: content %q", format, choice, content)
					}
					if thinking && content != "" && !strings.HasPrefix(content, "<think>") && !strings.HasPrefix(text, "<tool_call>") {
						t.Fatalf("%s: content %q", format, content)
					}
					for _, c := range calls {
						if choice.Mode == "function" && (c.Name != choice.Name || len(calls) != 1) {
							t.Fatalf("%s %+v: calls %+v", format, choice, calls)
						}
						var args any
						if err := json.Unmarshal(c.Arguments, &args); err != nil {
							t.Fatal(err)
						}
						inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(c.Arguments))
						if err := validators[c.Name].Validate(inst); err != nil {
							t.Fatalf("%s: %s(%s): %v", format, c.Name, c.Arguments, err)
						}
					}
				}
			}
		}
	}
}

func TestThinkingGrammar(t *testing.T) {
	forced, err := Force(FormatHermes, testTools, Choice{Mode: "function", Name: "now"}, ForceOptions{Thinking: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := grammar.CompileGBNF(forced.Grammar)
	if err != nil {
		t.Fatal(err)
	}
	call := "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"
	for text, want := range map[string]bool{
		call: true,
		"<think>\nx < y </thi </think>\n\n" + call: true,
		"<think>a</think>b</think>" + call:         false,
		"<think>a" + call:                          false,
		"hello" + call:                             false,
	} {
		m := g.Matcher(grammar.NewVocab(nil, nil))
		got := m.AcceptBytes([]byte(text)) == nil && m.Complete()
		if got != want {
			t.Errorf("%q: %v, want %v", text, got, want)
		}
	}
}

func TestForceErrors(t *testing.T) {
	if f, err := Force(FormatHermes, testTools, Choice{Mode: "auto"}, ForceOptions{}); f != nil || err != nil {
		t.Errorf("auto: %v %v", f, err)
	}
	if f, err := Force(FormatHermes, testTools, Choice{Mode: "none"}, ForceOptions{}); f != nil || err != nil {
		t.Errorf("none: %v %v", f, err)
	}
	if _, err := Force(FormatHermes, testTools, Choice{Mode: "function", Name: "missing"}, ForceOptions{}); !errors.Is(err, ErrChoice) {
		t.Errorf("missing: %v", err)
	}
	if _, err := Force(FormatHermes, nil, Choice{Mode: "required"}, ForceOptions{}); !errors.Is(err, ErrChoice) {
		t.Errorf("no tools: %v", err)
	}
	bad := []Tool{{Type: "function", Function: Function{Name: "f", Parameters: json.RawMessage(`{"type":"object","properties":{"x":{"not":{}}}}`)}}}
	if _, err := Force(FormatHermes, bad, Choice{Mode: "required"}, ForceOptions{}); !errors.Is(err, grammar.ErrSchema) {
		t.Errorf("bad schema: %v", err)
	}
}

func TestScan(t *testing.T) {
	cases := []struct {
		f           Format
		text        string
		start, hold int
	}{
		{FormatHermes, "Hello", -1, 0},
		{FormatHermes, "Hello <tool", -1, 5},
		{FormatHermes, "Hello <tool_call>{", 6, 0},
		{FormatHermes, "a<", -1, 1},
		{FormatMistral, "ok [TOOL", -1, 5},
		{FormatMistral, "[TOOL_CALLS][", 0, 0},
		{FormatLlama3, "  ", -1, 2},
		{FormatLlama3, "<|pyth", -1, 6},
		{FormatLlama3, ` {"name"`, 1, 0},
		{FormatLlama3, "The answer", -1, 0},
		{FormatNone, "<tool_call>", -1, 0},
	}
	for _, tc := range cases {
		s, h := Scan(tc.f, tc.text)
		if s != tc.start || h != tc.hold {
			t.Errorf("%s %q: (%d, %d), want (%d, %d)", tc.f, tc.text, s, h, tc.start, tc.hold)
		}
	}
}
