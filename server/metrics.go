package server

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/slm-dev/slm/engine"
)

// metrics are the server's counters, exposed at /metrics in the Prometheus
// text exposition format (version 0.0.4).
//
// The format is written by hand rather than with prometheus/client_golang:
// there are a dozen series, all counters and gauges with at most two labels,
// and the text format is a few lines of Printf; the client library would
// add a dozen transitive modules (protobuf among them) to a binary whose
// point is to be small and self-contained.
type metrics struct {
	mu            sync.Mutex
	requests      map[[2]string]uint64 // (route, code) -> count
	promptTokens  uint64
	cachedTokens  uint64
	genTokens     uint64
	promptSeconds float64
	genSeconds    float64
	generations   uint64
	panics        uint64
}

func newMetrics() *metrics {
	return &metrics{requests: map[[2]string]uint64{}}
}

func (m *metrics) request(route string, code int, _ time.Duration) {
	m.mu.Lock()
	m.requests[[2]string{route, strconv.Itoa(code)}]++
	m.mu.Unlock()
}

func (m *metrics) panic() {
	m.mu.Lock()
	m.panics++
	m.mu.Unlock()
}

func (m *metrics) generation(res engine.Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if res.PromptDuration == 0 && len(res.Tokens) == 0 { // failed before evaluating anything
		return
	}
	m.generations++
	m.promptTokens += uint64(res.PromptTokens - res.CachedTokens)
	m.cachedTokens += uint64(res.CachedTokens)
	m.genTokens += uint64(len(res.Tokens))
	m.promptSeconds += res.PromptDuration.Seconds()
	m.genSeconds += res.GenDuration.Seconds()
}

// write renders every series; st is the current load, loaded the number of
// loaded models.
func (m *metrics) write(w io.Writer, st Stats, loaded int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	metric := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	// single writes a series with one unlabelled value.
	single := func(name, typ, help string, v any) {
		metric(name, typ, help)
		fmt.Fprintf(w, "%s %v\n", name, v)
	}
	rate := func(n uint64, s float64) float64 {
		if s <= 0 {
			return 0
		}
		return float64(n) / s
	}

	metric("slm_requests_total", "counter", "HTTP requests by route and status code.")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "slm_requests_total{route=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	single("slm_generations_total", "counter", "Generations run (a request with n>1 would count n).", m.generations)
	single("slm_prompt_tokens_total", "counter", "Prompt tokens evaluated (cached prefix tokens excluded).", m.promptTokens)
	single("slm_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache.", m.cachedTokens)
	single("slm_generated_tokens_total", "counter", "Tokens generated.", m.genTokens)
	single("slm_prompt_seconds_total", "counter", "Time spent evaluating prompts.", m.promptSeconds)
	single("slm_generation_seconds_total", "counter", "Time spent generating tokens.", m.genSeconds)
	single("slm_prompt_tokens_per_second", "gauge", "Average prompt throughput per sequence.", rate(m.promptTokens, m.promptSeconds))
	single("slm_generated_tokens_per_second", "gauge", "Average generation throughput per sequence.", rate(m.genTokens, m.genSeconds))
	single("slm_queue_depth", "gauge", "Requests waiting for a free slot.", st.Queued)
	single("slm_busy_sequences", "gauge", "Sequences generating now.", st.Busy)
	single("slm_slots", "gauge", "Sequence slots of the loaded models.", st.Slots)
	single("slm_models_loaded", "gauge", "Models in memory.", loaded)
	single("slm_panics_total", "counter", "Handler panics recovered into a 500.", m.panics)

	// The names llama-server uses, so that its dashboards work unchanged.
	single("llamacpp:prompt_tokens_total", "counter", "Number of prompt tokens processed.", m.promptTokens)
	single("llamacpp:prompt_seconds_total", "counter", "Prompt process time.", m.promptSeconds)
	single("llamacpp:tokens_predicted_total", "counter", "Number of generation tokens processed.", m.genTokens)
	single("llamacpp:tokens_predicted_seconds_total", "counter", "Predict process time.", m.genSeconds)
	single("llamacpp:prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", rate(m.promptTokens, m.promptSeconds))
	single("llamacpp:predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.", rate(m.genTokens, m.genSeconds))
	single("llamacpp:requests_processing", "gauge", "Number of requests processing.", st.Busy)
	single("llamacpp:requests_deferred", "gauge", "Number of requests deferred.", st.Queued)
}
