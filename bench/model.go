package bench

// This file is `slm bench` proper: llama-bench's prompt-processing (pp) and
// text-generation (tg) tests on GGUF models, with llama-bench's JSON field
// names so that the two tools' results line up.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
	_ "github.com/slm-dev/slm/model/all" // every architecture
	"github.com/slm-dev/slm/quant"
)

// ModelConfig is a benchmark of models on this process's worker pool.
type ModelConfig struct {
	Models   []string // GGUF files
	Prompt   []int    // prompt lengths: one pp test each (0 skips)
	Gen      []int    // generation lengths: one tg test each (0 skips)
	Reps     int      // repetitions of each test (after one warm-up run)
	NoWarmup bool     // skip the warm-up run
	Build    string   // build_commit in the rows
}

// Row is one test's result. The JSON names before TTFTMs are llama-bench's
// (llama-bench -o json); the rest are slm's.
//
// For a pp row the samples time evaluating NPrompt tokens in one batch from
// an empty cache, up to the logits of the last one; for a tg row, NGen
// single-token evaluations, one after another, from an empty cache, each
// fed a random token (as llama-bench does; no sampling).
type Row struct {
	BuildCommit  string    `json:"build_commit"`
	CPUInfo      string    `json:"cpu_info"`
	GPUInfo      string    `json:"gpu_info"`
	Backends     string    `json:"backends"`
	ModelFile    string    `json:"model_filename"`
	ModelType    string    `json:"model_type"` // "<arch> <size> <file type>", like llama_model_desc
	ModelSize    uint64    `json:"model_size"` // bytes of tensor data
	ModelNParams uint64    `json:"model_n_params"`
	NBatch       int       `json:"n_batch"`
	NUBatch      int       `json:"n_ubatch"`
	NThreads     int       `json:"n_threads"`
	TypeK        string    `json:"type_k"`
	TypeV        string    `json:"type_v"`
	NGPULayers   int       `json:"n_gpu_layers"`
	UseMmap      bool      `json:"use_mmap"`
	NPrompt      int       `json:"n_prompt"`
	NGen         int       `json:"n_gen"`
	NDepth       int       `json:"n_depth"`
	TestTime     string    `json:"test_time"`
	AvgNs        uint64    `json:"avg_ns"`
	StddevNs     uint64    `json:"stddev_ns"`
	AvgTs        float64   `json:"avg_ts"`
	StddevTs     float64   `json:"stddev_ts"`
	SamplesNs    []uint64  `json:"samples_ns"`
	SamplesTs    []float64 `json:"samples_ts"`

	// TTFTMs is the mean time to the first token's logits: for pp the
	// whole prompt's evaluation, for tg the first single-token step.
	TTFTMs float64 `json:"ttft_ms"`
	// P50Ms, P90Ms, P99Ms are percentiles of the per-token latency: for tg
	// every decode step of every repetition; for pp the prompt's time to
	// first token in each repetition.
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	// KernelTier is the instruction-set tier of the dot product of the
	// model's main weight type (the type holding most bytes);
	// KernelTiers gives it for every matrix type of the model.
	KernelTier  string            `json:"kernel_tier"`
	KernelTiers map[string]string `json:"kernel_tiers"`
}

// Test is the row's llama-bench test name: "pp512", "tg128" or
// "pp512+tg128".
func (r *Row) Test() string {
	switch {
	case r.NGen == 0:
		return fmt.Sprintf("pp%d", r.NPrompt)
	case r.NPrompt == 0:
		return fmt.Sprintf("tg%d", r.NGen)
	}
	return fmt.Sprintf("pp%d+tg%d", r.NPrompt, r.NGen)
}

// Check validates the configuration.
func (c *ModelConfig) Check() error {
	switch {
	case len(c.Models) == 0:
		return errors.New("no model: give at least one -m FILE")
	case c.Reps < 1:
		return fmt.Errorf("repetitions must be at least 1, not %d", c.Reps)
	}
	some := false
	for _, list := range [][]int{c.Prompt, c.Gen} {
		for _, n := range list {
			if n < 0 {
				return fmt.Errorf("token counts must not be negative (%d)", n)
			}
			if n > model.MaxContext {
				return fmt.Errorf("%d tokens is more than the largest context, %d", n, model.MaxContext)
			}
			some = some || n > 0
		}
	}
	if !some {
		return errors.New("nothing to measure: every -p and -n is 0")
	}
	return nil
}

// RunModels runs every test of every model of c on this process's worker
// pool, which must have threads goroutines (kernel.Threads()), and passes
// each row to emit as soon as it is measured. Run one process per thread
// count: the pool's size is fixed at its first use (GOMAXPROCS then).
func RunModels(ctx context.Context, c ModelConfig, threads int, emit func(Row) error) error {
	if err := c.Check(); err != nil {
		return err
	}
	if n := kernel.Threads(); n != threads {
		return fmt.Errorf("the worker pool has %d threads, not %d: the thread count is fixed when the process starts (run with GOMAXPROCS=%d)", n, threads, threads)
	}
	for _, path := range c.Models {
		if err := benchModel(ctx, c, path, threads, emit); err != nil {
			return err
		}
	}
	return nil
}

func benchModel(ctx context.Context, c ModelConfig, path string, threads int, emit func(Row) error) error {
	f, err := gguf.OpenResident(path) // as engine.Open: what slm run and serve measure
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := model.Load(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	cfg := m.Config()
	nCtx := max(slices.Max(append([]int{1}, c.Prompt...)), slices.Max(append([]int{1}, c.Gen...)))
	st, err := m.NewState(nCtx)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	base := describe(f, cfg)
	base.ModelFile = path
	base.BuildCommit = c.Build
	base.NThreads = threads
	base.NBatch, base.NUBatch = model.MaxBatch, model.MaxBatch

	logits := make([]float32, cfg.NVocab)
	rng := rand.New(rand.NewPCG(uint64(cfg.NVocab), 42))
	randomTokens := func(n int) []int32 {
		t := make([]int32, n)
		for i := range t {
			t[i] = int32(rng.IntN(cfg.NVocab))
		}
		return t
	}
	type test struct{ p, n int }
	var tests []test
	for _, p := range c.Prompt {
		if p > 0 {
			tests = append(tests, test{p: p})
		}
	}
	for _, n := range c.Gen {
		if n > 0 {
			tests = append(tests, test{n: n})
		}
	}
	for _, t := range tests {
		row := base
		row.NPrompt, row.NGen = t.p, t.n
		row.TestTime = time.Now().UTC().Format(time.RFC3339)
		var lat []time.Duration // per-token latencies (tg) or times to first token (pp)
		var first []time.Duration
		run := func(record bool) error {
			st.Truncate(0)
			if t.p > 0 {
				toks := randomTokens(t.p)
				start := time.Now()
				if err := m.Eval(st, toks, logits, false); err != nil {
					return err
				}
				d := time.Since(start)
				if record {
					row.SamplesNs = append(row.SamplesNs, uint64(d.Nanoseconds()))
					lat = append(lat, d)
					first = append(first, d)
				}
				return nil
			}
			n := t.n
			if !record {
				n = 1 // llama-bench warms tg up with a single token
			}
			toks := randomTokens(n)
			var total time.Duration
			for i := range n {
				if err := ctx.Err(); err != nil {
					return err
				}
				start := time.Now()
				if err := m.Eval(st, toks[i:i+1], logits, false); err != nil {
					return err
				}
				d := time.Since(start)
				total += d
				if record {
					lat = append(lat, d)
					if i == 0 {
						first = append(first, d)
					}
				}
			}
			if record {
				row.SamplesNs = append(row.SamplesNs, uint64(total.Nanoseconds()))
			}
			return nil
		}
		if !c.NoWarmup {
			if err := run(false); err != nil {
				return fmt.Errorf("%s: %s: %w", path, row.Test(), err)
			}
		}
		for range c.Reps {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := run(true); err != nil {
				return fmt.Errorf("%s: %s: %w", path, row.Test(), err)
			}
		}
		row.summarize(first, lat)
		if err := emit(row); err != nil {
			return err
		}
	}
	return nil
}

// summarize fills the statistics from the samples.
func (r *Row) summarize(first, lat []time.Duration) {
	tokens := float64(r.NPrompt + r.NGen)
	ns := make([]float64, len(r.SamplesNs))
	r.SamplesTs = make([]float64, len(r.SamplesNs))
	for i, s := range r.SamplesNs {
		ns[i] = float64(s)
		r.SamplesTs[i] = tokens / (float64(s) / 1e9)
	}
	avg, sd := meanStddev(ns)
	r.AvgNs, r.StddevNs = uint64(avg), uint64(sd)
	r.AvgTs, r.StddevTs = meanStddev(r.SamplesTs)
	toMs := func(d []time.Duration) []float64 {
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x.Nanoseconds()) / 1e6
		}
		return out
	}
	r.TTFTMs, _ = meanStddev(toMs(first))
	l := toMs(lat)
	slices.Sort(l)
	r.P50Ms, r.P90Ms, r.P99Ms = quantile(l, 0.50), quantile(l, 0.90), quantile(l, 0.99)
}

// meanStddev is the mean and the sample standard deviation (n-1), as
// llama-bench computes them.
func meanStddev(x []float64) (mean, sd float64) {
	if len(x) == 0 {
		return 0, 0
	}
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(len(x)-1))
}

// quantile interpolates linearly between the order statistics of sorted.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// describe fills the model columns of a row.
func describe(f *gguf.File, cfg model.Config) Row {
	r := Row{
		CPUInfo:     cpuInfo(),
		Backends:    "CPU",
		TypeK:       "f32", // slm's KV cache holds float32
		TypeV:       "f32",
		UseMmap:     true,
		KernelTiers: map[string]string{},
	}
	bytesOf := map[quant.Type]uint64{}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		r.ModelSize += t.Size
		r.ModelNParams += t.Elems()
		if len(t.Dims) >= 2 && t.Rows() > 1 {
			bytesOf[t.Type] += t.Size
		}
	}
	var main quant.Type
	for t, n := range bytesOf {
		r.KernelTiers[t.String()] = tierOf(t)
		if n > bytesOf[main] || n == bytesOf[main] && t < main {
			main = t
		}
	}
	r.KernelTier = tierOf(main)
	ft := "unknown type"
	if id, ok := f.Uint("general.file_type"); ok {
		ft = fileTypeName(id)
	}
	r.ModelType = fmt.Sprintf("%s %s %s", cfg.Arch, sizeLabel(r.ModelNParams), ft)
	return r
}

// tierOf names the kernel tier that computes dot products with weights of
// type t.
func tierOf(t quant.Type) string {
	if _, _, tier, ok := kernel.DotFor(t); ok {
		return tier.String()
	}
	return kernel.TierGeneric.String()
}

// fileTypeName is llama_model_ftype_name.
func fileTypeName(id uint64) string {
	names := map[uint64]string{
		0: "all F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
		10: "Q2_K - Medium", 11: "Q3_K - Small", 12: "Q3_K - Medium", 13: "Q3_K - Large",
		14: "Q4_K - Small", 15: "Q4_K - Medium", 16: "Q5_K - Small", 17: "Q5_K - Medium",
		18: "Q6_K", 21: "Q2_K - Small", 25: "IQ4_NL - 4.5 bpw", 30: "IQ4_XS - 4.25 bpw", 32: "BF16",
	}
	if s, ok := names[id]; ok {
		return s
	}
	return fmt.Sprintf("file type %d", id)
}

// sizeLabel is a model size like "135M" or "1.2B".
func sizeLabel(params uint64) string {
	switch p := float64(params); {
	case p >= 1e9:
		return fmt.Sprintf("%.1fB", p/1e9)
	case p >= 1e6:
		return fmt.Sprintf("%.0fM", p/1e6)
	}
	return fmt.Sprintf("%.0fK", float64(params)/1e3)
}

// cpuInfo is the CPU's model name, as llama-bench's cpu_info.
func cpuInfo() string {
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if ok && (strings.TrimSpace(k) == "model name" || strings.TrimSpace(k) == "Model") {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// Markdown renders rows as llama-bench's markdown table, with slm's latency
// columns added, row by row.
type Markdown struct {
	w      io.Writer
	header bool
	tiers  []string // "file: type tier, ..." lines for the footer
	build  string
}

// NewMarkdown writes a table to w.
func NewMarkdown(w io.Writer) *Markdown { return &Markdown{w: w} }

var mdColumns = []struct {
	name  string
	width int
	right bool
}{
	{"model", 30, false}, {"size", 10, true}, {"params", 10, true}, {"backend", 10, false},
	{"threads", 7, true}, {"test", 15, true}, {"t/s", 20, true},
	{"ttft ms", 9, true}, {"p50 ms", 8, true}, {"p90 ms", 8, true}, {"p99 ms", 8, true},
}

func (md *Markdown) line(cells []string) {
	var b strings.Builder
	b.WriteString("|")
	for i, c := range cells {
		col := mdColumns[i]
		if col.right {
			fmt.Fprintf(&b, " %*s |", col.width, c)
		} else {
			fmt.Fprintf(&b, " %-*s |", col.width, c)
		}
	}
	fmt.Fprintln(md.w, b.String())
}

// Add writes one row (and the header before the first).
func (md *Markdown) Add(r Row) {
	if !md.header {
		md.header = true
		var names []string
		rules := "|"
		for _, c := range mdColumns {
			names = append(names, c.name)
			rule := strings.Repeat("-", c.width)
			if c.right {
				rule = rule[:c.width-1] + ":"
			}
			rules += " " + rule + " |"
		}
		md.line(names)
		fmt.Fprintln(md.w, rules)
	}
	params := fmt.Sprintf("%.2f M", float64(r.ModelNParams)/1e6)
	if r.ModelNParams >= 1e9 {
		params = fmt.Sprintf("%.2f B", float64(r.ModelNParams)/1e9)
	}
	md.line([]string{
		r.ModelType,
		fmt.Sprintf("%.2f MiB", float64(r.ModelSize)/(1<<20)),
		params,
		r.Backends,
		fmt.Sprint(r.NThreads),
		r.Test(),
		fmt.Sprintf("%.2f ± %.2f", r.AvgTs, r.StddevTs),
		fmt.Sprintf("%.2f", r.TTFTMs),
		fmt.Sprintf("%.2f", r.P50Ms),
		fmt.Sprintf("%.2f", r.P90Ms),
		fmt.Sprintf("%.2f", r.P99Ms),
	})
	var ts []string
	for t, tier := range r.KernelTiers {
		ts = append(ts, t+" "+tier)
	}
	slices.Sort(ts)
	tl := fmt.Sprintf("%s: %s (%s)", filepath.Base(r.ModelFile), r.KernelTier, strings.Join(ts, ", "))
	if !slices.Contains(md.tiers, tl) {
		md.tiers = append(md.tiers, tl)
	}
	md.build = r.BuildCommit
}

// Close writes the footer: the kernel tiers in use and the build.
func (md *Markdown) Close() {
	if !md.header {
		return
	}
	fmt.Fprintln(md.w)
	for _, t := range md.tiers {
		fmt.Fprintf(md.w, "kernel tier: %s\n", t)
	}
	fmt.Fprintf(md.w, "build: slm %s (%s/%s, %s)\n", cmp.Or(md.build, "dev"), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			fmt.Fprintf(md.w, "load average: %s %s %s (other work on the machine skews the numbers)\n", f[0], f[1], f[2])
		}
	}
}

// ReadRows decodes rows written one JSON object per line (-o jsonl), as a
// child process reports them, calling emit for each.
func ReadRows(r io.Reader, emit func(Row) error) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var row Row
		if err := dec.Decode(&row); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading benchmark rows: %w", err)
		}
		if err := emit(row); err != nil {
			return err
		}
	}
}
