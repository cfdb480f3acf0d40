package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/slm-dev/slm/bench"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
)

// The test binary stands in for slm when bench starts a process per thread
// count: with this variable set it runs the CLI instead of the tests.
func init() {
	if os.Getenv("SLM_CLI_TEST_AS_SLM") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
}

// synthTiny writes a small random model with `slm synth`.
func synthTiny(t *testing.T, like, typ string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), like+"-"+typ+".gguf")
	code, stdout, stderr := slm(t, "", "synth", "--like", like, "--type", typ, "--vocab", "300", "--n-layer", "1",
		"--n-embd", "64", "--n-ff", "128", "--n-head", "2", "--n-head-kv", "2", "--n-ctx", "128", "-o", out)
	if code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, out) || !strings.Contains(stdout, "tensor types:") {
		t.Errorf("synth printed %q", stdout)
	}
	return out
}

func TestSynthCommand(t *testing.T) {
	path := synthTiny(t, "qwen2.5-0.5b", "q8_0")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Arch() != "qwen2" || len(f.Tensors) != 1+1+12 {
		t.Errorf("arch %q, %d tensors", f.Arch(), len(f.Tensors))
	}
	if n, _ := f.Uint("qwen2.embedding_length"); n != 64 {
		t.Errorf("embedding_length %d", n)
	}
	code, out, errs := slm(t, "", "run", "-m", path, "-p", "hello", "-n", "3", "--temp", "0")
	if code != 0 || out == "" {
		t.Errorf("run on the synthetic model: exit %d, %q, %s", code, out, errs)
	}
}

func TestSynthBadFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.gguf")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--type", "q8_0", "-o", out}, "--like is required"},
		{[]string{"--like", "gpt5", "-o", out}, "unknown model shape \"gpt5\""},
		{[]string{"--like", "gpt2", "--type", "q9_k", "-o", out}, "unknown quantization type"},
		{[]string{"--like", "gpt2"}, "-o OUT.gguf is required"},
		{[]string{"--like", "gpt2", "--vocab", "0", "-o", out}, "--vocab must be positive"},
		{[]string{"--like", "gpt2", "--vocab", "100", "-o", out}, "vocabulary size 100"},
		{[]string{"--like", "gpt2", "--n-layer", "-1", "-o", out}, "--n-layer must be positive"},
		{[]string{"--like", "gpt2", "--n-head", "5", "-o", out}, "not a multiple of n_head"},
		{[]string{"--like", "gpt2", "-o", filepath.Join(out, "no", "dir.gguf")}, "no such file"},
		{[]string{"--like", "gpt2", "-o", out, "extra"}, "unknown command"},
	}
	for _, c := range cases {
		code, _, errs := slm(t, "", append([]string{"synth"}, c.args...)...)
		if code == 0 || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("synth %v: exit %d, stderr %q; want an error line with %q", c.args, code, errs, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed synth left a file")
	}
}

func TestBenchCommand(t *testing.T) {
	a := synthTiny(t, "smollm2-135m", "q4_0")
	threads := strconv.Itoa(kernel.Threads())

	code, out, errs := slm(t, "", "bench", "-m", a, "-t", threads, "-p", "8", "-n", "4", "-r", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "| model ") || !strings.Contains(lines[2], " pp8 |") || !strings.Contains(lines[3], " tg4 |") {
		t.Fatalf("markdown:\n%s", out)
	}
	if !strings.Contains(out, "kernel tier: ") {
		t.Errorf("no kernel tier in:\n%s", out)
	}

	code, out, errs = slm(t, "", "bench", "-m", a, "-t", threads, "-p", "8,16", "-n", "0", "-r", "1", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(rows) != 2 || rows[0]["n_prompt"] != 8.0 || rows[1]["n_prompt"] != 16.0 || rows[1]["n_gen"] != 0.0 || rows[0]["model_filename"] != a {
		t.Errorf("rows %v", rows)
	}

	code, out, errs = slm(t, "", "bench", "-m", a, "-t", threads, "-p", "0", "-n", "3", "-r", "1", "-o", "jsonl", "--no-warmup")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"n_gen":3`) {
		t.Errorf("jsonl: exit %d, %q, %s", code, out, errs)
	}
}

// TestBenchThreadCounts runs two thread counts, each in a process of its
// own (this test binary acting as slm).
func TestBenchThreadCounts(t *testing.T) {
	a, b := synthTiny(t, "gpt2", "q8_0"), synthTiny(t, "llama-3.2-1b", "q4_k_m")
	t.Setenv("SLM_CLI_TEST_AS_SLM", "1")
	code, out, errs := slm(t, "", "bench", "-m", a, "-m", b, "-t", "1,2", "-p", "8", "-n", "4", "-r", "1", "-o", "jsonl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got []string
	if err := bench.ReadRows(strings.NewReader(out), func(r bench.Row) error {
		got = append(got, filepath.Base(r.ModelFile)+" t"+strconv.Itoa(r.NThreads)+" "+r.Test())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"gpt2-q8_0.gguf t1 pp8", "gpt2-q8_0.gguf t1 tg4", "gpt2-q8_0.gguf t2 pp8", "gpt2-q8_0.gguf t2 tg4",
		"llama-3.2-1b-q4_k_m.gguf t1 pp8", "llama-3.2-1b-q4_k_m.gguf t1 tg4", "llama-3.2-1b-q4_k_m.gguf t2 pp8", "llama-3.2-1b-q4_k_m.gguf t2 tg4",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A child's failure comes back as one line naming the model and the
	// thread count.
	code, _, errs = slm(t, "", "bench", "-m", a, "-t", "1,2", "-p", "500", "-n", "0", "-r", "1")
	if code == 0 || !strings.Contains(errs, "with 1 threads") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestBenchBadFlags(t *testing.T) {
	a := synthTiny(t, "distilgpt2", "q8_0")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-p", "8"}, "no model"},
		{[]string{"-m", a, "-o", "xml"}, `-o "xml": want md, json or jsonl`},
		{[]string{"-m", a, "-t", "0"}, `-t "0": 0 is less than 1`},
		{[]string{"-m", a, "-t", "two"}, `-t "two"`},
		{[]string{"-m", a, "-t", "4-2"}, "a range must go upwards"},
		{[]string{"-m", a, "-p", "-3"}, `-p "-3"`},
		{[]string{"-m", a, "-p", "8,,16"}, "comma-separated"},
		{[]string{"-m", a, "-r", "0"}, "repetitions must be at least 1"},
		{[]string{"-m", a, "-p", "0", "-n", "0"}, "nothing to measure"},
		{[]string{"-m", filepath.Join(t.TempDir(), "missing.gguf")}, "missing.gguf"},
		{[]string{"-m", a, "stray"}, "unknown command"},
	}
	for _, c := range cases {
		code, _, errs := slm(t, "", append([]string{"bench"}, c.args...)...)
		if code == 0 || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("bench %v: exit %d, stderr %q; want an error line with %q", c.args, code, errs, c.want)
		}
	}
	if got, err := parseIntList("-t", "1-3,2,8", 1); err != nil || len(got) != 4 || got[3] != 8 {
		t.Errorf("parseIntList: %v %v", got, err)
	}
}
