package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

// sequence allows exactly one token sequence.
type sequence struct {
	want []int32
	pos  int
}

func (c *sequence) Mask(logits []float32) {
	for i := range logits {
		if c.pos >= len(c.want) || int32(i) != c.want[c.pos] {
			logits[i] = float32(math.Inf(-1))
		}
	}
}

func (c *sequence) Accept(tok int32) error {
	if c.pos >= len(c.want) || tok != c.want[c.pos] {
		return errors.New("token not allowed")
	}
	c.pos++
	return nil
}

func (c *sequence) Done() bool { return c.pos == len(c.want) }

// generator is what Session, Scheduler and Model share: the tests of a
// generation feature run against each of them.
type generator interface {
	Generate(ctx context.Context, prompt []int32, opts Options, fn func(Token) error) (Result, error)
}

func TestConstraint(t *testing.T) {
	checkConstraint(t, open(t, "llama-q4_0.gguf"))
}

// checkConstraint: a constraint that allows one sequence yields exactly it
// even when sampling, and one that allows nothing fails closed.
func checkConstraint(t *testing.T, g generator) {
	t.Helper()
	want := []int32{40, 41, 42, 43}
	opts := greedy()
	opts.Sampling.Temperature = 1 // sampling, yet only one path is allowed
	opts.Sampling.Seed = 3
	opts.MaxTokens = 20
	opts.Constraint = &sequence{want: want}
	res, err := g.Generate(context.Background(), []int32{1, 5}, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tokens, want) || res.Reason != StopEOS {
		t.Errorf("tokens %v (reason %q), want %v ending when the constraint is done", res.Tokens, res.Reason, want)
	}
	opts.Constraint = &sequence{want: nil}
	opts.MaxTokens = 3
	if _, err := g.Generate(context.Background(), []int32{1, 5}, opts, nil); !errors.Is(err, ErrNoAllowedToken) {
		t.Errorf("empty constraint: %v, want ErrNoAllowedToken", err)
	}
}
