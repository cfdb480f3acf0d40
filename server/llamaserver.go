package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/sample"
)

// The llama-server dialect: /completion (SSE when streaming, no [DONE]),
// /tokenize, /detokenize, /health, /props, /metrics. Unknown fields are
// ignored, as llama-server does; errors are
// {"error": {"code": N, "message": "...", "type": "..."}}.

func (s *Server) routeLlamaServer() {
	s.handle("POST /completion", s.llamaCompletion)
	s.handle("POST /completions", s.llamaCompletion)
	s.handle("POST /tokenize", s.llamaTokenize)
	s.handle("POST /detokenize", s.llamaDetokenize)
	s.handle("GET /health", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
	s.handle("GET /props", s.llamaProps)
	s.handle("GET /metrics", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.metrics.write(w, s.models.Stats(), len(s.models.Loaded()))
		return nil
	})
}

type llamaCompletionRequest struct {
	Model             string          `json:"model"`
	Prompt            json.RawMessage `json:"prompt"`
	NPredict          *int            `json:"n_predict"`
	MaxTokens         *int            `json:"max_tokens"` // alias
	Temperature       *float64        `json:"temperature"`
	TopK              *int            `json:"top_k"`
	TopP              *float64        `json:"top_p"`
	MinP              *float64        `json:"min_p"`
	Seed              *int64          `json:"seed"`
	RepeatPenalty     *float64        `json:"repeat_penalty"`
	RepeatLastN       *int            `json:"repeat_last_n"`
	PresencePenalty   *float64        `json:"presence_penalty"`
	FrequencyPenalty  *float64        `json:"frequency_penalty"`
	Stop              []string        `json:"stop"`
	Stream            bool            `json:"stream"`
	IgnoreEOS         bool            `json:"ignore_eos"`
	CachePrompt       *bool           `json:"cache_prompt"`
	LogitBias         json.RawMessage `json:"logit_bias"`
	NProbs            int             `json:"n_probs"`
	PostSamplingProbs bool            `json:"post_sampling_probs"`
	Grammar           string          `json:"grammar"`     // GBNF
	JSONSchema        json.RawMessage `json:"json_schema"` // a JSON schema
}

// llamaPrompt parses /completion's prompt: a string, or an array mixing
// strings and token ids.
func llamaPrompt(raw json.RawMessage, gen Generator, nVocab int) ([]int32, error) {
	bad := errorf(http.StatusBadRequest, "invalid type for \"prompt\": expected a string or an array of strings and token ids")
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errorf(http.StatusBadRequest, "\"prompt\" is required")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return gen.Tokenize(s, true, true)
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return nil, bad
	}
	var ids []int32
	for i, p := range parts {
		var id int32
		if json.Unmarshal(p, &id) == nil {
			if id < 0 || int(id) >= nVocab {
				return nil, errorf(http.StatusBadRequest, "token id %d in \"prompt\" is outside the vocabulary (0..%d)", id, nVocab-1)
			}
			ids = append(ids, id)
			continue
		}
		if json.Unmarshal(p, &s) == nil {
			more, err := gen.Tokenize(s, i == 0, true)
			if err != nil {
				return nil, err
			}
			ids = append(ids, more...)
			continue
		}
		return nil, bad
	}
	return ids, nil
}

// llamaBias parses logit_bias as llama-server does: [[id, bias], ...] (a
// bias of false bans the token) or {"id": bias}.
func llamaBias(raw json.RawMessage, nVocab int) (map[int32]float32, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var obj map[string]float64
	if json.Unmarshal(raw, &obj) == nil {
		return logitBias(obj, nVocab)
	}
	var pairs [][2]json.RawMessage
	if json.Unmarshal(raw, &pairs) != nil {
		return nil, errorf(http.StatusBadRequest, "invalid type for \"logit_bias\": expected [[id, bias], ...] or {\"id\": bias}")
	}
	obj = map[string]float64{}
	for _, p := range pairs {
		var id int32
		var b float64
		if json.Unmarshal(p[0], &id) != nil {
			return nil, errorf(http.StatusBadRequest, "invalid \"logit_bias\" entry: the first element must be a token id")
		}
		if string(p[1]) == "false" {
			b = -100
		} else if json.Unmarshal(p[1], &b) != nil {
			return nil, errorf(http.StatusBadRequest, "invalid \"logit_bias\" entry: the bias must be a number or false")
		}
		obj[fmt.Sprint(id)] = b
	}
	return logitBias(obj, nVocab)
}

func (s *Server) llamaCompletion(w http.ResponseWriter, r *http.Request) error {
	var req llamaCompletionRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.NProbs < 0 || req.NProbs > engine.MaxTopLogprobs {
		return errorf(http.StatusBadRequest, "invalid \"n_probs\": %d is outside 0..%d", req.NProbs, engine.MaxTopLogprobs)
	}
	if req.PostSamplingProbs {
		return errorf(http.StatusBadRequest, "post_sampling_probs is not supported: n_probs reports the model's distribution before sampling")
	}
	g, _, err := llamaGrammar(req.Grammar, req.JSONSchema)
	if err != nil {
		return err
	}
	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(nil)
	nv := l.Gen.VocabSize()
	ids, err := llamaPrompt(req.Prompt, l.Gen, nv)
	if err != nil {
		return genError(err)
	}
	var opts engine.Options
	n := req.NPredict
	if n == nil {
		n = req.MaxTokens
	}
	if n != nil && *n > 0 {
		opts.MaxTokens = *n // -1 (the default) is unbounded
	}
	bias, err := llamaBias(req.LogitBias, nv)
	if err != nil {
		return err
	}
	sp := sampling{Temperature: req.Temperature, TopK: req.TopK, TopP: req.TopP, MinP: req.MinP, Seed: req.Seed,
		RepeatPenalty: req.RepeatPenalty, RepeatLastN: req.RepeatLastN,
		PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty, LogitBias: bias}
	if opts.Sampling, err = sp.params(); err != nil {
		return err
	}
	opts.Stop, opts.IgnoreEOS = req.Stop, req.IgnoreEOS
	s.constrain(l, g, &opts)
	if err := checkFit(len(ids), opts.MaxTokens, l.Gen.ContextSize(), "n_predict"); err != nil {
		return err
	}
	if req.NProbs > 0 {
		opts.Logprobs, opts.TopLogprobs = true, req.NProbs
	}
	col := newCollector(l.Gen, opts)

	final := func(res engine.Result, content string) map[string]any {
		stopType, word := "eos", ""
		switch res.Reason {
		case engine.StopLength:
			stopType = "limit"
		case engine.StopCanceled:
			stopType = "none"
		default:
			full := l.Gen.Detokenize(res.Tokens)
			for _, sw := range opts.Stop {
				if sw != "" && strings.Contains(full, sw) {
					stopType, word = "word", sw
					break
				}
			}
		}
		pms := float64(res.PromptDuration.Microseconds()) / 1e3
		gms := float64(res.GenDuration.Microseconds()) / 1e3
		evaluated := res.PromptTokens - res.CachedTokens
		per := func(ms float64, n int) (float64, float64) {
			if n == 0 || ms == 0 {
				return 0, 0
			}
			return ms / float64(n), 1e3 * float64(n) / ms
		}
		ppt, pps := per(pms, evaluated)
		gpt, gps := per(gms, len(res.Tokens))
		return map[string]any{
			"index": 0, "content": content, "tokens": []int32{}, "id_slot": 0, "stop": true,
			"model": l.Name, "tokens_predicted": len(res.Tokens), "tokens_evaluated": res.PromptTokens,
			"tokens_cached": res.CachedTokens, "truncated": false, "has_new_line": strings.Contains(res.Text, "\n"),
			"stop_type": stopType, "stopping_word": word,
			"generation_settings": map[string]any{
				"n_predict": opts.MaxTokens, "temperature": opts.Sampling.Temperature, "top_k": opts.Sampling.TopK,
				"top_p": opts.Sampling.TopP, "min_p": opts.Sampling.MinP, "seed": opts.Sampling.Seed,
				"repeat_penalty": opts.Sampling.RepeatPenalty, "repeat_last_n": opts.Sampling.RepeatLastN,
				"presence_penalty": opts.Sampling.PresencePenalty, "frequency_penalty": opts.Sampling.FrequencyPenalty,
				"stop": opts.Stop, "ignore_eos": opts.IgnoreEOS, "n_ctx": l.Gen.ContextSize(),
			},
			"timings": map[string]any{
				"prompt_n": evaluated, "prompt_ms": pms, "prompt_per_token_ms": ppt, "prompt_per_second": pps,
				"predicted_n": len(res.Tokens), "predicted_ms": gms, "predicted_per_token_ms": gpt, "predicted_per_second": gps,
			},
		}
	}
	if !req.Stream {
		res, err := s.generate(r.Context(), l, ids, opts, col.fn(nil))
		if err != nil {
			return err
		}
		m := final(res, res.Text)
		if col != nil {
			m["completion_probabilities"] = llamaProbs(col.rest(len(res.Text)))
		}
		writeJSON(w, http.StatusOK, m)
		return nil
	}
	st := newStream(w, true)
	count := 0
	res, err := s.generate(r.Context(), l, ids, opts, col.fn(func(t engine.Token) error {
		ev := map[string]any{"index": 0, "content": string(t.Text), "stop": false, "id_slot": 0,
			"tokens_predicted": count, "tokens_evaluated": len(ids)}
		if t.ID >= 0 {
			count++
			ev["tokens"] = []int32{t.ID}
			ev["tokens_predicted"] = count
		} else {
			ev["tokens"] = []int32{}
		}
		if es := col.take(); len(es) > 0 {
			ev["completion_probabilities"] = llamaProbs(es)
		}
		return st.send(ev)
	}))
	if err != nil {
		if !st.started || isCanceled(err) {
			return err
		}
		ae, ok := genError(err).(*apiError)
		if !ok {
			ae = errorf(http.StatusInternalServerError, "%v", err)
		}
		st.send(map[string]any{"error": map[string]any{"code": ae.Status, "message": ae.Message, "type": errType(ae.Status, dialectLlama)}})
		return nil
	}
	m := final(res, "")
	if es := col.rest(len(res.Text)); len(es) > 0 {
		m["completion_probabilities"] = llamaProbs(es)
	}
	st.send(m)
	return nil
}

func (s *Server) llamaTokenize(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Model        string `json:"model"`
		Content      string `json:"content"`
		AddSpecial   bool   `json:"add_special"`
		ParseSpecial *bool  `json:"parse_special"`
		WithPieces   bool   `json:"with_pieces"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(nil)
	parse := req.ParseSpecial == nil || *req.ParseSpecial
	ids, err := l.Gen.Tokenize(req.Content, req.AddSpecial, parse)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if !req.WithPieces {
		if ids == nil {
			ids = []int32{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tokens": ids})
		return nil
	}
	toks := make([]map[string]any, len(ids))
	for i, id := range ids {
		piece := l.Gen.Detokenize([]int32{id})
		var p any = piece
		if !utf8.ValidString(piece) { // llama-server sends the bytes then
			b := make([]int, len(piece))
			for j := range len(piece) {
				b[j] = int(piece[j])
			}
			p = b
		}
		toks[i] = map[string]any{"id": id, "piece": p}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
	return nil
}

func (s *Server) llamaDetokenize(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Model  string  `json:"model"`
		Tokens []int32 `json:"tokens"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(nil)
	nv := l.Gen.VocabSize()
	for _, id := range req.Tokens {
		if id < 0 || int(id) >= nv {
			return errorf(http.StatusBadRequest, "token id %d is outside the vocabulary (0..%d)", id, nv-1)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"content": l.Gen.Detokenize(req.Tokens)})
	return nil
}

func (s *Server) llamaProps(w http.ResponseWriter, r *http.Request) error {
	l, err := s.acquire(r.Context(), r.URL.Query().Get("model"))
	if err != nil {
		return err
	}
	defer l.Release(nil)
	p := sample.DefaultParams() // what a request gets for the fields it leaves out
	slots := 1
	if st, ok := l.Gen.(statser); ok {
		slots = st.Stats().Slots
	}
	tmplSource := ""
	if p := s.profile(l); p.err == nil {
		tmplSource = p.source
	}
	mi, _ := s.models.Info(l.Name)
	path := mi.Path
	if path == "" {
		path = l.Name
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"default_generation_settings": map[string]any{
			"n_ctx": l.Gen.ContextSize(),
			"params": map[string]any{
				"n_predict": -1, "temperature": p.Temperature, "top_k": p.TopK, "top_p": p.TopP, "min_p": p.MinP,
				"repeat_penalty": p.RepeatPenalty, "repeat_last_n": p.RepeatLastN, "seed": p.Seed,
			},
		},
		"total_slots":   slots,
		"model_path":    path,
		"model_alias":   l.Name,
		"chat_template": tmplSource,
		"modalities":    map[string]bool{"vision": false, "audio": false},
		"build_info":    "slm " + s.cfg.Version,
		"uptime_s":      int64(time.Since(s.started).Seconds()),
	})
	return nil
}
