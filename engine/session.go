package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/slm-dev/slm/model"
	"github.com/slm-dev/slm/sample"
)

// Session is one stream of tokens through the model: its KV cache and the
// tokens in it. A new prompt that starts with the tokens already in the cache
// reuses them. A Session is not safe for concurrent use.
type Session struct {
	m      *Model
	st     *model.State
	nCtx   int
	cached []int32   // tokens whose K/V are in st, in order
	logits []float32 // logits after the last cached token
	text   textStream

	evaluated int      // prompt tokens the last prefill had to evaluate
	one       [1]int32 // decode input, kept here so decoding allocates nothing
	piece     []byte   // the current token's text

	raw []float32      // the logits before sampling, when logprobs are asked
	top []TokenLogprob // the current token's alternatives
}

// NewSession allocates a session with room for nCtx positions (0 means the
// model's default context).
func (m *Model) NewSession(nCtx int) (*Session, error) {
	if nCtx <= 0 {
		nCtx = m.nCtx
	}
	st, err := m.newState(nCtx)
	if err != nil {
		return nil, err
	}
	return &Session{
		m:      m,
		st:     st,
		nCtx:   nCtx,
		cached: make([]int32, 0, nCtx),
		logits: make([]float32, m.Config().NVocab),
		piece:  make([]byte, 0, 64),
		text:   textStream{buf: make([]byte, 0, 4096)},
	}, nil
}

// ContextSize is the number of positions the session holds.
func (s *Session) ContextSize() int { return s.nCtx }

// Options steer one generation.
type Options struct {
	// MaxTokens bounds the generated tokens; 0 or less means until an
	// end-of-generation token, a stop string or a full context.
	MaxTokens int
	// Sampling chooses each token; Temperature <= 0 is greedy.
	Sampling sample.Params
	// Stop ends generation at the first occurrence of any of these strings;
	// the stop string itself is not returned.
	Stop []string
	// IgnoreEOS keeps generating past end-of-generation tokens.
	IgnoreEOS bool
	// Constraint, if set, restricts the tokens (grammar, JSON schema).
	Constraint Constraint
	// Logprobs gives each token's log-probability (Token.Logprob) under
	// the model's own distribution: log-softmax of the raw logits, before
	// penalties, bias, grammar masking and temperature (OpenAI's and
	// llama-server's default semantics).
	Logprobs bool
	// TopLogprobs also lists that many most likely tokens at each step
	// (Token.Top), 0..MaxTopLogprobs; more than 0 implies Logprobs.
	TopLogprobs int
}

// StopReason says why generation ended.
type StopReason string

// The ways a generation ends.
const (
	StopEOS      StopReason = "stop"   // the model produced an end-of-generation token
	StopString   StopReason = "stop"   // a stop string appeared (same name as OpenAI's)
	StopLength   StopReason = "length" // MaxTokens reached or the context is full
	StopCanceled StopReason = "canceled"
)

// Token is one step of generation. Text is the newly completed text, which
// may be empty while bytes are held back (an unfinished UTF-8 sequence or a
// possible stop-string prefix); it is only valid during the callback.
//
// With Options.Logprobs, Logprob is the token's log-probability and Top
// the Options.TopLogprobs most likely tokens, best first (also only valid
// during the callback: they live in buffers reused for the next token).
// Both are zero on the final flush (ID -1) and without Options.Logprobs.
type Token struct {
	ID      int32
	Text    []byte
	Logprob float32
	Top     []TokenLogprob
}

// Result summarizes a finished generation.
type Result struct {
	Tokens         []int32 // generated ids
	Text           string  // generated text, stop string excluded
	PromptTokens   int
	CachedTokens   int // prompt tokens reused from the session's cache
	Reason         StopReason
	PromptDuration time.Duration // evaluating the prompt (time to first token, less sampling)
	GenDuration    time.Duration // the decode steps
}

// ErrContextFull reports a prompt or request that does not fit the context.
var ErrContextFull = errors.New("context window exceeded")

// Generate evaluates prompt (reusing any cached prefix) and samples tokens,
// calling fn for each. An error from fn or a canceled ctx stops generation;
// the Result then holds what was generated so far.
func (s *Session) Generate(ctx context.Context, prompt []int32, opts Options, fn func(Token) error) (Result, error) {
	res := Result{PromptTokens: len(prompt)}
	smp, err := newSampler(prompt, opts, s.nCtx, s.m.Config().NVocab)
	if err != nil {
		return res, err
	}
	logprobs := wantLogprobs(opts)
	if logprobs && s.raw == nil {
		s.raw = make([]float32, len(s.logits))
		s.top = make([]TokenLogprob, MaxTopLogprobs)
	}

	start := time.Now()
	if err := s.prefill(ctx, prompt); err != nil {
		return res, err
	}
	res.CachedTokens = len(prompt) - s.evaluated
	res.PromptDuration = time.Since(start)

	start = time.Now()
	budget := s.nCtx - len(prompt)
	if opts.MaxTokens > 0 {
		budget = min(budget, opts.MaxTokens)
	}
	res.Tokens = make([]int32, 0, budget) // sized once: decoding appends without allocating
	s.text.reset(opts.Stop)
	tok := s.m.tok
	for {
		if err := ctx.Err(); err != nil {
			res.Reason = StopCanceled
			break
		}
		if logprobs {
			copy(s.raw, s.logits) // masking and sampling change s.logits
		}
		if opts.Constraint != nil {
			opts.Constraint.Mask(s.logits)
		}
		id := smp.Sample(s.logits)
		if id < 0 { // every token is banned
			if opts.Constraint != nil {
				res.Text = s.text.String()
				return res, ErrNoAllowedToken
			}
			res.Reason = StopEOS
			break
		}
		if opts.Constraint != nil {
			if err := opts.Constraint.Accept(id); err != nil {
				res.Text = s.text.String()
				return res, err
			}
		}
		if !opts.IgnoreEOS && tok.IsEOG(id) {
			res.Reason = StopEOS
			break
		}
		smp.Accept(id)
		res.Tokens = append(res.Tokens, id)
		s.piece = tok.AppendPiece(s.piece[:0], id)
		out, stopped := s.text.push(s.piece)
		if fn != nil {
			t := Token{ID: id, Text: out}
			if logprobs {
				var n int
				t.Logprob, n = logprobsOf(s.raw, id, s.top[:opts.TopLogprobs])
				t.Top = s.top[:n]
			}
			if err := fn(t); err != nil {
				res.Reason = StopCanceled
				res.Text = s.text.String()
				res.GenDuration = time.Since(start)
				return res, err
			}
		}
		if stopped {
			res.Reason = StopString
			break
		}
		if opts.Constraint != nil && opts.Constraint.Done() {
			res.Reason = StopEOS
			break
		}
		if opts.MaxTokens > 0 && len(res.Tokens) >= opts.MaxTokens || len(s.cached) >= s.nCtx {
			res.Reason = StopLength
			break
		}
		if err := s.eval(id); err != nil {
			return res, err
		}
	}
	if rest := s.text.flush(); len(rest) > 0 && fn != nil && res.Reason != StopCanceled {
		if err := fn(Token{ID: -1, Text: rest}); err != nil {
			res.Text = s.text.String()
			return res, err
		}
	}
	res.Text = s.text.String()
	res.GenDuration = time.Since(start)
	if res.Reason == StopCanceled {
		return res, ctx.Err()
	}
	return res, nil
}

// Stream is Generate as an iterator. It yields each token; a failure is
// yielded once as the last pair. result, if not nil, receives the summary.
func (s *Session) Stream(ctx context.Context, prompt []int32, opts Options, result *Result) iter.Seq2[Token, error] {
	return func(yield func(Token, error) bool) {
		errStop := errors.New("stopped by the consumer")
		res, err := s.Generate(ctx, prompt, opts, func(t Token) error {
			if !yield(t, nil) {
				return errStop
			}
			return nil
		})
		if result != nil {
			*result = res
		}
		if err != nil && err != errStop {
			yield(Token{ID: -1}, err)
		}
	}
}

// newSampler checks a request against a context of nCtx positions and a
// vocabulary of nVocab tokens, and returns its sampler, primed with the
// prompt (for the penalties).
func newSampler(prompt []int32, opts Options, nCtx, nVocab int) (*sample.Sampler, error) {
	if len(prompt) == 0 {
		return nil, errors.New("empty prompt: at least one token is needed")
	}
	if len(prompt) >= nCtx {
		return nil, fmt.Errorf("%w: the prompt has %d tokens and the context holds %d (at least one more is needed to generate)", ErrContextFull, len(prompt), nCtx)
	}
	if opts.MaxTokens > 0 && len(prompt)+opts.MaxTokens > nCtx {
		return nil, fmt.Errorf("%w: %d prompt tokens + %d new tokens exceed the context of %d", ErrContextFull, len(prompt), opts.MaxTokens, nCtx)
	}
	for _, id := range prompt {
		if id < 0 || int(id) >= nVocab {
			return nil, fmt.Errorf("token id %d is outside the vocabulary (0..%d)", id, nVocab-1)
		}
	}
	if err := checkLogprobs(opts); err != nil {
		return nil, err
	}
	smp, err := sample.New(opts.Sampling, nVocab)
	if err != nil {
		return nil, err
	}
	for _, id := range prompt {
		smp.Accept(id)
	}
	return smp, nil
}

// prefill brings the cache to hold exactly prompt, reusing the longest
// common prefix, and leaves the logits of the prompt's last token.
func (s *Session) prefill(ctx context.Context, prompt []int32) error {
	keep := 0
	for keep < len(s.cached) && keep < len(prompt) && s.cached[keep] == prompt[keep] {
		keep++
	}
	if keep == len(prompt) { // the logits of the last token must be recomputed
		keep--
	}
	s.st.Truncate(keep)
	s.cached = s.cached[:keep]
	s.evaluated = len(prompt) - keep
	rest := prompt[keep:]
	// Evaluate in chunks so that a long prompt can be canceled.
	const chunk = 512
	for len(rest) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(chunk, len(rest))
		if err := s.m.net.Eval(s.st, rest[:n], s.logits, false); err != nil {
			s.resync()
			return err
		}
		s.cached = append(s.cached, rest[:n]...)
		rest = rest[n:]
	}
	return nil
}

// eval appends one token to the cache.
func (s *Session) eval(id int32) error {
	s.one[0] = id
	if err := s.m.net.Eval(s.st, s.one[:], s.logits, false); err != nil {
		s.resync()
		return err
	}
	s.cached = append(s.cached, id)
	return nil
}

// resync forgets whatever a failed evaluation may have left in the cache.
func (s *Session) resync() {
	s.st.Truncate(len(s.cached))
}

// Generate runs one generation in a fresh session with the default context.
func (m *Model) Generate(ctx context.Context, prompt []int32, opts Options, fn func(Token) error) (Result, error) {
	s, err := m.NewSession(0)
	if err != nil {
		return Result{}, err
	}
	return s.Generate(ctx, prompt, opts, fn)
}
