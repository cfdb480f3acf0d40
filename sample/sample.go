// Package sample turns a vector of logits into the next token id.
//
// A Sampler applies the same chain of transforms as llama.cpp's default
// sampler, in the same order, so that a given set of parameters behaves the
// way users of llama.cpp / Ollama expect:
//
//	penalties -> logit bias -> top-k -> top-p -> min-p -> temperature -> softmax -> draw
//
// The order matters: top-p and min-p look at the distribution at
// temperature 1 (temperature only reshapes what survives the filters), and
// top-p renormalises over whatever top-k left. A temperature <= 0 selects
// greedy decoding, which only needs penalties and bias (the truncation
// filters can never remove the most likely token).
//
// Sample is called once per generated token, on a vocabulary that can be
// 150k entries, so it is written to do no allocation (every buffer is sized in
// New) and to avoid sorting the whole vocabulary: top-k uses a bounded heap,
// min-p is a logit threshold, and top-p only sorts the tokens above a logit
// threshold that is widened until it provably contains the nucleus. The
// one cost that cannot be avoided is top-p without top-k: its total is over
// the whole vocabulary, so every token needs an exp (about 1.5 ms per token
// at 150k entries, against about 0.1 ms with the default top-k of 40).
package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
)

// SeedRandom as Params.Seed asks New to pick a seed from the clock. Any
// negative seed has the same effect; Sampler.Seed reports the seed picked so
// that a run can be reproduced afterwards.
const SeedRandom int64 = -1

// ErrInvalidParams is wrapped by every validation error New returns, so
// callers can tell bad configuration apart with errors.Is.
var ErrInvalidParams = errors.New("sample: invalid parameters")

// Params configures a Sampler. The zero value is not valid (TopP and
// RepeatPenalty must be positive); start from DefaultParams and change what
// you need. The llama.cpp option each field mirrors is given in brackets.
type Params struct {
	// Temperature divides the logits before the softmax [--temp]. Values
	// below 1 sharpen the distribution, above 1 flatten it. <= 0 means
	// greedy decoding (argmax), which does not consume randomness.
	Temperature float32

	// TopK keeps only the K most likely tokens [--top-k]. 0 disables it;
	// values >= the vocabulary size are the same as disabled.
	TopK int

	// TopP keeps the smallest set of most likely tokens whose probability
	// (at temperature 1, renormalised after top-k) sums to at least TopP
	// [--top-p]. Must be in (0, 1]; 1 disables it.
	TopP float32

	// MinP drops tokens whose probability is below MinP times that of the
	// most likely token [--min-p]. Must be in [0, 1]; 0 disables it.
	MinP float32

	// RepeatPenalty penalises tokens seen in the last RepeatLastN accepted
	// tokens: positive logits are divided by it, negative ones multiplied,
	// so a value > 1 always makes the token less likely [--repeat-penalty].
	// Must be > 0; 1 disables it.
	RepeatPenalty float32

	// PresencePenalty is subtracted once from the logit of every token seen
	// in the window [--presence-penalty]. 0 disables it.
	PresencePenalty float32

	// FrequencyPenalty times the number of occurrences in the window is
	// subtracted from a token's logit [--frequency-penalty]. 0 disables it.
	FrequencyPenalty float32

	// RepeatLastN is the size of the window, in accepted tokens, that the
	// three penalties look at [--repeat-last-n]. 0 disables penalties.
	RepeatLastN int

	// LogitBias is added to the logit of each listed token id after the
	// penalties [--logit-bias]. A bias of -Inf bans the token. Ids must be
	// inside the vocabulary; +Inf and NaN are rejected because they would
	// turn the softmax into NaNs. New copies the map.
	LogitBias map[int32]float32

	// Seed seeds the random number generator, making a run reproducible
	// for the same logits [--seed]. Negative (SeedRandom) picks one from
	// the clock.
	Seed int64
}

// DefaultParams returns llama.cpp's default sampling settings: temperature
// 0.8, top-k 40, top-p 0.95, min-p 0.05, penalties off (repeat 1.0) with a
// window of 64, no bias, random seed.
func DefaultParams() Params {
	return Params{
		Temperature:   0.8,
		TopK:          40,
		TopP:          0.95,
		MinP:          0.05,
		RepeatPenalty: 1.0,
		RepeatLastN:   64,
		Seed:          SeedRandom,
	}
}

// token is one surviving candidate. p is scratch space for an
// unnormalised probability, kept next to the logit so the filters and the
// draw can reuse it without a second buffer.
type token struct {
	logit float32
	p     float32
	id    int32
}

type bias struct {
	id int32
	b  float32
}

// Sampler draws tokens from logits. It is not safe for concurrent use; use
// one Sampler per sequence (it also holds that sequence's penalty history).
type Sampler struct {
	p      Params
	nVocab int
	bias   []bias // LogitBias flattened, sorted by id

	// cand holds candidates; its capacity is TopK when top-k is active,
	// otherwise the whole vocabulary.
	cand []token

	// Penalty state. hist is a ring buffer of the last RepeatLastN accepted
	// tokens and counts[t] the number of times t occurs in it, so that
	// Accept is O(1) and applying penalties is O(RepeatLastN) rather than
	// O(vocabulary). Both are nil when no penalty is active.
	penalize bool
	hist     []int32
	histPos  int
	histLen  int
	counts   []int32

	seed int64
	src  *rand.PCG
	rng  *rand.Rand
}

// seedCounter makes clock-derived seeds differ even for Samplers created
// within the same clock tick.
var seedCounter atomic.Uint64

// New validates p and returns a Sampler for a vocabulary of nVocab tokens,
// with all buffers Sample needs already allocated.
func New(p Params, nVocab int) (*Sampler, error) {
	if err := validate(&p, nVocab); err != nil {
		return nil, err
	}
	s := &Sampler{p: p, nVocab: nVocab}

	if len(p.LogitBias) > 0 {
		s.bias = make([]bias, 0, len(p.LogitBias))
		for id, b := range p.LogitBias {
			s.bias = append(s.bias, bias{id, b})
		}
		// Map order is random; sort so Sample touches memory in order and
		// behaves identically from run to run.
		slices.SortFunc(s.bias, func(a, b bias) int { return int(a.id) - int(b.id) })
	}
	s.p.LogitBias = nil // s.bias is the authoritative copy

	n := nVocab
	if p.TopK > 0 && p.TopK < nVocab {
		n = p.TopK
	}
	s.cand = make([]token, 0, n)

	s.penalize = p.RepeatLastN > 0 &&
		(p.RepeatPenalty != 1 || p.PresencePenalty != 0 || p.FrequencyPenalty != 0)
	if s.penalize {
		s.hist = make([]int32, p.RepeatLastN)
		s.counts = make([]int32, nVocab)
	}

	s.seed = p.Seed
	if s.seed < 0 {
		x := uint64(time.Now().UnixNano()) ^ (seedCounter.Add(1) * 0x9e3779b97f4a7c15)
		s.seed = int64(mix64(x) & math.MaxInt64)
	}
	s.src = rand.NewPCG(0, 0)
	s.rng = rand.New(s.src)
	s.reseed()
	return s, nil
}

func validate(p *Params, nVocab int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidParams}, args...)...)
	}
	finite := func(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }
	switch {
	case nVocab <= 0 || nVocab > math.MaxInt32:
		return bad("vocabulary size %d out of range", nVocab)
	case !finite(p.Temperature):
		return bad("temperature %v is not finite", p.Temperature)
	case p.TopK < 0:
		return bad("top_k %d is negative (use 0 to disable)", p.TopK)
	case !(p.TopP > 0 && p.TopP <= 1): // also catches NaN
		return bad("top_p %v outside (0, 1] (use 1 to disable)", p.TopP)
	case !(p.MinP >= 0 && p.MinP <= 1):
		return bad("min_p %v outside [0, 1] (use 0 to disable)", p.MinP)
	case !finite(p.RepeatPenalty) || p.RepeatPenalty <= 0:
		return bad("repeat_penalty %v must be finite and > 0 (use 1 to disable)", p.RepeatPenalty)
	case !finite(p.PresencePenalty):
		return bad("presence_penalty %v is not finite", p.PresencePenalty)
	case !finite(p.FrequencyPenalty):
		return bad("frequency_penalty %v is not finite", p.FrequencyPenalty)
	case p.RepeatLastN < 0:
		return bad("repeat_last_n %d is negative (use 0 to disable)", p.RepeatLastN)
	}
	for id, b := range p.LogitBias {
		if id < 0 || int(id) >= nVocab {
			return bad("logit_bias token %d outside vocabulary [0, %d)", id, nVocab)
		}
		if math.IsNaN(float64(b)) || math.IsInf(float64(b), 1) {
			return bad("logit_bias %v for token %d (only finite values or -Inf allowed)", b, id)
		}
	}
	return nil
}

// mix64 is the splitmix64 finaliser. It spreads nearby seeds (0, 1, 2...)
// over the whole state space so they give unrelated streams.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (s *Sampler) reseed() {
	u := uint64(s.seed)
	s.src.Seed(u, mix64(u+0x9e3779b97f4a7c15))
}

// Seed returns the seed in use: Params.Seed, or the one picked from the
// clock when that was negative. Passing it back in Params.Seed reproduces
// the run.
func (s *Sampler) Seed() int64 { return s.seed }

// Accept records a token that was appended to the sequence, for the
// penalties. Call it for every token of the sequence the penalties should
// see (typically each sampled token, and optionally the prompt). Ids outside
// the vocabulary are ignored; when no penalty is active Accept does nothing.
func (s *Sampler) Accept(tok int32) {
	if !s.penalize || tok < 0 || int(tok) >= s.nVocab {
		return
	}
	if s.histLen == len(s.hist) {
		s.counts[s.hist[s.histPos]]-- // evict the oldest token
	} else {
		s.histLen++
	}
	s.hist[s.histPos] = tok
	s.counts[tok]++
	s.histPos++
	if s.histPos == len(s.hist) {
		s.histPos = 0
	}
}

// Reset returns the Sampler to the state New left it in: the penalty
// history is cleared and the random generator is re-seeded with Seed, so
// the same logits give the same tokens again (as llama.cpp's reset does).
func (s *Sampler) Reset() {
	for _, t := range s.hist[:s.histLen] {
		s.counts[t] = 0
	}
	s.histLen, s.histPos = 0, 0
	s.reseed()
}

// Sample picks the next token from logits, which must have one entry per
// vocabulary token (it panics otherwise, as that is a caller bug). The
// penalties and the logit bias are applied to logits in place, so the caller
// must not reuse them expecting the raw model output.
//
// NaN logits are treated like -Inf, i.e. never chosen. If no token is left
// with a logit above -Inf (everything banned), Sample returns -1. If some
// logits are +Inf, the lowest such id is returned.
//
// Sample does not call Accept; the caller decides which tokens enter the
// penalty window.
func (s *Sampler) Sample(logits []float32) int32 {
	if len(logits) != s.nVocab {
		panic(fmt.Sprintf("sample: got %d logits, sampler built for vocabulary %d", len(logits), s.nVocab))
	}
	s.applyPenalties(logits)
	s.applyBias(logits)
	if s.p.Temperature <= 0 {
		return argmax(logits)
	}
	c := s.candidates(logits)
	if len(c) == 0 {
		return -1
	}
	return s.draw(c)
}

// applyPenalties implements llama.cpp's repetition, frequency and presence
// penalties over the tokens in the window. Each distinct token must be
// penalised once, not once per occurrence; instead of a set (which would
// allocate) its count is negated once it has been handled and restored
// afterwards.
func (s *Sampler) applyPenalties(logits []float32) {
	if !s.penalize {
		return
	}
	rp, freq, pres := s.p.RepeatPenalty, s.p.FrequencyPenalty, s.p.PresencePenalty
	hist := s.hist[:s.histLen]
	for _, t := range hist {
		c := s.counts[t]
		if c <= 0 {
			continue // already penalised
		}
		l := logits[t]
		if l <= 0 {
			l *= rp
		} else {
			l /= rp
		}
		logits[t] = l - float32(c)*freq - pres
		s.counts[t] = -c
	}
	for _, t := range hist {
		if c := s.counts[t]; c < 0 {
			s.counts[t] = -c
		}
	}
}

func (s *Sampler) applyBias(logits []float32) {
	for _, b := range s.bias {
		if math.IsInf(float64(b.b), -1) {
			logits[b.id] = float32(math.Inf(-1)) // a ban, even over a +Inf logit
		} else {
			logits[b.id] += b.b
		}
	}
}

// argmax returns the lowest id with the largest logit (llama.cpp's greedy
// tie rule), or -1 when every logit is -Inf or NaN.
//
// It finds the maximum value first, in four independent lanes so that the
// comparisons do not form one long dependency chain, and then the first
// index holding it. That is about twice as fast as a single pass tracking
// the index, which matters at 150k logits per token.
func argmax(logits []float32) int32 {
	ninf := float32(math.Inf(-1))
	m0, m1, m2, m3 := ninf, ninf, ninf, ninf
	i := 0
	for ; i+4 <= len(logits); i += 4 {
		v := logits[i : i+4 : i+4]
		// A plain comparison, not the max builtin: NaN must lose, not win.
		if v[0] > m0 {
			m0 = v[0]
		}
		if v[1] > m1 {
			m1 = v[1]
		}
		if v[2] > m2 {
			m2 = v[2]
		}
		if v[3] > m3 {
			m3 = v[3]
		}
	}
	for _, v := range logits[i:] {
		if v > m0 {
			m0 = v
		}
	}
	for _, v := range [...]float32{m1, m2, m3} {
		if v > m0 {
			m0 = v
		}
	}
	if !selectable(m0) {
		return -1
	}
	for j, v := range logits {
		if v == m0 {
			return int32(j)
		}
	}
	panic("unreachable")
}

// selectable reports whether a logit can ever be sampled: false for -Inf
// and NaN (every comparison with NaN is false).
func selectable(v float32) bool { return v > float32(math.Inf(-1)) }

// candidates runs top-k, top-p and min-p and returns the survivors, in
// s.cand, in unspecified order. If some logit is +Inf only the lowest such
// id is returned, since every finite token then has probability 0.
//
// No step sorts more than the tokens that survive, because top-k, top-p and
// min-p all keep a prefix of the tokens sorted by logit:
//
//   - top-k is a bounded heap (see topK);
//   - min-p is a threshold on the logit (see minPFloor). It comes after
//     top-p in the chain, but since it is relative to the maximum alone it
//     can be applied first, as long as top-p's total still counts the
//     tokens min-p removes;
//   - top-p is found by lowering a logit threshold until the tokens above it
//     carry the required mass (see nucleus); only those are sorted.
func (s *Sampler) candidates(logits []float32) []token {
	needP := s.p.TopP < 1
	var (
		c     []token
		maxL  float32
		floor float64
		total float64 // temperature-1 weight of everything top-p sees
	)
	if k := s.p.TopK; k > 0 && k < len(logits) {
		c = s.topK(logits, k)
		if len(c) == 0 {
			return c
		}
		maxL = c[0].logit
		for _, t := range c[1:] {
			maxL = max(maxL, t.logit) // no NaN: topK skipped them
		}
		if math.IsInf(float64(maxL), 1) {
			return lowestInf(c)
		}
		floor = minPFloor(maxL, s.p.MinP)
		if !needP {
			return keepAbove(c, floor)
		}
		for i := range c {
			c[i].p = expDiff(c[i].logit, maxL)
			total += float64(c[i].p)
		}
	} else {
		maxL = float32(math.Inf(-1))
		for _, v := range logits {
			if v > maxL { // not the max builtin: NaN must lose
				maxL = v
			}
		}
		if !selectable(maxL) {
			return s.cand[:0]
		}
		if math.IsInf(float64(maxL), 1) {
			c = s.cand[:0]
			for i, v := range logits {
				if v == maxL {
					return append(c, token{logit: v, id: int32(i)})
				}
			}
		}
		floor = minPFloor(maxL, s.p.MinP)
		// One pass: keep what min-p keeps, and when top-p needs it take
		// every token's weight (those below the floor only count in total).
		t := ceil32(floor)
		c = s.cand[:0]
		for i, v := range logits {
			switch {
			case v >= t && selectable(v):
				c = append(c, token{logit: v, id: int32(i)})
				if needP {
					e := expDiff(v, maxL)
					c[len(c)-1].p = e
					total += float64(e)
				}
			case needP && selectable(v):
				total += float64(expDiff(v, maxL))
			}
		}
		if !needP {
			return c
		}
	}
	return nucleus(c, maxL, floor, float64(s.p.TopP)*total)
}

// lowestInf returns the +Inf candidate with the lowest id, alone.
func lowestInf(c []token) []token {
	best := -1
	for i, t := range c {
		if math.IsInf(float64(t.logit), 1) && (best < 0 || t.id < c[best].id) {
			best = i
		}
	}
	c[0], c[best] = c[best], c[0]
	return c[:1]
}

// expDiff is the temperature-1 weight exp(v - maxL), rounded to float32 so
// every place that sums weights sums exactly the same numbers.
func expDiff(v, maxL float32) float32 {
	return float32(math.Exp(float64(v) - float64(maxL)))
}

// ceil32 returns the smallest float32 >= x, so that comparing float32
// logits against it is exactly comparing them against x.
func ceil32(x float64) float32 {
	t := float32(x)
	if float64(t) < x {
		t = math.Nextafter32(t, float32(math.Inf(1)))
	}
	return t
}

// keepAbove moves the candidates with logit >= thr to the front of c and
// returns them.
func keepAbove(c []token, thr float64) []token {
	t := ceil32(thr)
	m := 0
	for i := range c {
		if c[i].logit >= t {
			c[m] = c[i]
			m++
		}
	}
	return c[:m]
}

// byLogitDesc orders candidates most likely first, ties by lower id, so the
// result of a sort does not depend on the input order.
func byLogitDesc(a, b token) int {
	switch {
	case a.logit > b.logit:
		return -1
	case a.logit < b.logit:
		return 1
	}
	return int(a.id) - int(b.id)
}

// worse is the heap order for topK: the root is the candidate that would be
// dropped first (lowest logit, and among equal logits the highest id).
func worse(a, b token) bool {
	return a.logit < b.logit || (a.logit == b.logit && a.id > b.id)
}

// topK returns the k best selectable tokens (fewer if the vocabulary has
// fewer), unordered. It keeps a min-heap of the best k seen so far: for a
// typical vocabulary almost every token loses a single comparison against
// the root, so this is one cheap pass over the logits rather than a sort.
func (s *Sampler) topK(logits []float32, k int) []token {
	h := s.cand[:0]
	i := 0
	for ; i < len(logits) && len(h) < k; i++ {
		if v := logits[i]; selectable(v) {
			h = append(h, token{logit: v, id: int32(i)})
		}
	}
	if len(h) < k {
		return h
	}
	for j := len(h)/2 - 1; j >= 0; j-- {
		siftDown(h, j)
	}
	// Later ids lose ties, so a token equal to the root is not better than
	// it: a strict comparison is the whole test. NaN never passes it.
	for ; i < len(logits); i++ {
		if v := logits[i]; v > h[0].logit {
			h[0] = token{logit: v, id: int32(i)}
			siftDown(h, 0)
		}
	}
	return h
}

func siftDown(h []token, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && worse(h[r], h[l]) {
			m = r
		}
		if !worse(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// minPFloor is the lowest logit min-p keeps: p_i >= minP*p_max is the same
// as logit_i >= logit_max + ln(minP), which needs no softmax. It is -Inf
// when min-p is off.
func minPFloor(maxL float32, minP float32) float64 {
	if minP <= 0 {
		return math.Inf(-1)
	}
	return float64(maxL) + math.Log(float64(minP))
}

// nucleus applies top-p, then min-p, to c, whose p fields hold the
// temperature-1 weights: it returns the shortest run of most likely
// candidates whose weights sum to at least target (the token that crosses
// it is kept, as in llama.cpp), stopping early at floor.
//
// Rather than sorting c, it moves the tokens above a threshold to the front
// and lowers the threshold (8 nats below the maximum, then 16, 32, ...) until
// they carry target, reach the floor or are everything. Each round only
// scans what is still behind the front. With realistic logits the first
// round already holds the nucleus, so only a few tokens are sorted.
func nucleus(c []token, maxL float32, floor, target float64) []token {
	m := 0
	var sum float64
	for d := 8.0; ; d *= 2 {
		thr := float64(maxL) - d
		atFloor := thr <= floor
		if atFloor {
			thr = floor
		}
		t := ceil32(thr)
		for i := m; i < len(c); i++ {
			if c[i].logit >= t {
				sum += float64(c[i].p)
				c[i], c[m] = c[m], c[i]
				m++
			}
		}
		if sum >= target || atFloor || m == len(c) {
			front := c[:m]
			slices.SortFunc(front, byLogitDesc)
			// The sum may miss target by rounding when everything is in
			// front; the cut then keeps all of it.
			var cum float64
			for i := range front {
				cum += float64(front[i].p)
				if cum >= target {
					return front[:i+1]
				}
			}
			return front
		}
	}
}

// weights sets c[i].p to the unnormalised probability of each candidate at
// the sampler's temperature and returns their sum. Subtracting the maximum
// keeps exp from overflowing.
func (s *Sampler) weights(c []token) float64 {
	maxL := c[0].logit
	for _, t := range c[1:] {
		maxL = max(maxL, t.logit)
	}
	invT := 1 / float64(s.p.Temperature)
	var sum float64
	for i := range c {
		e := float32(math.Exp((float64(c[i].logit) - float64(maxL)) * invT))
		c[i].p = e
		sum += float64(e)
	}
	return sum
}

// draw applies the temperature and picks one candidate with probability
// proportional to its weight, by inverting the cumulative distribution.
func (s *Sampler) draw(c []token) int32 {
	if len(c) == 1 {
		return c[0].id
	}
	sum := s.weights(c)
	u := s.rng.Float64() * sum
	var cum float64
	for i := range c {
		cum += float64(c[i].p)
		if u < cum {
			return c[i].id
		}
	}
	// u can round up to sum; fall back to the last token with any weight.
	for i := len(c) - 1; i > 0; i-- {
		if c[i].p > 0 {
			return c[i].id
		}
	}
	return c[0].id
}
