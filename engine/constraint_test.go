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

func TestConstraint(t *testing.T) {
	m := open(t, "llama-q4_0.gguf")
	want := []int32{40, 41, 42, 43}
	opts := greedy()
	opts.Sampling.Temperature = 1 // sampling, yet only one path is allowed
	opts.Sampling.Seed = 3
	opts.MaxTokens = 20
	opts.Constraint = &sequence{want: want}
	res, err := m.Generate(context.Background(), []int32{1, 5}, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tokens, want) || res.Reason != StopEOS {
		t.Errorf("tokens %v (reason %q), want %v ending when the constraint is done", res.Tokens, res.Reason, want)
	}

	// A constraint that allows nothing fails closed.
	opts.Constraint = &sequence{want: nil}
	opts.MaxTokens = 3
	if _, err := m.Generate(context.Background(), []int32{1, 5}, opts, nil); !errors.Is(err, ErrNoAllowedToken) {
		t.Errorf("empty constraint: %v, want ErrNoAllowedToken", err)
	}
}
