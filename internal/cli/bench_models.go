package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/bench"
	"github.com/slm-dev/slm/kernel"
)

// benchExecutable is the binary that runs one thread count of `slm bench`
// in a process of its own (tests point it elsewhere).
var benchExecutable = os.Executable

// addModelBench makes cmd (`slm bench`) run llama-bench's tests on GGUF
// models; its subcommands (`slm bench serve`) stay as they are.
func addModelBench(cmd *cobra.Command) {
	var (
		models          []string
		threads, pp, tg string
		reps            int
		output          string
		noWarmup, child bool
	)
	cmd.Use = "bench -m FILE [-m FILE…] [-t 1,2] [-p 512] [-n 128] [-r 5] [-o md|json|jsonl]"
	cmd.Short = "Measure prompt processing and generation speed of models, like llama-bench"
	cmd.Long = "bench measures, like llama-bench, prompt processing (ppN: N tokens in one batch from an empty\n" +
		"cache) and text generation (tgN: N tokens one at a time) for every model and thread count,\n" +
		"each repeated -r times after a warm-up, as tokens/s mean ± standard deviation, with the time to\n" +
		"first token and the per-token latency percentiles. JSON rows carry llama-bench's field names.\n" +
		"Each thread count runs in a fresh process (the worker pool is sized when a process starts).\n\n" +
		"`slm bench serve` load-tests a running server instead."
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg := bench.ModelConfig{Models: models, Reps: reps, NoWarmup: noWarmup, Build: Version}
		var err error
		if cfg.Prompt, err = parseIntList("-p", pp, 0); err != nil {
			return err
		}
		if cfg.Gen, err = parseIntList("-n", tg, 0); err != nil {
			return err
		}
		ts, err := parseIntList("-t", threads, 1)
		if err != nil {
			return err
		}
		switch output {
		case "md", "json", "jsonl":
		default:
			return fmt.Errorf("-o %q: want md, json or jsonl", output)
		}
		if err := cfg.Check(); err != nil {
			return err
		}
		for _, m := range models {
			if _, err := os.Stat(m); err != nil {
				return err
			}
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()

		out := cmd.OutOrStdout()
		var rows []bench.Row
		md := bench.NewMarkdown(out)
		emit := func(r bench.Row) error {
			switch output {
			case "md":
				md.Add(r)
			case "jsonl":
				b, err := json.Marshal(r)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s\n", b)
			default:
				rows = append(rows, r)
			}
			return nil
		}
		if child {
			if len(ts) != 1 || !poolHas(ts[0]) {
				return fmt.Errorf("--child needs one thread count equal to the worker pool's size (%d)", kernel.Threads())
			}
			return bench.RunModels(ctx, cfg, ts[0], emit)
		}
		if err := runBench(ctx, cmd.ErrOrStderr(), cfg, ts, emit); err != nil {
			return err
		}
		switch output {
		case "md":
			md.Close()
		case "json":
			if rows == nil {
				rows = []bench.Row{}
			}
			b, err := json.MarshalIndent(rows, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s\n", b)
		}
		return nil
	}
	f := cmd.Flags()
	f.StringArrayVarP(&models, "model", "m", nil, "GGUF model file (repeat for several)")
	f.StringVarP(&threads, "threads", "t", strconv.Itoa(runtime.NumCPU()), "thread counts, comma-separated (ranges like 1-4 too)")
	f.StringVarP(&pp, "n-prompt", "p", "512", "prompt lengths of the pp tests, comma-separated (0: none)")
	f.StringVarP(&tg, "n-gen", "n", "128", "generation lengths of the tg tests, comma-separated (0: none)")
	f.IntVarP(&reps, "repetitions", "r", 5, "repetitions of each test")
	f.StringVarP(&output, "output", "o", "md", "output format: md, json or jsonl")
	f.BoolVar(&noWarmup, "no-warmup", false, "skip the warm-up run of each test")
	f.BoolVar(&child, "child", false, "run in this process (internal: one thread count, the pool's size)")
	f.MarkHidden("child")
}

// poolHas reports whether this process's worker pool has n threads,
// sizing it to n if it does not exist yet: the pool takes its size from
// GOMAXPROCS at its first use. GOMAXPROCS stays n when it does.
func poolHas(n int) bool {
	old := runtime.GOMAXPROCS(n)
	if kernel.Threads() == n {
		return true
	}
	runtime.GOMAXPROCS(old)
	return false
}

// runBench runs every model with every thread count: in this process when
// there is one thread count and the pool can have it, otherwise in one
// child process per model and thread count, started with GOMAXPROCS set
// (llama-bench's order: models, then thread counts, then tests).
func runBench(ctx context.Context, stderr io.Writer, cfg bench.ModelConfig, threads []int, emit func(bench.Row) error) error {
	if len(threads) == 1 {
		old := runtime.GOMAXPROCS(0)
		if poolHas(threads[0]) {
			defer runtime.GOMAXPROCS(old)
			return bench.RunModels(ctx, cfg, threads[0], emit)
		}
	}
	exe, err := benchExecutable()
	if err != nil {
		return fmt.Errorf("cannot start a process per thread count: %w", err)
	}
	for _, m := range cfg.Models {
		for _, t := range threads {
			if err := runChild(ctx, exe, stderr, cfg, m, t, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

func runChild(ctx context.Context, exe string, stderr io.Writer, cfg bench.ModelConfig, path string, threads int, emit func(bench.Row) error) error {
	args := []string{"bench", "--child", "-o", "jsonl", "-m", path, "-t", strconv.Itoa(threads),
		"-p", joinInts(cfg.Prompt), "-n", joinInts(cfg.Gen), "-r", strconv.Itoa(cfg.Reps)}
	if cfg.NoWarmup {
		args = append(args, "--no-warmup")
	}
	c := exec.CommandContext(ctx, exe, args...)
	c.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(threads))
	var errBuf bytes.Buffer
	c.Stderr = &errBuf
	stdout, err := c.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", exe, err)
	}
	readErr := bench.ReadRows(stdout, emit)
	if readErr != nil {
		io.Copy(io.Discard, stdout)
	}
	waitErr := c.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if waitErr != nil {
		msg := strings.TrimSpace(errBuf.String())
		msg = strings.TrimPrefix(msg[strings.LastIndexByte(msg, '\n')+1:], "slm: ")
		if msg == "" {
			msg = waitErr.Error()
		}
		return fmt.Errorf("%s with %d threads: %s", path, threads, msg)
	}
	if errBuf.Len() > 0 {
		stderr.Write(errBuf.Bytes())
	}
	return readErr
}

// parseIntList parses "128", "1,2,4" or "1-4" (and mixes: "1-2,8") into
// numbers of at least lo.
func parseIntList(flag, s string, lo int) ([]int, error) {
	var out []int
	bad := func(why string) error { return fmt.Errorf("%s %q: %s", flag, s, why) }
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, bad("want comma-separated numbers such as 1,2,4")
		}
		a, b, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(a)
		if err != nil {
			return nil, bad(fmt.Sprintf("%q is not a number", a))
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(b); err != nil {
				return nil, bad(fmt.Sprintf("%q is not a number", b))
			}
			if last < first {
				return nil, bad("a range must go upwards")
			}
		}
		if first < lo {
			return nil, bad(fmt.Sprintf("%d is less than %d", first, lo))
		}
		if last-first > 1024 {
			return nil, bad("range too long")
		}
		for n := first; n <= last; n++ {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New(flag + ": no values")
	}
	return out, nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
