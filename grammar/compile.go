// Package grammar constrains generation to a formal language: GBNF grammars
// (llama.cpp's syntax) and JSON Schemas compile into one byte-level grammar,
// and a Matcher masks the logits of every token whose bytes cannot continue
// a valid text.
//
// The grammar works on bytes, not codepoints: character classes are
// compiled to their UTF-8 byte sequences, so a token that ends in the
// middle of a multi-byte character is judged exactly, with no special case.
// The matcher is a pushdown automaton whose state is a set of stacks of
// grammar positions (several because the grammar may be ambiguous);
// the vocabulary is held in a byte trie that is walked against that state
// with pruning, so a token is only ever examined as far as its longest
// valid prefix, and tokens sharing a prefix share the work. Masks are
// cached per state (inside a JSON string every position has the same
// state).
//
// Everything fails closed: a grammar or schema that cannot be compiled is
// an error, never an unconstrained generation. Pathologically ambiguous
// grammars are bounded: a step that would keep more than maxStacks stacks
// or expand more than maxExpand times drops the excess (forbidding text,
// never allowing invalid text), one mask spends at most maskBudget
// expansion work on new transitions, and a grammar whose very start
// exceeds the limits is an error.
package grammar

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"unicode/utf8"
)

type elemKind uint8

const (
	eEnd   elemKind = iota // end of an alternative
	eBytes                 // one byte from a set
	eRef                   // a rule
)

type elem struct {
	kind elemKind
	arg  int32 // byte set index or rule id
}

type byteSet [4]uint64

func (s *byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *byteSet) add(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		s[c>>6] |= 1 << (c & 63)
	}
}

// Grammar is a compiled grammar, immutable and safe for concurrent use.
type Grammar struct {
	elems []elem
	sets  []byteSet
	rules [][]int32 // per rule: the start position of each alternative
	names []string
	root  int32
	start [][]int32 // the initial stacks
}

// Limits of a compiled grammar.
const (
	maxElems = 1 << 22
	maxRules = 1 << 20
)

// ErrGrammar is wrapped by every compile error.
var ErrGrammar = errors.New("invalid grammar")

type builder struct {
	g        *Grammar
	ids      map[string]int32
	defined  []bool
	setIDs   map[byteSet]int32
	classes  map[string]int32
	err      error
	nameLine map[string]int
	pending  []pendingRule
	rawRules []rawRule
}

// CompileGBNF compiles a grammar in llama.cpp's GBNF syntax; the start rule
// is "root".
func CompileGBNF(src string) (*Grammar, error) {
	rules, err := parseGBNF(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGrammar, err)
	}
	return compileRules(rules)
}

func compileRules(rules []ruleDef) (*Grammar, error) {
	b := &builder{g: &Grammar{}, ids: map[string]int32{}, setIDs: map[byteSet]int32{}, classes: map[string]int32{}, nameLine: map[string]int{}}
	// Declare every rule first so references resolve in any order.
	for _, r := range rules {
		if _, dup := b.ids[r.name]; dup {
			return nil, fmt.Errorf("%w: line %d: rule %q is defined twice", ErrGrammar, r.line, r.name)
		}
		b.newRule(r.name)
		b.nameLine[r.name] = r.line
	}
	root, ok := b.ids["root"]
	if !ok {
		return nil, fmt.Errorf("%w: no root rule", ErrGrammar)
	}
	for _, r := range rules {
		b.defineRule(b.ids[r.name], r.body)
		b.drain()
		if b.err != nil {
			return nil, b.err
		}
	}
	for name, id := range b.ids {
		if !b.defined[id] {
			return nil, fmt.Errorf("%w: rule %q is used but not defined", ErrGrammar, name)
		}
	}
	b.g.root = root
	if err := b.g.pruneUnproductive(); err != nil {
		return nil, err
	}
	if err := b.g.checkLeftRecursion(); err != nil {
		return nil, err
	}
	var truncated bool
	b.g.start, truncated = b.g.initial()
	if truncated {
		return nil, fmt.Errorf("%w: the grammar is too ambiguous (more than %d ways to start)", ErrGrammar, maxStacks)
	}
	if len(b.g.start) == 0 {
		return nil, fmt.Errorf("%w: the grammar matches nothing", ErrGrammar)
	}
	return b.g, nil
}

func (b *builder) newRule(name string) int32 {
	id := int32(len(b.g.rules))
	b.g.rules = append(b.g.rules, nil)
	b.g.names = append(b.g.names, name)
	b.defined = append(b.defined, false)
	if name != "" {
		b.ids[name] = id
	}
	if len(b.g.rules) > maxRules && b.err == nil {
		b.err = fmt.Errorf("%w: more than %d rules", ErrGrammar, maxRules)
	}
	return id
}

// defineRule sets the alternatives of rule id from n.
func (b *builder) defineRule(id int32, n *node) {
	alts := []*node{n}
	if n.kind == nAlt {
		alts = n.children
	}
	for _, a := range alts {
		if b.err != nil {
			return
		}
		b.g.rules[id] = append(b.g.rules[id], int32(len(b.g.elems)))
		b.emit(a)
		b.push(elem{kind: eEnd})
	}
	b.defined[id] = true
}

// drain defines the anonymous rules made while emitting a rule.
func (b *builder) drain() {
	for b.err == nil && (len(b.pending) > 0 || len(b.rawRules) > 0) {
		if n := len(b.rawRules); n > 0 {
			r := b.rawRules[n-1]
			b.rawRules = b.rawRules[:n-1]
			for _, alt := range r.alts {
				b.g.rules[r.id] = append(b.g.rules[r.id], int32(len(b.g.elems)))
				for _, e := range alt {
					b.push(e)
				}
				b.push(elem{kind: eEnd})
			}
			b.defined[r.id] = true
			continue
		}
		n := len(b.pending)
		p := b.pending[n-1]
		b.pending = b.pending[:n-1]
		b.defineRule(p.id, p.n)
	}
}

func (b *builder) push(e elem) {
	if len(b.g.elems) >= maxElems {
		if b.err == nil {
			b.err = fmt.Errorf("%w: the grammar is too large (more than %d elements)", ErrGrammar, maxElems)
		}
		return
	}
	b.g.elems = append(b.g.elems, e)
}

func (b *builder) set(s byteSet) int32 {
	if id, ok := b.setIDs[s]; ok {
		return id
	}
	id := int32(len(b.g.sets))
	b.g.sets = append(b.g.sets, s)
	b.setIDs[s] = id
	return id
}

// anon makes an anonymous rule from n and returns its id. Its elements are
// emitted after the current alternative's, which is fine: positions only
// need to be contiguous within one alternative, so the current alternative
// is finished first by deferring.
func (b *builder) anon(n *node) int32 {
	id := b.newRule("")
	b.pending = append(b.pending, pendingRule{id, n})
	return id
}

type pendingRule struct {
	id int32
	n  *node
}

func (b *builder) emit(n *node) {
	if b.err != nil {
		return
	}
	switch n.kind {
	case nLiteral:
		for i := 0; i < len(n.lit); i++ {
			var s byteSet
			s.add(n.lit[i], n.lit[i])
			b.push(elem{kind: eBytes, arg: b.set(s)})
		}
	case nClass, nAny:
		b.emitClass(n)
	case nRef:
		if n.isID {
			b.push(elem{kind: eRef, arg: n.ref})
			return
		}
		id, ok := b.ids[n.name]
		if !ok {
			b.err = fmt.Errorf("%w: rule %q is used but not defined", ErrGrammar, n.name)
			return
		}
		b.push(elem{kind: eRef, arg: id})
	case nSeq:
		for _, c := range n.children {
			b.emit(c)
		}
	case nAlt:
		b.push(elem{kind: eRef, arg: b.anon(n)})
	case nRepeat:
		x := n.children[0]
		// A repeated item that is more than one element becomes a rule,
		// so that each copy is a single reference.
		if !(x.kind == nRef || x.kind == nLiteral && len(x.lit) == 1 || x.kind == nClass && asciiOnly(x) || x.kind == nAny) {
			x = &node{kind: nRef, isID: true, ref: b.anon(x)}
		}
		for i := 0; i < n.min && b.err == nil; i++ {
			b.emit(x)
		}
		switch {
		case n.max < 0:
			// R ::= x R | ε
			r := b.newRule("")
			b.pending = append(b.pending, pendingRule{r, &node{kind: nAlt, children: []*node{{kind: nSeq, children: []*node{x, {kind: nRef, ref: r, isID: true}}}, {kind: nSeq}}}})
			b.push(elem{kind: eRef, arg: r})
		case n.max > n.min:
			// R1 ::= x | ε, Rk ::= x R(k-1) | ε
			var prev *node
			var r int32
			for k := 0; k < n.max-n.min; k++ {
				r = b.newRule("")
				seq := []*node{x}
				if prev != nil {
					seq = append(seq, prev)
				}
				b.pending = append(b.pending, pendingRule{r, &node{kind: nAlt, children: []*node{{kind: nSeq, children: seq}, {kind: nSeq}}}})
				prev = &node{kind: nRef, ref: r, isID: true}
				if b.err != nil {
					return
				}
			}
			b.push(elem{kind: eRef, arg: r})
		}
	}
}

func asciiOnly(n *node) bool {
	if n.negated {
		return false
	}
	for _, r := range n.ranges {
		if r.hi > 0x7f {
			return false
		}
	}
	return true
}

// classRanges returns the codepoints of a class, sorted and merged, without
// surrogates.
func classRanges(n *node) []cpRange {
	var rs []cpRange
	if n.kind == nAny {
		rs = []cpRange{{0, utf8.MaxRune}}
	} else {
		rs = slices.Clone(n.ranges)
		sort.Slice(rs, func(i, j int) bool { return rs[i].lo < rs[j].lo })
		var merged []cpRange
		for _, r := range rs {
			if len(merged) > 0 && r.lo <= merged[len(merged)-1].hi+1 {
				merged[len(merged)-1].hi = max(merged[len(merged)-1].hi, r.hi)
				continue
			}
			merged = append(merged, r)
		}
		rs = merged
		if n.negated {
			var comp []cpRange
			next := rune(0)
			for _, r := range rs {
				if r.lo > next {
					comp = append(comp, cpRange{next, r.lo - 1})
				}
				next = r.hi + 1
			}
			if next <= utf8.MaxRune {
				comp = append(comp, cpRange{next, utf8.MaxRune})
			}
			rs = comp
		}
	}
	// Remove surrogates.
	var out []cpRange
	for _, r := range rs {
		if r.hi < 0xD800 || r.lo > 0xDFFF {
			out = append(out, r)
			continue
		}
		if r.lo < 0xD800 {
			out = append(out, cpRange{r.lo, 0xD7FF})
		}
		if r.hi > 0xDFFF {
			out = append(out, cpRange{0xE000, r.hi})
		}
	}
	return out
}

func (b *builder) emitClass(n *node) {
	rs := classRanges(n)
	if len(rs) == 0 {
		b.err = fmt.Errorf("%w: a character class matches nothing", ErrGrammar)
		return
	}
	key := fmt.Sprint(rs)
	if id, ok := b.classes[key]; ok {
		b.push(elem{kind: eRef, arg: id})
		return
	}
	var seqs [][]byteRange
	for _, r := range rs {
		seqs = utf8Sequences(seqs, r.lo, r.hi)
	}
	if len(seqs) > 0 && allSingle(seqs) {
		var s byteSet
		for _, q := range seqs {
			s.add(q[0].lo, q[0].hi)
		}
		b.push(elem{kind: eBytes, arg: b.set(s)})
		return
	}
	id := b.newRule("")
	b.classes[key] = id
	// Group the one-byte sequences into one alternative.
	var ascii byteSet
	hasASCII := false
	var alts [][]elem
	for _, q := range seqs {
		if len(q) == 1 {
			ascii.add(q[0].lo, q[0].hi)
			hasASCII = true
			continue
		}
		var alt []elem
		for _, br := range q {
			var s byteSet
			s.add(br.lo, br.hi)
			alt = append(alt, elem{kind: eBytes, arg: b.set(s)})
		}
		alts = append(alts, alt)
	}
	if hasASCII {
		alts = append([][]elem{{{kind: eBytes, arg: b.set(ascii)}}}, alts...)
	}
	b.rawRules = append(b.rawRules, rawRule{id, alts})
	b.push(elem{kind: eRef, arg: id})
}

type rawRule struct {
	id   int32
	alts [][]elem
}

func allSingle(seqs [][]byteRange) bool {
	for _, q := range seqs {
		if len(q) != 1 {
			return false
		}
	}
	return true
}

type byteRange struct{ lo, hi byte }

// utf8Sequences appends the byte-range sequences whose concatenations are
// exactly the UTF-8 encodings of [lo, hi] (no surrogates inside).
func utf8Sequences(out [][]byteRange, lo, hi rune) [][]byteRange {
	if lo > hi {
		return out
	}
	for _, lim := range []rune{0x7f, 0x7ff, 0xffff} {
		if lo <= lim && hi > lim {
			out = utf8Sequences(out, lo, lim)
			return utf8Sequences(out, lim+1, hi)
		}
	}
	if hi <= 0x7f {
		return append(out, []byteRange{{byte(lo), byte(hi)}})
	}
	n := utf8.RuneLen(lo)
	for i := 1; i < n; i++ {
		m := rune(1)<<(6*i) - 1
		if lo&^m != hi&^m {
			if lo&m != 0 {
				out = utf8Sequences(out, lo, lo|m)
				return utf8Sequences(out, (lo|m)+1, hi)
			}
			if hi&m != m {
				out = utf8Sequences(out, lo, (hi&^m)-1)
				return utf8Sequences(out, hi&^m, hi)
			}
		}
	}
	var a, z [4]byte
	utf8.EncodeRune(a[:], lo)
	utf8.EncodeRune(z[:], hi)
	seq := make([]byteRange, n)
	for i := range seq {
		seq[i] = byteRange{a[i], z[i]}
	}
	return append(out, seq)
}

// checkLeftRecursion rejects rules that can reach themselves without
// consuming a byte: the matcher's expansion would never end.
func (g *Grammar) checkLeftRecursion() error {
	n := len(g.rules)
	nullable := make([]bool, n)
	for changed := true; changed; {
		changed = false
		for r := range g.rules {
			if nullable[r] {
				continue
			}
			for _, start := range g.rules[r] {
				if g.altNullable(start, nullable) {
					nullable[r] = true
					changed = true
					break
				}
			}
		}
	}
	// Edges r -> s when s can be expanded at r's first position.
	state := make([]uint8, n) // 0 new, 1 on path, 2 done
	var visit func(r int32) error
	visit = func(r int32) error {
		state[r] = 1
		for _, start := range g.rules[r] {
			for p := start; g.elems[p].kind != eEnd; p++ {
				e := g.elems[p]
				if e.kind == eBytes {
					break
				}
				switch state[e.arg] {
				case 1:
					return fmt.Errorf("%w: rule %q is left-recursive (it can reach itself without consuming input)", ErrGrammar, g.ruleName(e.arg))
				case 0:
					if err := visit(e.arg); err != nil {
						return err
					}
				}
				if !nullable[e.arg] {
					break
				}
			}
		}
		state[r] = 2
		return nil
	}
	for r := range g.rules {
		if state[r] == 0 {
			if err := visit(int32(r)); err != nil {
				return err
			}
		}
	}
	return nil
}

// pruneUnproductive removes the alternatives that can never finish (they
// need an infinite text), so that the matcher never walks into a dead end;
// a root that can never finish is an error.
func (g *Grammar) pruneUnproductive() error {
	productive := make([]bool, len(g.rules))
	altOK := func(p int32) bool {
		for ; g.elems[p].kind != eEnd; p++ {
			if e := g.elems[p]; e.kind == eRef && !productive[e.arg] {
				return false
			}
		}
		return true
	}
	for changed := true; changed; {
		changed = false
		for r, alts := range g.rules {
			if productive[r] {
				continue
			}
			for _, a := range alts {
				if altOK(a) {
					productive[r] = true
					changed = true
					break
				}
			}
		}
	}
	if !productive[g.root] {
		return fmt.Errorf("%w: the grammar has no finite sentence (every text would have to go on forever)", ErrGrammar)
	}
	for r, alts := range g.rules {
		kept := alts[:0]
		for _, a := range alts {
			if altOK(a) {
				kept = append(kept, a)
			}
		}
		g.rules[r] = kept
	}
	return nil
}

func (g *Grammar) ruleName(r int32) string {
	if g.names[r] != "" {
		return g.names[r]
	}
	return fmt.Sprintf("(anonymous %d)", r)
}

func (g *Grammar) altNullable(p int32, nullable []bool) bool {
	for ; g.elems[p].kind != eEnd; p++ {
		e := g.elems[p]
		if e.kind == eBytes || !nullable[e.arg] {
			return false
		}
	}
	return true
}
