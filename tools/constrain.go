package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/slm-dev/slm/grammar"
)

// Choice is an OpenAI tool_choice.
type Choice struct {
	Mode string // "auto", "none", "required" or "function"
	Name string // the function, for Mode "function"
}

// ErrChoice is wrapped by the errors about tool_choice and tools.
var ErrChoice = errors.New("invalid tool_choice")

// ParseChoice reads tool_choice: "auto", "none", "required", or
// {"type":"function","function":{"name":…}}. Empty means "auto".
func ParseChoice(raw json.RawMessage) (Choice, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Choice{Mode: "auto"}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none", "required":
			return Choice{Mode: s}, nil
		}
		return Choice{}, fmt.Errorf("%w: %q", ErrChoice, s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Function.Name == "" {
		return Choice{}, fmt.Errorf("%w: %s", ErrChoice, raw)
	}
	return Choice{Mode: "function", Name: obj.Function.Name}, nil
}

// Forced is what makes a generation produce a valid call.
type Forced struct {
	// Prefill is text to append to the prompt (with special tokens parsed)
	// before generating, when the format starts with a control token that a
	// grammar over token texts cannot produce (Mistral's [TOOL_CALLS]).
	// Parse the prefill and the generated text together.
	Prefill string
	// Grammar (GBNF) is what the generated text must match.
	Grammar string
}

// ForceOptions adjust Force.
type ForceOptions struct {
	// Parallel allows several calls (OpenAI parallel_tool_calls, default
	// true there) when the choice is "required"; a named function is
	// always called once. MaxCalls bounds them (default 8).
	Parallel bool
	MaxCalls int
	// Thinking allows a leading <think>…</think> block (reasoning models).
	Thinking bool
}

// Force builds the constraint for a choice that demands a call ("required"
// or a named function); for "auto" and "none" it returns nil: the text is
// free, and with "none" the server must not parse calls out of it. Every
// tool's parameters schema must compile (else an error wrapping
// grammar.ErrSchema or ErrChoice: the request is invalid).
func Force(f Format, tools []Tool, choice Choice, opt ForceOptions) (*Forced, error) {
	switch choice.Mode {
	case "auto", "none", "":
		return nil, nil
	case "required", "function":
	default:
		return nil, fmt.Errorf("%w: mode %q", ErrChoice, choice.Mode)
	}
	if f == FormatNone {
		f = FormatHermes // the most common format when a template names none
	}
	var selected []Tool
	for _, t := range tools {
		if t.Type != "" && t.Type != "function" {
			continue
		}
		if choice.Mode == "function" && t.Function.Name != choice.Name {
			continue
		}
		selected = append(selected, t)
	}
	if len(selected) == 0 {
		if choice.Mode == "function" {
			return nil, fmt.Errorf("%w: no tool named %q", ErrChoice, choice.Name)
		}
		return nil, fmt.Errorf("%w: tool_choice %q needs tools", ErrChoice, choice.Mode)
	}
	argsKey := "arguments"
	if f == FormatLlama3 {
		argsKey = "parameters"
	}
	var rules strings.Builder
	var alts []string
	for i, t := range selected {
		if t.Function.Name == "" {
			return nil, fmt.Errorf("%w: a tool without a name", ErrChoice)
		}
		params := bytes.TrimSpace(t.Function.Parameters)
		if len(params) == 0 || string(params) == "null" {
			params = []byte(`{"type":"object"}`)
		}
		expr, r, err := grammar.JSONSchemaRules(params, fmt.Sprintf("t%d-", i))
		if err != nil {
			return nil, fmt.Errorf("tool %q: %w", t.Function.Name, err)
		}
		rules.WriteString(r)
		name, _ := json.Marshal(t.Function.Name)
		call := fmt.Sprintf(`"{" ws "\"name\"" ws ":" ws %s ws "," ws "\"%s\"" ws ":" ws %s "}" ws`,
			gbnfQuote(string(name)), argsKey, expr)
		alts = append(alts, fmt.Sprintf("call%d", i))
		fmt.Fprintf(&rules, "call%d ::= %s\n", i, call)
	}
	fmt.Fprintf(&rules, "call ::= %s\n", strings.Join(alts, " | "))
	maxCalls := 1
	if opt.Parallel && choice.Mode == "required" {
		maxCalls = opt.MaxCalls
		if maxCalls <= 0 {
			maxCalls = 8
		}
	}
	var out Forced
	var calls string
	switch f {
	case FormatHermes:
		one := `"<tool_call>\n" call "\n</tool_call>"`
		calls = one
		if maxCalls > 1 {
			calls = fmt.Sprintf(`%s ( "\n" %s ){0,%d}`, one, one, maxCalls-1)
		}
	case FormatLlama3:
		calls = "call"
		if maxCalls > 1 {
			calls = fmt.Sprintf(`call ( ";" ws call ){0,%d}`, maxCalls-1)
		}
	case FormatMistral:
		out.Prefill = MistralTag
		calls = fmt.Sprintf(`"[" ws call ( "," ws call ){0,%d} "]"`, maxCalls-1)
	default:
		return nil, fmt.Errorf("%w: unknown format %q", ErrChoice, f)
	}
	var g strings.Builder
	if opt.Thinking {
		fmt.Fprintf(&g, "root ::= ( \"<think>\" %s \"</think>\" [ \\n]* )? %s\n", notContaining(&rules, "think", "</think>"), calls)
	} else {
		fmt.Fprintf(&g, "root ::= %s\n", calls)
	}
	g.WriteString(rules.String())
	g.WriteString(grammar.JSONPrimitives)
	out.Grammar = g.String()
	if _, err := grammar.CompileGBNF(out.Grammar); err != nil {
		return nil, fmt.Errorf("tools: %w", err)
	}
	return &out, nil
}

// gbnfQuote writes s as a GBNF literal.
func gbnfQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// notContaining adds rules for any text that does not contain stop (whose
// first character must not occur again in it) and returns the rule name.
func notContaining(rules *strings.Builder, name, stop string) string {
	rs := []rune(stop)
	first := rs[0]
	for _, r := range rs[1:] {
		if r == first {
			panic("notContaining: the first character recurs")
		}
	}
	// s0: nothing of stop matched; sK: stop[:K] matched.
	state := func(k int) string { return fmt.Sprintf("%s-s%d", name, k) }
	esc := func(r rune) string { return gbnfQuote(string(r)) }
	class := func(rs ...rune) string {
		var b strings.Builder
		b.WriteString("[^")
		for _, r := range rs {
			fmt.Fprintf(&b, `\U%08X`, r)
		}
		b.WriteString("]")
		return b.String()
	}
	fmt.Fprintf(rules, "%s ::= %s %s | %s %s | \"\"\n", state(0), class(first), state(0), esc(first), state(1))
	for k := 1; k < len(rs); k++ {
		alts := []string{`""`, esc(first) + " " + state(1), class(first, rs[k]) + " " + state(0)}
		if k+1 < len(rs) {
			alts = append(alts, esc(rs[k])+" "+state(k+1))
		}
		fmt.Fprintf(rules, "%s ::= %s\n", state(k), strings.Join(alts, " | "))
	}
	return state(0)
}
