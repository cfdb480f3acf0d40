package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"weak"

	"github.com/slm-dev/slm/chat"
	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/grammar"
	"github.com/slm-dev/slm/tokenizer"
	"github.com/slm-dev/slm/tools"
)

// This file turns a conversation into a prompt with the model's chat
// template (package chat) and reads the answer back: reasoning split off,
// tool calls parsed (package tools). Both chat routes (/v1/chat/completions
// and /api/chat) go through prepareChat and chatReader.

// fallbackTemplate is used for models without a tokenizer.chat_template
// (and backends without a GGUF file): ChatML, exactly chat.FallbackTemplate
// for plain conversations, plus tools declared and called in the Hermes
// format (<tool_call>…</tool_call>, as Qwen 2.5's template does), so that
// tool calling works with any model.
const fallbackTemplate = `{%- if tools -%}
{{- '<|im_start|>system\n' -}}
{%- if messages and messages[0].role == 'system' -%}{{- messages[0].content + '\n\n' -}}{%- endif -%}
{{- '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
{%- for tool in tools -%}{{- '\n' + (tool | tojson) -}}{%- endfor -%}
{{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' and tools and loop.first -%}
{%- elif message.role == 'assistant' and message.tool_calls -%}
{{- '<|im_start|>assistant' -}}
{%- if message.content -%}{{- '\n' + message.content -}}{%- endif -%}
{%- for tc in message.tool_calls -%}
{{- '\n<tool_call>\n{"name": "' + tc.function.name + '", "arguments": ' + (tc.function.arguments | tojson) + '}\n</tool_call>' -}}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- elif message.role == 'tool' -%}
{{- '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}`

var (
	fallbackOnce sync.Once
	fallbackTmpl *chat.Template
	fallbackErr  error
)

func compiledFallback() (*chat.Template, error) {
	fallbackOnce.Do(func() { fallbackTmpl, fallbackErr = chat.Compile(fallbackTemplate) })
	return fallbackTmpl, fallbackErr
}

// chatProfile is what the server knows about one model's chat format,
// computed once per loaded model.
type chatProfile struct {
	tmpl        *chat.Template
	own         bool  // tmpl is the model's (or --chat-template), not the fallback
	err         error // the model's template cannot be used
	source      string
	family      chat.Family
	toolFormat  tools.Format // FormatHermes when the template teaches none
	thinking    bool         // the template knows <think> blocks
	thinkSwitch bool         // … and reads enable_thinking
	bos, eos    string       // token texts for the template
	addBOS      bool         // the vocabulary adds BOS when tokenizing
	addEOS      bool
	stops       []string // the family's end-of-turn texts

	gen       Generator            // backends without a model only
	tok       *tokenizer.Tokenizer // nil for backends without a model
	vocabOnce sync.Once
	vocab     *grammar.Vocab
}

// profileCache holds the profiles of loaded models. Entries of local models
// are keyed weakly by the engine model, so an unloaded model's entry goes
// with it; backends without a model are never unloaded.
type profileCache struct {
	mu      sync.Mutex
	byModel map[weak.Pointer[engine.Model]]*chatProfile
	byGen   map[Generator]*chatProfile
}

// profile returns the chat profile of the leased model.
func (s *Server) profile(l *Lease) *chatProfile {
	c := &s.profiles
	c.mu.Lock()
	defer c.mu.Unlock()
	var key weak.Pointer[engine.Model]
	if l.Model != nil {
		key = weak.Make(l.Model)
		if p, ok := c.byModel[key]; ok {
			return p
		}
	} else if p, ok := c.byGen[l.Gen]; ok {
		return p
	}
	p := s.newProfile(l)
	if l.Model != nil {
		if c.byModel == nil {
			c.byModel = map[weak.Pointer[engine.Model]]*chatProfile{}
		}
		c.byModel[key] = p
		runtime.AddCleanup(l.Model, func(k weak.Pointer[engine.Model]) {
			c.mu.Lock()
			delete(c.byModel, k)
			c.mu.Unlock()
		}, key)
	} else {
		if c.byGen == nil {
			c.byGen = map[Generator]*chatProfile{}
		}
		c.byGen[l.Gen] = p
	}
	return p
}

func (s *Server) newProfile(l *Lease) *chatProfile {
	p := &chatProfile{}
	src := ""
	if l.Model == nil {
		p.gen = l.Gen
	} else {
		// Nothing here may reference the model (or its generator): the
		// cache entry goes when the model is collected.
		p.tok = l.Model.Tokenizer()
		if f := l.Model.File(); f != nil {
			src, _ = f.String("tokenizer.chat_template")
		}
		if id := p.tok.BOS(); id >= 0 {
			p.bos = p.tok.Token(id)
		}
		if id := p.tok.EOS(); id >= 0 {
			p.eos = p.tok.Token(id)
		}
		p.addBOS, p.addEOS = p.tok.AddBOS(), p.tok.AddEOS()
	}
	switch {
	case s.cfg.ChatTemplate != nil:
		p.tmpl, p.own = s.cfg.ChatTemplate, true
	case strings.TrimSpace(src) == "":
		p.tmpl, p.err = compiledFallback()
	default:
		p.own = true
		if p.tmpl, p.err = chat.Compile(src); p.err != nil {
			p.err = &apiError{Status: http.StatusInternalServerError,
				Message: fmt.Sprintf("model %q: its chat template (tokenizer.chat_template) cannot be used: %v; serve it with --chat-template FILE", l.Name, p.err)}
			return p
		}
	}
	if p.err != nil {
		return p
	}
	p.source = p.tmpl.Source()
	p.family = chat.Detect(p.source)
	if p.toolFormat = tools.DetectFormat(p.source); p.toolFormat == tools.FormatNone {
		p.toolFormat = tools.FormatHermes // what tools.Force and our fallback use
	}
	p.thinking = strings.Contains(p.source, chat.ThinkOpen) || strings.Contains(p.source, chat.ThinkClose)
	p.thinkSwitch = chat.SupportsThinkingSwitch(p.source)
	p.stops = append(p.stops, chat.StopStrings(p.family)...)
	for _, t := range chat.EndOfTurnTokens(p.family) {
		// The vocabulary's end-of-generation tokens already stop; a
		// marker that is not one stops through its text (the token's
		// piece is its text).
		if !containsString(p.stops, t) {
			p.stops = append(p.stops, t)
		}
	}
	return p
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// vocabulary is the model's vocabulary prepared for constrained decoding,
// built on first use. Backends without a model describe their tokens
// through Detokenize (and, optionally, a ConstraintVocab method).
func (p *chatProfile) vocabulary() *grammar.Vocab {
	p.vocabOnce.Do(func() {
		if p.tok != nil {
			p.vocab = grammar.TokenizerVocab(p.tok)
			return
		}
		if cv, ok := p.gen.(interface{ ConstraintVocab() *grammar.Vocab }); ok {
			p.vocab = cv.ConstraintVocab()
			return
		}
		n := p.gen.VocabSize()
		toks := make([][]byte, n)
		for i := range toks {
			toks[i] = []byte(p.gen.Detokenize([]int32{int32(i)}))
		}
		p.vocab = grammar.NewVocab(toks, nil)
	})
	return p.vocab
}

// chatRequest is a chat request in dialect-neutral form.
type chatRequest struct {
	Messages  []chat.Message
	ToolsRaw  json.RawMessage // the tools array as sent
	Tools     []tools.Tool
	Choice    tools.Choice
	Parallel  bool
	Format    *grammar.Grammar // response_format / format
	FormatArg string           // the field Format came from, for errors
	Thinking  *bool            // nil: the template's default
	Kwargs    map[string]any   // chat_template_kwargs
}

// chatPlan is a prepared chat generation and what reading its answer needs.
type chatPlan struct {
	ids         []int32
	prompt      string // the rendered prompt (with any prefill)
	prefill     string // forced text the answer continues (parse it with the answer)
	inReasoning bool   // the answer starts inside a <think> block
	toolFormat  tools.Format
	parseTools  bool
	names       []string
	parallel    bool
	forced      bool
}

// parseTools reads a tools array.
func parseTools(raw json.RawMessage, param string) ([]tools.Tool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var ts []tools.Tool
	if err := json.Unmarshal(raw, &ts); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Param: param,
			Message: fmt.Sprintf("invalid %q: expected an array of {\"type\": \"function\", \"function\": {\"name\", \"description\", \"parameters\"}}: %v", param, err)}
	}
	for i, t := range ts {
		if t.Type != "" && t.Type != "function" {
			return nil, &apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("%s[%d].type", param, i),
				Message: fmt.Sprintf("%s[%d]: tool type %q is not supported: only \"function\"", param, i, t.Type)}
		}
		if t.Function.Name == "" {
			return nil, &apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("%s[%d].function.name", param, i),
				Message: fmt.Sprintf("%s[%d]: the function has no name", param, i)}
		}
	}
	return ts, nil
}

// prepareChat renders the conversation with the model's template, builds the
// constraint (structured output, forced tool calls) and tokenizes the
// prompt. opts gets the constraint and the family's stop strings.
func (s *Server) prepareChat(ctx context.Context, l *Lease, req *chatRequest, opts *engine.Options) (*chatPlan, error) {
	if len(req.Messages) == 0 {
		return nil, &apiError{Status: http.StatusBadRequest, Param: "messages", Message: "\"messages\" is empty: at least one message is needed"}
	}
	p := s.profile(l)
	if p.err != nil {
		return nil, p.err
	}
	extra := map[string]any{}
	for k, v := range req.Kwargs {
		extra[k] = v
	}
	thinkingOff := false
	if req.Thinking != nil {
		if *req.Thinking && !p.thinking {
			return nil, &apiError{Status: http.StatusBadRequest, Param: "think",
				Message: fmt.Sprintf("model %q does not support thinking: its chat template has no reasoning block", l.Name)}
		}
		if p.thinkSwitch {
			extra["enable_thinking"] = *req.Thinking
		}
		thinkingOff = !*req.Thinking
	}
	if v, ok := extra["enable_thinking"].(bool); ok && !v {
		thinkingOff = true
	} else if raw, ok := extra["enable_thinking"].(json.RawMessage); ok && string(raw) == "false" {
		thinkingOff = true
	}
	plan := &chatPlan{toolFormat: p.toolFormat, parallel: req.Parallel}
	var toolsRaw json.RawMessage
	if len(req.Tools) > 0 && req.Choice.Mode != "none" {
		toolsRaw = req.ToolsRaw
		plan.parseTools = true
		for _, t := range req.Tools {
			plan.names = append(plan.names, t.Function.Name)
		}
	}
	if req.Choice.Mode == "required" || req.Choice.Mode == "function" {
		if len(req.Tools) == 0 {
			return nil, &apiError{Status: http.StatusBadRequest, Param: "tool_choice",
				Message: fmt.Sprintf("tool_choice %q needs \"tools\"", req.Choice.Mode)}
		}
		if req.Format != nil {
			return nil, &apiError{Status: http.StatusBadRequest, Param: req.FormatArg,
				Message: fmt.Sprintf("%s cannot be combined with a tool_choice that forces a call", req.FormatArg)}
		}
	}
	text, err := p.tmpl.Render(ctx, req.Messages, chat.Options{
		AddGenerationPrompt: true, BOSToken: p.bos, EOSToken: p.eos, Tools: toolsRaw, Extra: extra,
	})
	if err != nil {
		return nil, renderError(err, l.Name)
	}
	// As llama.cpp: the tokenizer adds BOS (EOS) when the vocabulary asks,
	// so a BOS the template wrote is removed rather than doubled.
	if p.addBOS && p.bos != "" {
		text = strings.TrimPrefix(text, p.bos)
	}
	if p.addEOS && p.eos != "" {
		text = strings.TrimSuffix(text, p.eos)
	}
	plan.inReasoning = chat.PromptEndsInReasoning(text)

	g := req.Format
	if req.Choice.Mode == "required" || req.Choice.Mode == "function" {
		f, err := tools.Force(p.toolFormat, req.Tools, req.Choice, tools.ForceOptions{
			Parallel: req.Parallel, Thinking: p.thinking && !thinkingOff && !plan.inReasoning,
		})
		if err != nil {
			param := "tools"
			if errors.Is(err, tools.ErrChoice) {
				param = "tool_choice"
			}
			return nil, &apiError{Status: http.StatusBadRequest, Param: param, Message: err.Error()}
		}
		if g, err = grammar.CompileGBNF(f.Grammar); err != nil {
			return nil, &apiError{Status: http.StatusBadRequest, Param: "tools", Message: err.Error()}
		}
		plan.prefill, plan.forced = f.Prefill, true
	}
	if g != nil && plan.inReasoning {
		// The constraint governs the answer: close the reasoning block the
		// template opened.
		text += chat.ThinkClose + "\n\n"
		plan.inReasoning = false
	}
	text += plan.prefill
	plan.prompt = text
	if plan.ids, err = l.Gen.Tokenize(text, true, true); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Param: "messages", Message: err.Error()}
	}
	if g != nil {
		opts.Constraint = newGuard(g.Matcher(p.vocabulary()))
	} else {
		// A constrained answer ends by its grammar and the vocabulary's
		// end-of-generation tokens; a free one also at the family's
		// end-of-turn texts.
		opts.Stop = append(opts.Stop, p.stops...)
	}
	return plan, nil
}

// renderError maps a template failure to an HTTP error: the sandbox's
// refusals and time-outs are the template's fault (500), the rest (a
// template's raise_exception about the conversation, oversized input) the
// request's (400).
func renderError(err error, model string) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, chat.ErrUnsafeTemplate) || errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Status: http.StatusInternalServerError,
			Message: fmt.Sprintf("model %q: rendering the chat template failed: %v", model, err)}
	}
	return &apiError{Status: http.StatusBadRequest, Param: "messages",
		Message: fmt.Sprintf("model %q: the chat template could not render these messages: %v", model, err)}
}

// answer is a chat answer taken apart.
type answer struct {
	reasoning, content string
	calls              []tools.Call
}

// read takes a complete answer apart.
func (pl *chatPlan) read(text string) answer {
	r := pl.newReader()
	_, c := r.push(text)
	a, _ := r.end()
	a.content = c + a.content
	return a
}

// chatReader follows an answer as it streams: reasoning goes out at once,
// content is held back where a tool call may be starting, and the calls are
// parsed at the end.
type chatReader struct {
	pl        *chatPlan
	split     *chat.ReasoningSplitter
	reasoning strings.Builder
	content   strings.Builder // everything after the reasoning, prefill included
	sent      int             // bytes of content released
}

func (pl *chatPlan) newReader() *chatReader {
	r := &chatReader{pl: pl, split: chat.NewReasoningSplitter(pl.inReasoning)}
	r.content.WriteString(pl.prefill)
	return r
}

// push adds a piece of the answer and returns what may be sent now.
func (r *chatReader) push(piece string) (reasoning, content string) {
	rs, cs := r.split.Push(piece)
	r.reasoning.WriteString(rs)
	r.content.WriteString(cs)
	return rs, r.release(false)
}

func (r *chatReader) release(final bool) string {
	all := r.content.String()
	limit := len(all)
	if r.pl.parseTools && !final {
		start, hold := tools.Scan(r.pl.toolFormat, all)
		if start >= 0 {
			limit = start
		} else {
			limit -= hold
		}
	}
	if limit <= r.sent {
		return ""
	}
	out := all[r.sent:limit]
	r.sent = limit
	return out
}

// end returns the whole answer, whose content is only what was not
// released yet, and the reasoning that was still held back.
func (r *chatReader) end() (answer, string) {
	rs, cs := r.split.Flush()
	r.reasoning.WriteString(rs)
	r.content.WriteString(cs)
	a := answer{reasoning: r.reasoning.String()}
	all := r.content.String()
	if r.pl.parseTools {
		content, calls, err := tools.Parse(r.pl.toolFormat, all, r.pl.names)
		if err != nil && r.pl.forced && r.pl.toolFormat == tools.FormatHermes {
			// A forced answer cut short (max_tokens) inside a further
			// call: keep the complete calls before it.
			if i := strings.LastIndex(all, tools.HermesClose); i >= 0 {
				content, calls, err = tools.Parse(r.pl.toolFormat, all[:i+len(tools.HermesClose)], r.pl.names)
			}
		}
		if err == nil && len(calls) > 0 {
			if !r.pl.parallel && len(calls) > 1 {
				calls = calls[:1]
			}
			for i := range calls {
				if calls[i].ID == "" {
					calls[i].ID = tools.NewCallID()
				}
			}
			a.calls = calls
			if sent := all[:r.sent]; strings.HasPrefix(content, sent) {
				a.content = content[len(sent):]
			}
			return a, rs
		}
	}
	a.content = r.release(true)
	return a, rs
}
