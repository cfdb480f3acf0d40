package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/slm-dev/slm/chat"
	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/tools"
)

// The OpenAI dialect: /v1/chat/completions, /v1/completions, /v1/models.
// Requests are decoded strictly, as OpenAI does: an unknown field is a 400
// ("unrecognized request argument"), so a typo is never silently ignored.

func (s *Server) routeOpenAI() {
	s.handle("POST /v1/chat/completions", s.oaiChat)
	s.handle("POST /v1/completions", s.oaiCompletions)
	s.handle("GET /v1/models", s.oaiModels)
	s.handle("GET /v1/models/{id...}", s.oaiModel)
}

type oaiStreamOptions struct {
	IncludeUsage       bool  `json:"include_usage"`
	IncludeObfuscation *bool `json:"include_obfuscation"`
}

// oaiCommon are the fields chat and completions share, with the llama.cpp
// sampling extensions that OpenAI-compatible clients of local servers send.
type oaiCommon struct {
	Model            string             `json:"model"`
	MaxTokens        *int               `json:"max_tokens"`
	Temperature      *float64           `json:"temperature"`
	TopP             *float64           `json:"top_p"`
	N                *int               `json:"n"`
	Stream           bool               `json:"stream"`
	StreamOptions    *oaiStreamOptions  `json:"stream_options"`
	Stop             json.RawMessage    `json:"stop"`
	Seed             *int64             `json:"seed"`
	PresencePenalty  *float64           `json:"presence_penalty"`
	FrequencyPenalty *float64           `json:"frequency_penalty"`
	LogitBias        map[string]float64 `json:"logit_bias"`
	User             string             `json:"user"`
	// llama.cpp extensions.
	TopK          *int            `json:"top_k"`
	MinP          *float64        `json:"min_p"`
	RepeatPenalty *float64        `json:"repeat_penalty"`
	RepeatLastN   *int            `json:"repeat_last_n"`
	IgnoreEOS     bool            `json:"ignore_eos"`
	Grammar       string          `json:"grammar"`     // GBNF
	JSONSchema    json.RawMessage `json:"json_schema"` // a schema
}

type oaiChatRequest struct {
	oaiCommon
	Messages            []oaiMessage    `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
	// llama.cpp's extension: extra template variables (enable_thinking).
	ChatTemplateKwargs map[string]json.RawMessage `json:"chat_template_kwargs"`
	// Accepted and ignored: they do not change the text.
	Functions        json.RawMessage `json:"functions"`
	FunctionCall     json.RawMessage `json:"function_call"`
	Store            json.RawMessage `json:"store"`
	Metadata         json.RawMessage `json:"metadata"`
	ServiceTier      json.RawMessage `json:"service_tier"`
	ReasoningEffort  json.RawMessage `json:"reasoning_effort"`
	Modalities       json.RawMessage `json:"modalities"`
	Prediction       json.RawMessage `json:"prediction"`
	Audio            json.RawMessage `json:"audio"`
	WebSearchOptions json.RawMessage `json:"web_search_options"`
	Verbosity        json.RawMessage `json:"verbosity"`
	PromptCacheKey   json.RawMessage `json:"prompt_cache_key"`
	SafetyIdentifier json.RawMessage `json:"safety_identifier"`
}

type oaiMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	Name         string          `json:"name"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	ToolCallID   string          `json:"tool_call_id"`
	Reasoning    string          `json:"reasoning_content"`
	Refusal      json.RawMessage `json:"refusal"`
	Audio        json.RawMessage `json:"audio"`
	FunctionCall json.RawMessage `json:"function_call"`
}

type oaiCompletionRequest struct {
	oaiCommon
	Prompt   json.RawMessage `json:"prompt"`
	Echo     bool            `json:"echo"`
	Suffix   *string         `json:"suffix"`
	BestOf   *int            `json:"best_of"`
	Logprobs *int            `json:"logprobs"`
}

type oaiUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func usageOf(res engine.Result) *oaiUsage {
	u := &oaiUsage{PromptTokens: res.PromptTokens, CompletionTokens: len(res.Tokens), TotalTokens: res.PromptTokens + len(res.Tokens)}
	u.PromptTokensDetails.CachedTokens = res.CachedTokens
	return u
}

// options checks the shared fields and builds engine options.
func (c *oaiCommon) options(gen Generator, nVocab int, maxTokens *int, maxName string) (engine.Options, error) {
	var opts engine.Options
	if c.N != nil && *c.N != 1 {
		return opts, &apiError{Status: http.StatusBadRequest, Param: "n", Message: fmt.Sprintf("n=%d is not supported: slm returns one choice per request (n=1)", *c.N)}
	}
	if maxTokens != nil {
		if *maxTokens < 1 {
			return opts, &apiError{Status: http.StatusBadRequest, Param: maxName,
				Message: fmt.Sprintf("invalid %q: expected a value >= 1, got %d", maxName, *maxTokens)}
		}
		opts.MaxTokens = *maxTokens
	}
	if c.Temperature != nil && (*c.Temperature < 0 || *c.Temperature > 2) {
		return opts, &apiError{Status: http.StatusBadRequest, Param: "temperature",
			Message: fmt.Sprintf("invalid \"temperature\": %g is outside [0, 2]", *c.Temperature)}
	}
	stops, err := stopList(c.Stop, "stop")
	if err != nil {
		return opts, err
	}
	if len(stops) > 4 {
		return opts, &apiError{Status: http.StatusBadRequest, Param: "stop", Message: fmt.Sprintf("\"stop\" has %d strings: at most 4 are allowed", len(stops))}
	}
	bias, err := logitBias(c.LogitBias, nVocab)
	if err != nil {
		return opts, err
	}
	sp := sampling{Temperature: c.Temperature, TopP: c.TopP, TopK: c.TopK, MinP: c.MinP, Seed: c.Seed,
		RepeatPenalty: c.RepeatPenalty, RepeatLastN: c.RepeatLastN,
		PresencePenalty: c.PresencePenalty, FrequencyPenalty: c.FrequencyPenalty, LogitBias: bias}
	if opts.Sampling, err = sp.params(); err != nil {
		return opts, err
	}
	opts.Stop = stops
	opts.IgnoreEOS = c.IgnoreEOS
	return opts, nil
}

func (c *oaiCommon) requireModel() error {
	if c.Model == "" {
		return &apiError{Status: http.StatusBadRequest, Param: "model", Message: "you must provide a model parameter (GET /v1/models lists them)"}
	}
	return nil
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func finishReason(r engine.StopReason) any {
	switch r {
	case engine.StopLength:
		return "length"
	case engine.StopCanceled:
		return nil
	}
	return "stop"
}

// contentText flattens a message's content: a string, null, or an array of
// parts of which only text parts are supported.
func contentText(raw json.RawMessage, i int) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", &apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("messages[%d].content", i),
			Message: fmt.Sprintf("invalid type for \"messages[%d].content\": expected a string or an array of content parts", i)}
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return "", &apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("messages[%d].content[%d].type", i, j),
				Message: fmt.Sprintf("content part type %q is not supported: slm's models read text only", p.Type)}
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// oaiMessages converts OpenAI messages for the chat template.
func oaiMessages(in []oaiMessage) ([]chat.Message, error) {
	msgs := make([]chat.Message, len(in))
	for i, m := range in {
		text, err := contentText(m.Content, i)
		if err != nil {
			return nil, err
		}
		role := m.Role
		switch role {
		case "system", "user", "assistant", "tool":
		case "developer": // OpenAI's newer name for the system role
			role = "system"
		case "function":
			role = "tool"
		default:
			return nil, &apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("messages[%d].role", i),
				Message: fmt.Sprintf("invalid role %q in messages[%d]: want system, developer, user, assistant or tool", m.Role, i)}
		}
		cm := chat.Message{Role: role, Content: text, ReasoningContent: m.Reasoning, ToolCallID: m.ToolCallID, Name: m.Name}
		if len(m.ToolCalls) > 0 && string(m.ToolCalls) != "null" {
			var calls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string          `json:"name"`
					Arguments json.RawMessage `json:"arguments"`
				} `json:"function"`
			}
			if err := json.Unmarshal(m.ToolCalls, &calls); err != nil {
				return nil, &apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("messages[%d].tool_calls", i),
					Message: fmt.Sprintf("invalid \"messages[%d].tool_calls\": %v", i, err)}
			}
			for j, c := range calls {
				if c.Function.Name == "" {
					return nil, &apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("messages[%d].tool_calls[%d].function.name", i, j),
						Message: fmt.Sprintf("messages[%d].tool_calls[%d] has no function name", i, j)}
				}
				args := c.Function.Arguments
				if len(args) == 0 || string(args) == "null" {
					args = json.RawMessage(`{}`)
				}
				cm.ToolCalls = append(cm.ToolCalls, chat.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: args})
			}
		}
		msgs[i] = cm
	}
	return msgs, nil
}

// oaiToolCalls renders parsed calls as OpenAI tool_calls (arguments as a
// JSON string); with index for streaming deltas.
func oaiToolCalls(calls []tools.Call, index bool) []any {
	out := make([]any, len(calls))
	for i, c := range calls {
		tc := map[string]any{"id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": string(c.Arguments)}}
		if index {
			tc["index"] = i
		}
		out[i] = tc
	}
	return out
}

func (s *Server) oaiChat(w http.ResponseWriter, r *http.Request) error {
	var req oaiChatRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if err := req.requireModel(); err != nil {
		return err
	}
	if req.Messages == nil {
		return &apiError{Status: http.StatusBadRequest, Param: "messages", Message: "missing required parameter: \"messages\""}
	}
	logprobs := req.Logprobs != nil && *req.Logprobs
	topLogprobs := 0
	if req.TopLogprobs != nil {
		if err := checkTopLogprobs(*req.TopLogprobs, "top_logprobs"); err != nil {
			return err
		}
		if *req.TopLogprobs > 0 && !logprobs {
			return &apiError{Status: http.StatusBadRequest, Param: "top_logprobs",
				Message: "\"logprobs\" must be true when \"top_logprobs\" is given"}
		}
		topLogprobs = *req.TopLogprobs
	}
	creq := chatRequest{Parallel: req.ParallelToolCalls == nil || *req.ParallelToolCalls, FormatArg: "response_format"}
	var err error
	if creq.Format, err = responseFormat(req.ResponseFormat); err != nil {
		return err
	}
	if g, arg, err := llamaGrammar(req.Grammar, req.JSONSchema); err != nil {
		return err
	} else if g != nil {
		if creq.Format != nil {
			return &apiError{Status: http.StatusBadRequest, Param: arg, Message: fmt.Sprintf("give \"response_format\" or %q, not both", arg)}
		}
		creq.Format, creq.FormatArg = g, arg
	}
	if creq.Tools, err = parseTools(req.Tools, "tools"); err != nil {
		return err
	}
	creq.ToolsRaw = req.Tools
	if creq.Choice, err = tools.ParseChoice(req.ToolChoice); err != nil {
		return &apiError{Status: http.StatusBadRequest, Param: "tool_choice",
			Message: err.Error() + ": want \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}"}
	}
	if len(req.ChatTemplateKwargs) > 0 {
		creq.Kwargs = map[string]any{}
		for k, v := range req.ChatTemplateKwargs {
			creq.Kwargs[k] = v
		}
	}
	if creq.Messages, err = oaiMessages(req.Messages); err != nil {
		return err
	}
	maxTokens, maxName := req.MaxTokens, "max_tokens"
	if req.MaxCompletionTokens != nil {
		maxTokens, maxName = req.MaxCompletionTokens, "max_completion_tokens"
	}

	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(nil)
	opts, err := req.options(l.Gen, l.Gen.VocabSize(), maxTokens, maxName)
	if err != nil {
		return err
	}
	opts.Logprobs, opts.TopLogprobs = logprobs, topLogprobs
	plan, err := s.prepareChat(r.Context(), l, &creq, &opts)
	if err != nil {
		return err
	}
	ids := plan.ids
	if err := checkFit(len(ids), opts.MaxTokens, l.Gen.ContextSize(), maxName); err != nil {
		return err
	}
	col := newCollector(l.Gen, opts)

	id, created := newID("chatcmpl-"), time.Now().Unix()
	fingerprint := "slm-" + s.cfg.Version
	finish := func(res engine.Result, a answer) any {
		if len(a.calls) > 0 && res.Reason != engine.StopCanceled && res.Reason != engine.StopLength {
			return "tool_calls"
		}
		return finishReason(res.Reason)
	}
	if !req.Stream {
		res, err := s.generate(r.Context(), l, ids, opts, col.fn(nil))
		if err != nil {
			return err
		}
		var lp any
		if col != nil {
			lp = oaiChatLogprobs(col.rest(len(res.Text)))
		}
		a := plan.read(res.Text)
		msg := map[string]any{"role": "assistant", "content": a.content, "refusal": nil}
		if a.reasoning != "" {
			msg["reasoning_content"] = a.reasoning
		}
		if len(a.calls) > 0 {
			msg["tool_calls"] = oaiToolCalls(a.calls, false)
			if a.content == "" {
				msg["content"] = nil
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": l.Name,
			"system_fingerprint": fingerprint,
			"choices": []any{map[string]any{
				"index":         0,
				"message":       msg,
				"logprobs":      lp,
				"finish_reason": finish(res, a),
			}},
			"usage": usageOf(res),
		})
		return nil
	}

	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	st := newStream(w, true)
	lpChunk := func(es []lpEntry) any {
		if len(es) == 0 {
			return nil
		}
		return oaiChatLogprobs(es)
	}
	chunkLP := func(delta map[string]any, finish any, lp any) map[string]any {
		c := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": l.Name,
			"system_fingerprint": fingerprint,
			"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": lp, "finish_reason": finish}},
		}
		if includeUsage {
			c["usage"] = nil
		}
		return c
	}
	chunk := func(delta map[string]any, finish any) map[string]any { return chunkLP(delta, finish, nil) }
	first := true
	// The logprobs of the tokens released so far ride on the last chunk of
	// text sent.
	send := func(reasoning, content string) error {
		if first {
			first = false
			if err := st.send(chunk(map[string]any{"role": "assistant", "content": ""}, nil)); err != nil {
				return err
			}
		}
		if reasoning != "" {
			var lp any
			if content == "" {
				lp = lpChunk(col.take())
			}
			if err := st.send(chunkLP(map[string]any{"reasoning_content": reasoning}, nil, lp)); err != nil {
				return err
			}
		}
		if content != "" {
			return st.send(chunkLP(map[string]any{"content": content}, nil, lpChunk(col.take())))
		}
		return nil
	}
	rd := plan.newReader()
	res, err := s.generate(r.Context(), l, ids, opts, col.fn(func(t engine.Token) error {
		if len(t.Text) == 0 {
			return nil
		}
		return send(rd.push(string(t.Text)))
	}))
	if err != nil {
		return s.oaiStreamError(st, err)
	}
	a, tail := rd.end()
	send(tail, a.content)
	if first {
		send("", "")
	}
	if rest := col.rest(len(res.Text)); len(rest) > 0 {
		st.send(chunkLP(map[string]any{}, nil, lpChunk(rest)))
	}
	if len(a.calls) > 0 {
		st.send(chunk(map[string]any{"tool_calls": oaiToolCalls(a.calls, true)}, nil))
	}
	st.send(chunk(map[string]any{}, finish(res, a)))
	if includeUsage {
		st.send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": l.Name,
			"system_fingerprint": fingerprint, "choices": []any{}, "usage": usageOf(res)})
	}
	st.raw("data: [DONE]\n\n")
	return nil
}

// oaiStreamError reports an error: as the response if nothing was streamed
// yet, otherwise as a final error event (which OpenAI clients raise).
func (s *Server) oaiStreamError(st *stream, err error) error {
	if !st.started {
		return err
	}
	ae, ok := genError(err).(*apiError)
	if !ok {
		ae = errorf(http.StatusInternalServerError, "%v", err)
	}
	if isCanceled(err) {
		return err // the client is gone: nothing to tell it
	}
	st.send(map[string]any{"error": map[string]any{"message": ae.Message, "type": errType(ae.Status, dialectOpenAI), "param": nil, "code": nil}})
	st.raw("data: [DONE]\n\n")
	return nil
}

func (s *Server) oaiCompletions(w http.ResponseWriter, r *http.Request) error {
	var req oaiCompletionRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if err := req.requireModel(); err != nil {
		return err
	}
	if len(req.Prompt) == 0 {
		return &apiError{Status: http.StatusBadRequest, Param: "prompt", Message: "missing required parameter: \"prompt\""}
	}
	if req.BestOf != nil && *req.BestOf != 1 {
		return &apiError{Status: http.StatusBadRequest, Param: "best_of", Message: "best_of other than 1 is not supported"}
	}
	if req.Logprobs != nil {
		if err := checkTopLogprobs(*req.Logprobs, "logprobs"); err != nil {
			return err
		}
	}
	if req.Suffix != nil && *req.Suffix != "" {
		return &apiError{Status: http.StatusBadRequest, Param: "suffix", Message: "suffix (fill-in-the-middle) is not supported yet"}
	}
	text, ids, err := completionPrompt(req.Prompt)
	if err != nil {
		return err
	}
	g, _, err := llamaGrammar(req.Grammar, req.JSONSchema)
	if err != nil {
		return err
	}
	maxTokens := req.MaxTokens
	if maxTokens == nil {
		sixteen := 16 // OpenAI's default for /v1/completions
		maxTokens = &sixteen
	}
	defaulted := req.MaxTokens == nil

	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(nil)
	opts, err := req.options(l.Gen, l.Gen.VocabSize(), maxTokens, "max_tokens")
	if err != nil {
		return err
	}
	if ids == nil {
		if ids, err = l.Gen.Tokenize(text, true, false); err != nil {
			return &apiError{Status: http.StatusBadRequest, Param: "prompt", Message: err.Error()}
		}
	} else {
		text = l.Gen.Detokenize(ids)
		nv := l.Gen.VocabSize()
		for _, id := range ids {
			if id < 0 || int(id) >= nv {
				return &apiError{Status: http.StatusBadRequest, Param: "prompt", Message: fmt.Sprintf("token id %d in \"prompt\" is outside the vocabulary (0..%d)", id, nv-1)}
			}
		}
	}
	if defaulted { // the default is a cap, not a demand: fit it to the context
		opts.MaxTokens = max(1, min(opts.MaxTokens, l.Gen.ContextSize()-len(ids)))
	}
	s.constrain(l, g, &opts)
	if err := checkFit(len(ids), opts.MaxTokens, l.Gen.ContextSize(), "max_tokens"); err != nil {
		return err
	}
	if req.Logprobs != nil {
		opts.Logprobs, opts.TopLogprobs = true, *req.Logprobs
	}
	col := newCollector(l.Gen, opts)
	base := 0 // text_offset counts from the start of the returned text
	if req.Echo {
		base = len(text)
	}

	id, created := newID("cmpl-"), time.Now().Unix()
	fingerprint := "slm-" + s.cfg.Version
	choiceLP := func(text string, finish any, lp any) map[string]any {
		return map[string]any{"text": text, "index": 0, "logprobs": lp, "finish_reason": finish}
	}
	if !req.Stream {
		res, err := s.generate(r.Context(), l, ids, opts, col.fn(nil))
		if err != nil {
			return err
		}
		out := res.Text
		if req.Echo {
			out = text + out
		}
		var lp any
		if col != nil {
			lp = oaiCompletionLogprobs(col.rest(len(res.Text)), base)
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "text_completion", "created": created, "model": l.Name,
			"system_fingerprint": fingerprint,
			"choices":            []any{choiceLP(out, finishReason(res.Reason), lp)},
			"usage":              usageOf(res),
		})
		return nil
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	st := newStream(w, true)
	chunkLP := func(text string, finish any, es []lpEntry) map[string]any {
		var lp any
		if len(es) > 0 {
			lp = oaiCompletionLogprobs(es, base)
		}
		c := map[string]any{"id": id, "object": "text_completion", "created": created, "model": l.Name,
			"system_fingerprint": fingerprint, "choices": []any{choiceLP(text, finish, lp)}}
		if includeUsage {
			c["usage"] = nil
		}
		return c
	}
	chunk := func(text string, finish any) map[string]any { return chunkLP(text, finish, nil) }
	echoed := !req.Echo
	res, err := s.generate(r.Context(), l, ids, opts, col.fn(func(t engine.Token) error {
		if !echoed {
			echoed = true
			if err := st.send(chunk(text, nil)); err != nil {
				return err
			}
		}
		if len(t.Text) == 0 {
			return nil
		}
		return st.send(chunkLP(string(t.Text), nil, col.take()))
	}))
	if err != nil {
		return s.oaiStreamError(st, err)
	}
	st.send(chunkLP("", finishReason(res.Reason), col.rest(len(res.Text))))
	if includeUsage {
		st.send(map[string]any{"id": id, "object": "text_completion", "created": created, "model": l.Name,
			"system_fingerprint": fingerprint, "choices": []any{}, "usage": usageOf(res)})
	}
	st.raw("data: [DONE]\n\n")
	return nil
}

// completionPrompt parses /v1/completions' prompt: a string, an array of
// one string, an array of token ids, or an array of one array of ids.
func completionPrompt(raw json.RawMessage) (string, []int32, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil, nil
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		if len(ss) != 1 {
			return "", nil, &apiError{Status: http.StatusBadRequest, Param: "prompt",
				Message: fmt.Sprintf("\"prompt\" has %d strings: slm takes one prompt per request", len(ss))}
		}
		return ss[0], nil, nil
	}
	var ids []int32
	if json.Unmarshal(raw, &ids) == nil {
		if len(ids) == 0 {
			return "", nil, &apiError{Status: http.StatusBadRequest, Param: "prompt", Message: "\"prompt\" is an empty array of tokens"}
		}
		return "", ids, nil
	}
	var idss [][]int32
	if json.Unmarshal(raw, &idss) == nil {
		if len(idss) != 1 || len(idss[0]) == 0 {
			return "", nil, &apiError{Status: http.StatusBadRequest, Param: "prompt",
				Message: "\"prompt\" must hold exactly one non-empty array of tokens"}
		}
		return "", idss[0], nil
	}
	return "", nil, &apiError{Status: http.StatusBadRequest, Param: "prompt",
		Message: "invalid type for \"prompt\": expected a string, an array of strings or an array of token ids"}
}

type oaiModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) oaiModels(w http.ResponseWriter, r *http.Request) error {
	data := []oaiModel{}
	for _, mi := range s.models.List() {
		data = append(data, oaiModel{ID: mi.Name, Object: "model", Created: mi.ModTime.Unix(), OwnedBy: "slm"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
	return nil
}

func (s *Server) oaiModel(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("id")
	if name == "" {
		return modelError(ErrModelNotFound, name)
	}
	mi, err := s.models.Info(name)
	if err != nil {
		return modelError(err, name)
	}
	writeJSON(w, http.StatusOK, oaiModel{ID: mi.Name, Object: "model", Created: mi.ModTime.Unix(), OwnedBy: "slm"})
	return nil
}
