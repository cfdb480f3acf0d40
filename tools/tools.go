// Package tools reads function calls out of generated text in each model
// family's format, and builds the constraint that forces a valid call when
// a request demands one (OpenAI tool_choice "required" or a named
// function).
//
// Formats:
//
//   - Hermes (Qwen 2.5/3, Hermes, SmolLM3): <tool_call>{"name": …,
//     "arguments": {…}}</tool_call>, one block per call;
//   - Llama 3.1+: {"name": …, "parameters": {…}} as the whole answer,
//     optionally after <|python_tag|>, several separated by ";" or new lines;
//   - Mistral: [TOOL_CALLS][{"name": …, "arguments": {…}}, …], or the newer
//     [TOOL_CALLS]name[ARGS]{…} form.
package tools

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Format is a family's way of writing tool calls.
type Format string

// The formats.
const (
	FormatNone    Format = ""
	FormatHermes  Format = "hermes"
	FormatLlama3  Format = "llama3"
	FormatMistral Format = "mistral"
)

// Markers of the formats.
const (
	HermesOpen  = "<tool_call>"
	HermesClose = "</tool_call>"
	PythonTag   = "<|python_tag|>"
	MistralTag  = "[TOOL_CALLS]"
	MistralArgs = "[ARGS]"
)

// DetectFormat recognizes the tool-call format a chat template teaches.
func DetectFormat(template string) Format {
	switch {
	case strings.Contains(template, HermesOpen):
		return FormatHermes
	case strings.Contains(template, MistralTag):
		return FormatMistral
	case strings.Contains(template, "<|start_header_id|>") && (strings.Contains(template, "tools") || strings.Contains(template, PythonTag)):
		return FormatLlama3
	}
	return FormatNone
}

// Call is one parsed function call.
type Call struct {
	ID        string          // from the model (Mistral) or empty: see NewCallID
	Name      string          // function name
	Arguments json.RawMessage // always a JSON object
}

// Function is an OpenAI tool's function.
type Function struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

// Tool is an OpenAI tool definition.
type Tool struct {
	Type     string   `json:"type"`
	Function Function `json:"function"`
}

// NewCallID makes an OpenAI-style call id ("call_" and 24 random
// alphanumerics).
func NewCallID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 24)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "call_" + string(b)
}

// Parse separates text into its plain content and the tool calls it makes
// in format f. names, when not empty, are the declared functions: a call
// to another name is an error (ErrUnknownTool), and for Llama 3, whose
// calls are bare JSON, a JSON answer that does not name a declared function
// is content, not a call. A malformed call is an error wrapping ErrBadCall;
// the server decides whether to return the raw text instead.
func Parse(f Format, text string, names []string) (content string, calls []Call, err error) {
	switch f {
	case FormatHermes:
		content, calls, err = parseHermes(text)
	case FormatLlama3:
		content, calls, err = parseLlama3(text, names)
	case FormatMistral:
		content, calls, err = parseMistral(text)
	default:
		return text, nil, nil
	}
	if err != nil {
		return text, nil, err
	}
	if len(names) > 0 {
		for _, c := range calls {
			if !contains(names, c.Name) {
				return text, nil, fmt.Errorf("%w: %q", ErrUnknownTool, c.Name)
			}
		}
	}
	return content, calls, nil
}

// Errors of Parse.
var (
	ErrBadCall     = errors.New("malformed tool call")
	ErrUnknownTool = errors.New("call to an undeclared tool")
)

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// callJSON is a call object as the families write it.
type callJSON struct {
	Name       string          `json:"name"`
	Arguments  json.RawMessage `json:"arguments"`
	Parameters json.RawMessage `json:"parameters"`
	ID         string          `json:"id"`
}

// decodeCall reads one call object; arguments may be an object or a JSON
// string holding one.
func decodeCall(data []byte) (Call, error) {
	var cj callJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&cj); err != nil {
		return Call{}, fmt.Errorf("%w: %v", ErrBadCall, err)
	}
	if dec.More() {
		return Call{}, fmt.Errorf("%w: text after the call object", ErrBadCall)
	}
	if cj.Name == "" {
		return Call{}, fmt.Errorf("%w: no function name", ErrBadCall)
	}
	args := cj.Arguments
	if len(args) == 0 {
		args = cj.Parameters
	}
	norm, err := normalizeArgs(args)
	if err != nil {
		return Call{}, err
	}
	return Call{ID: cj.ID, Name: cj.Name, Arguments: norm}, nil
}

func normalizeArgs(args json.RawMessage) (json.RawMessage, error) {
	args = bytes.TrimSpace(args)
	if len(args) == 0 || string(args) == "null" {
		return json.RawMessage(`{}`), nil
	}
	if args[0] == '"' {
		var s string
		if err := json.Unmarshal(args, &s); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCall, err)
		}
		args = bytes.TrimSpace([]byte(s))
	}
	if len(args) == 0 || args[0] != '{' || !json.Valid(args) {
		return nil, fmt.Errorf("%w: arguments are not a JSON object", ErrBadCall)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCall, err)
	}
	return buf.Bytes(), nil
}

func parseHermes(text string) (string, []Call, error) {
	var content strings.Builder
	var calls []Call
	rest := text
	for {
		i := strings.Index(rest, HermesOpen)
		if i < 0 {
			content.WriteString(rest)
			break
		}
		content.WriteString(rest[:i])
		rest = rest[i+len(HermesOpen):]
		body := rest
		j := strings.Index(rest, HermesClose)
		if j >= 0 {
			body, rest = rest[:j], rest[j+len(HermesClose):]
		} else {
			rest = "" // generation ended inside the block
		}
		c, err := decodeCall([]byte(strings.TrimSpace(body)))
		if err != nil {
			return "", nil, err
		}
		calls = append(calls, c)
	}
	return strings.TrimSpace(content.String()), calls, nil
}

func parseLlama3(text string, names []string) (string, []Call, error) {
	t := strings.TrimSpace(text)
	tagged := strings.HasPrefix(t, PythonTag)
	t = strings.TrimSpace(strings.TrimPrefix(t, PythonTag))
	if !strings.HasPrefix(t, "{") {
		return text, nil, nil
	}
	// One or more objects, separated by ";" or white space.
	var calls []Call
	dec := json.NewDecoder(strings.NewReader(t))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if tagged {
				return "", nil, fmt.Errorf("%w: %v", ErrBadCall, err)
			}
			return text, nil, nil // plain content that starts with {
		}
		c, err := decodeCall(raw)
		if err != nil || (len(names) > 0 && !contains(names, c.Name)) {
			if tagged && err != nil {
				return "", nil, err
			}
			return text, nil, nil // a JSON answer, not a call
		}
		calls = append(calls, c)
		// Skip separators.
		rest := t[dec.InputOffset():]
		trimmed := strings.TrimLeft(rest, " \t\r\n;")
		if trimmed == "" {
			break
		}
		if !strings.HasPrefix(trimmed, "{") {
			return text, nil, nil
		}
		dec = json.NewDecoder(strings.NewReader(trimmed))
		t = trimmed
	}
	return "", calls, nil
}

func parseMistral(text string) (string, []Call, error) {
	i := strings.Index(text, MistralTag)
	if i < 0 {
		return text, nil, nil
	}
	content := strings.TrimSpace(text[:i])
	rest := strings.TrimSpace(text[i+len(MistralTag):])
	var calls []Call
	if strings.HasPrefix(rest, "[") {
		var raws []json.RawMessage
		dec := json.NewDecoder(strings.NewReader(rest))
		if err := dec.Decode(&raws); err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrBadCall, err)
		}
		for _, r := range raws {
			c, err := decodeCall(r)
			if err != nil {
				return "", nil, err
			}
			calls = append(calls, c)
		}
		return content, calls, nil
	}
	// name[ARGS]{…}, repeated with further [TOOL_CALLS].
	for _, part := range strings.Split(rest, MistralTag) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, args, ok := strings.Cut(part, MistralArgs)
		if !ok {
			return "", nil, fmt.Errorf("%w: no %s after %q", ErrBadCall, MistralArgs, name)
		}
		norm, err := normalizeArgs(json.RawMessage(args))
		if err != nil {
			return "", nil, err
		}
		calls = append(calls, Call{Name: strings.TrimSpace(name), Arguments: norm})
	}
	return content, calls, nil
}

// Scan tells a streaming server what it may send of the text generated so
// far: calls begin at start (start < 0: no call has begun), and when no
// call has begun, the last hold bytes might be the beginning of one and
// must be held back until more text arrives. Content before start is
// plain text. With Llama 3, a call is the whole answer, so an answer that
// begins (after white space) with "{" or <|python_tag|> is held whole.
func Scan(f Format, text string) (start, hold int) {
	marker := ""
	switch f {
	case FormatHermes:
		marker = HermesOpen
	case FormatMistral:
		marker = MistralTag
	case FormatLlama3:
		t := strings.TrimLeft(text, " \t\r\n")
		off := len(text) - len(t)
		switch {
		case t == "" || strings.HasPrefix(PythonTag, t):
			return -1, len(text)
		case strings.HasPrefix(t, "{") || strings.HasPrefix(t, PythonTag):
			return off, 0
		}
		return -1, 0
	default:
		return -1, 0
	}
	if i := strings.Index(text, marker); i >= 0 {
		return i, 0
	}
	for n := min(len(marker)-1, len(text)); n > 0; n-- {
		if strings.HasSuffix(text, marker[:n]) {
			return -1, n
		}
	}
	return -1, 0
}
