package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slm-dev/slm/chat"
	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/tools"
)

// The Ollama dialect: /api/generate, /api/chat (NDJSON streams by default),
// /api/tags, /api/show, /api/ps, /api/version. Like Ollama, unknown fields
// are ignored; wrong types are a 400 {"error": "..."}.

func (s *Server) routeOllama() {
	s.handle("POST /api/generate", s.ollamaGenerate)
	s.handle("POST /api/chat", s.ollamaChat)
	s.handle("GET /api/tags", s.ollamaTags)
	s.handle("POST /api/show", s.ollamaShow)
	s.handle("GET /api/ps", s.ollamaPS)
	s.handle("GET /api/version", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
		return nil
	})
}

type ollamaOptions struct {
	NumPredict       *int     `json:"num_predict"`
	NumCtx           *int     `json:"num_ctx"`
	Temperature      *float64 `json:"temperature"`
	TopK             *int     `json:"top_k"`
	TopP             *float64 `json:"top_p"`
	MinP             *float64 `json:"min_p"`
	Seed             *int64   `json:"seed"`
	RepeatPenalty    *float64 `json:"repeat_penalty"`
	RepeatLastN      *int     `json:"repeat_last_n"`
	PresencePenalty  *float64 `json:"presence_penalty"`
	FrequencyPenalty *float64 `json:"frequency_penalty"`
	Stop             []string `json:"stop"`
}

type ollamaCommon struct {
	Model     string          `json:"model"`
	Name      string          `json:"name"` // older clients
	Stream    *bool           `json:"stream"`
	Format    json.RawMessage `json:"format"`
	KeepAlive json.RawMessage `json:"keep_alive"`
	Options   *ollamaOptions  `json:"options"`
	Think     json.RawMessage `json:"think"`
	// Logprobs returns each token's log-probability; TopLogprobs (0..20)
	// also that many alternatives.
	Logprobs    bool `json:"logprobs"`
	TopLogprobs int  `json:"top_logprobs"`
}

type ollamaGenerateRequest struct {
	ollamaCommon
	Prompt   string   `json:"prompt"`
	Suffix   string   `json:"suffix"`
	System   string   `json:"system"`
	Template string   `json:"template"`
	Context  []int32  `json:"context"`
	Raw      bool     `json:"raw"`
	Images   []string `json:"images"`
}

type ollamaMessage struct {
	Role      string          `json:"role"`
	Content   string          `json:"content"`
	Thinking  string          `json:"thinking,omitempty"`
	Images    []string        `json:"images,omitempty"`
	ToolCalls json.RawMessage `json:"tool_calls,omitempty"`
	ToolName  string          `json:"tool_name,omitempty"`
}

type ollamaChatRequest struct {
	ollamaCommon
	Messages []ollamaMessage `json:"messages"`
	Tools    json.RawMessage `json:"tools"`
}

// prepare checks the shared fields; it returns the model name, whether to
// stream, the keep-alive and engine options (with MaxTokens from num_predict).
func (c *ollamaCommon) prepare() (name string, streaming bool, keep *time.Duration, opts engine.Options, err error) {
	name = c.Model
	if name == "" {
		name = c.Name
	}
	if name == "" {
		return "", false, nil, opts, errorf(http.StatusBadRequest, "model is required")
	}
	streaming = c.Stream == nil || *c.Stream
	if c.TopLogprobs < 0 || c.TopLogprobs > engine.MaxTopLogprobs {
		return "", false, nil, opts, errorf(http.StatusBadRequest, "top_logprobs must be between 0 and %d", engine.MaxTopLogprobs)
	}
	if c.Logprobs { // as Ollama: top_logprobs alone returns nothing
		opts.Logprobs, opts.TopLogprobs = true, c.TopLogprobs
	}
	if keep, err = parseKeepAlive(c.KeepAlive); err != nil {
		return "", false, nil, opts, err
	}
	o := c.Options
	if o == nil {
		o = &ollamaOptions{}
	}
	if o.NumPredict != nil && *o.NumPredict > 0 {
		opts.MaxTokens = *o.NumPredict // -1 and -2 (fill the context) and 0 are unbounded
	}
	sp := sampling{Temperature: o.Temperature, TopK: o.TopK, TopP: o.TopP, MinP: o.MinP, Seed: o.Seed,
		RepeatPenalty: o.RepeatPenalty, RepeatLastN: o.RepeatLastN,
		PresencePenalty: o.PresencePenalty, FrequencyPenalty: o.FrequencyPenalty}
	if opts.Sampling, err = sp.params(); err != nil {
		return "", false, nil, opts, err
	}
	opts.Stop = o.Stop
	return name, streaming, keep, opts, nil
}

// ollamaStats are the counters and nanosecond durations of a final message.
func ollamaStats(m map[string]any, res engine.Result, load, total time.Duration) {
	m["done_reason"] = string(res.Reason)
	if res.Reason == engine.StopCanceled {
		m["done_reason"] = "stop"
	}
	m["total_duration"] = total.Nanoseconds()
	m["load_duration"] = load.Nanoseconds()
	m["prompt_eval_count"] = res.PromptTokens
	m["prompt_eval_duration"] = res.PromptDuration.Nanoseconds()
	m["eval_count"] = len(res.Tokens)
	m["eval_duration"] = res.GenDuration.Nanoseconds()
}

func nowRFC3339() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// ollamaLoadOnly answers a request with no prompt: load the model (or, with
// keep_alive 0, unload it) and report done_reason "load" / "unload".
func (s *Server) ollamaLoadOnly(w http.ResponseWriter, r *http.Request, name string, keep *time.Duration, chat bool) error {
	resolved, err := s.models.Resolve(name)
	if err != nil {
		return modelError(err, name)
	}
	reason := "load"
	if keep != nil && *keep == 0 {
		s.models.SetKeepAlive(resolved, 0)
		reason = "unload"
	} else {
		l, err := s.acquire(r.Context(), resolved)
		if err != nil {
			return err
		}
		l.Release(keep)
	}
	out := map[string]any{"model": name, "created_at": nowRFC3339(), "done": true, "done_reason": reason}
	if chat {
		out["message"] = map[string]any{"role": "assistant", "content": ""}
	} else {
		out["response"] = ""
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) ollamaGenerate(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	var req ollamaGenerateRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	name, streaming, keep, opts, err := req.prepare()
	if err != nil {
		return err
	}
	if len(req.Images) > 0 {
		return errorf(http.StatusBadRequest, "images are not supported: slm's models read text only")
	}
	if req.Suffix != "" {
		return errorf(http.StatusBadRequest, "suffix (fill-in-the-middle) is not supported yet")
	}
	if req.Template != "" {
		return errorf(http.StatusBadRequest, "template is not supported yet (chat templates are not implemented)")
	}
	if req.Prompt == "" && len(req.Context) == 0 {
		return s.ollamaLoadOnly(w, r, name, keep, false)
	}
	g, err := ollamaFormat(req.Format)
	if err != nil {
		return err
	}

	l, err := s.acquire(r.Context(), name)
	if err != nil {
		return err
	}
	defer l.Release(keep)
	ids := slices.Clone(req.Context)
	nv := l.Gen.VocabSize()
	for _, id := range ids {
		if id < 0 || int(id) >= nv {
			return errorf(http.StatusBadRequest, "context token %d is outside the vocabulary (0..%d)", id, nv-1)
		}
	}
	prompt, special, err := s.ollamaPrompt(r.Context(), l, &req, &opts, g != nil)
	if err != nil {
		return err
	}
	more, err := l.Gen.Tokenize(prompt, len(ids) == 0, special)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	ids = append(ids, more...)
	s.constrain(l, g, &opts)
	if err := checkFit(len(ids), opts.MaxTokens, l.Gen.ContextSize(), "num_predict"); err != nil {
		return err
	}

	col := newCollector(l.Gen, opts)
	final := func(res engine.Result) map[string]any {
		m := map[string]any{"model": name, "created_at": nowRFC3339(), "response": "", "done": true}
		ollamaStats(m, res, l.LoadDuration, time.Since(start))
		m["context"] = append(slices.Clone(ids), res.Tokens...)
		if es := col.rest(len(res.Text)); len(es) > 0 {
			m["logprobs"] = ollamaLogprobs(es)
		}
		return m
	}
	if !streaming {
		res, err := s.generate(r.Context(), l, ids, opts, col.fn(nil))
		if err != nil {
			return err
		}
		m := final(res)
		m["response"] = res.Text
		writeJSON(w, http.StatusOK, m)
		return nil
	}
	st := newStream(w, false)
	res, err := s.generate(r.Context(), l, ids, opts, col.fn(func(t engine.Token) error {
		if len(t.Text) == 0 {
			return nil
		}
		m := map[string]any{"model": name, "created_at": nowRFC3339(), "response": string(t.Text), "done": false}
		if es := col.take(); len(es) > 0 {
			m["logprobs"] = ollamaLogprobs(es)
		}
		return st.send(m)
	}))
	if err != nil {
		return ollamaStreamError(st, err)
	}
	st.send(final(res))
	return nil
}

// ollamaPrompt is the text /api/generate evaluates. As in Ollama, unless the
// request is raw the model's chat template wraps the prompt (and system) as a
// user turn followed by the assistant's header, its special tokens are
// parsed, and the family's end-of-turn texts stop a free answer. A model
// without a template of its own (and raw requests) get the prompt as it is,
// after the system text.
func (s *Server) ollamaPrompt(ctx context.Context, l *Lease, req *ollamaGenerateRequest, opts *engine.Options, constrained bool) (text string, special bool, err error) {
	plain := req.Prompt
	if req.Raw {
		return plain, false, nil
	}
	p := s.profile(l)
	if p.err != nil || !p.own {
		if req.System != "" {
			plain = req.System + "\n\n" + plain
		}
		return plain, false, nil
	}
	var msgs []chat.Message
	if req.System != "" {
		msgs = append(msgs, chat.Message{Role: "system", Content: req.System})
	}
	msgs = append(msgs, chat.Message{Role: "user", Content: req.Prompt})
	text, err = p.tmpl.Render(ctx, msgs, chat.Options{AddGenerationPrompt: true, BOSToken: p.bos, EOSToken: p.eos})
	if err != nil {
		return "", false, renderError(err, l.Name)
	}
	if p.addBOS && p.bos != "" { // the tokenizer adds it (see prepareChat)
		text = strings.TrimPrefix(text, p.bos)
	}
	if p.addEOS && p.eos != "" {
		text = strings.TrimSuffix(text, p.eos)
	}
	if !constrained {
		opts.Stop = append(opts.Stop, p.stops...)
	}
	return text, true, nil
}

// ollamaStreamError ends a stream with {"error": "..."}, as Ollama does.
func ollamaStreamError(st *stream, err error) error {
	if !st.started || isCanceled(err) {
		return err
	}
	st.send(map[string]any{"error": genError(err).Error()})
	return nil
}

// ollamaMessages converts Ollama messages for the chat template.
func ollamaMessages(in []ollamaMessage) ([]chat.Message, error) {
	msgs := make([]chat.Message, len(in))
	for i, m := range in {
		if len(m.Images) > 0 {
			return nil, errorf(http.StatusBadRequest, "images are not supported: slm's models read text only")
		}
		switch m.Role {
		case "system", "user", "assistant", "tool":
		default:
			return nil, errorf(http.StatusBadRequest, "invalid role %q in messages[%d]: want system, user, assistant or tool", m.Role, i)
		}
		cm := chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.Thinking, Name: m.ToolName}
		if len(m.ToolCalls) > 0 && string(m.ToolCalls) != "null" {
			var calls []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string          `json:"name"`
					Arguments json.RawMessage `json:"arguments"`
				} `json:"function"`
			}
			if err := json.Unmarshal(m.ToolCalls, &calls); err != nil {
				return nil, errorf(http.StatusBadRequest, "invalid messages[%d].tool_calls: %v", i, err)
			}
			for j, c := range calls {
				if c.Function.Name == "" {
					return nil, errorf(http.StatusBadRequest, "messages[%d].tool_calls[%d] has no function name", i, j)
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

// ollamaThink reads think: true/false, or a level ("high", "medium", "low")
// which means on.
func ollamaThink(raw json.RawMessage) (*bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return &b, nil
	}
	var level string
	if json.Unmarshal(raw, &level) == nil {
		switch level {
		case "high", "medium", "low":
			b = true
			return &b, nil
		case "":
			return nil, nil
		}
	}
	return nil, errorf(http.StatusBadRequest, "invalid think %s: want true, false, \"high\", \"medium\" or \"low\"", raw)
}

// ollamaToolCalls renders parsed calls as Ollama tool_calls (arguments as
// an object).
func ollamaToolCalls(calls []tools.Call) []any {
	out := make([]any, len(calls))
	for i, c := range calls {
		out[i] = map[string]any{"id": c.ID, "function": map[string]any{"index": i, "name": c.Name, "arguments": c.Arguments}}
	}
	return out
}

func (s *Server) ollamaChat(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	var req ollamaChatRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	name, streaming, keep, opts, err := req.prepare()
	if err != nil {
		return err
	}
	if len(req.Messages) == 0 {
		return s.ollamaLoadOnly(w, r, name, keep, true)
	}
	creq := chatRequest{Parallel: true, Choice: tools.Choice{Mode: "auto"}, FormatArg: "format"}
	if creq.Format, err = ollamaFormat(req.Format); err != nil {
		return err
	}
	if creq.Tools, err = parseTools(req.Tools, "tools"); err != nil {
		return err
	}
	creq.ToolsRaw = req.Tools
	if creq.Thinking, err = ollamaThink(req.Think); err != nil {
		return err
	}
	if creq.Messages, err = ollamaMessages(req.Messages); err != nil {
		return err
	}

	l, err := s.acquire(r.Context(), name)
	if err != nil {
		return err
	}
	defer l.Release(keep)
	plan, err := s.prepareChat(r.Context(), l, &creq, &opts)
	if err != nil {
		return err
	}
	ids := plan.ids
	if err := checkFit(len(ids), opts.MaxTokens, l.Gen.ContextSize(), "num_predict"); err != nil {
		return err
	}
	message := func(thinking, content string, calls []tools.Call) map[string]any {
		m := map[string]any{"role": "assistant", "content": content}
		if thinking != "" {
			m["thinking"] = thinking
		}
		if len(calls) > 0 {
			m["tool_calls"] = ollamaToolCalls(calls)
		}
		return m
	}
	col := newCollector(l.Gen, opts)
	final := func(res engine.Result, msg map[string]any) map[string]any {
		m := map[string]any{"model": name, "created_at": nowRFC3339(), "message": msg, "done": true}
		ollamaStats(m, res, l.LoadDuration, time.Since(start))
		if es := col.rest(len(res.Text)); len(es) > 0 {
			m["logprobs"] = ollamaLogprobs(es)
		}
		return m
	}
	if !streaming {
		res, err := s.generate(r.Context(), l, ids, opts, col.fn(nil))
		if err != nil {
			return err
		}
		a := plan.read(res.Text)
		writeJSON(w, http.StatusOK, final(res, message(a.reasoning, a.content, a.calls)))
		return nil
	}
	st := newStream(w, false)
	send := func(thinking, content string, calls []tools.Call) error {
		if thinking == "" && content == "" && len(calls) == 0 {
			return nil
		}
		m := map[string]any{"model": name, "created_at": nowRFC3339(),
			"message": message(thinking, content, calls), "done": false}
		if es := col.take(); len(es) > 0 {
			m["logprobs"] = ollamaLogprobs(es)
		}
		return st.send(m)
	}
	rd := plan.newReader()
	res, err := s.generate(r.Context(), l, ids, opts, col.fn(func(t engine.Token) error {
		if len(t.Text) == 0 {
			return nil
		}
		th, c := rd.push(string(t.Text))
		return send(th, c, nil)
	}))
	if err != nil {
		return ollamaStreamError(st, err)
	}
	a, tail := rd.end()
	send(tail, a.content, a.calls)
	st.send(final(res, message("", "", nil)))
	return nil
}

// ollamaDetails is Ollama's "details" object, read from the GGUF header.
type ollamaDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// modelFacts are what the listing routes need from a model's file, read
// once per file version.
type modelFacts struct {
	details ollamaDetails
	params  uint64
	info    map[string]any // scalar metadata for /api/show's model_info
	digest  string
}

var (
	factsMu    sync.Mutex
	factsCache = map[string]*modelFacts{} // key: name|size|modtime
)

func (s *Server) facts(mi ModelInfo) (*modelFacts, error) {
	key := fmt.Sprintf("%s|%d|%d", mi.Name, mi.Size, mi.ModTime.UnixNano())
	factsMu.Lock()
	f, ok := factsCache[key]
	factsMu.Unlock()
	if ok {
		return f, nil
	}
	g, err := s.models.ggufMeta(mi.Name)
	if errors.Is(err, errNoFile) { // a backend without a file: nothing to read
		return &modelFacts{info: map[string]any{}, details: ollamaDetails{Families: []string{}}}, nil
	}
	if err != nil {
		return nil, err
	}
	defer g.Close()
	f = &modelFacts{info: map[string]any{}}
	arch := g.Arch()
	for i := range g.Tensors {
		f.params += g.Tensors[i].Elems()
	}
	f.details = ollamaDetails{Format: "gguf", Family: arch, Families: []string{arch},
		ParameterSize: humanCount(f.params), QuantizationLevel: quantLevel(g)}
	for _, kv := range g.KVs {
		switch kv.Value.(type) {
		case string, bool, float32, float64, int8, uint8, int16, uint16, int32, uint32, int64, uint64:
			f.info[kv.Key] = kv.Value
		}
	}
	f.info["general.parameter_count"] = f.params
	// Not the SHA-256 of the file (hashing gigabytes on a listing would be
	// slow): a stable digest of the name, size and modification time.
	sum := sha256.Sum256([]byte(key))
	f.digest = hex.EncodeToString(sum[:])
	factsMu.Lock()
	factsCache[key] = f
	factsMu.Unlock()
	return f, nil
}

// humanCount renders a parameter count as Ollama does ("7.2B", "135M").
func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// quantLevel names general.file_type as llama.cpp does, or else the most
// common tensor type.
func quantLevel(g *gguf.File) string {
	names := map[uint64]string{0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
		10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
		17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}
	if ft, ok := g.Uint("general.file_type"); ok {
		if n, ok := names[ft]; ok {
			return n
		}
	}
	counts := map[string]uint64{}
	best := ""
	for i := range g.Tensors {
		t := g.Tensors[i].Type.String()
		counts[t] += g.Tensors[i].Size
		if best == "" || counts[t] > counts[best] {
			best = t
		}
	}
	return best
}

func (s *Server) ollamaTags(w http.ResponseWriter, r *http.Request) error {
	models := []any{}
	for _, mi := range s.models.List() {
		f, err := s.facts(mi)
		if err != nil {
			s.cfg.Log.Printf("/api/tags: %s: %v", mi.Name, err)
			continue
		}
		models = append(models, map[string]any{
			"name": mi.Name, "model": mi.Name, "modified_at": mi.ModTime.UTC().Format(time.RFC3339Nano),
			"size": mi.Size, "digest": f.digest, "details": f.details,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
	return nil
}

func (s *Server) ollamaShow(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Model   string `json:"model"`
		Name    string `json:"name"`
		Verbose bool   `json:"verbose"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if name == "" {
		return errorf(http.StatusBadRequest, "model is required")
	}
	mi, err := s.models.Info(name)
	if err != nil {
		return modelError(err, name)
	}
	f, err := s.facts(mi)
	if err != nil {
		return err
	}
	from := mi.Path
	if from == "" {
		from = "(embedded in the slm binary)"
	}
	tmpl, _ := f.info["tokenizer.chat_template"].(string)
	switch {
	case s.cfg.ChatTemplate != nil:
		tmpl = s.cfg.ChatTemplate.Source()
	case strings.TrimSpace(tmpl) == "":
		tmpl = fallbackTemplate
	}
	caps := []string{"completion"}
	if tmpl == fallbackTemplate || strings.Contains(tmpl, "tools") {
		caps = append(caps, "tools")
	}
	if strings.Contains(tmpl, chat.ThinkOpen) || strings.Contains(tmpl, chat.ThinkClose) {
		caps = append(caps, "thinking")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"license":      "",
		"modelfile":    "# slm serves GGUF files directly\nFROM " + from + "\n",
		"parameters":   "",
		"template":     tmpl,
		"details":      f.details,
		"model_info":   f.info,
		"capabilities": caps,
		"modified_at":  mi.ModTime.UTC().Format(time.RFC3339Nano),
	})
	return nil
}

func (s *Server) ollamaPS(w http.ResponseWriter, r *http.Request) error {
	models := []any{}
	for _, mi := range s.models.Loaded() {
		f, err := s.facts(mi)
		if err != nil {
			continue
		}
		exp := mi.ExpiresAt
		if exp.IsZero() { // held by a request, or kept forever
			exp = time.Now().Add(time.Duration(1<<63 - 1))
		}
		models = append(models, map[string]any{
			"name": mi.Name, "model": mi.Name, "size": mi.Memory, "digest": f.digest, "details": f.details,
			"expires_at": exp.UTC().Format(time.RFC3339Nano), "size_vram": 0, "context_length": mi.Context,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
	return nil
}
