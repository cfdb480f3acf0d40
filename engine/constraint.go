package engine

import "errors"

// Constraint restricts which tokens may be generated, such as a grammar or a
// JSON schema compiled by package grammar. The generation loop masks the
// logits before sampling, reports the chosen token, and stops once the
// constraint is satisfied. A nil Constraint leaves generation free.
type Constraint interface {
	// Mask sets the logits of disallowed tokens to -Inf (end-of-generation
	// tokens only once the constraint can be complete).
	Mask(logits []float32)
	// Accept advances over the sampled token.
	Accept(token int32) error
	// Done reports that nothing more may follow.
	Done() bool
}

// ErrNoAllowedToken reports a constraint that allows no token at all; the
// loop stops rather than fall back to unconstrained text.
var ErrNoAllowedToken = errors.New("constraint: no allowed token")
