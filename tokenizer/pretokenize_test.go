package tokenizer

import (
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// ---------------------------------------------------------------------------------
// A reference for llama.cpp's unicode_regex_split: a small backtracking regex engine
// with ECMAScript semantics (leftmost alternative, greedy quantifiers, lookahead),
// run on the text rewritten the way llama.cpp rewrites it for std::regex ("collapsed"
// when the regex uses \p{..}, otherwise code points with non-ASCII whitespace turned
// into U+000B), with std::regex_iterator's split into matches and the text between.
// It is deliberately independent of the hand-written matchers in pretokenize.go.

type reNode interface{}

type (
	reChar   struct{ pred func(rune) bool }
	reSeq    []reNode
	reAlt    []reNode
	reRepeat struct {
		n        reNode
		min, max int // max < 0: unbounded
	}
	reLook struct {
		n   reNode
		neg bool
	}
	reEnd struct{}
)

type reParser struct {
	src       []rune
	i         int
	collapsed bool
}

func parseRegex(src string, collapsed bool) reNode {
	p := &reParser{src: []rune(src), collapsed: collapsed}
	n := p.alt()
	if p.i != len(p.src) {
		panic(fmt.Sprintf("regex %q: unexpected %q at %d", src, p.src[p.i], p.i))
	}
	return n
}

func (p *reParser) peek() rune {
	if p.i < len(p.src) {
		return p.src[p.i]
	}
	return -1
}

func (p *reParser) alt() reNode {
	alts := reAlt{p.seq()}
	for p.peek() == '|' {
		p.i++
		alts = append(alts, p.seq())
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return alts
}

func (p *reParser) seq() reNode {
	var s reSeq
	for p.i < len(p.src) && p.peek() != '|' && p.peek() != ')' {
		s = append(s, p.quant(p.atom()))
	}
	return s
}

func (p *reParser) quant(n reNode) reNode {
	switch p.peek() {
	case '*':
		p.i++
		return &reRepeat{n, 0, -1}
	case '+':
		p.i++
		return &reRepeat{n, 1, -1}
	case '?':
		p.i++
		return &reRepeat{n, 0, 1}
	case '{':
		p.i++
		lo := p.num()
		hi := lo
		if p.peek() == ',' {
			p.i++
			hi = -1
			if p.peek() != '}' {
				hi = p.num()
			}
		}
		p.expect('}')
		return &reRepeat{n, lo, hi}
	}
	return n
}

func (p *reParser) num() int {
	n := 0
	for p.peek() >= '0' && p.peek() <= '9' {
		n = n*10 + int(p.peek()-'0')
		p.i++
	}
	return n
}

func (p *reParser) expect(c rune) {
	if p.peek() != c {
		panic(fmt.Sprintf("regex %q: want %q at %d", string(p.src), c, p.i))
	}
	p.i++
}

func (p *reParser) atom() reNode {
	c := p.peek()
	p.i++
	switch c {
	case '(':
		look, neg := false, false
		if p.peek() == '?' {
			p.i++
			switch p.peek() {
			case ':':
			case '=':
				look = true
			case '!':
				look, neg = true, true
			default:
				panic("unsupported group")
			}
			p.i++
		}
		n := p.alt()
		p.expect(')')
		if look {
			return &reLook{n, neg}
		}
		return n
	case '[':
		return p.class()
	case '$':
		return reEnd{}
	case '\\':
		return reChar{p.escape()}
	}
	return reChar{func(x rune) bool { return x == c }}
}

func reIsSpace(c rune) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// The collapsed markers and the ASCII sets llama.cpp puts next to them.
const (
	mkOther  = 0xD0
	mkNumber = 0xD1
	mkLetter = 0xD2
	mkPunct  = 0xD3
	mkMark   = 0xD4
	mkSymbol = 0xD5
)

func asciiPunctMap(c rune) bool { return strings.ContainsRune("!\"#%&'()*,-./:;?@[\\]_{}", c) }
func asciiSymMap(c rune) bool   { return strings.ContainsRune("$+<=>^`|", c) }

// escape parses what follows a backslash and returns the class it stands for.
func (p *reParser) escape() func(rune) bool {
	c := p.peek()
	p.i++
	switch c {
	case 's':
		return reIsSpace
	case 'S':
		return func(x rune) bool { return !reIsSpace(x) }
	case 'r':
		return func(x rune) bool { return x == '\r' }
	case 'n':
		return func(x rune) bool { return x == '\n' }
	case 't':
		return func(x rune) bool { return x == '\t' }
	case 'p':
		if !p.collapsed {
			panic("\\p in a non-collapsed regex")
		}
		p.expect('{')
		cat := p.peek()
		p.i++
		p.expect('}')
		switch cat {
		case 'N':
			return func(x rune) bool { return x == mkNumber || (x >= '0' && x <= '9') }
		case 'L':
			return func(x rune) bool {
				return x == mkLetter || (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z')
			}
		case 'P':
			return func(x rune) bool { return x == mkPunct || asciiPunctMap(x) }
		case 'M':
			return func(x rune) bool { return x == mkMark }
		case 'S':
			return func(x rune) bool { return x == mkSymbol || asciiSymMap(x) }
		}
		panic("unknown category")
	}
	return func(x rune) bool { return x == c }
}

func (p *reParser) class() reNode {
	neg := false
	if p.peek() == '^' {
		neg = true
		p.i++
	}
	var preds []func(rune) bool
	for p.peek() != ']' {
		var lo rune
		if p.peek() == '\\' {
			p.i++
			c := p.peek()
			if strings.ContainsRune("sSrntp", c) {
				pr := p.escape()
				if c == 's' || c == 'S' || c == 'p' {
					preds = append(preds, pr)
					continue
				}
				lo = map[rune]rune{'r': '\r', 'n': '\n', 't': '\t'}[c]
			} else {
				lo = c
				p.i++
			}
		} else {
			lo = p.peek()
			p.i++
		}
		hi := lo
		if p.peek() == '-' && p.i+1 < len(p.src) && p.src[p.i+1] != ']' {
			p.i++
			if p.peek() == '\\' {
				p.i++
			}
			hi = p.peek()
			p.i++
		}
		l, h := lo, hi
		preds = append(preds, func(x rune) bool { return x >= l && x <= h })
	}
	p.i++
	return reChar{func(x rune) bool {
		in := false
		for _, pr := range preds {
			if pr(x) {
				in = true
				break
			}
		}
		return in != neg
	}}
}

type reMatcher struct{ txt []rune }

func (m *reMatcher) match(n reNode, pos int, k func(int) bool) bool {
	switch n := n.(type) {
	case reChar:
		return pos < len(m.txt) && n.pred(m.txt[pos]) && k(pos+1)
	case reSeq:
		return m.seq(n, 0, pos, k)
	case reAlt:
		for _, a := range n {
			if m.match(a, pos, k) {
				return true
			}
		}
		return false
	case *reRepeat:
		return m.rep(n, pos, 0, k)
	case *reLook:
		ok := m.match(n.n, pos, func(int) bool { return true })
		return ok != n.neg && k(pos)
	case reEnd:
		return pos == len(m.txt) && k(pos)
	}
	panic("bad node")
}

func (m *reMatcher) seq(s reSeq, i, pos int, k func(int) bool) bool {
	if i == len(s) {
		return k(pos)
	}
	return m.match(s[i], pos, func(p int) bool { return m.seq(s, i+1, p, k) })
}

func (m *reMatcher) rep(r *reRepeat, pos, count int, k func(int) bool) bool {
	if r.max < 0 || count < r.max {
		if m.match(r.n, pos, func(p int) bool { return p != pos && m.rep(r, p, count+1, k) }) {
			return true
		}
	}
	return count >= r.min && k(pos)
}

// refFlags classifies a code point with the unicode package directly.
func refCategory(c rune) rune {
	switch {
	case unicode.Is(unicode.White_Space, c):
		return '\v'
	case unicode.IsLetter(c):
		return mkLetter
	case unicode.IsNumber(c):
		return mkNumber
	case unicode.IsPunct(c):
		return mkPunct
	case unicode.IsMark(c):
		return mkMark
	case unicode.IsSymbol(c):
		return mkSymbol
	}
	return mkOther
}

// refSplit is llama.cpp's unicode_regex_split (without the byte encoding).
func refSplit(text string, regexes []string) []string {
	cps := []rune(text)
	offsets := []int{len(cps)}
	for _, rx := range regexes {
		collapsed := false
		for _, cat := range []string{`\p{N}`, `\p{L}`, `\p{P}`, `\p{M}`, `\p{S}`} {
			if strings.Contains(rx, cat) {
				collapsed = true
			}
		}
		txt := make([]rune, len(cps))
		for i, c := range cps {
			switch {
			case c < 0x80:
				txt[i] = c
			case collapsed:
				txt[i] = refCategory(c)
			case unicode.Is(unicode.White_Space, c):
				txt[i] = '\v'
			default:
				txt[i] = c
			}
		}
		re := parseRegex(rx, collapsed)
		var next []int
		start := 0
		for _, off := range offsets {
			m := &reMatcher{txt: txt[start : start+off]}
			last := 0
			for pos := 0; pos < off; {
				end := -1
				m.match(re, pos, func(e int) bool { end = e; return true })
				if end <= pos {
					if end == pos {
						panic("empty match")
					}
					pos++
					continue
				}
				if pos > last {
					next = append(next, pos-last)
				}
				next = append(next, end-pos)
				last, pos = end, end
			}
			if last < off {
				next = append(next, off-last)
			}
			start += off
		}
		offsets = next
	}
	var words []string
	start := 0
	for _, off := range offsets {
		words = append(words, string(cps[start:start+off]))
		start += off
	}
	return words
}

// The regex lists of llama.cpp's llm_tokenizer_bpe, per pre-tokenizer.
const (
	rxGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	rxLlama3 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	rxQwen2  = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	rxTekken = `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	rxGPT4o  = `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	rxBloom  = ` ?[^(\s|.,!?…。，、।۔،)]+`
	rxDSV3   = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
	rxCJK    = `[一-龥ࠀ-一가-퟿]+`
)

func rangesClass(rs []runeRange) string {
	var sb strings.Builder
	for _, r := range rs {
		sb.WriteRune(r.lo)
		if r.hi != r.lo {
			sb.WriteByte('-')
			sb.WriteRune(r.hi)
		}
	}
	return sb.String()
}

var refRegexes = map[string][]string{
	"gpt-2":  {rxGPT2},
	"llama3": {rxLlama3},
	"qwen2":  {rxQwen2},
	"tekken": {rxTekken},
	"gpt-4o": {rxGPT4o},
	"deepseek-llm": {"[\r\n]", `\s?[` + rangesClass(deepseekLetters) + `]+`, `\s?[!-/:-~！-／：-～‘-‟　-。]+`,
		`\s+$`, rxCJK, `\p{N}+`},
	"deepseek-v3":    {`\p{N}{1,3}`, `[一-龥぀-ゟ゠-ヿ]+`, rxDSV3},
	"deepseek-coder": {"[\r\n]", `\s?\p{L}+`, `\s?\p{P}+`, rxCJK, `\p{N}`},
	"falcon":         {"[\\p{P}\\$\\+<=>\\^~\\|`]+", rxGPT2, `[0-9][0-9][0-9]`},
	"starcoder":      {`\p{N}`, rxGPT2},
	"bloom":          {rxBloom},
	"viking":         {rxBloom, `\p{N}`},
	"chameleon": {`<sentinel:[0-9]+>`, `(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z`, "([\\t\\n]|    |  )", `\p{N}`,
		"[\\p{P}!-/:-@\\[-`{-~]", rxGPT2},
	"default": {`[\p{P}\$\+<=>\^~\|]+`, rxGPT2, `\p{N}+`, `[0-9][0-9][0-9]`},
}

// preAlphabet is weighted towards the characters whose handling differs between the
// patterns.
var preAlphabet = []string{
	"a", "b", "s", "t", "e", "l", "r", "v", "m", "d", "x", "A", "S", "T", "L", "E", "R", "V", "M", "D", "H", "Z", "I", "G",
	"0", "1", "9", "²", "٣", "Ⅻ", "½",
	" ", " ", " ", " ", "\t", "\n", "\n", "\r", "\v", "\f", "\u00a0", "\u3000", "\u2028", "\u0085", "\u1680",
	"'", "'", ".", ",", "!", "?", "/", "$", "+", "~", "`", "|", "^", "(", ")", "_", "-", "<", ">", ":", "@", "\\", "[", "]",
	"é", "É", "ß", "ǅ", "ʰ", "ǃ", "µ", "ῠ", "\u1fbe", "\u212a", "\u2126", "Ж", "ж", "\U0001E900", "ა", "Ა",
	"中", "一", "龥", "あ", "ア", "가", "ࠀ", "\u0301", "\u0903", "\u20dd",
	"…", "。", "，", "、", "।", "۔", "،", "‘", "”", "！", "／", "Ａ", "ｚ", "～",
	"€", "©", "😀", "🦙", "\u200b", "\u00ad", "\x00", "\x01", "\x1f", "\x7f", "\ue000", "\U000EFFFD",
	"'s", "'S", "'re", "'RE", "'ll", "'Ll", "'ve", "'d", "'M", "<sentinel:12>", "<sentinel:>", "IMGIMGABZ",
	"IMGIMGABCDEZ", "    ", "  ", "123456", "HTTPServer", "ÉCOLE", "\r\n", " \n ",
}

func randomPreText(r *rand.Rand) string {
	var sb strings.Builder
	n := r.Intn(16)
	if r.Intn(8) == 0 {
		n = r.Intn(48)
	}
	for i := 0; i < n; i++ {
		sb.WriteString(preAlphabet[r.Intn(len(preAlphabet))])
	}
	return sb.String()
}

// TestPreTokenizersAgainstRegexReference compares every pre-tokenizer with the
// reference engine on random strings.
func TestPreTokenizersAgainstRegexReference(t *testing.T) {
	iters := 4000
	if testing.Short() {
		iters = 500
	}
	if n, err := strconv.Atoi(os.Getenv("SLM_PRE_ITERS")); err == nil {
		iters = n // deeper runs: SLM_PRE_ITERS=200000
	}
	for name, rxs := range refRegexes {
		pt := preTokenizers[name]
		if pt == nil {
			t.Fatalf("no pre-tokenizer %q", name)
		}
		r := rand.New(rand.NewSource(int64(len(name))))
		fails := 0
		for i := 0; i < iters && fails < 5; i++ {
			text := randomPreText(r)
			want := refSplit(text, rxs)
			got := pt.splitString(text)
			if !slices.Equal(got, want) {
				fails++
				t.Errorf("%s %q:\n got  %q\n want %q", name, text, got, want)
			}
		}
	}
}

// TestPreReferenceSelfCheck makes sure the reference engine itself behaves like
// ECMAScript on a few known cases.
func TestPreReferenceSelfCheck(t *testing.T) {
	cases := []struct {
		rx, text string
		want     []string
	}{
		{`a+|b`, "aab", []string{"aa", "b"}},
		{`\s+(?!\S)`, "a  b", []string{"a", " ", " b"}},
		{`x`, "axb", []string{"a", "x", "b"}},
		{`a{1,2}`, "aaaaa", []string{"aa", "aa", "a"}},
		{`\s+$`, "ab  ", []string{"ab", "  "}},
		{`(?=[\p{L}])[^a-z]`, "aBé", []string{"a", "B", "é"}},
	}
	for _, c := range cases {
		if got := refSplit(c.text, []string{c.rx}); !slices.Equal(got, c.want) {
			t.Errorf("%s on %q: got %q want %q", c.rx, c.text, got, c.want)
		}
	}
}

// ---------------------------------------------------------------------------------
// Hand-checked splits.

func TestPreTokenizerSplits(t *testing.T) {
	cases := []struct {
		pre  string
		text string
		want []string
	}{
		// GPT-2: case-sensitive contractions, " ?" is a literal space, \s+(?!\S).
		{"gpt-2", "I'm HERE'S you'll it'd we've they're", []string{"I", "'m", " HERE", "'", "S", " you", "'ll", " it", "'d", " we", "'ve", " they", "'re"}},
		{"gpt-2", "   hello", []string{"  ", " hello"}},
		{"gpt-2", "hello   ", []string{"hello", "   "}},
		{"gpt-2", "a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"gpt-2", "\thello", []string{"\t", "hello"}},
		{"gpt-2", "12345 6 x1", []string{"12345", " 6", " x", "1"}},
		{"gpt-2", "café Ünïcödé", []string{"café", " Ünïcödé"}},
		{"gpt-2", "e\u0301", []string{"e", "\u0301"}},
		{"gpt-2", "日本語 テスト", []string{"日本語", " テスト"}},
		{"gpt-2", "hi 🦙🔥!", []string{"hi", " 🦙🔥!"}},
		{"gpt-2", "a\u00a0b", []string{"a", "\u00a0", "b"}},
		// Llama-3: case-insensitive contractions, 1-3 digits, newlines kept with
		// the preceding whitespace and punctuation.
		{"llama3", "I'M HERE'S YOU'LL It'D", []string{"I", "'M", " HERE", "'S", " YOU", "'LL", " It", "'D"}},
		{"llama3", "1234567 89", []string{"123", "456", "7", " ", "89"}},
		{"llama3", "  \n\n  x", []string{"  \n\n", " ", " x"}},
		{"llama3", "...\n\nabc", []string{"...\n\n", "abc"}},
		{"llama3", "(hello) world", []string{"(hello", ")", " world"}},
		{"llama3", "\nhello", []string{"\n", "hello"}},
		{"llama3", "x  ", []string{"x", "  "}},
		{"llama3", "中文字符 😀 مرحبا", []string{"中文字符", " 😀", " مرحبا"}},
		// Qwen2: the same but single digits.
		{"qwen2", "x=1234", []string{"x", "=", "1", "2", "3", "4"}},
		// Tekken and GPT-4o: case-aware letter runs.
		{"tekken", "HTMLParser helloWORLD", []string{"HTMLParser", " hello", "WORLD"}},
		{"tekken", "ÉCOLE", []string{"É", "COLE"}},
		{"tekken", "I'm 123", []string{"I", "'m", " ", "1", "2", "3"}},
		{"tekken", "a//b//\n", []string{"a", "//", "b", "//\n"}},
		{"gpt-4o", "I'M HERE'S you'll", []string{"I'M", " HERE'S", " you'll"}},
		{"gpt-4o", "1234567", []string{"123", "456", "7"}},
		// DeepSeek-V3.
		{"deepseek-v3", "Hello,world!!\n", []string{"Hello", ",world", "!!\n"}},
		{"deepseek-v3", "~abc ~é", []string{"~abc", " ", "~é"}},
		{"deepseek-v3", "12345中文abc", []string{"123", "45", "中文", "abc"}},
		{"deepseek-v3", "e\u0301x", []string{"e\u0301x"}},
		// DeepSeek-LLM: each regex refines the pieces of the previous one.
		{"deepseek-llm", "café Öl", []string{"caf", "é", " Ö", "l"}},
		{"deepseek-llm", "Hello world  \n123", []string{"Hello", " world", "  ", "\n", "123"}},
		{"deepseek-llm", "中文 가나", []string{"中文", " ", "가나"}},
		// DeepSeek-Coder: single digits, \s?\p{P}+.
		{"deepseek-coder", "hello world123, ok", []string{"hello", " world", "1", "2", "3", ",", " ok"}},
		// Falcon and default: punctuation runs first; three ASCII digits.
		{"falcon", "a+=b `x` 12345", []string{"a", "+=", "b", " ", "`", "x", "`", " ", "123", "45"}},
		{"default", "a+=b `x` 12345", []string{"a", "+=", "b", " `", "x", "`", " ", "123", "45"}},
		// StarCoder: every digit alone.
		{"starcoder", "x = 123", []string{"x", " =", " ", "1", "2", "3"}},
		// Bloom: ' ?' and anything but whitespace and a few punctuation marks.
		// (unmatched neighbours form one piece)
		{"bloom", "Hello, world! (x)", []string{"Hello", ",", " world", "! (", "x", ")"}},
		{"viking", "ab12 c", []string{"ab", "1", "2", " c"}},
		// Chameleon: later regexes split the pieces of earlier ones, sentinels included.
		{"chameleon", "<sentinel:12>IMGIMGABZ  x\ty", []string{"<", "sentinel", ":", "1", "2", ">", "IMGIMGABZ", "  ", "x", "\t", "y"}},
		{"chameleon", "a    b  c", []string{"a", "    ", "b", "  ", "c"}},
	}
	for _, c := range cases {
		got := preTokenizers[c.pre].splitString(c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %q:\n got  %q\n want %q", c.pre, c.text, got, c.want)
		}
		if rxs, ok := refRegexes[c.pre]; ok {
			if ref := refSplit(c.text, rxs); !slices.Equal(ref, c.want) {
				t.Errorf("%s %q: reference gives %q, table says %q", c.pre, c.text, ref, c.want)
			}
		}
	}
}

// TestPreNames checks that every pre value maps to the intended splitter.
func TestPreNames(t *testing.T) {
	cases := map[string]string{
		"": "default", "default": "default", "llama-bpe": "llama3", "falcon3": "llama3", "dbrx": "llama3",
		"smaug-bpe": "llama3", "chatglm-bpe": "llama3", "deepseek-r1-qwen": "qwen2", "stablelm2": "qwen2",
		"megrez": "qwen2", "refact": "starcoder", "command-r": "starcoder", "smollm": "starcoder",
		"codeshell": "starcoder", "exaone": "starcoder", "minerva-7b": "starcoder", "mpt": "gpt-2",
		"olmo": "gpt-2", "jais": "gpt-2", "poro-chat": "bloom", "gpt3-finnish": "bloom", "viking": "viking",
		"tekken": "tekken", "chameleon": "chameleon", "gpt-4o": "gpt-4o", "deepseek-v3": "deepseek-v3",
	}
	for pre, want := range cases {
		cfg, err := preConfigFor(pre)
		if err != nil {
			t.Errorf("%q: %v", pre, err)
			continue
		}
		if cfg.pre.name != want {
			t.Errorf("%q: got %s want %s", pre, cfg.pre.name, want)
		}
		wantIgnore := pre == "llama-bpe" || pre == "falcon3" || pre == "tekken"
		if cfg.ignoreMerges != wantIgnore {
			t.Errorf("%q: ignore_merges %v", pre, cfg.ignoreMerges)
		}
	}
}

// TestPreFlags spot-checks the code point classes against llama.cpp's definitions.
func TestPreFlags(t *testing.T) {
	initFlags()
	cases := []struct {
		r    rune
		want uint8
	}{
		{'a', cfLetter}, {'0', cfNumber}, {'²', cfNumber}, {'Ⅻ', cfNumber}, {'_', cfPunct}, {'~', cfSymbol},
		{'$', cfSymbol}, {' ', cfOther | cfSpace}, {'\t', cfOther | cfSpace}, {'\u0085', cfOther | cfSpace},
		{'\u00a0', cfOther | cfSpace}, {'\u3000', cfOther | cfSpace}, {'\u200b', cfOther}, {0x1c, cfOther},
		{'\u0301', cfMark}, {'😀', cfSymbol}, {'中', cfLetter}, {0x2EBF0, cfLetter}, {0x10FFFF, cfOther},
	}
	for _, c := range cases {
		if got := cpFlags(c.r); got != c.want {
			t.Errorf("%U: got %#x want %#x", c.r, got, c.want)
		}
	}
}

// Long runs must stay linear.
func TestPreLongRuns(t *testing.T) {
	inputs := []string{
		strings.Repeat(" ", 100000) + "x",
		strings.Repeat("A", 100000) + "b",
		strings.Repeat("É", 50000),
		strings.Repeat("1", 100000),
		strings.Repeat(" \n", 50000),
		"1" + strings.Repeat(" ", 100000) + "2",
	}
	for name, pt := range preTokenizers {
		for _, in := range inputs {
			words := pt.splitString(in)
			if strings.Join(words, "") != in {
				t.Errorf("%s: pieces do not cover the input", name)
			}
		}
	}
}

func BenchmarkPreTokenize(b *testing.B) {
	text := bpeBenchText()
	for _, name := range []string{"gpt-2", "llama3", "deepseek-llm", "tekken"} {
		b.Run(name, func(b *testing.B) {
			initFlags()
			pt := preTokenizers[name]
			var pc preCtx
			var a, s []int32
			for i := 0; i < b.N; i++ {
				pc.load(text)
				a, s = pt.split(&pc, a, s)
			}
			b.ReportMetric(float64(len(text))*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
		})
	}
}
