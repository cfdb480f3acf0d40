package server

import (
	"encoding/json"
	"net/http"

	"github.com/slm-dev/slm/engine"
)

// POST /generate: the Hugging Face text-generation pipeline's shape.
//
//	{"prompt": "Once upon a time", "max_tokens": 64, "temperature": 0.7}
//	→ [{"generated_text": "Once upon a time…"}]
//
// "inputs" and "max_new_tokens" are accepted as the pipeline's names for
// "prompt" and "max_tokens", and the sampling fields may also come in a
// "parameters" object (Text Generation Inference). Unknown fields are a 400.

// DefaultGenerateTokens bounds /generate when max_tokens is not given.
const DefaultGenerateTokens = 128

func (s *Server) routeGenerate() {
	s.handle("POST /generate", s.hfGenerate)
}

type hfParams struct {
	MaxTokens         *int            `json:"max_tokens"`
	MaxNewTokens      *int            `json:"max_new_tokens"`
	Temperature       *float64        `json:"temperature"`
	TopK              *int            `json:"top_k"`
	TopP              *float64        `json:"top_p"`
	MinP              *float64        `json:"min_p"`
	Seed              *int64          `json:"seed"`
	RepetitionPenalty *float64        `json:"repetition_penalty"`
	RepeatPenalty     *float64        `json:"repeat_penalty"`
	PresencePenalty   *float64        `json:"presence_penalty"`
	FrequencyPenalty  *float64        `json:"frequency_penalty"`
	Stop              json.RawMessage `json:"stop"`
	DoSample          *bool           `json:"do_sample"`
	ReturnFullText    *bool           `json:"return_full_text"`
}

type hfRequest struct {
	Model  string  `json:"model"`
	Prompt *string `json:"prompt"`
	Inputs *string `json:"inputs"`
	hfParams
	Parameters *hfParams `json:"parameters"`
}

// merge fills p's unset fields from q.
func (p *hfParams) merge(q *hfParams) {
	if q == nil {
		return
	}
	set := func(dst **int, src *int) {
		if *dst == nil {
			*dst = src
		}
	}
	setf := func(dst **float64, src *float64) {
		if *dst == nil {
			*dst = src
		}
	}
	set(&p.MaxTokens, q.MaxTokens)
	set(&p.MaxNewTokens, q.MaxNewTokens)
	set(&p.TopK, q.TopK)
	setf(&p.Temperature, q.Temperature)
	setf(&p.TopP, q.TopP)
	setf(&p.MinP, q.MinP)
	setf(&p.RepetitionPenalty, q.RepetitionPenalty)
	setf(&p.RepeatPenalty, q.RepeatPenalty)
	setf(&p.PresencePenalty, q.PresencePenalty)
	setf(&p.FrequencyPenalty, q.FrequencyPenalty)
	if p.Seed == nil {
		p.Seed = q.Seed
	}
	if p.Stop == nil {
		p.Stop = q.Stop
	}
	if p.DoSample == nil {
		p.DoSample = q.DoSample
	}
	if p.ReturnFullText == nil {
		p.ReturnFullText = q.ReturnFullText
	}
}

func (s *Server) hfGenerate(w http.ResponseWriter, r *http.Request) error {
	var req hfRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	prompt := req.Prompt
	if prompt == nil {
		prompt = req.Inputs
	}
	if prompt == nil {
		return errorf(http.StatusBadRequest, "\"prompt\" is required")
	}
	p := req.hfParams
	p.merge(req.Parameters)
	maxTokens, defaulted := DefaultGenerateTokens, true
	name := "max_tokens"
	if p.MaxTokens != nil || p.MaxNewTokens != nil {
		defaulted = false
	}
	switch {
	case p.MaxTokens != nil:
		maxTokens = *p.MaxTokens
	case p.MaxNewTokens != nil:
		maxTokens, name = *p.MaxNewTokens, "max_new_tokens"
	}
	if maxTokens < 1 {
		return errorf(http.StatusBadRequest, "%q must be at least 1, got %d", name, maxTokens)
	}
	rp := p.RepetitionPenalty
	if rp == nil {
		rp = p.RepeatPenalty
	}
	sp := sampling{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP, Seed: p.Seed,
		RepeatPenalty: rp, PresencePenalty: p.PresencePenalty, FrequencyPenalty: p.FrequencyPenalty}
	params, err := sp.params()
	if err != nil {
		return err
	}
	if p.DoSample != nil && !*p.DoSample {
		params.Temperature = 0 // the pipeline's greedy decoding
	}
	stops, err := stopList(p.Stop, "stop")
	if err != nil {
		return err
	}

	l, err := s.acquire(r.Context(), req.Model)
	if err != nil {
		return err
	}
	defer l.Release(nil)
	ids, err := l.Gen.Tokenize(*prompt, true, false)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if defaulted { // the default is a cap, not a demand: fit it to the context
		maxTokens = max(1, min(maxTokens, l.Gen.ContextSize()-len(ids)))
	}
	if err := checkFit(len(ids), maxTokens, l.Gen.ContextSize(), name); err != nil {
		return err
	}
	res, err := s.generate(r.Context(), l, ids, engine.Options{MaxTokens: maxTokens, Sampling: params, Stop: stops}, nil)
	if err != nil {
		return err
	}
	text := res.Text
	if p.ReturnFullText == nil || *p.ReturnFullText {
		text = *prompt + text
	}
	writeJSON(w, http.StatusOK, []map[string]string{{"generated_text": text}})
	return nil
}
