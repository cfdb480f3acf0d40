// Package chat turns a conversation into a model's prompt with the model's
// own chat template (tokenizer.chat_template, Jinja), and reads the model's
// answer back: stop strings and end-of-turn markers per family, and
// reasoning blocks (<think>…</think>) split from the content, also while
// streaming.
//
// # Jinja engine
//
// Templates are rendered by github.com/ardanlabs/jinja, pinned at v1.8.0 (the
// last release whose go.mod accepts Go 1.26). It was chosen over
// github.com/nikolalohinski/gonja/v2 (v2.9.1) after rendering the reference
// conversations of testdata/tokenizer/chat_templates.json with both:
// ardanlabs/jinja reproduces all 20 renderings (qwen3 with and without
// enable_thinking, llama3 and its legacy template, gemma3, phi-3) byte for
// byte, because it implements HF's trim_blocks/lstrip_blocks defaults and the
// Python string methods templates use; gonja cannot parse the gemma3
// template (a parenthesised comparison in an if). ardanlabs/jinja also has no
// dependencies and no loader: include, import and extends do not exist in
// it, so a template can never read a file.
//
// The engine has no time or size budget of its own, so templates run inside
// a sandbox (see sandbox.go): a static check plus a source rewrite that makes
// the engine call back into the sandbox at every loop iteration, macro call,
// printed expression and assignment, where the render's deadline, output
// size and iteration budget are enforced. The rewrite only adds untrimmed
// expression tags, so renderings are unchanged.
//
// # Fallback
//
// A model without a template gets ChatML (FallbackTemplate), the same default
// llama.cpp uses: "<|im_start|>{role}\n{content}<|im_end|>\n" per message and
// "<|im_start|>assistant\n" as generation prompt.
package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ardanlabs/jinja"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string // system, user, assistant, tool
	Content string
	// ReasoningContent is an assistant turn's thinking, when kept apart from
	// Content (templates such as Qwen3's render or drop it).
	ReasoningContent string
	ToolCalls        []ToolCall // an assistant turn's calls
	ToolCallID       string     // a tool turn: the call it answers
	Name             string     // a tool turn: the function's name (optional)
}

// ToolCall is one function call made by the assistant.
type ToolCall struct {
	ID        string
	Name      string
	Arguments json.RawMessage // a JSON object (or, as OpenAI sends it, a JSON string holding one)
}

// Options are the template variables besides the messages.
type Options struct {
	AddGenerationPrompt bool
	BOSToken, EOSToken  string
	// Tools is the JSON array of tool definitions (OpenAI format), passed to
	// the template as "tools" with its key order kept.
	Tools json.RawMessage
	// Extra holds further variables (enable_thinking, documents, …). Values
	// are JSON-like Go values; json.RawMessage keeps the key order of objects.
	Extra map[string]any
	// Limits bound the render; zero fields take DefaultLimits.
	Limits Limits
}

// DefaultTimeout bounds Render when its caller gives no deadline.
const DefaultTimeout = 2 * time.Second

// FallbackTemplate is used for models that carry no chat template: ChatML.
const FallbackTemplate = `{%- for message in messages -%}
{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}`

// Template is a checked and compiled chat template, safe for concurrent use.
type Template struct {
	src  string
	tmpl *jinja.Template
	lim  Limits
}

// Compile checks src against the sandbox rules and compiles it.
func Compile(src string) (*Template, error) { return CompileLimits(src, Limits{}) }

// CompileLimits is Compile with explicit limits.
func CompileLimits(src string, lim Limits) (t *Template, err error) {
	lim = lim.orDefault()
	rewritten, err := sandbox(src, lim)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("chat template: the engine failed: %v", r)
		}
	}()
	tmpl, err := jinja.Compile(rewritten)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return &Template{src: src, tmpl: tmpl, lim: lim}, nil
}

// Source is the template text as given.
func (t *Template) Source() string { return t.src }

// LoadTemplateFile reads a template file for --chat-template: either a bare
// Jinja template, or a tokenizer_config.json-like JSON object whose
// "chat_template" field is the template (a string, or HF's list of
// {"name","template"} of which "default" is taken).
func LoadTemplateFile(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	src := string(data)
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' && !bytes.HasPrefix(trimmed, []byte("{{")) && !bytes.HasPrefix(trimmed, []byte("{%")) && !bytes.HasPrefix(trimmed, []byte("{#")) {
		var cfg struct {
			ChatTemplate json.RawMessage `json:"chat_template"`
		}
		if err := json.Unmarshal(trimmed, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if src, err = pickTemplate(cfg.ChatTemplate); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	t, err := Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func pickTemplate(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s, nil
	}
	var named []struct{ Name, Template string }
	if json.Unmarshal(raw, &named) == nil {
		for _, n := range named {
			if n.Name == "default" {
				return n.Template, nil
			}
		}
		if len(named) > 0 {
			return named[0].Template, nil
		}
	}
	return "", errors.New("no chat_template in the file")
}

// Render compiles tmpl and renders it within DefaultTimeout.
func Render(tmpl string, messages []Message, opts Options) (string, error) {
	t, err := CompileLimits(tmpl, opts.Limits)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	return t.Render(ctx, messages, opts)
}

// Render renders the conversation. The render stops with an error when ctx
// ends or a limit is reached. A ctx without deadline gets DefaultTimeout.
func (t *Template) Render(ctx context.Context, messages []Message, opts Options) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	lim := t.lim
	if opts.Limits != (Limits{}) {
		lim = opts.Limits.orDefault()
	}
	b := &budget{ctx: ctx, lim: lim, inputLeft: int64(lim.MaxInputBytes)}
	data, err := b.data(messages, opts)
	if err != nil {
		return "", err
	}
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{err: fmt.Errorf("chat template: the engine failed: %v", r)}
			}
		}()
		s, err := t.tmpl.RenderValues(data)
		if err != nil {
			if b.err != nil {
				err = b.err
			}
			done <- result{err: fmt.Errorf("chat template: %w", err)}
			return
		}
		done <- result{s: s}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
		b.stop() // the render stops at its next callback
		return "", fmt.Errorf("chat template: %w", ctx.Err())
	}
}

// reserved names the caller's Extra may not override.
var reserved = map[string]bool{
	"messages": true, "add_generation_prompt": true, "bos_token": true, "eos_token": true, "tools": true,
	"range": true, "namespace": true, "raise_exception": true, "dict": true, "joiner": true, "cycler": true,
}

func (b *budget) data(messages []Message, opts Options) (map[string]jinja.Value, error) {
	msgs := make([]jinja.Value, 0, len(messages))
	for _, m := range messages {
		d := jinja.NewDict()
		dd := d.AsDict()
		if err := b.charge(len(m.Role) + len(m.Content) + len(m.ReasoningContent) + len(m.ToolCallID) + len(m.Name)); err != nil {
			return nil, err
		}
		dd.Set("role", jinja.NewString(m.Role))
		dd.Set("content", jinja.NewString(m.Content))
		if m.ReasoningContent != "" {
			dd.Set("reasoning_content", jinja.NewString(m.ReasoningContent))
		}
		if len(m.ToolCalls) > 0 {
			calls := make([]jinja.Value, 0, len(m.ToolCalls))
			for _, c := range m.ToolCalls {
				args, err := b.arguments(c.Arguments)
				if err != nil {
					return nil, err
				}
				if err := b.charge(len(c.ID) + len(c.Name)); err != nil {
					return nil, err
				}
				fn := jinja.NewDict()
				fn.AsDict().Set("name", jinja.NewString(c.Name))
				fn.AsDict().Set("arguments", args)
				call := jinja.NewDict()
				if c.ID != "" {
					call.AsDict().Set("id", jinja.NewString(c.ID))
				}
				call.AsDict().Set("type", jinja.NewString("function"))
				call.AsDict().Set("function", fn)
				calls = append(calls, call)
			}
			dd.Set("tool_calls", jinja.NewList(calls))
		}
		if m.ToolCallID != "" {
			dd.Set("tool_call_id", jinja.NewString(m.ToolCallID))
		}
		if m.Name != "" {
			dd.Set("name", jinja.NewString(m.Name))
		}
		msgs = append(msgs, d)
	}
	data := map[string]jinja.Value{
		"messages":              jinja.NewList(msgs),
		"add_generation_prompt": jinja.NewBool(opts.AddGenerationPrompt),
		"bos_token":             jinja.NewString(opts.BOSToken),
		"eos_token":             jinja.NewString(opts.EOSToken),
	}
	if len(opts.Tools) > 0 {
		v, err := b.fromJSON(opts.Tools)
		if err != nil {
			return nil, fmt.Errorf("chat template: tools: %w", err)
		}
		data["tools"] = v
	}
	keys := make([]string, 0, len(opts.Extra))
	for k := range opts.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, hookPrefix) || (reserved[k] && k != "tools") {
			return nil, fmt.Errorf("chat template: the variable %q cannot be set", k)
		}
		if k == "tools" && len(opts.Tools) > 0 {
			continue
		}
		v, err := b.fromGo(opts.Extra[k], 0)
		if err != nil {
			return nil, fmt.Errorf("chat template: %s: %w", k, err)
		}
		data[k] = v
	}
	for name, fn := range b.hooks() {
		data[name] = jinja.NewCallable(name, fn)
	}
	return data, nil
}

// arguments turns a call's arguments into a template value: a JSON object
// (or a JSON string holding one, as OpenAI sends it) becomes a dict, anything
// else stays a string.
func (b *budget) arguments(raw json.RawMessage) (jinja.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return jinja.NewDict(), nil
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		t := strings.TrimSpace(s)
		if strings.HasPrefix(t, "{") && json.Valid([]byte(t)) {
			return b.fromJSON([]byte(t))
		}
		if err := b.charge(len(s)); err != nil {
			return jinja.Value{}, err
		}
		return jinja.NewString(s), nil
	}
	if !json.Valid(raw) {
		if err := b.charge(len(raw)); err != nil {
			return jinja.Value{}, err
		}
		return jinja.NewString(string(raw)), nil
	}
	return b.fromJSON(raw)
}

const maxValueDepth = 32

// fromJSON converts JSON to template values, keeping object key order.
func (b *budget) fromJSON(raw []byte) (jinja.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := b.decode(dec, 0)
	if err != nil {
		return jinja.Value{}, err
	}
	if dec.More() {
		return jinja.Value{}, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func (b *budget) decode(dec *json.Decoder, depth int) (jinja.Value, error) {
	if depth > maxValueDepth {
		return jinja.Value{}, fmt.Errorf("JSON nested deeper than %d", maxValueDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return jinja.Value{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			var items []jinja.Value
			for dec.More() {
				v, err := b.decode(dec, depth+1)
				if err != nil {
					return jinja.Value{}, err
				}
				items = append(items, v)
			}
			_, err := dec.Token()
			return jinja.NewList(items), err
		case '{':
			d := jinja.NewDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return jinja.Value{}, err
				}
				k, _ := kt.(string)
				if err := b.charge(len(k)); err != nil {
					return jinja.Value{}, err
				}
				v, err := b.decode(dec, depth+1)
				if err != nil {
					return jinja.Value{}, err
				}
				d.AsDict().Set(k, v)
			}
			_, err := dec.Token()
			return d, err
		}
		return jinja.Value{}, fmt.Errorf("unexpected %v", t)
	case string:
		return jinja.NewString(t), b.charge(len(t))
	case json.Number:
		return number(t.String()), b.charge(len(t))
	case bool:
		return jinja.NewBool(t), nil
	case nil:
		return jinja.None(), nil
	}
	return jinja.Value{}, fmt.Errorf("unexpected JSON token %v", tok)
}

func number(s string) jinja.Value {
	var i int64
	if _, err := fmt.Sscan(s, &i); err == nil && !strings.ContainsAny(s, ".eE") {
		return jinja.NewInt(i)
	}
	var f float64
	fmt.Sscan(s, &f)
	return jinja.NewFloat(f)
}

// fromGo converts JSON-like Go values (what encoding/json decodes into),
// sorting map keys for a deterministic order.
func (b *budget) fromGo(v any, depth int) (jinja.Value, error) {
	if depth > maxValueDepth {
		return jinja.Value{}, fmt.Errorf("value nested deeper than %d", maxValueDepth)
	}
	switch x := v.(type) {
	case nil:
		return jinja.None(), nil
	case bool:
		return jinja.NewBool(x), nil
	case string:
		return jinja.NewString(x), b.charge(len(x))
	case int:
		return jinja.NewInt(int64(x)), nil
	case int64:
		return jinja.NewInt(x), nil
	case int32:
		return jinja.NewInt(int64(x)), nil
	case float32:
		return jinja.NewFloat(float64(x)), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return jinja.NewInt(int64(x)), nil
		}
		return jinja.NewFloat(x), nil
	case json.Number:
		return number(x.String()), nil
	case json.RawMessage:
		return b.fromJSON(x)
	case []any:
		items := make([]jinja.Value, 0, len(x))
		for _, e := range x {
			ev, err := b.fromGo(e, depth+1)
			if err != nil {
				return jinja.Value{}, err
			}
			items = append(items, ev)
		}
		return jinja.NewList(items), nil
	case []string:
		items := make([]jinja.Value, 0, len(x))
		for _, e := range x {
			if err := b.charge(len(e)); err != nil {
				return jinja.Value{}, err
			}
			items = append(items, jinja.NewString(e))
		}
		return jinja.NewList(items), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := jinja.NewDict()
		for _, k := range keys {
			ev, err := b.fromGo(x[k], depth+1)
			if err != nil {
				return jinja.Value{}, err
			}
			if err := b.charge(len(k)); err != nil {
				return jinja.Value{}, err
			}
			d.AsDict().Set(k, ev)
		}
		return d, nil
	}
	return jinja.Value{}, fmt.Errorf("unsupported value of type %T", v)
}

// ForModel compiles a model's template (the GGUF's tokenizer.chat_template),
// or FallbackTemplate when it has none. An override (--chat-template) is
// loaded with LoadTemplateFile instead.
func ForModel(template string) (*Template, error) {
	if strings.TrimSpace(template) == "" {
		return Compile(FallbackTemplate)
	}
	return Compile(template)
}

// SupportsThinkingSwitch reports whether the template reads the
// enable_thinking variable (Qwen3 and similar), so that Options.Extra
// {"enable_thinking": false} turns reasoning off.
func SupportsThinkingSwitch(template string) bool {
	return strings.Contains(template, "enable_thinking")
}

// PromptEndsInReasoning reports whether a rendered prompt leaves the model
// inside an open <think> block (templates that end the generation prompt
// with "<think>\n"): the answer then starts with reasoning, without the
// opening tag. Use it for NewReasoningSplitter's startInReasoning.
func PromptEndsInReasoning(prompt string) bool {
	i := strings.LastIndex(prompt, ThinkOpen)
	return i >= 0 && !strings.Contains(prompt[i:], ThinkClose)
}
