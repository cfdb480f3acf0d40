package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/slm-dev/slm/sample"
)

const models = "../testdata/models"

func open(t testing.TB, name string) *Model {
	t.Helper()
	m, err := Open(filepath.Join(models, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func greedy() Options {
	p := sample.DefaultParams()
	p.Temperature = 0
	return Options{Sampling: p, IgnoreEOS: true}
}

// reference is the part of a llama.cpp reference file the engine tests use.
type reference struct {
	Tolerance struct {
		VsDequantF32 struct {
			MaxAbs float64 `json:"max_abs"`
		} `json:"vs_dequant_f32"`
	} `json:"tolerance"`
	Prompts []struct {
		Tokens []int32 `json:"tokens"`
		Greedy struct {
			Tokens []int32   `json:"tokens"`
			Margin []float64 `json:"margin"`
		} `json:"greedy"`
	} `json:"prompts"`
}

func loadRef(t *testing.T, name string) *reference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../testdata/reference", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// TestGenerateMatchesLlamaCpp runs llama.cpp's greedy continuations through
// the whole generation loop (prefill, sampling, one-token decode steps).
func TestGenerateMatchesLlamaCpp(t *testing.T) {
	for _, name := range []string{"llama-f32", "qwen2-f32", "gpt2-f32"} {
		t.Run(name, func(t *testing.T) {
			m := open(t, name+".gguf")
			ref := loadRef(t, name)
			tol := ref.Tolerance.VsDequantF32.MaxAbs
			for _, p := range ref.Prompts {
				opts := greedy()
				opts.MaxTokens = len(p.Greedy.Tokens)
				res, err := m.Generate(context.Background(), p.Tokens, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				for s, want := range p.Greedy.Tokens {
					if p.Greedy.Margin[s] <= 2*tol {
						break // a near tie: either continuation is right
					}
					if res.Tokens[s] != want {
						t.Fatalf("prompt of %d tokens, step %d: token %d, want %d", len(p.Tokens), s, res.Tokens[s], want)
					}
				}
			}
		})
	}
}

func TestStreamEqualsGenerate(t *testing.T) {
	m := open(t, "llama-q8_0.gguf")
	prompt := []int32{1, 50, 60, 70}
	opts := greedy()
	opts.MaxTokens = 12
	want, err := m.Generate(context.Background(), prompt, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.NewSession(0)
	var got []int32
	var res Result
	for tok, err := range s.Stream(context.Background(), prompt, opts, &res) {
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID >= 0 {
			got = append(got, tok.ID)
		}
	}
	if !slices.Equal(got, want.Tokens) || !slices.Equal(res.Tokens, want.Tokens) || res.Text != want.Text {
		t.Errorf("stream %v (%q), generate %v (%q)", got, res.Text, want.Tokens, want.Text)
	}
}

func TestPrefixReuse(t *testing.T) {
	m := open(t, "qwen2-q4_k.gguf")
	opts := greedy()
	opts.MaxTokens = 8
	first := []int32{10, 20, 30, 40, 50}
	second := append(slices.Clone(first), 60, 70)

	s, _ := m.NewSession(64)
	if _, err := s.Generate(context.Background(), first, opts, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Generate(context.Background(), second, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.CachedTokens != len(first) {
		t.Errorf("reused %d cached tokens, want %d", got.CachedTokens, len(first))
	}
	fresh, _ := m.Generate(context.Background(), second, opts, nil)
	if !slices.Equal(got.Tokens, fresh.Tokens) {
		t.Errorf("with reuse %v, fresh %v", got.Tokens, fresh.Tokens)
	}
	// The same prompt again reuses all but the last token.
	again, _ := s.Generate(context.Background(), second, opts, nil)
	if again.CachedTokens != len(second)-1 || !slices.Equal(again.Tokens, fresh.Tokens) {
		t.Errorf("repeat: cached %d, tokens %v", again.CachedTokens, again.Tokens)
	}
}

func TestSeededSamplingIsReproducible(t *testing.T) {
	m := open(t, "gpt2-q4_0.gguf")
	opts := Options{Sampling: sample.DefaultParams(), MaxTokens: 16, IgnoreEOS: true}
	opts.Sampling.Temperature = 1.5
	opts.Sampling.TopK = 0
	opts.Sampling.Seed = 42
	a, _ := m.Generate(context.Background(), []int32{5, 6, 7}, opts, nil)
	b, _ := m.Generate(context.Background(), []int32{5, 6, 7}, opts, nil)
	opts.Sampling.Seed = 43
	c, _ := m.Generate(context.Background(), []int32{5, 6, 7}, opts, nil)
	if !slices.Equal(a.Tokens, b.Tokens) {
		t.Errorf("same seed: %v vs %v", a.Tokens, b.Tokens)
	}
	if slices.Equal(a.Tokens, c.Tokens) {
		t.Errorf("seeds 42 and 43 gave the same 16 tokens %v", a.Tokens)
	}
}

func TestStopReasons(t *testing.T) {
	m := open(t, "llama-f16.gguf")
	prompt := []int32{1, 100, 101}

	opts := greedy()
	opts.MaxTokens = 5
	res, err := m.Generate(context.Background(), prompt, opts, nil)
	if err != nil || res.Reason != StopLength || len(res.Tokens) != 5 {
		t.Errorf("max tokens: %v, reason %q, %d tokens", err, res.Reason, len(res.Tokens))
	}

	// Force the end-of-sequence token with a logit bias.
	opts = greedy()
	opts.IgnoreEOS = false
	opts.Sampling.LogitBias = map[int32]float32{m.Tokenizer().EOS(): 1000}
	res, err = m.Generate(context.Background(), prompt, opts, nil)
	if err != nil || res.Reason != StopEOS || len(res.Tokens) != 0 {
		t.Errorf("EOS: %v, reason %q, tokens %v", err, res.Reason, res.Tokens)
	}

	// A stop string taken from the greedy text itself.
	opts = greedy()
	opts.MaxTokens = 20
	full, _ := m.Generate(context.Background(), prompt, opts, nil)
	if len(full.Text) < 4 {
		t.Fatalf("greedy text %q too short", full.Text)
	}
	opts.Stop = []string{full.Text[2:4]}
	res, _ = m.Generate(context.Background(), prompt, opts, nil)
	if res.Reason != StopString || res.Text != full.Text[:2] {
		t.Errorf("stop %q: reason %q, text %q (full %q)", opts.Stop[0], res.Reason, res.Text, full.Text)
	}

	// Without a limit, generation ends when the context is full: all 16
	// positions are evaluated, and the token sampled from the last one is
	// returned too.
	s, _ := m.NewSession(16)
	res, err = s.Generate(context.Background(), prompt, greedy(), nil)
	if err != nil || res.Reason != StopLength || len(prompt)+len(res.Tokens) != 16+1 {
		t.Errorf("full context: %v, reason %q, %d tokens", err, res.Reason, len(res.Tokens))
	}
}

func TestContextErrors(t *testing.T) {
	m := open(t, "llama-q4_0.gguf")
	s, _ := m.NewSession(8)
	long := make([]int32, 8)
	for i := range long {
		long[i] = int32(10 + i)
	}
	if _, err := s.Generate(context.Background(), long, greedy(), nil); !errors.Is(err, ErrContextFull) {
		t.Errorf("prompt = context: %v", err)
	}
	opts := greedy()
	opts.MaxTokens = 5
	if _, err := s.Generate(context.Background(), long[:4], opts, nil); !errors.Is(err, ErrContextFull) {
		t.Errorf("prompt + max tokens > context: %v", err)
	}
	if _, err := s.Generate(context.Background(), nil, greedy(), nil); err == nil {
		t.Error("empty prompt accepted")
	}
	if _, err := s.Generate(context.Background(), []int32{1, 1 << 20}, greedy(), nil); err == nil {
		t.Error("out-of-vocabulary token accepted")
	}
	// The session still works after the errors.
	opts.MaxTokens = 2
	if _, err := s.Generate(context.Background(), long[:3], opts, nil); err != nil {
		t.Errorf("after errors: %v", err)
	}
}

func TestCancel(t *testing.T) {
	m := open(t, "gpt2-q8_0.gguf")
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := m.Generate(ctx, []int32{1, 2, 3}, greedy(), func(Token) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if res.Reason != StopCanceled || len(res.Tokens) != 3 {
		t.Errorf("reason %q, %d tokens", res.Reason, len(res.Tokens))
	}
	// An error from the callback stops generation and is returned.
	boom := errors.New("client went away")
	_, err = m.Generate(context.Background(), []int32{1, 2, 3}, greedy(), func(Token) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("callback error: %v", err)
	}
}

// TestDecodeAllocatesNothing checks that a longer generation costs no more
// allocations than a shorter one: the per-token loop allocates nothing.
func TestDecodeAllocatesNothing(t *testing.T) {
	m := open(t, "llama-q4_k_m.gguf")
	s, err := m.NewSession(128)
	if err != nil {
		t.Fatal(err)
	}
	run := func(n int) float64 {
		opts := greedy()
		opts.MaxTokens = n
		return testing.AllocsPerRun(5, func() {
			s.st.Truncate(0)
			s.cached = s.cached[:0]
			if _, err := s.Generate(context.Background(), []int32{1, 7, 8}, opts, func(Token) error { return nil }); err != nil {
				t.Fatal(err)
			}
		})
	}
	short, long := run(4), run(64)
	if long > short {
		t.Errorf("64 tokens cost %.0f allocations, 4 tokens %.0f: the decode loop allocates", long, short)
	}
}

func BenchmarkGenerate(b *testing.B) {
	m := open(b, "llama-q4_0.gguf")
	s, _ := m.NewSession(128)
	opts := greedy()
	opts.MaxTokens = 64
	b.ResetTimer()
	tokens := 0
	for b.Loop() {
		s.st.Truncate(0)
		s.cached = s.cached[:0]
		res, err := s.Generate(context.Background(), []int32{1, 7, 8}, opts, nil)
		if err != nil {
			b.Fatal(err)
		}
		tokens += len(res.Tokens)
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}
