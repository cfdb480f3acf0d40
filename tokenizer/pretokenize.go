package tokenizer

// Pre-tokenizers for byte-level BPE vocabularies, behaving like llama.cpp's
// unicode_regex_split (src/unicode.cpp) for every tokenizer.ggml.pre value that
// llama-vocab.cpp knows.
//
// llama.cpp applies a list of regexes one after the other. Each regex splits every
// piece produced so far into its matches and the text between them (both are kept).
// Two regexes have hand-written splitters in llama.cpp (GPT-2's and Llama-3's); the
// rest go through std::regex, either on the raw code points (std::wregex, with every
// non-ASCII whitespace replaced by U+000B) or, when the regex uses \p{..}, on a
// "collapsed" text in which every non-ASCII code point becomes one byte standing for
// its category. Go's regexp has no lookahead and different class semantics, so every
// pattern is hand-coded here as a matcher with the exact std::regex (ECMAScript,
// leftmost alternative, greedy with backtracking) result.
//
// Consequences of the collapsed representation that are reproduced here:
//   - \p{L}, \p{N}, \p{P}, \p{M} follow the Unicode general category, except that a
//     whitespace code point is never anything but whitespace;
//   - \p{S} on ASCII is only $+<=>^`| ('~' is not a symbol there);
//   - \s is ASCII whitespace plus llama.cpp's whitespace set.

import (
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Code point classes, as llama.cpp's unicode_cpt_flags (from Python's regex module).
// Exactly one category bit is set for every code point; cfSpace may be added.
const (
	cfNumber uint8 = 1 << iota // \p{N}
	cfLetter                   // \p{L}
	cfPunct                    // \p{P}
	cfSymbol                   // \p{S}
	cfMark                     // \p{M}
	cfOther                    // \p{C}, \p{Z}
	cfSpace                    // llama.cpp whitespace (the Unicode White_Space property)
)

var (
	bmpFlagsOnce sync.Once
	bmpFlags     []uint8
)

func initFlags() {
	bmpFlagsOnce.Do(func() {
		t := make([]uint8, 0x10000)
		for r := range t {
			t[r] = computeFlags(rune(r))
		}
		bmpFlags = t
	})
}

func computeFlags(r rune) uint8 {
	var f uint8
	switch {
	case unicode.IsLetter(r):
		f = cfLetter
	case unicode.IsNumber(r):
		f = cfNumber
	case unicode.IsPunct(r):
		f = cfPunct
	case unicode.IsSymbol(r):
		f = cfSymbol
	case unicode.IsMark(r):
		f = cfMark
	// llama.cpp's tables are Unicode 15.1, Go's are 15.0. The code points that 15.1
	// assigned (CJK Extension I and a few ideographic description characters).
	case r >= 0x2EBF0 && r <= 0x2EE5D:
		f = cfLetter
	case r >= 0x2FFC && r <= 0x2FFF, r == 0x31EF:
		f = cfSymbol
	default:
		f = cfOther
	}
	if isSpaceCP(r) {
		f |= cfSpace
	}
	return f
}

// isSpaceCP is llama.cpp's whitespace set: \t \n \v \f \r, space, U+0085, U+00A0,
// U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
func isSpaceCP(r rune) bool {
	switch {
	case r == ' ' || (r >= '\t' && r <= '\r'):
		return true
	case r < 0x85:
		return false
	}
	return unicode.Is(unicode.White_Space, r)
}

func cpFlags(r rune) uint8 {
	if r >= 0 && r < 0x10000 {
		return bmpFlags[r]
	}
	if r > unicode.MaxRune || r < 0 {
		return cfOther
	}
	return computeFlags(r)
}

// preCtx holds the code points of the text being split and their classes.
type preCtx struct {
	cps []rune
	fl  []uint8
}

func (t *preCtx) load(text string) {
	t.cps = t.cps[:0]
	t.fl = t.fl[:0]
	if utf8.ValidString(text) {
		for _, r := range text {
			t.cps = append(t.cps, r)
			t.fl = append(t.fl, cpFlags(r))
		}
		return
	}
	for i := 0; i < len(text); {
		r, n := decodeLlama(text[i:])
		t.cps = append(t.cps, r)
		t.fl = append(t.fl, cpFlags(r))
		i += n
	}
}

// decodeLlama decodes one code point the way llama.cpp's unicode_cpts_from_utf8 does:
// the lead byte gives the length, only the continuation bytes' top bits are checked
// (so overlong forms and surrogates decode), and an invalid sequence becomes U+FFFD
// consuming one byte.
func decodeLlama(s string) (rune, int) {
	c := s[0]
	need := 0
	switch {
	case c < 0x80:
		return rune(c), 1
	case c&0x40 == 0:
		return utf8.RuneError, 1
	case c&0x20 == 0:
		need = 1
	case c&0x10 == 0:
		need = 2
	case c&0x08 == 0:
		need = 3
	default:
		return utf8.RuneError, 1
	}
	if len(s) <= need {
		return utf8.RuneError, 1
	}
	r := rune(c) & (0x3f >> need)
	for k := 1; k <= need; k++ {
		if s[k]&0xc0 != 0x80 {
			return utf8.RuneError, 1
		}
		r = r<<6 | rune(s[k]&0x3f)
	}
	return r, need + 1
}

// appendCP is llama.cpp's unicode_cpt_to_utf8 (surrogates are encoded as they are).
// Code points above U+10FFFF, for which llama.cpp throws, become U+FFFD.
func appendCP(b []byte, r rune) []byte {
	switch {
	case r < 0:
		return utf8.AppendRune(b, utf8.RuneError)
	case r < 0x80:
		return append(b, byte(r))
	case r < 0x800:
		return append(b, 0xc0|byte(r>>6), 0x80|byte(r)&0x3f)
	case r < 0x10000:
		return append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
	case r <= unicode.MaxRune:
		return append(b, 0xf0|byte(r>>18), 0x80|byte(r>>12)&0x3f, 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
	}
	return utf8.AppendRune(b, utf8.RuneError)
}

// splitFn splits the piece [s, e) and appends the end offset of every resulting piece
// (in order, the last one being e).
type splitFn func(t *preCtx, s, e int, out []int32) []int32

// matchFn reports the end of the match of a regex that starts exactly at p, or -1.
// e is the end of the current piece.
type matchFn func(t *preCtx, p, e int) int

// regexPass turns a matcher into a splitter with std::regex_iterator semantics: find the
// leftmost match, keep the unmatched text before it as one piece, continue after it.
func regexPass(m matchFn) splitFn {
	return func(t *preCtx, s, e int, out []int32) []int32 {
		last := s
		for p := s; p < e; {
			q := m(t, p, e)
			if q <= p {
				p++
				continue
			}
			if p > last {
				out = append(out, int32(p))
			}
			out = append(out, int32(q))
			last, p = q, q
		}
		if last < e {
			out = append(out, int32(e))
		}
		return out
	}
}

// preTokenizer is the list of regex passes for one tokenizer.ggml.pre value.
type preTokenizer struct {
	name   string
	passes []splitFn
}

// split returns the end offsets (in code points) of the pre-tokens of t.cps.
// a and b are scratch buffers.
func (pt *preTokenizer) split(t *preCtx, a, b []int32) (ends, spare []int32) {
	cur := append(a[:0], int32(len(t.cps)))
	for _, pass := range pt.passes {
		nxt := b[:0]
		s := 0
		for _, e := range cur {
			if int(e) > s {
				nxt = pass(t, s, int(e), nxt)
			}
			s = int(e)
		}
		cur, b = nxt, cur
	}
	return cur, b
}

// splitString is a convenience for tests: the pre-tokens of text.
func (pt *preTokenizer) splitString(text string) []string {
	initFlags()
	var t preCtx
	t.load(text)
	ends, _ := pt.split(&t, nil, nil)
	words := make([]string, 0, len(ends))
	s := 0
	for _, e := range ends {
		var w []byte
		for _, r := range t.cps[s:e] {
			w = appendCP(w, r)
		}
		words = append(words, string(w))
		s = int(e)
	}
	return words
}

// ---------------------------------------------------------------------------------
// class predicates

func (t *preCtx) at(p, e int) uint8 {
	if p < e {
		return t.fl[p]
	}
	return 0
}

func (t *preCtx) isLetter(p, e int) bool { return t.at(p, e)&cfLetter != 0 }
func (t *preCtx) isNumber(p, e int) bool { return t.at(p, e)&cfNumber != 0 }

// isX is [^\s\p{L}\p{N}] (and inside the piece).
func (t *preCtx) isX(p, e int) bool {
	f := t.at(p, e)
	return f != 0 && f&(cfSpace|cfLetter|cfNumber) == 0
}

func (t *preCtx) is(p, e int, c rune) bool { return p < e && t.cps[p] == c }

func (t *preCtx) isCRLF(p, e int) bool {
	return p < e && (t.cps[p] == '\r' || t.cps[p] == '\n')
}

func preLowerASCII(c rune) rune {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// contraction matches 's 't 're 've 'm 'll 'd at p and returns its length (0 if none).
func (t *preCtx) contraction(p, e int, fold bool) int {
	if !t.is(p, e, '\'') || p+1 >= e {
		return 0
	}
	c1 := t.cps[p+1]
	if fold {
		c1 = preLowerASCII(c1)
	}
	switch c1 {
	case 's', 't', 'm', 'd':
		return 2
	}
	if p+2 >= e {
		return 0
	}
	c2 := t.cps[p+2]
	if fold {
		c2 = preLowerASCII(c2)
	}
	if (c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l') {
		return 3
	}
	return 0
}

// runOf returns the end of the run of code points from p whose class is in mask.
func (t *preCtx) runOf(p, e int, mask uint8) int {
	for p < e && t.fl[p]&mask != 0 {
		p++
	}
	return p
}

// wsTail matches \s*[\r\n]+|\s+(?!\S)|\s+ at p.
func (t *preCtx) wsTail(p, e int) int {
	q, lastRN := p, -1
	for q < e && t.fl[q]&cfSpace != 0 {
		if c := t.cps[q]; c == '\r' || c == '\n' {
			lastRN = q + 1
		}
		q++
	}
	switch {
	case lastRN >= 0:
		return lastRN
	case q-p > 1 && q < e:
		return q - 1
	case q > p:
		return q
	}
	return -1
}

// ---------------------------------------------------------------------------------
// llama.cpp's hand-written splitters

// splitGPT2 is llama.cpp's custom splitter for
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
func splitGPT2(t *preCtx, s, e int, out []int32) []int32 {
	for p := s; p < e; {
		if n := t.contraction(p, e, false); n > 0 {
			p += n
			out = append(out, int32(p))
			continue
		}
		q := p
		if t.cps[p] == ' ' {
			q = p + 1
		}
		switch {
		case t.isLetter(q, e):
			p = t.runOf(q, e, cfLetter)
		case t.isNumber(q, e):
			p = t.runOf(q, e, cfNumber)
		case t.isX(q, e):
			for q < e && t.isX(q, e) {
				q++
			}
			p = q
		default:
			q = t.runOf(p, e, cfSpace)
			switch {
			case q-p > 1 && q < e:
				p = q - 1
			case q > p:
				p = q
			default:
				p++ // cannot happen: every code point has a class
			}
		}
		out = append(out, int32(p))
	}
	return out
}

// splitLlama3 is llama.cpp's custom splitter for the Llama-3 regex
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// With maxDigits=1 it is also the exact std::regex result for the Qwen2 regex (\p{N}
// instead of \p{N}{1,3}).
func splitLlama3(maxDigits int) splitFn {
	return func(t *preCtx, s, e int, out []int32) []int32 {
		for p := s; p < e; {
			c := t.cps[p]
			f := t.fl[p]
			if n := t.contraction(p, e, true); n > 0 {
				p += n
				out = append(out, int32(p))
				continue
			}
			// [^\r\n\p{L}\p{N}]?\p{L}+
			if c != '\r' && c != '\n' && f&cfNumber == 0 && (f&cfLetter != 0 || t.isLetter(p+1, e)) {
				p = t.runOf(p+1, e, cfLetter)
				out = append(out, int32(p))
				continue
			}
			// \p{N}{1,3}
			if f&cfNumber != 0 {
				ini := p
				for p < e && t.fl[p]&cfNumber != 0 {
					p++
					if p-ini >= maxDigits {
						out = append(out, int32(p))
						ini = p
					}
				}
				if p > ini {
					out = append(out, int32(p))
				}
				continue
			}
			// ' '?[^\s\p{L}\p{N}]+[\r\n]*
			q := p
			if c == ' ' {
				q = p + 1
			}
			if q >= e || t.isX(q, e) {
				for q < e && t.isX(q, e) {
					q++
				}
				for t.isCRLF(q, e) {
					q++
				}
				p = q
				out = append(out, int32(p))
				continue
			}
			if q := t.wsTail(p, e); q > p {
				p = q
			} else {
				p++ // cannot happen
			}
			out = append(out, int32(p))
		}
		return out
	}
}

// ---------------------------------------------------------------------------------
// std::regex patterns

// matchMistral matches the Tekken regex (contractions=false, maxDigits=1)
//
//	[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// and the GPT-4o one (contractions=true, maxDigits=3), which adds an optional
// (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])? after both letter
// alternatives and uses \p{N}{1,3}. On the collapsed text a non-ASCII letter is both
// "[^a-z]" and "[^A-Z]".
func matchMistral(contractions bool, maxDigits int) matchFn {
	return func(t *preCtx, p, e int) int {
		c, f := t.cps[p], t.fl[p]
		s := p // where the letters start
		if c != '\r' && c != '\n' && f&(cfLetter|cfNumber) == 0 {
			s = p + 1 // [^\r\n\p{L}\p{N}]? (backtracking to the empty match cannot help)
		}
		if q := t.mistralLetters(s, e); q > s {
			if contractions {
				q += t.contraction(q, e, true)
			}
			return q
		}
		if f&cfNumber != 0 {
			q := p + 1
			for q < e && q-p < maxDigits && t.fl[q]&cfNumber != 0 {
				q++
			}
			return q
		}
		q := p
		if c == ' ' && t.isX(p+1, e) {
			q = p + 1
		}
		if t.isX(q, e) {
			for q < e && t.isX(q, e) {
				q++
			}
			for q < e && (t.cps[q] == '\r' || t.cps[q] == '\n' || t.cps[q] == '/') {
				q++
			}
			return q
		}
		return t.wsTail(p, e)
	}
}

// isUpperish is (?=[\p{L}])[^a-z]; isLowerish is (?=[\p{L}])[^A-Z].
func (t *preCtx) isUpperish(p, e int) bool {
	return t.isLetter(p, e) && (t.cps[p] < 'a' || t.cps[p] > 'z')
}

func (t *preCtx) isLowerish(p, e int) bool {
	return t.isLetter(p, e) && (t.cps[p] < 'A' || t.cps[p] > 'Z')
}

// mistralLetters matches U*W+ and, failing that, U+W* at s (U = upper-ish,
// W = lower-ish), with backtracking. It returns s when neither matches.
func (t *preCtx) mistralLetters(s, e int) int {
	u := s
	for t.isUpperish(u, e) {
		u++
	}
	// U*W+: the longest U* after which a W follows.
	for k := u; k >= s; k-- {
		if t.isLowerish(k, e) {
			q := k + 1
			for t.isLowerish(q, e) {
				q++
			}
			return q
		}
	}
	// U+W*
	if u > s {
		q := u
		for t.isLowerish(q, e) {
			q++
		}
		return q
	}
	return s
}

// The ASCII part of \p{P} and \p{S} in llama.cpp's collapsed regexes.
func isCollapsedP(c rune, f uint8) bool { return f&cfPunct != 0 }
func isCollapsedS(c rune, f uint8) bool { return f&cfSymbol != 0 && c != '~' }

// matchDeepseekV3 matches the third DeepSeek-V3 regex
//
//	[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func matchDeepseekV3(t *preCtx, p, e int) int {
	c, f := t.cps[p], t.fl[p]
	isASCIILetter := func(q int) bool {
		return q < e && ((t.cps[q] >= 'a' && t.cps[q] <= 'z') || (t.cps[q] >= 'A' && t.cps[q] <= 'Z'))
	}
	if c < 0x80 && f&(cfPunct|cfSymbol) != 0 && isASCIILetter(p+1) {
		q := p + 2
		for isASCIILetter(q) {
			q++
		}
		return q
	}
	const lm = cfLetter | cfMark
	isPS := func(q int) bool {
		return q < e && (isCollapsedP(t.cps[q], t.fl[q]) || isCollapsedS(t.cps[q], t.fl[q]))
	}
	isQ := c != '\r' && c != '\n' && f&cfLetter == 0 && !isPS(p)
	if isQ && t.at(p+1, e)&lm != 0 {
		return t.runOf(p+1, e, lm)
	}
	if f&lm != 0 {
		return t.runOf(p, e, lm)
	}
	q := p
	if c == ' ' && isPS(p+1) {
		q = p + 1
	}
	if isPS(q) {
		for isPS(q) {
			q++
		}
		for t.isCRLF(q, e) {
			q++
		}
		return q
	}
	return t.wsTail(p, e)
}

// matchRun matches [class]+ (or \s?[class]+ when optSpace) with class given by pred.
// pred sees the code point after llama.cpp's std::wregex rewriting, so it is never
// called for whitespace beyond ASCII (which std::wregex sees as U+000B).
func matchRun(pred func(c rune, f uint8) bool, optSpace bool) matchFn {
	ok := func(t *preCtx, q, e int) bool {
		if q >= e {
			return false
		}
		c, f := t.cps[q], t.fl[q]
		if f&cfSpace != 0 && c > 0x7f {
			c = '\v'
		}
		return pred(c, f)
	}
	return func(t *preCtx, p, e int) int {
		q := p
		if optSpace && t.fl[p]&cfSpace != 0 && ok(t, p+1, e) {
			q = p + 1
		}
		if !ok(t, q, e) {
			return -1
		}
		for ok(t, q, e) {
			q++
		}
		return q
	}
}

// matchSpaceRun matches ' '?[class]+ (a literal space, not \s).
func matchSpaceRun(pred func(c rune, f uint8) bool) matchFn {
	ok := func(t *preCtx, q, e int) bool {
		if q >= e {
			return false
		}
		c, f := t.cps[q], t.fl[q]
		if f&cfSpace != 0 && c > 0x7f {
			c = '\v'
		}
		return pred(c, f)
	}
	return func(t *preCtx, p, e int) int {
		q := p
		if t.cps[p] == ' ' && ok(t, p+1, e) {
			q = p + 1
		}
		if !ok(t, q, e) {
			return -1
		}
		for ok(t, q, e) {
			q++
		}
		return q
	}
}

// matchOne matches a single code point of the class.
func matchOne(pred func(c rune, f uint8) bool) matchFn {
	return func(t *preCtx, p, e int) int {
		c, f := t.cps[p], t.fl[p]
		if f&cfSpace != 0 && c > 0x7f {
			c = '\v'
		}
		if pred(c, f) {
			return p + 1
		}
		return -1
	}
}

// matchNumbers matches \p{N}{1,max}.
func matchNumbers(max int) matchFn {
	return func(t *preCtx, p, e int) int {
		q := p
		for q < e && q-p < max && t.fl[q]&cfNumber != 0 {
			q++
		}
		if q == p {
			return -1
		}
		return q
	}
}

// match3Digits matches [0-9][0-9][0-9].
func match3Digits(t *preCtx, p, e int) int {
	if p+3 > e {
		return -1
	}
	for q := p; q < p+3; q++ {
		if t.cps[q] < '0' || t.cps[q] > '9' {
			return -1
		}
	}
	return p + 3
}

// splitTrailingSpace is \s+$ ($ being the end of the piece).
func splitTrailingSpace(t *preCtx, s, e int, out []int32) []int32 {
	q := e
	for q > s && t.fl[q-1]&cfSpace != 0 {
		q--
	}
	if q > s && q < e {
		out = append(out, int32(q))
	}
	return append(out, int32(e))
}

// preHasPrefixAt reports whether the literal lit starts at p.
func preHasPrefixAt(t *preCtx, p, e int, lit string) bool {
	for _, c := range lit {
		if p >= e || t.cps[p] != c {
			return false
		}
		p++
	}
	return true
}

// <sentinel:[0-9]+>
func matchSentinel(t *preCtx, p, e int) int {
	const lit = "<sentinel:"
	if !preHasPrefixAt(t, p, e, lit) {
		return -1
	}
	q := p + len(lit)
	d := q
	for q < e && t.cps[q] >= '0' && t.cps[q] <= '9' {
		q++
	}
	if q == d || !t.is(q, e, '>') {
		return -1
	}
	return q + 1
}

// (IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z
func matchImageToken(t *preCtx, p, e int) int {
	if !preHasPrefixAt(t, p, e, "IMGIMG") {
		return -1
	}
	q := p + 6
	d := q
	for q < e && q-d < 4 && t.cps[q] >= 'A' && t.cps[q] <= 'I' {
		q++
	}
	if q == d || !t.is(q, e, 'Z') {
		return -1
	}
	return q + 1
}

// ([\t\n]|    |  )
func matchChameleonSpace(t *preCtx, p, e int) int {
	switch {
	case t.cps[p] == '\t' || t.cps[p] == '\n':
		return p + 1
	case preHasPrefixAt(t, p, e, "    "):
		return p + 4
	case preHasPrefixAt(t, p, e, "  "):
		return p + 2
	}
	return -1
}

// ---------------------------------------------------------------------------------
// character classes of the std::wregex patterns

type runeRange struct{ lo, hi rune }

func preInRanges(c rune, rs []runeRange) bool {
	lo, hi := 0, len(rs)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case c < rs[m].lo:
			hi = m
		case c > rs[m].hi:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// The letter class of the DeepSeek-LLM regex (cased letters, as listed there).
var deepseekLetters = []runeRange{
	{'A', 'Z'}, {'a', 'z'}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA},
	{0x1BC, 0x1BF}, {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377},
	{0x37B, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C},
	{0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x52F}, {0x531, 0x556},
	{0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF},
	{0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
	{0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
	{0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE},
	{0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC},
	{0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113},
	{0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126}, {0x2128, 0x2128},
	{0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
	{0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
	{0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787},
	{0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A},
	{0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
	{0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
}

// [!-/:-~！-／：-～‘-‟　-。]
var deepseekPunct = []runeRange{
	{'!', '/'}, {':', '~'}, {0x2018, 0x201F}, {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
}

// [一-龥ࠀ-一가-퟿]
var deepseekCJK = []runeRange{{0x0800, 0x4E00}, {0x4E00, 0x9FA5}, {0xAC00, 0xD7FF}}

// [一-龥぀-ゟ゠-ヿ]
var deepseekV3CJK = []runeRange{{0x3040, 0x309F}, {0x30A0, 0x30FF}, {0x4E00, 0x9FA5}}

// [^(\s|.,!?…。，、।۔،)] without the \s part.
func isBloomWordChar(c rune, _ uint8) bool {
	switch c {
	case '(', ')', '|', '.', ',', '!', '?', 0x2026, 0x3002, 0xFF0C, 0x3001, 0x0964, 0x06D4, 0x060C,
		' ', '\t', '\n', '\v', '\f', '\r':
		return false
	}
	return true
}

func classRanges(rs []runeRange) func(rune, uint8) bool {
	var ascii [128]bool
	for c := range ascii {
		ascii[c] = preInRanges(rune(c), rs)
	}
	return func(c rune, _ uint8) bool {
		if c < 128 {
			return ascii[c]
		}
		return preInRanges(c, rs)
	}
}

func preIsCRLF(c rune, _ uint8) bool   { return c == '\r' || c == '\n' }
func preIsNumber(_ rune, f uint8) bool { return f&cfNumber != 0 }
func preIsLetter(_ rune, f uint8) bool { return f&cfLetter != 0 }
func preIsPunct(c rune, f uint8) bool  { return isCollapsedP(c, f) }

// [\p{P}\$\+<=>\^~\|`]+ (falcon) and [\p{P}\$\+<=>\^~\|]+ (default)
func isPunctOrASCIISym(backtick bool) func(rune, uint8) bool {
	return func(c rune, f uint8) bool {
		switch c {
		case '$', '+', '<', '=', '>', '^', '~', '|':
			return true
		case '`':
			return backtick
		}
		return isCollapsedP(c, f)
	}
}

// [\p{P}!-/:-@\[-`{-~]
func isChameleonPunct(c rune, f uint8) bool {
	return isCollapsedP(c, f) || (c >= '!' && c <= '/') || (c >= ':' && c <= '@') ||
		(c >= '[' && c <= '`') || (c >= '{' && c <= '~')
}

// ---------------------------------------------------------------------------------
// tokenizer.ggml.pre -> passes

// preConfig describes what llama.cpp does for one tokenizer.ggml.pre value.
type preConfig struct {
	pre          *preTokenizer
	ignoreMerges bool
}

var (
	gpt2Pass    splitFn = splitGPT2
	llama3Pass          = splitLlama3(3)
	qwen2Pass           = splitLlama3(1)
	digitPass           = regexPass(matchOne(preIsNumber))
	digitsPass          = regexPass(matchNumbers(1 << 30))
	digits3Pass         = regexPass(match3Digits)
	newlinePass         = regexPass(matchOne(preIsCRLF))
	bloomPass           = regexPass(matchSpaceRun(isBloomWordChar))
)

var preTokenizers = map[string]*preTokenizer{
	"default": {name: "default", passes: []splitFn{
		regexPass(matchRun(isPunctOrASCIISym(false), false)),
		gpt2Pass,
		digitsPass,
		digits3Pass,
	}},
	"llama3": {name: "llama3", passes: []splitFn{llama3Pass}},
	"deepseek-llm": {name: "deepseek-llm", passes: []splitFn{
		newlinePass,
		regexPass(matchRun(classRanges(deepseekLetters), true)),
		regexPass(matchRun(classRanges(deepseekPunct), true)),
		splitTrailingSpace,
		regexPass(matchRun(classRanges(deepseekCJK), false)),
		digitsPass,
	}},
	"deepseek-v3": {name: "deepseek-v3", passes: []splitFn{
		regexPass(matchNumbers(3)),
		regexPass(matchRun(classRanges(deepseekV3CJK), false)),
		regexPass(matchDeepseekV3),
	}},
	"deepseek-coder": {name: "deepseek-coder", passes: []splitFn{
		newlinePass,
		regexPass(matchRun(preIsLetter, true)),
		regexPass(matchRun(preIsPunct, true)),
		regexPass(matchRun(classRanges(deepseekCJK), false)),
		digitPass,
	}},
	"falcon": {name: "falcon", passes: []splitFn{
		regexPass(matchRun(isPunctOrASCIISym(true), false)),
		gpt2Pass,
		digits3Pass,
	}},
	"starcoder": {name: "starcoder", passes: []splitFn{digitPass, gpt2Pass}},
	"gpt-2":     {name: "gpt-2", passes: []splitFn{gpt2Pass}},
	"qwen2":     {name: "qwen2", passes: []splitFn{qwen2Pass}},
	"bloom":     {name: "bloom", passes: []splitFn{bloomPass}},
	"viking":    {name: "viking", passes: []splitFn{bloomPass, digitPass}},
	"tekken":    {name: "tekken", passes: []splitFn{regexPass(matchMistral(false, 1))}},
	"gpt-4o":    {name: "gpt-4o", passes: []splitFn{regexPass(matchMistral(true, 3))}},
	"chameleon": {name: "chameleon", passes: []splitFn{
		regexPass(matchSentinel),
		regexPass(matchImageToken),
		regexPass(matchChameleonSpace),
		digitPass,
		regexPass(matchOne(isChameleonPunct)),
		gpt2Pass,
	}},
}

// preConfigFor maps a tokenizer.ggml.pre value to its pre-tokenizer the way
// llama_vocab::impl::load does (an empty value means "default"; an unknown value is
// an error there too).
func preConfigFor(pre string) (preConfig, error) {
	name := ""
	ignore := false
	switch pre {
	case "", "default":
		name = "default"
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral": // pixtral: after c392e5094
		name, ignore = "llama3", true
	case "dbrx", "smaug-bpe", "chatglm-bpe":
		name = "llama3" // the same regex, without ignore_merges
	case "deepseek-llm":
		name = "deepseek-llm"
	case "deepseek-coder":
		name = "deepseek-coder"
	case "deepseek-v3":
		name = "deepseek-v3"
	case "falcon":
		name = "falcon"
	case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b":
		name = "starcoder"
	case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
		"jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais":
		name = "gpt-2"
	case "stablelm2", "qwen2", "deepseek-r1-qwen", "megrez":
		name = "qwen2"
	case "poro-chat", "bloom", "gpt3-finnish":
		name = "bloom"
	case "viking":
		name = "viking"
	case "tekken":
		name, ignore = "tekken", true
	case "chameleon":
		name = "chameleon"
	case "gpt-4o", "llama4": // added to llama.cpp after c392e5094
		name = "gpt-4o"
	default:
		return preConfig{}, fmt.Errorf("tokenizer: unknown pre-tokenizer type %q", pre)
	}
	return preConfig{pre: preTokenizers[name], ignoreMerges: ignore}, nil
}
