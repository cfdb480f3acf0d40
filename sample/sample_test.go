package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

var (
	negInf = float32(math.Inf(-1))
	posInf = float32(math.Inf(1))
	nan    = float32(math.NaN())
)

// params returns a fully deterministic Params with every filter off, for
// tests to switch on one transform at a time.
func params() Params {
	return Params{Temperature: 1, TopP: 1, RepeatPenalty: 1, Seed: 1}
}

func mustNew(t testing.TB, p Params, n int) *Sampler {
	t.Helper()
	s, err := New(p, n)
	if err != nil {
		t.Fatalf("New(%+v, %d): %v", p, n, err)
	}
	return s
}

// logProbs returns ln(p) for each p, so that softmax at temperature 1 gives
// back exactly the hand-picked probabilities.
func logProbs(p ...float64) []float32 {
	l := make([]float32, len(p))
	for i, v := range p {
		l[i] = float32(math.Log(v))
	}
	return l
}

// survivors returns the sorted ids of the candidates that survive the filters.
func survivors(s *Sampler, logits []float32) []int32 {
	logits = slices.Clone(logits)
	s.applyPenalties(logits)
	s.applyBias(logits)
	var out []int32
	for _, c := range s.candidates(logits) {
		out = append(out, c.id)
	}
	slices.Sort(out)
	return out
}

func TestFilters(t *testing.T) {
	lin := []float32{1, 2, 3, 4}
	probs := logProbs(0.1, 0.2, 0.3, 0.4)
	tests := []struct {
		name   string
		set    func(*Params)
		logits []float32
		want   []int32
	}{
		{"none", func(p *Params) {}, lin, []int32{0, 1, 2, 3}},
		{"top_k 2", func(p *Params) { p.TopK = 2 }, lin, []int32{2, 3}},
		{"top_k 1", func(p *Params) { p.TopK = 1 }, lin, []int32{3}},
		{"top_k 3 unsorted input", func(p *Params) { p.TopK = 3 }, []float32{4, 1, 3, 2}, []int32{0, 2, 3}},
		{"top_k ties keep lowest ids", func(p *Params) { p.TopK = 2 }, []float32{1, 5, 5, 5, 0}, []int32{1, 2}},
		{"top_k >= vocab", func(p *Params) { p.TopK = 10 }, lin, []int32{0, 1, 2, 3}},
		{"top_k skips banned", func(p *Params) { p.TopK = 3 }, []float32{negInf, 1, nan, 2}, []int32{1, 3}},
		// top-p: cumulative 0.4, 0.7, 0.9, 1.0; the crossing token is kept.
		{"top_p 0.35", func(p *Params) { p.TopP = 0.35 }, probs, []int32{3}},
		{"top_p 0.5", func(p *Params) { p.TopP = 0.5 }, probs, []int32{2, 3}},
		{"top_p 0.75", func(p *Params) { p.TopP = 0.75 }, probs, []int32{1, 2, 3}},
		{"top_p 0.95", func(p *Params) { p.TopP = 0.95 }, probs, []int32{0, 1, 2, 3}},
		// After top-k 2 the mass renormalises to 4/7, 3/7: 4/7 = 0.571 >= 0.55.
		{"top_k then top_p renormalised", func(p *Params) { p.TopK = 2; p.TopP = 0.55 }, probs, []int32{3}},
		{"top_p 0.55 without top_k", func(p *Params) { p.TopP = 0.55 }, probs, []int32{2, 3}},
		// min-p: keep p >= min_p * 0.4.
		{"min_p 0.2", func(p *Params) { p.MinP = 0.2 }, probs, []int32{0, 1, 2, 3}},
		{"min_p 0.3", func(p *Params) { p.MinP = 0.3 }, probs, []int32{1, 2, 3}},
		{"min_p 0.6", func(p *Params) { p.MinP = 0.6 }, probs, []int32{2, 3}},
		{"min_p 1", func(p *Params) { p.MinP = 1 }, probs, []int32{3}},
		{"min_p 0.6 with top_k", func(p *Params) { p.MinP = 0.6; p.TopK = 3 }, probs, []int32{2, 3}},
		{"min_p after top_p", func(p *Params) { p.TopP = 0.75; p.MinP = 0.6 }, probs, []int32{2, 3}},
		{"top_p after min_p cut", func(p *Params) { p.TopP = 0.35; p.MinP = 0.3 }, probs, []int32{3}},
		{"bias promotes", func(p *Params) { p.TopK = 1; p.LogitBias = map[int32]float32{0: 3.5} }, lin, []int32{0}},
		{"bias bans", func(p *Params) { p.TopK = 2; p.LogitBias = map[int32]float32{3: negInf} }, lin, []int32{1, 2}},
		{"bias bans without top_k", func(p *Params) { p.LogitBias = map[int32]float32{3: negInf, 0: negInf} }, lin, []int32{1, 2}},
		{"everything banned", func(p *Params) { p.TopK = 2 }, []float32{negInf, nan}, nil},
		{"everything banned no top_k", func(p *Params) { p.TopP = 0.5 }, []float32{negInf, nan}, nil},
		{"+Inf wins", func(p *Params) { p.TopP = 0.5 }, []float32{1, posInf, 2, posInf}, []int32{1}},
		{"+Inf wins top_k", func(p *Params) { p.TopK = 3 }, []float32{1, posInf, 2, posInf}, []int32{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			tc.set(&p)
			s := mustNew(t, p, len(tc.logits))
			if got := survivors(s, tc.logits); !slices.Equal(got, tc.want) {
				t.Errorf("survivors = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTemperature(t *testing.T) {
	logits := []float32{0, 1, 2}
	for _, temp := range []float32{0.5, 1, 2} {
		p := params()
		p.Temperature = temp
		s := mustNew(t, p, len(logits))
		c := s.candidates(slices.Clone(logits))
		sum := s.weights(c)
		var z float64
		for _, l := range logits {
			z += math.Exp(float64(l) / float64(temp))
		}
		for _, tok := range c {
			want := math.Exp(float64(logits[tok.id])/float64(temp)) / z
			if got := float64(tok.p) / sum; math.Abs(got-want) > 1e-6 {
				t.Errorf("temp %v token %d: p = %v, want %v", temp, tok.id, got, want)
			}
		}
	}
}

func TestPenalties(t *testing.T) {
	logits := []float32{2, -2, 1, 0.5}
	hist := []int32{0, 1, 0}
	tests := []struct {
		name          string
		rep, freq, pr float32
		want          []float32
	}{
		{"repeat divides positive, multiplies negative", 2, 0, 0, []float32{1, -4, 1, 0.5}},
		{"frequency scales with count", 1, 0.5, 0, []float32{1, -2.5, 1, 0.5}},
		{"presence once per token", 1, 0, 0.25, []float32{1.75, -2.25, 1, 0.5}},
		{"all three", 2, 0.5, 0.25, []float32{-0.25, -4.75, 1, 0.5}},
		{"repeat < 1 rewards", 0.5, 0, 0, []float32{4, -1, 1, 0.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.RepeatLastN = 8
			p.RepeatPenalty, p.FrequencyPenalty, p.PresencePenalty = tc.rep, tc.freq, tc.pr
			s := mustNew(t, p, len(logits))
			for _, tok := range hist {
				s.Accept(tok)
			}
			// Twice, to check the counts survive the negation trick.
			for range 2 {
				got := slices.Clone(logits)
				s.applyPenalties(got)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("penalised logits = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestPenaltyWindow(t *testing.T) {
	p := params()
	p.RepeatLastN = 2
	p.FrequencyPenalty = 1
	s := mustNew(t, p, 4)
	for _, tok := range []int32{0, 1, 0, 2, -5, 99} { // out-of-range ids ignored
		s.Accept(tok)
	}
	// The window is now [0, 2]: token 1 has left it.
	got := []float32{0, 0, 0, 0}
	s.applyPenalties(got)
	if want := []float32{-1, 0, -1, 0}; !slices.Equal(got, want) {
		t.Errorf("after window slide: %v, want %v", got, want)
	}
	s.Reset()
	got = []float32{0, 0, 0, 0}
	s.applyPenalties(got)
	if want := []float32{0, 0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("after Reset: %v, want %v", got, want)
	}
	for _, c := range s.counts {
		if c != 0 {
			t.Fatalf("counts not cleared: %v", s.counts)
		}
	}
}

func TestPenaltySteersSampling(t *testing.T) {
	p := params()
	p.Temperature = 0
	p.RepeatLastN = 4
	p.RepeatPenalty = 1.5
	s := mustNew(t, p, 3)
	logits := []float32{3, 2.5, 0}
	if tok := s.Sample(slices.Clone(logits)); tok != 0 {
		t.Fatalf("first token %d, want 0", tok)
	}
	s.Accept(0)
	if tok := s.Sample(slices.Clone(logits)); tok != 1 { // 3/1.5 = 2 < 2.5
		t.Fatalf("penalised token %d, want 1", tok)
	}
}

func TestLogitBias(t *testing.T) {
	p := params()
	p.Temperature = 5 // nearly uniform, so a ban that leaked would show
	p.LogitBias = map[int32]float32{2: negInf, 0: 1}
	s := mustNew(t, p, 4)
	in := []float32{1, 1, 10, 1}
	l := slices.Clone(in)
	s.applyBias(l)
	if want := []float32{2, 1, negInf, 1}; !slices.Equal(l, want) {
		t.Errorf("biased logits = %v, want %v", l, want)
	}
	for i := range 10000 {
		if tok := s.Sample(slices.Clone(in)); tok == 2 {
			t.Fatalf("draw %d returned banned token", i)
		}
	}
	p.Temperature = 0
	g := mustNew(t, p, 4)
	if tok := g.Sample(slices.Clone(in)); tok != 0 {
		t.Errorf("greedy with ban = %d, want 0", tok)
	}
	// The Sampler must own a copy of the map.
	p.LogitBias[2] = 0
	if tok := g.Sample(slices.Clone(in)); tok != 0 {
		t.Errorf("mutating the map after New changed the sampler")
	}
}

func TestGreedy(t *testing.T) {
	tests := []struct {
		logits []float32
		want   int32
	}{
		{[]float32{1, 5, 5, 3}, 1},
		{[]float32{5, 5}, 0},
		{[]float32{-3, -1, -2}, 1},
		{[]float32{nan, 1, 2}, 2},
		{[]float32{negInf, negInf, -1e30}, 2},
		{[]float32{negInf, nan}, -1},
		{[]float32{1, posInf, posInf}, 1},
	}
	for _, temp := range []float32{0, -1} {
		p := params()
		p.Temperature = temp
		for _, tc := range tests {
			s := mustNew(t, p, len(tc.logits))
			if got := s.Sample(slices.Clone(tc.logits)); got != tc.want {
				t.Errorf("temp %v greedy(%v) = %d, want %d", temp, tc.logits, got, tc.want)
			}
		}
	}
}

// TestArgmaxMatchesNaive covers the lane-split argmax on lengths that are
// and are not multiples of four, with ties, NaNs and infinities.
func TestArgmaxMatchesNaive(t *testing.T) {
	naive := func(l []float32) int32 {
		best, bv := int32(-1), negInf
		for i, v := range l {
			if v > bv {
				best, bv = int32(i), v
			}
		}
		return best
	}
	r := rand.New(rand.NewPCG(3, 4))
	special := []float32{nan, negInf, posInf, 0, 3}
	for i := range 5000 {
		l := make([]float32, 1+r.IntN(23))
		for j := range l {
			if r.IntN(3) == 0 {
				l[j] = special[r.IntN(len(special))]
			} else {
				l[j] = float32(r.IntN(4))
			}
		}
		if got, want := argmax(l), naive(l); got != want {
			t.Fatalf("case %d argmax(%v) = %d, want %d", i, l, got, want)
		}
	}
}

func TestAllBannedReturnsMinusOne(t *testing.T) {
	for _, k := range []int{0, 2} {
		p := params()
		p.TopK = k
		p.TopP = 0.9
		s := mustNew(t, p, 3)
		if got := s.Sample([]float32{negInf, nan, negInf}); got != -1 {
			t.Errorf("top_k %d: Sample = %d, want -1", k, got)
		}
	}
}

func randomLogits(r *rand.Rand, n int, scale float64) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * scale)
	}
	return l
}

func TestTopK1IsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	pk := DefaultParams()
	pk.TopK, pk.Temperature, pk.Seed = 1, 1.5, 3
	pg := pk
	pg.Temperature = 0
	sk, sg := mustNew(t, pk, 1000), mustNew(t, pg, 1000)
	for i := range 200 {
		l := randomLogits(r, 1000, 2)
		if i%10 == 0 { // force ties
			l[10], l[500] = 100, 100
		}
		a, b := sk.Sample(slices.Clone(l)), sg.Sample(slices.Clone(l))
		if a != b {
			t.Fatalf("iteration %d: top_k=1 gave %d, greedy %d", i, a, b)
		}
	}
}

func sequence(t *testing.T, s *Sampler, logits []float32, n int) []int32 {
	out := make([]int32, n)
	buf := make([]float32, len(logits))
	for i := range out {
		copy(buf, logits)
		out[i] = s.Sample(buf)
		s.Accept(out[i])
	}
	return out
}

func TestSeedReproducible(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	logits := randomLogits(r, 5000, 1)
	p := DefaultParams()
	p.TopK = 0
	p.RepeatPenalty = 1.1 // penalties make the logits depend on history too
	p.Seed = 42
	a := sequence(t, mustNew(t, p, len(logits)), logits, 200)
	s := mustNew(t, p, len(logits))
	b := sequence(t, s, logits, 200)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different sequences:\n%v\n%v", a, b)
	}
	s.Reset()
	if c := sequence(t, s, logits, 200); !slices.Equal(a, c) {
		t.Fatalf("Reset did not restore the sequence")
	}
	p.Seed = 43
	if d := sequence(t, mustNew(t, p, len(logits)), logits, 200); slices.Equal(a, d) {
		t.Fatalf("seeds 42 and 43 gave the same sequence")
	}

	// A random seed is reported and can be replayed.
	p.Seed = SeedRandom
	sr := mustNew(t, p, len(logits))
	if sr.Seed() < 0 {
		t.Fatalf("Seed() = %d, want >= 0", sr.Seed())
	}
	e := sequence(t, sr, logits, 200)
	p.Seed = sr.Seed()
	if f := sequence(t, mustNew(t, p, len(logits)), logits, 200); !slices.Equal(e, f) {
		t.Fatalf("replaying Seed() did not reproduce the run")
	}
}

// TestDistribution checks that draws follow the softmax at the configured
// temperature. The seed is fixed so the test is deterministic; the
// tolerance is about 6 standard deviations of a frequency at n=200000.
func TestDistribution(t *testing.T) {
	probs := []float64{0.45, 0.25, 0.15, 0.1, 0.04, 0.01}
	logits := logProbs(probs...)
	const n = 200000
	for _, tc := range []struct {
		temp float32
		topK int
	}{{1, 0}, {1, 6 - 1}, {0.7, 0}, {2, 0}} {
		t.Run(fmt.Sprintf("temp=%v,top_k=%d", tc.temp, tc.topK), func(t *testing.T) {
			p := params()
			p.Temperature = tc.temp
			p.TopK = tc.topK
			p.Seed = 12345
			s := mustNew(t, p, len(logits))
			want := make([]float64, len(logits))
			var z float64
			k := len(logits)
			if tc.topK > 0 {
				k = tc.topK
			}
			for i := range k {
				want[i] = math.Pow(probs[i], 1/float64(tc.temp))
				z += want[i]
			}
			for i := range want {
				want[i] /= z
			}
			counts := make([]int, len(logits))
			buf := make([]float32, len(logits))
			for range n {
				copy(buf, logits)
				counts[s.Sample(buf)]++
			}
			for i, c := range counts {
				got := float64(c) / n
				tol := 6*math.Sqrt(want[i]*(1-want[i])/n) + 1e-9
				if math.Abs(got-want[i]) > tol {
					t.Errorf("token %d: frequency %.4f, want %.4f ± %.4f", i, got, want[i], tol)
				}
			}
		})
	}
}

// reference is a literal, full-sort implementation of the filter chain
// (as llama.cpp does it), used to cross-check the optimised paths.
func reference(p Params, logits []float32) []int32 {
	var c []token
	for i, v := range logits {
		if selectable(v) {
			c = append(c, token{logit: v, id: int32(i)})
		}
	}
	if len(c) == 0 {
		return nil
	}
	slices.SortFunc(c, byLogitDesc)
	if p.TopK > 0 && p.TopK < len(c) {
		c = c[:p.TopK]
	}
	if p.TopP < 1 {
		var sum float64
		ps := make([]float64, len(c))
		for i := range c {
			ps[i] = float64(float32(math.Exp(float64(c[i].logit) - float64(c[0].logit))))
			sum += ps[i]
		}
		var cum float64
		for i := range c {
			cum += ps[i]
			if cum >= float64(p.TopP)*sum {
				c = c[:i+1]
				break
			}
		}
	}
	if p.MinP > 0 {
		floor := float64(c[0].logit) + math.Log(float64(p.MinP))
		j := 1
		for j < len(c) && float64(c[j].logit) >= floor {
			j++
		}
		c = c[:j]
	}
	ids := make([]int32, len(c))
	for i := range c {
		ids[i] = c[i].id
	}
	slices.Sort(ids)
	return ids
}

func TestFiltersMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(99, 1))
	for i := range 1500 {
		n := 1 + r.IntN(3000)
		p := params()
		switch r.IntN(3) {
		case 0:
			p.TopK = 1 + r.IntN(n+5)
		case 1:
			p.TopK = 0
		}
		if r.IntN(4) > 0 {
			p.TopP = float32(0.05 + 0.949*r.Float64())
		}
		if r.IntN(2) == 0 {
			p.MinP = float32(r.Float64() * 0.5)
		}
		// Wide scales make the threshold search in nucleus take several
		// rounds; quantised logits produce ties.
		scale := []float64{0.1, 1, 5, 30}[r.IntN(4)]
		l := randomLogits(r, n, scale)
		if r.IntN(3) == 0 {
			for j := range l {
				l[j] = float32(math.Round(float64(l[j])))
			}
		}
		if r.IntN(4) == 0 {
			l[r.IntN(n)] = negInf
			l[r.IntN(n)] = nan
		}
		s := mustNew(t, p, n)
		got, want := survivors(s, l), reference(p, l)
		if !slices.Equal(got, want) {
			t.Fatalf("case %d (n=%d top_k=%d top_p=%v min_p=%v scale=%v): got %d survivors, want %d\ngot  %v\nwant %v",
				i, n, p.TopK, p.TopP, p.MinP, scale, len(got), len(want), got, want)
		}
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Params)
		n    int
	}{
		{"zero vocab", func(p *Params) {}, 0},
		{"NaN temperature", func(p *Params) { p.Temperature = nan }, 10},
		{"Inf temperature", func(p *Params) { p.Temperature = posInf }, 10},
		{"negative top_k", func(p *Params) { p.TopK = -1 }, 10},
		{"top_p 0", func(p *Params) { p.TopP = 0 }, 10},
		{"top_p > 1", func(p *Params) { p.TopP = 1.01 }, 10},
		{"top_p NaN", func(p *Params) { p.TopP = nan }, 10},
		{"min_p negative", func(p *Params) { p.MinP = -0.1 }, 10},
		{"min_p > 1", func(p *Params) { p.MinP = 2 }, 10},
		{"min_p NaN", func(p *Params) { p.MinP = nan }, 10},
		{"repeat_penalty 0", func(p *Params) { p.RepeatPenalty = 0 }, 10},
		{"repeat_penalty NaN", func(p *Params) { p.RepeatPenalty = nan }, 10},
		{"repeat_penalty Inf", func(p *Params) { p.RepeatPenalty = posInf }, 10},
		{"presence NaN", func(p *Params) { p.PresencePenalty = nan }, 10},
		{"frequency Inf", func(p *Params) { p.FrequencyPenalty = negInf }, 10},
		{"negative last_n", func(p *Params) { p.RepeatLastN = -1 }, 10},
		{"bias id too large", func(p *Params) { p.LogitBias = map[int32]float32{10: 1} }, 10},
		{"bias id negative", func(p *Params) { p.LogitBias = map[int32]float32{-1: 1} }, 10},
		{"bias +Inf", func(p *Params) { p.LogitBias = map[int32]float32{1: posInf} }, 10},
		{"bias NaN", func(p *Params) { p.LogitBias = map[int32]float32{1: nan} }, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.set(&p)
			s, err := New(p, tc.n)
			if err == nil || s != nil {
				t.Fatalf("New accepted %+v (n=%d)", p, tc.n)
			}
			if !errors.Is(err, ErrInvalidParams) {
				t.Errorf("error %v does not wrap ErrInvalidParams", err)
			}
		})
	}
	// Boundary values that must be accepted.
	ok := []func(*Params){
		func(p *Params) {},
		func(p *Params) { p.Temperature = 0 },
		func(p *Params) { p.Temperature = -1 },
		func(p *Params) { p.TopP = 1; p.MinP = 0; p.TopK = 0 },
		func(p *Params) { p.MinP = 1; p.TopK = 1000 },
		func(p *Params) { p.RepeatLastN = 0; p.PresencePenalty = -1 },
		func(p *Params) { p.LogitBias = map[int32]float32{0: negInf, 9: -3} },
	}
	for i, set := range ok {
		p := DefaultParams()
		set(&p)
		if _, err := New(p, 10); err != nil {
			t.Errorf("case %d: New(%+v) = %v", i, p, err)
		}
	}
}

func TestSampleWrongLengthPanics(t *testing.T) {
	s := mustNew(t, DefaultParams(), 4)
	defer func() {
		if recover() == nil {
			t.Error("no panic for short logits")
		}
	}()
	s.Sample(make([]float32, 3))
}

func TestZeroAllocs(t *testing.T) {
	const n = 32000
	r := rand.New(rand.NewPCG(5, 5))
	base := randomLogits(r, n, 3)
	withPen := func(p Params) Params {
		p.RepeatPenalty, p.FrequencyPenalty, p.PresencePenalty = 1.1, 0.1, 0.1
		p.LogitBias = map[int32]float32{3: negInf, 7: 2}
		return p
	}
	configs := map[string]Params{
		"default":        DefaultParams(),
		"penalties+bias": withPen(DefaultParams()),
		"top_p only":     {Temperature: 1, TopP: 0.9, RepeatPenalty: 1},
		"no filters":     {Temperature: 1, TopP: 1, RepeatPenalty: 1},
		"min_p only":     {Temperature: 1, TopP: 1, MinP: 0.05, RepeatPenalty: 1},
		"greedy":         withPen(Params{TopP: 1, RepeatPenalty: 1, RepeatLastN: 64}),
	}
	for name, p := range configs {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, p, n)
			buf := make([]float32, n)
			allocs := testing.AllocsPerRun(200, func() {
				copy(buf, base)
				s.Accept(s.Sample(buf))
			})
			if allocs != 0 {
				t.Errorf("%v allocations per Sample+Accept, want 0", allocs)
			}
		})
	}
}

func BenchmarkSample(b *testing.B) {
	topP := func(p Params) Params { p.TopK = 0; return p }
	pen := func(p Params) Params { p.RepeatPenalty = 1.1; return p }
	greedy := func(p Params) Params { p.Temperature = 0; return p }
	for _, n := range []int{32000, 151936} {
		for _, c := range []struct {
			name string
			p    Params
		}{
			{"default", DefaultParams()},
			{"penalties", pen(DefaultParams())},
			{"top_p_no_top_k", topP(DefaultParams())},
			{"greedy", greedy(DefaultParams())},
		} {
			b.Run(fmt.Sprintf("vocab=%d/%s", n, c.name), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, uint64(n)))
				// Roughly LLM-shaped: a broad bulk plus a few strong candidates.
				base := randomLogits(r, n, 2)
				for i := range 20 {
					base[r.IntN(n)] = float32(8 + i%5)
				}
				c.p.Seed = 1
				s := mustNew(b, c.p, n)
				buf := make([]float32, n)
				b.ReportAllocs()
				tokens := 0
				// The copy restores the logits that penalties modify; it is
				// included in the time (about 1-10 µs).
				for b.Loop() {
					copy(buf, base)
					s.Accept(s.Sample(buf))
					tokens++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(tokens), "ns/token")
			})
		}
	}
}
