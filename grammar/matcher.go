package grammar

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// maxStacks bounds the matcher's state: a grammar so ambiguous that more
// stacks are alive at once is refused at that point (Accept fails, Mask
// allows only what the first maxStacks stacks allow).
const maxStacks = 512

// maxExpand bounds the expansion work of one step: an adversarial,
// highly ambiguous grammar could otherwise take exponential time. Past it,
// the remaining alternatives are dropped, which can only forbid text,
// never allow invalid text.
const maxExpand = 1 << 13

// expander normalizes stacks for one step, visiting each intermediate
// stack once.
type expander struct {
	g    *Grammar
	seen map[string]bool
	key  []byte
	work int
	// truncated: the work or stack limit cut the expansion short.
	truncated bool
}

// normalize expands the stack's top until it is a byte element (or the
// stack is empty: the grammar is complete) and appends the results to out.
func (x *expander) normalize(out [][]int32, st []int32) [][]int32 {
	g := x.g
	for {
		x.work++
		if x.work > maxExpand || len(out) > maxStacks {
			x.truncated = true
			return out
		}
		if len(st) == 0 {
			return append(out, st)
		}
		p := st[len(st)-1]
		e := g.elems[p]
		switch e.kind {
		case eBytes:
			return append(out, st)
		case eEnd:
			st = st[:len(st)-1]
			continue
		}
		// A ref: expand each alternative, once per distinct stack.
		x.key = stackKey(x.key[:0], st)
		if x.seen == nil {
			x.seen = map[string]bool{}
		}
		if x.seen[string(x.key)] {
			return out
		}
		x.seen[string(x.key)] = true
		base := st[: len(st)-1 : len(st)-1]
		if g.elems[p+1].kind != eEnd {
			base = append(base, p+1)
		}
		alts := g.rules[e.arg]
		if len(alts) == 0 {
			return out
		}
		for i, a := range alts {
			ns := make([]int32, len(base), len(base)+4)
			copy(ns, base)
			ns = append(ns, a)
			if i == len(alts)-1 {
				st = ns
				break
			}
			out = x.normalize(out, ns)
		}
	}
}

// initial builds the initial stacks (root's alternatives); truncated
// reports a grammar too ambiguous to expand within the limits.
func (g *Grammar) initial() (stacks [][]int32, truncated bool) {
	var out [][]int32
	x := &expander{g: g}
	for _, a := range g.rules[g.root] {
		out = x.normalize(out, []int32{a})
	}
	return dedup(out), x.truncated
}

// step advances every stack by byte c.
func (g *Grammar) step(stacks [][]int32, c byte) [][]int32 {
	out, _ := g.stepWork(stacks, c)
	return out
}

// stepWork is step, also returning the expansion work done.
func (g *Grammar) stepWork(stacks [][]int32, c byte) ([][]int32, int) {
	var out [][]int32
	x := &expander{g: g}
	for _, st := range stacks {
		if len(st) == 0 {
			continue
		}
		p := st[len(st)-1]
		if !g.sets[g.elems[p].arg].has(c) {
			continue
		}
		ns := make([]int32, len(st)-1, len(st)+3)
		copy(ns, st)
		if g.elems[p+1].kind != eEnd {
			ns = append(ns, p+1)
		}
		out = x.normalize(out, ns)
	}
	if len(out) > 1 {
		out = dedup(out)
	}
	return out, x.work + len(stacks)
}

func stackKey(buf []byte, st []int32) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(st)))
	for _, p := range st {
		buf = binary.AppendUvarint(buf, uint64(p))
	}
	return buf
}

func dedup(stacks [][]int32) [][]int32 {
	if len(stacks) < 2 {
		return stacks
	}
	seen := make(map[string]bool, len(stacks))
	out := stacks[:0]
	var buf []byte
	for _, st := range stacks {
		buf = stackKey(buf[:0], st)
		if seen[string(buf)] {
			continue
		}
		seen[string(buf)] = true
		out = append(out, st)
	}
	if len(out) > maxStacks {
		out = out[:maxStacks]
	}
	return out
}

// stateKey identifies a set of stacks independently of their order.
func stateKey(stacks [][]int32) string {
	keys := make([]string, len(stacks))
	for i, st := range stacks {
		keys[i] = string(stackKey(nil, st))
	}
	sort.Strings(keys)
	n := 0
	for _, k := range keys {
		n += len(k)
	}
	b := make([]byte, 0, n)
	for _, k := range keys {
		b = append(b, k...)
	}
	return string(b)
}

// Vocab is a model's vocabulary prepared for matching: each token's bytes
// in a trie. Build it once per model and share it between matchers.
type Vocab struct {
	tokens [][]byte
	eog    []bool

	// trie: node i has edges [first[i], first[i]+count[i]) and the tokens
	// toks[tokAt[i]:tokAt[i+1]] end at it.
	first    []int32
	count    []int32
	edgeByte []byte
	edgeNode []int32
	tokAt    []int32
	toks     []int32
}

// NewVocab prepares tokens (each token's bytes as the detokenizer writes
// them; nil or empty for tokens that must never be generated under a
// constraint, such as control tokens) and the end-of-generation ids.
func NewVocab(tokens [][]byte, eog []int32) *Vocab {
	v := &Vocab{tokens: tokens, eog: make([]bool, len(tokens))}
	for _, id := range eog {
		if id >= 0 && int(id) < len(tokens) {
			v.eog[id] = true
		}
	}
	var ids []int32
	for i, t := range tokens {
		if len(t) > 0 && !v.eog[i] {
			ids = append(ids, int32(i))
		}
	}
	sort.Slice(ids, func(a, b int) bool { return string(tokens[ids[a]]) < string(tokens[ids[b]]) })
	v.build(ids, 0)
	v.tokAt = append(v.tokAt, int32(len(v.toks)))
	return v
}

// build adds the node for ids (sorted, sharing their first depth bytes)
// and returns its index.
func (v *Vocab) build(ids []int32, depth int) int32 {
	n := int32(len(v.first))
	v.first = append(v.first, 0)
	v.count = append(v.count, 0)
	v.tokAt = append(v.tokAt, int32(len(v.toks)))
	i := 0
	for i < len(ids) && len(v.tokens[ids[i]]) == depth {
		v.toks = append(v.toks, ids[i])
		i++
	}
	// Group the rest by their byte at depth.
	type group struct {
		b      byte
		lo, hi int
	}
	var groups []group
	for i < len(ids) {
		b := v.tokens[ids[i]][depth]
		j := i
		for j < len(ids) && v.tokens[ids[j]][depth] == b {
			j++
		}
		groups = append(groups, group{b, i, j})
		i = j
	}
	first := int32(len(v.edgeByte))
	v.first[n], v.count[n] = first, int32(len(groups))
	for _, g := range groups {
		v.edgeByte = append(v.edgeByte, g.b)
		v.edgeNode = append(v.edgeNode, 0)
	}
	for k, g := range groups {
		child := v.build(ids[g.lo:g.hi], depth+1)
		v.edgeNode[first+int32(k)] = child
	}
	return n
}

// NVocab is the number of tokens.
func (v *Vocab) NVocab() int { return len(v.tokens) }

// dfa lazily turns the pushdown automaton into a deterministic one over
// the stack sets actually met: each set of stacks is interned as a state,
// and its transitions are computed once per byte. Inside a JSON string
// almost every byte leads back to the same state, so walking the vocabulary
// trie costs one table lookup per trie edge.
type dfa struct {
	g      *Grammar
	states []*dstate
	ids    map[string]int32
	// budget, when positive, bounds the expansion work of new
	// transitions during one mask; past it, unknown transitions count as
	// dead (not cached): the mask then forbids more than it must, never
	// less. It only binds for pathological, highly ambiguous grammars.
	budget  int
	limited bool
}

// maskBudget is the expansion work one mask may spend on new transitions.
const maskBudget = 1 << 22

type dstate struct {
	stacks   [][]int32
	next     [256]int32 // unknown, dead, or a state id
	complete bool       // an empty stack: the text so far is a sentence
	final    bool       // only the empty stack: nothing can follow
}

const (
	unknown = -2
	dead    = -1
	// maxStates bounds the cache; past it the cache starts over.
	maxStates = 1 << 15
)

func newDFA(g *Grammar) *dfa {
	return &dfa{g: g, ids: map[string]int32{}}
}

func (d *dfa) intern(stacks [][]int32) int32 {
	if len(stacks) == 0 {
		return dead
	}
	key := stateKey(stacks)
	if id, ok := d.ids[key]; ok {
		return id
	}
	st := &dstate{stacks: stacks, final: true}
	for i := range st.next {
		st.next[i] = unknown
	}
	for _, s := range stacks {
		if len(s) == 0 {
			st.complete = true
		} else {
			st.final = false
		}
	}
	id := int32(len(d.states))
	d.states = append(d.states, st)
	d.ids[key] = id
	return id
}

func (d *dfa) step(id int32, c byte) int32 {
	st := d.states[id]
	if n := st.next[c]; n != unknown {
		return n
	}
	if d.limited && d.budget <= 0 {
		return dead
	}
	stacks, work := d.g.stepWork(st.stacks, c)
	d.budget -= work
	n := d.intern(stacks)
	st.next[c] = n
	return n
}

// Matcher follows one generation through a grammar. Not safe for
// concurrent use.
type Matcher struct {
	g     *Grammar
	v     *Vocab
	dfa   *dfa
	state int32
	ended bool // an end-of-generation token was accepted
	masks map[int32][]uint64
}

// NewMatcher prepares tokens (see NewVocab) and starts a matcher. Prefer
// Matcher with a shared Vocab when generating more than once.
func (g *Grammar) NewMatcher(tokens [][]byte, eog []int32) *Matcher {
	return g.Matcher(NewVocab(tokens, eog))
}

// Matcher starts matching at the grammar's beginning.
func (g *Grammar) Matcher(v *Vocab) *Matcher {
	d := newDFA(g)
	return &Matcher{g: g, v: v, dfa: d, state: d.intern(g.start), masks: map[int32][]uint64{}}
}

// Complete reports whether the text so far is a whole sentence of the
// grammar (an end-of-generation token is allowed).
func (m *Matcher) Complete() bool { return m.dfa.states[m.state].complete }

// Done reports whether generation must stop: an end-of-generation token
// was accepted, or the text is complete and nothing can follow it.
func (m *Matcher) Done() bool { return m.ended || m.dfa.states[m.state].final }

// reset empties the caches when they grow too large, keeping the current
// state.
func (m *Matcher) reset() {
	if len(m.dfa.states) < maxStates {
		return
	}
	cur := m.dfa.states[m.state].stacks
	m.dfa = newDFA(m.g)
	m.state = m.dfa.intern(cur)
	clear(m.masks)
}

// advance steps the current state over text; it returns dead on failure.
func (m *Matcher) advance(text []byte) int32 {
	s := m.state
	for _, c := range text {
		if s = m.dfa.step(s, c); s == dead {
			return dead
		}
	}
	return s
}

// AcceptBytes advances over text (a prompt prefix, a forced string).
func (m *Matcher) AcceptBytes(text []byte) error {
	if m.ended {
		return fmt.Errorf("grammar: the generation has ended")
	}
	m.reset()
	s := m.advance(text)
	if s == dead {
		return fmt.Errorf("grammar: %q does not fit the grammar", text)
	}
	m.state = s
	return nil
}

// Accept advances over a sampled token. A token the grammar does not allow
// is an error and leaves the matcher unchanged.
func (m *Matcher) Accept(token int32) error {
	if token < 0 || int(token) >= len(m.v.tokens) {
		return fmt.Errorf("grammar: token %d is out of range", token)
	}
	if m.ended {
		return fmt.Errorf("grammar: the generation has ended")
	}
	if m.v.eog[token] {
		if !m.Complete() {
			return fmt.Errorf("grammar: end of generation before the grammar is complete")
		}
		m.ended = true
		return nil
	}
	t := m.v.tokens[token]
	if len(t) == 0 {
		return fmt.Errorf("grammar: token %d has no text", token)
	}
	m.reset()
	s := m.advance(t)
	if s == dead {
		return fmt.Errorf("grammar: token %d (%q) does not fit the grammar", token, t)
	}
	m.state = s
	return nil
}

// Allowed returns the allowed tokens as a bitset (bit i of word i/64).
// The slice is shared with the matcher's cache: do not modify it.
func (m *Matcher) Allowed() []uint64 {
	if m.ended {
		return make([]uint64, (len(m.v.tokens)+63)/64)
	}
	m.reset()
	if bits, ok := m.masks[m.state]; ok {
		return bits
	}
	bits := make([]uint64, (len(m.v.tokens)+63)/64)
	m.dfa.budget, m.dfa.limited = maskBudget, true
	m.walk(0, m.state, bits)
	m.dfa.limited = false
	if m.Complete() {
		for i, e := range m.v.eog {
			if e {
				bits[i>>6] |= 1 << (i & 63)
			}
		}
	}
	m.masks[m.state] = bits
	return bits
}

func (m *Matcher) walk(node, state int32, bits []uint64) {
	v := m.v
	for e := v.first[node]; e < v.first[node]+v.count[node]; e++ {
		next := m.dfa.step(state, v.edgeByte[e])
		if next == dead {
			continue
		}
		child := v.edgeNode[e]
		for _, t := range v.toks[v.tokAt[child]:v.tokAt[child+1]] {
			bits[t>>6] |= 1 << (t & 63)
		}
		if v.count[child] > 0 {
			m.walk(child, next, bits)
		}
	}
}

// Mask sets the logits of disallowed tokens to -Inf (also those past the
// vocabulary's end).
func (m *Matcher) Mask(logits []float32) {
	bits := m.Allowed()
	ninf := float32(math.Inf(-1))
	for i := range logits {
		if i >= len(m.v.tokens) || bits[i>>6]&(1<<(i&63)) == 0 {
			logits[i] = ninf
		}
	}
}

// Clone returns an independent copy of the matcher (the grammar and
// vocabulary are shared; the caches start empty).
func (m *Matcher) Clone() *Matcher {
	d := newDFA(m.g)
	return &Matcher{g: m.g, v: m.v, dfa: d, state: d.intern(m.dfa.states[m.state].stacks), ended: m.ended, masks: map[int32][]uint64{}}
}
