package chat

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/tokenizer"
	"github.com/slm-dev/slm/tokenizer/hf"
)

type refRendering struct {
	Conversation string         `json:"conversation"`
	Messages     []refMessage   `json:"messages"`
	AGP          bool           `json:"add_generation_prompt"`
	Extra        map[string]any `json:"extra_vars"`
	Rendered     string         `json:"rendered"`
	IDs          []int32        `json:"ids"`
}

type refMessage struct {
	Role             string `json:"role"`
	Content          string `json:"content"`
	ReasoningContent string `json:"reasoning_content"`
}

type refTemplate struct {
	Family     string            `json:"family"`
	Template   string            `json:"chat_template"`
	Special    map[string]string `json:"special_vars"`
	Renderings []refRendering    `json:"renderings"`
}

func loadRef(t *testing.T) []refTemplate {
	t.Helper()
	b, err := os.ReadFile("../testdata/tokenizer/chat_templates.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Templates []refTemplate }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Templates) != 5 {
		t.Fatalf("%d templates, want 5", len(f.Templates))
	}
	return f.Templates
}

func toMessages(in []refMessage) []Message {
	out := make([]Message, len(in))
	for i, m := range in {
		out[i] = Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent}
	}
	return out
}

// encoder tokenizes a rendering with the family's reference tokenizer.
type encoder func(string) ([]int32, error)

func familyEncoder(t *testing.T, family string) encoder {
	t.Helper()
	switch family {
	case "phi-3":
		f, err := gguf.Open("../testdata/tokenizer/gguf/ggml-vocab-phi-3.gguf")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		tok, err := tokenizer.FromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		return func(s string) ([]int32, error) { return tok.Encode([]byte(s), false, true) }
	case "qwen3", "llama3", "gemma3", "llama3-legacy-template":
		dir := family
		if family == "llama3-legacy-template" {
			dir = "llama3" // same tokenizer.json
		}
		tok, err := hf.Load(filepath.Join("../testdata/tokenizer/hf", dir), hf.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return func(s string) ([]int32, error) { return tok.Encode(s, false) }
	}
	t.Fatalf("no tokenizer for %s", family)
	return nil
}

func TestReferenceRenderings(t *testing.T) {
	n := 0
	for _, tmpl := range loadRef(t) {
		t.Run(tmpl.Family, func(t *testing.T) {
			compiled, err := Compile(tmpl.Template)
			if err != nil {
				t.Fatal(err)
			}
			var enc encoder
			if !testing.Short() || tmpl.Family == "phi-3" {
				enc = familyEncoder(t, tmpl.Family)
			}
			for _, r := range tmpl.Renderings {
				opts := Options{AddGenerationPrompt: r.AGP, BOSToken: tmpl.Special["bos_token"], EOSToken: tmpl.Special["eos_token"], Extra: r.Extra}
				got, err := compiled.Render(context.Background(), toMessages(r.Messages), opts)
				if err != nil {
					t.Fatalf("%s: %v", r.Conversation, err)
				}
				if got != r.Rendered {
					t.Errorf("%s (agp=%v, %v):\n got %q\nwant %q", r.Conversation, r.AGP, r.Extra, got, r.Rendered)
					continue
				}
				n++
				if enc == nil {
					continue
				}
				ids, err := enc(got)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids, r.IDs) {
					t.Errorf("%s: ids\n got %v\nwant %v", r.Conversation, ids, r.IDs)
				}
			}
		})
	}
	if n != 20 {
		t.Errorf("%d renderings matched, want 20", n)
	}
}

func TestFallbackTemplate(t *testing.T) {
	got, err := Render(FallbackTemplate, []Message{{Role: "system", Content: "S"}, {Role: "user", Content: "Hi"}}, Options{AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestToolsAndToolCalls(t *testing.T) {
	var qwen string
	for _, tm := range loadRef(t) {
		if tm.Family == "qwen3" {
			qwen = tm.Template
		}
	}
	tools := json.RawMessage(`[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`)
	msgs := []Message{
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", ToolCalls: []ToolCall{{ID: "c1", Name: "get_weather", Arguments: json.RawMessage(`"{\"city\": \"Paris\"}"`)}}},
		{Role: "tool", Content: `{"temp": 21}`, ToolCallID: "c1"},
	}
	got, err := Render(qwen, msgs, Options{AddGenerationPrompt: true, Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}`,
		"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>",
		"<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}

func TestLoadTemplateFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.jinja")
	os.WriteFile(p, []byte(FallbackTemplate), 0o644)
	if _, err := LoadTemplateFile(p); err != nil {
		t.Fatal(err)
	}
	p2 := filepath.Join(dir, "tokenizer_config.json")
	b, _ := json.Marshal(map[string]any{"chat_template": "{{ messages[0].content }}"})
	os.WriteFile(p2, b, 0o644)
	tm, err := LoadTemplateFile(p2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tm.Render(context.Background(), []Message{{Role: "user", Content: "x"}}, Options{})
	if err != nil || got != "x" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := LoadTemplateFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

// Hostile templates: each must fail (at compile or render time), quickly.
func TestHostileTemplates(t *testing.T) {
	big := strings.Repeat("x", 1<<16)
	cases := map[string]string{
		"nested loops":         `{% for a in range(60000) %}{% for b in range(60000) %}{% for c in range(60000) %}{% endfor %}{% endfor %}{% endfor %}`,
		"shared list loops":    `{% set r = range(60000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}`,
		"huge range":           `{% for a in range(1000000000000) %}x{% endfor %}`,
		"macro recursion":      `{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}`,
		"mutual recursion":     `{% macro f() %}{{ g() }}{% endmacro %}{% macro g() %}{{ f() }}{% endmacro %}{{ f() }}`,
		"output flood":         `{% for a in range(60000) %}{% for b in range(60000) %}` + strings.Repeat("y", 1000) + `{% endfor %}{% endfor %}`,
		"expr flood":           `{% for a in range(60000) %}{% for b in range(600) %}{{ messages[0].content }}{% endfor %}{% endfor %}`,
		"string doubling":      `{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}`,
		"block set doubling":   `{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set t %}{{ ns.s }}{{ ns.s }}{% endset %}{% set ns.s = t %}{% endfor %}`,
		"repeat":               `{{ 'a' * 1000000000000 }}`,
		"repeat var":           `{% set n = 1000000000 %}{{ 'a' * n }}`,
		"list cycle":           `{% set l = [] %}{{ l.append(l) }}{{ l|tojson }}`,
		"namespace cycle":      `{% set ns = namespace() %}{% set ns.me = ns %}{{ ns|tojson }}`,
		"namespace cycle list": `{% set ns = namespace() %}{% set ns.l = [1, [ns]] %}{{ ns|tojson }}`,
		"namespace cycle 2":    `{% set a = namespace() %}{% set b = namespace(x=a) %}{% set a.y = b %}{{ a|tojson }}`,
		"namespace via macro":  `{% set a = namespace() %}{% macro m(p) %}{% set a.z = [p] %}{% endmacro %}{{ m(a) }}{{ a|tojson }}`,
		"replace blowup":       `{{ messages[0].content|replace('x', messages[0].content) }}`,
		"join blowup":          `{{ messages[0].content.join(messages[0].content) }}`,
		"deep parens":          "{{ " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000) + " }}",
		"deep blocks":          strings.Repeat("{% if true %}", 10000) + strings.Repeat("{% endif %}", 10000),
		"hook override":        `{% set __slm_tick = none %}`,
		"recursive loop":       `{% for m in messages recursive %}{{ loop([m]) }}{% endfor %}`,
		"include":              `{% include '/etc/passwd' %}`,
		"import":               `{% import '/etc/passwd' as x %}`,
		"extends":              `{% extends '/etc/passwd' %}`,
		"raise":                `{{ raise_exception('no') }}`,
		"tojson indent flood":  `{{ messages|tojson(indent=100000) }}`,
	}
	msgs := []Message{{Role: "user", Content: big}}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			tm, err := Compile(src)
			if err == nil {
				var out string
				out, err = tm.Render(ctx, msgs, Options{})
				if err == nil {
					t.Fatalf("rendered %d bytes without error", len(out))
				}
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("took %v", d)
			}
			t.Logf("%v", err)
		})
	}
}

func TestDeadline(t *testing.T) {
	// Legal but slow: each iteration does real work between callbacks.
	src := `{% for a in range(60000) %}{{ messages|tojson|length }}{% endfor %}`
	tm, err := Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	msgs := []Message{{Role: "user", Content: strings.Repeat("z", 1<<16)}}
	start := time.Now()
	_, err = tm.Render(ctx, msgs, Options{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestReservedExtra(t *testing.T) {
	if _, err := Render(FallbackTemplate, nil, Options{Extra: map[string]any{"__slm_tick": 1}}); err == nil {
		t.Fatal("reserved variable accepted")
	}
	if _, err := Render(FallbackTemplate, nil, Options{Extra: map[string]any{"messages": 1}}); err == nil {
		t.Fatal("messages overridden")
	}
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{FallbackTemplate, "{{ x }}", "{% for m in messages %}{{ m.content }}{% endfor %}", "{% macro a() %}{{ caller() }}{% endmacro %}{% call a() %}x{% endcall %}", "{% set x %}a{% endset %}{{ x * 3 }}", "{% raw %}{% for %}{% endraw %}"} {
		f.Add(s, "hello", true)
	}
	f.Fuzz(func(t *testing.T, src, content string, agp bool) {
		tm, err := CompileLimits(src, Limits{MaxIterations: 1 << 14, MaxOutputBytes: 1 << 20})
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		out, err := tm.Render(ctx, []Message{{Role: "user", Content: content}, {Role: "assistant", Content: content}}, Options{AddGenerationPrompt: agp, Extra: map[string]any{"enable_thinking": false}})
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("render took %v", d)
		}
		if err == nil && len(out) > 1<<20+len(src)+4*len(content) {
			t.Fatalf("output of %d bytes", len(out))
		}
	})
}
