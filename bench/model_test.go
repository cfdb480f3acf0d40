package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/synth"
)

// tinyModel writes a small random model of the given family and type.
func tinyModel(t *testing.T, like, typ string) string {
	t.Helper()
	s, err := synth.Lookup(like)
	if err != nil {
		t.Fatal(err)
	}
	s.NEmbd, s.NFF, s.NLayer, s.NHead, s.NCtx = 64, 128, 2, 2, 128
	s.NHeadKV = min(s.NHeadKV, 2)
	path := filepath.Join(t.TempDir(), like+"-"+typ+".gguf")
	if _, err := synth.WriteFile(path, synth.Options{Shape: s, Type: typ, Vocab: 300}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunModels(t *testing.T) {
	a, b := tinyModel(t, "smollm2-135m", "q8_0"), tinyModel(t, "gpt2", "f16")
	cfg := ModelConfig{Models: []string{a, b}, Prompt: []int{8, 0}, Gen: []int{4, 2}, Reps: 3, Build: "test"}
	var rows []Row
	err := RunModels(context.Background(), cfg, kernel.Threads(), func(r Row) error { rows = append(rows, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	wantTests := []string{"pp8", "tg4", "tg2", "pp8", "tg4", "tg2"}
	if len(rows) != len(wantTests) {
		t.Fatalf("%d rows, want %d", len(rows), len(wantTests))
	}
	for i, r := range rows {
		if r.Test() != wantTests[i] {
			t.Errorf("row %d is %s, want %s", i, r.Test(), wantTests[i])
		}
		file := a
		if i >= 3 {
			file = b
		}
		f, err := gguf.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		var size, params uint64
		for _, ti := range f.Tensors {
			size += ti.Size
			params += ti.Elems()
		}
		f.Close()
		if r.ModelFile != file || r.ModelSize != size || r.ModelNParams != params || r.NThreads != kernel.Threads() || r.BuildCommit != "test" {
			t.Errorf("row %d: file %s size %d params %d threads %d build %q", i, r.ModelFile, r.ModelSize, r.ModelNParams, r.NThreads, r.BuildCommit)
		}
		if len(r.SamplesNs) != 3 || len(r.SamplesTs) != 3 {
			t.Errorf("row %d: %d/%d samples, want 3", i, len(r.SamplesNs), len(r.SamplesTs))
		}
		tokens := float64(r.NPrompt + r.NGen)
		for j, ns := range r.SamplesNs {
			if ns == 0 || math.Abs(r.SamplesTs[j]-tokens/(float64(ns)/1e9)) > 1e-9*r.SamplesTs[j] {
				t.Errorf("row %d: sample %d: %d ns, %g t/s", i, j, ns, r.SamplesTs[j])
			}
		}
		if r.AvgTs <= 0 || r.StddevTs < 0 || r.AvgNs == 0 {
			t.Errorf("row %d: avg %g ± %g t/s, %d ns", i, r.AvgTs, r.StddevTs, r.AvgNs)
		}
		if !(r.TTFTMs > 0 && r.P50Ms > 0 && r.P50Ms <= r.P90Ms && r.P90Ms <= r.P99Ms) {
			t.Errorf("row %d: ttft %g, p50 %g, p90 %g, p99 %g", i, r.TTFTMs, r.P50Ms, r.P90Ms, r.P99Ms)
		}
		if r.KernelTier == "" || len(r.KernelTiers) == 0 || r.Backends != "CPU" {
			t.Errorf("row %d: kernel tier %q %v, backends %q", i, r.KernelTier, r.KernelTiers, r.Backends)
		}
	}
	if !strings.HasPrefix(rows[0].ModelType, "llama ") || !strings.HasSuffix(rows[0].ModelType, " Q8_0") {
		t.Errorf("model type %q", rows[0].ModelType)
	}
	if !strings.HasPrefix(rows[3].ModelType, "gpt2 ") || !strings.HasSuffix(rows[3].ModelType, " F16") {
		t.Errorf("model type %q", rows[3].ModelType)
	}

	// The JSON rows carry llama-bench's names.
	b2, err := json.Marshal(rows[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b2, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"model_filename", "model_type", "model_size", "model_n_params", "n_threads", "n_prompt", "n_gen",
		"avg_ts", "stddev_ts", "avg_ns", "stddev_ns", "samples_ts", "samples_ns", "test_time", "backends",
		"ttft_ms", "p50_ms", "p90_ms", "p99_ms", "kernel_tier"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON row has no %q", k)
		}
	}

	// ReadRows reads what -o jsonl writes.
	var buf bytes.Buffer
	for _, r := range rows {
		json.NewEncoder(&buf).Encode(r)
	}
	var back []Row
	if err := ReadRows(&buf, func(r Row) error { back = append(back, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(back) != len(rows) || back[4].AvgTs != rows[4].AvgTs || back[4].Test() != rows[4].Test() {
		t.Errorf("ReadRows gave %d rows", len(back))
	}

	// The markdown table: a header, a rule, one line per row, the footer.
	var md bytes.Buffer
	tab := NewMarkdown(&md)
	for _, r := range rows {
		tab.Add(r)
	}
	tab.Close()
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) < 2+len(rows)+3 {
		t.Fatalf("markdown:\n%s", md.String())
	}
	for _, col := range []string{"model", "size", "params", "backend", "threads", "test", "t/s", "ttft ms", "p99 ms"} {
		if !strings.Contains(lines[0], " "+col+" ") {
			t.Errorf("header %q lacks %q", lines[0], col)
		}
	}
	if !strings.HasPrefix(lines[1], "| ---") || !strings.Contains(lines[1], ": |") {
		t.Errorf("rule %q", lines[1])
	}
	for i, r := range rows {
		l := lines[2+i]
		if strings.Count(l, "|") != strings.Count(lines[0], "|") || !strings.Contains(l, " "+r.Test()+" |") || !strings.Contains(l, " CPU ") || !strings.Contains(l, " ± ") {
			t.Errorf("row line %q", l)
		}
	}
	if !strings.Contains(md.String(), "kernel tier: ") || !strings.Contains(md.String(), "build: slm test") {
		t.Errorf("footer missing:\n%s", md.String())
	}
}

func TestRunModelsErrors(t *testing.T) {
	path := tinyModel(t, "qwen2.5-0.5b", "q4_0")
	emit := func(Row) error { return nil }
	cases := []struct {
		cfg     ModelConfig
		threads int
		want    string
	}{
		{ModelConfig{Models: []string{path}, Prompt: []int{8}, Reps: 1}, kernel.Threads() + 1, "GOMAXPROCS"},
		{ModelConfig{Prompt: []int{8}, Reps: 1}, kernel.Threads(), "no model"},
		{ModelConfig{Models: []string{path}, Prompt: []int{8}, Reps: 0}, kernel.Threads(), "repetitions"},
		{ModelConfig{Models: []string{path}, Prompt: []int{0}, Gen: []int{0}, Reps: 1}, kernel.Threads(), "nothing to measure"},
		{ModelConfig{Models: []string{path}, Prompt: []int{-1}, Reps: 1}, kernel.Threads(), "negative"},
		{ModelConfig{Models: []string{filepath.Join(t.TempDir(), "none.gguf")}, Prompt: []int{8}, Reps: 1}, kernel.Threads(), "none.gguf"},
	}
	for _, c := range cases {
		err := RunModels(context.Background(), c.cfg, c.threads, emit)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.cfg, err, c.want)
		}
	}
	// gpt2 has learned positions: a prompt longer than them is an error.
	g := tinyModel(t, "gpt2", "q8_0")
	err := RunModels(context.Background(), ModelConfig{Models: []string{g}, Prompt: []int{200}, Reps: 1}, kernel.Threads(), emit)
	if err == nil || !strings.Contains(err.Error(), "128") {
		t.Errorf("200 tokens on a 128-position gpt2: %v", err)
	}
}

func TestStatistics(t *testing.T) {
	m, sd := meanStddev([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || math.Abs(sd-2.138089935) > 1e-6 {
		t.Errorf("mean %g sd %g", m, sd)
	}
	if m, sd := meanStddev([]float64{3}); m != 3 || sd != 0 {
		t.Errorf("one sample: %g ± %g", m, sd)
	}
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ q, want float64 }{{0.5, 5.5}, {0.9, 9.1}, {0.99, 9.91}, {0, 1}, {1, 10}} {
		if got := quantile(x, c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("quantile %g = %g, want %g", c.q, got, c.want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing")
	}
	if got := sizeLabel(1_235_814_400); got != "1.2B" {
		t.Errorf("sizeLabel = %q", got)
	}
	if got := sizeLabel(135_151_488); got != "135M" {
		t.Errorf("sizeLabel = %q", got)
	}
	if got := fileTypeName(15); got != "Q4_K - Medium" {
		t.Errorf("fileTypeName(15) = %q", got)
	}
}
