// Package bench measures slm: today the load test behind `slm bench serve`,
// which drives a running server with concurrent streaming clients and
// reports the latencies users feel.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Dialects lists the streaming APIs ServeConfig.Dialect may name.
var Dialects = []string{"openai", "chat", "ollama", "llama"}

// ServeConfig describes one load test.
type ServeConfig struct {
	URL          string        // server base URL, e.g. http://127.0.0.1:8089
	APIKey       string        // sent as a Bearer token when set
	Dialect      string        // "openai" (/v1/completions), "chat" (/v1/chat/completions), "ollama" (/api/generate), "llama" (/completion)
	Model        string        // model name ("" lets the server pick, where the dialect allows)
	Concurrency  int           // clients sending requests at once
	Requests     int           // total requests; 0: run for Duration
	Duration     time.Duration // used when Requests is 0
	PromptTokens int           // approximate prompt length in tokens
	MaxTokens    int           // tokens to generate per request
	IgnoreEOS    bool          // ask the server to generate exactly MaxTokens (where the dialect has it)
	Client       *http.Client  // nil: a client sized for Concurrency
}

// Percentiles summarizes a latency distribution.
type Percentiles struct {
	N                   int
	Mean, P50, P90, P99 time.Duration
}

// ServeReport is the result of a load test.
type ServeReport struct {
	Dialect         string         `json:"dialect"`
	Concurrency     int            `json:"concurrency"`
	Requests        int            `json:"requests"`
	Failed          int            `json:"failed"`
	Errors          map[string]int `json:"errors,omitempty"` // first line of each distinct error, with its count
	PromptTokens    int            `json:"prompt_tokens"`    // as reported by the server
	OutputTokens    int            `json:"output_tokens"`    // as reported by the server
	Elapsed         time.Duration  `json:"elapsed_ns"`
	TTFT            Percentiles    `json:"ttft"`
	ITL             Percentiles    `json:"itl"`
	E2E             Percentiles    `json:"e2e"`
	TokensPerSecond float64        `json:"tokens_per_second"` // output tokens over the elapsed time, all clients together
	RequestsPerSec  float64        `json:"requests_per_second"`
}

// sample is what one request measured.
type sample struct {
	ttft, e2e     time.Duration
	gaps          []time.Duration
	prompt, toks  int
	err           error
	firstTokenSet bool
}

// RunServe runs the load test.
func RunServe(ctx context.Context, cfg ServeConfig) (*ServeReport, error) {
	if !slices.Contains(Dialects, cfg.Dialect) {
		return nil, fmt.Errorf("unknown dialect %q (want one of %s)", cfg.Dialect, strings.Join(Dialects, ", "))
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.Requests <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("give a number of requests or a duration")
	}
	if cfg.MaxTokens < 1 {
		cfg.MaxTokens = 64
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: 0}}
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.Model == "" && cfg.Dialect != "llama" {
		m, err := firstModel(ctx, client, cfg)
		if err != nil {
			return nil, fmt.Errorf("no --model given and GET /v1/models failed: %w", err)
		}
		cfg.Model = m
	}

	// In duration mode no request starts after the deadline; those in
	// flight finish and count.
	var deadline time.Time
	if cfg.Requests <= 0 {
		deadline = time.Now().Add(cfg.Duration)
	}
	var next atomic.Int64
	var mu sync.Mutex
	var samples []sample
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if cfg.Requests > 0 && i >= cfg.Requests || ctx.Err() != nil {
					return
				}
				if cfg.Requests <= 0 && i >= cfg.Concurrency && time.Now().After(deadline) {
					return // each client sends at least one request
				}
				s := one(ctx, client, cfg, i)
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	rep := &ServeReport{Dialect: cfg.Dialect, Concurrency: cfg.Concurrency, Elapsed: elapsed, Errors: map[string]int{}}
	var ttft, e2e, itl []time.Duration
	for _, s := range samples {
		rep.Requests++
		if s.err != nil {
			rep.Failed++
			msg, _, _ := strings.Cut(s.err.Error(), "\n")
			rep.Errors[msg]++
			continue
		}
		rep.PromptTokens += s.prompt
		rep.OutputTokens += s.toks
		if s.firstTokenSet {
			ttft = append(ttft, s.ttft)
		}
		e2e = append(e2e, s.e2e)
		itl = append(itl, s.gaps...)
	}
	rep.TTFT, rep.ITL, rep.E2E = percentiles(ttft), percentiles(itl), percentiles(e2e)
	if secs := elapsed.Seconds(); secs > 0 {
		rep.TokensPerSecond = float64(rep.OutputTokens) / secs
		rep.RequestsPerSec = float64(rep.Requests-rep.Failed) / secs
	}
	return rep, nil
}

func percentiles(d []time.Duration) Percentiles {
	p := Percentiles{N: len(d)}
	if len(d) == 0 {
		return p
	}
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	p.Mean = sum / time.Duration(len(d))
	at := func(q float64) time.Duration { // nearest rank
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	p.P50, p.P90, p.P99 = at(0.50), at(0.90), at(0.99)
	return p
}

// words build prompts of roughly one token per word for most vocabularies.
var words = strings.Fields("the of and to in is was for on that with as by at from his her they have this were which one had but are not all their been when there who more into time will would about after first other")

func prompt(i, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Request %d:", i)
	for j := 0; j < n-3; j++ {
		b.WriteByte(' ')
		b.WriteString(words[(i*7+j*13)%len(words)])
	}
	return b.String()
}

// body builds the request for the dialect.
func body(cfg ServeConfig, i int) (path string, v map[string]any) {
	p := prompt(i, cfg.PromptTokens)
	switch cfg.Dialect {
	case "chat":
		v = map[string]any{"model": cfg.Model, "messages": []any{map[string]any{"role": "user", "content": p}},
			"max_tokens": cfg.MaxTokens, "stream": true, "stream_options": map[string]any{"include_usage": true}}
		if cfg.IgnoreEOS {
			v["ignore_eos"] = true
		}
		return "/v1/chat/completions", v
	case "openai":
		v = map[string]any{"model": cfg.Model, "prompt": p, "max_tokens": cfg.MaxTokens, "stream": true,
			"stream_options": map[string]any{"include_usage": true}}
		if cfg.IgnoreEOS {
			v["ignore_eos"] = true
		}
		return "/v1/completions", v
	case "ollama":
		return "/api/generate", map[string]any{"model": cfg.Model, "prompt": p, "stream": true,
			"options": map[string]any{"num_predict": cfg.MaxTokens}}
	default: // llama
		v = map[string]any{"prompt": p, "n_predict": cfg.MaxTokens, "stream": true, "ignore_eos": cfg.IgnoreEOS}
		if cfg.Model != "" {
			v["model"] = cfg.Model
		}
		return "/completion", v
	}
}

// one sends request i and times it.
func one(ctx context.Context, client *http.Client, cfg ServeConfig, i int) (s sample) {
	path, v := body(cfg, i)
	b, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, "POST", cfg.URL+path, bytes.NewReader(b))
	if err != nil {
		s.err = err
		return s
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		s.err = err
		return s
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		s.err = fmt.Errorf("HTTP %d: %s", res.StatusCode, strings.TrimSpace(string(msg)))
		return s
	}
	last := start
	sawEnd := false
	token := func() {
		now := time.Now()
		if !s.firstTokenSet {
			s.ttft, s.firstTokenSet = now.Sub(start), true
		} else {
			s.gaps = append(s.gaps, now.Sub(last))
		}
		last = now
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if cfg.Dialect != "ollama" {
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			if data == "[DONE]" {
				sawEnd = true
				break
			}
			line = data
		}
		var ev event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			s.err = fmt.Errorf("bad event %q: %v", line, err)
			return s
		}
		if ev.Error != nil {
			s.err = fmt.Errorf("error event: %s", ev.Error)
			return s
		}
		if ev.text() != "" {
			token()
		}
		if n, p, end := ev.counts(cfg.Dialect); end {
			s.toks, s.prompt = n, p
			if cfg.Dialect == "ollama" || cfg.Dialect == "llama" {
				sawEnd = true
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		s.err = err
		return s
	}
	if !sawEnd {
		s.err = errors.New("the stream ended without its final event")
		return s
	}
	s.e2e = time.Since(start)
	return s
}

// event is the union of the streaming events of the four dialects.
type event struct {
	Error   json.RawMessage `json:"error"`
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Response        string `json:"response"`
	Content         string `json:"content"`
	Done            bool   `json:"done"`
	EvalCount       int    `json:"eval_count"`
	PromptEvalCount int    `json:"prompt_eval_count"`
	Stop            bool   `json:"stop"`
	TokensPredicted int    `json:"tokens_predicted"`
	TokensEvaluated int    `json:"tokens_evaluated"`
}

func (e *event) text() string {
	if len(e.Choices) > 0 {
		return e.Choices[0].Text + e.Choices[0].Delta.Content
	}
	return e.Response + e.Content
}

// counts returns the server's token counts from a final event.
func (e *event) counts(dialect string) (gen, prompt int, final bool) {
	switch dialect {
	case "ollama":
		return e.EvalCount, e.PromptEvalCount, e.Done
	case "llama":
		return e.TokensPredicted, e.TokensEvaluated, e.Stop
	default:
		if e.Usage != nil {
			return e.Usage.CompletionTokens, e.Usage.PromptTokens, true
		}
	}
	return 0, 0, false
}

// Write prints the report as a table.
func (r *ServeReport) Write(w io.Writer) {
	fmt.Fprintf(w, "dialect %s, %d concurrent clients\n", r.Dialect, r.Concurrency)
	fmt.Fprintf(w, "requests: %d ok, %d failed in %.2fs (%.2f req/s)\n", r.Requests-r.Failed, r.Failed, r.Elapsed.Seconds(), r.RequestsPerSec)
	fmt.Fprintf(w, "tokens:   %d generated (%.1f tok/s overall), %d prompt\n", r.OutputTokens, r.TokensPerSecond, r.PromptTokens)
	fmt.Fprintf(w, "%-6s %10s %10s %10s %10s %8s\n", "", "p50", "p90", "p99", "mean", "n")
	for _, row := range []struct {
		name string
		p    Percentiles
	}{{"TTFT", r.TTFT}, {"ITL", r.ITL}, {"E2E", r.E2E}} {
		fmt.Fprintf(w, "%-6s %10s %10s %10s %10s %8d\n", row.name, ms(row.p.P50), ms(row.p.P90), ms(row.p.P99), ms(row.p.Mean), row.p.N)
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "error (%d×): %s\n", r.Errors[k], k)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1e3) }

// MarshalJSON reports durations in milliseconds.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	f := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	return json.Marshal(map[string]any{"n": p.N, "mean_ms": f(p.Mean), "p50_ms": f(p.P50), "p90_ms": f(p.P90), "p99_ms": f(p.P99)})
}

// firstModel asks an OpenAI-compatible server for its first model.
func firstModel(ctx context.Context, client *http.Client, cfg ServeConfig) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", cfg.URL+"/v1/models", nil)
	if err != nil {
		return "", err
	}
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		return "", err
	}
	if len(list.Data) == 0 {
		return "", errors.New("the server lists no models")
	}
	return list.Data[0].ID, nil
}
