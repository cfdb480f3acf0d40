package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slm-dev/slm/server"
)

func TestRunServeEveryDialect(t *testing.T) {
	m, err := server.NewManager(server.ManagerConfig{
		Sources:  []server.ModelSource{{Name: "llama", Path: "../testdata/models/llama-vocab-spm-f16.gguf"}},
		Parallel: 2, Queue: 16, KeepAlive: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ts := httptest.NewServer(server.New(server.Config{APIKey: "k"}, m).Handler())
	defer ts.Close()

	for _, d := range Dialects {
		rep, err := RunServe(context.Background(), ServeConfig{URL: ts.URL, APIKey: "k", Dialect: d,
			Concurrency: 3, Requests: 6, PromptTokens: 16, MaxTokens: 5, IgnoreEOS: true})
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if rep.Failed != 0 || rep.Requests != 6 {
			t.Fatalf("%s: %d of %d failed: %v", d, rep.Failed, rep.Requests, rep.Errors)
		}
		if d != "ollama" && rep.OutputTokens != 30 { // ollama has no ignore_eos
			t.Errorf("%s: %d output tokens, want 30", d, rep.OutputTokens)
		}
		if rep.TTFT.N != 6 || rep.E2E.N != 6 || rep.ITL.N == 0 || rep.E2E.P99 < rep.E2E.P50 || rep.TTFT.P50 <= 0 {
			t.Errorf("%s: %+v", d, rep)
		}
		var buf bytes.Buffer
		rep.Write(&buf)
		if !strings.Contains(buf.String(), "TTFT") {
			t.Errorf("report: %s", buf.String())
		}
		if _, err := json.Marshal(rep); err != nil {
			t.Error(err)
		}
	}

	// A wrong key: every request fails, and the report says why.
	rep, err := RunServe(context.Background(), ServeConfig{URL: ts.URL, APIKey: "bad", Dialect: "llama", Requests: 2, MaxTokens: 2, PromptTokens: 4})
	if err != nil || rep.Failed != 2 {
		t.Fatalf("%v %+v", err, rep)
	}
	for msg := range rep.Errors {
		if !strings.Contains(msg, "401") {
			t.Errorf("error %q", msg)
		}
	}

	// Duration mode stops on time.
	start := time.Now()
	rep, err = RunServe(context.Background(), ServeConfig{URL: ts.URL, APIKey: "k", Dialect: "openai", Concurrency: 2, Duration: 300 * time.Millisecond, PromptTokens: 8, MaxTokens: 4})
	if err != nil || rep.Requests == 0 || rep.Failed != 0 || time.Since(start) > 3*time.Second {
		t.Fatalf("duration run: %v %+v", err, rep)
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(d)
	if p.P50 != 50*time.Millisecond || p.P90 != 90*time.Millisecond || p.P99 != 99*time.Millisecond || p.N != 100 {
		t.Errorf("%+v", p)
	}
}

// BenchmarkServe measures the whole HTTP path (OpenAI streaming, 4 clients,
// 4 slots) on the tiny test model: it tracks the server's overhead, not a
// real model's speed.
func BenchmarkServe(b *testing.B) {
	m, err := server.NewManager(server.ManagerConfig{
		Sources:  []server.ModelSource{{Name: "llama", Path: "../testdata/models/llama-vocab-spm-f16.gguf"}},
		Parallel: 4, Queue: 16, KeepAlive: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ts := httptest.NewServer(server.New(server.Config{}, m).Handler())
	defer ts.Close()
	var last *ServeReport
	for b.Loop() {
		rep, err := RunServe(context.Background(), ServeConfig{URL: ts.URL, Dialect: "openai", Model: "llama",
			Concurrency: 4, Requests: 8, PromptTokens: 32, MaxTokens: 16, IgnoreEOS: true})
		if err != nil || rep.Failed > 0 {
			b.Fatalf("%v %v", err, rep.Errors)
		}
		last = rep
	}
	b.ReportMetric(last.TokensPerSecond, "tok/s")
	b.ReportMetric(float64(last.TTFT.P50.Microseconds())/1e3, "ttft-p50-ms")
	b.ReportMetric(float64(last.ITL.P50.Microseconds())/1e3, "itl-p50-ms")
}
