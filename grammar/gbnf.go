package grammar

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The GBNF parser reads llama.cpp's grammar syntax into an AST:
//
//	rule    ::= name "::=" alts        (one per line; newlines are free inside ( ) and after |)
//	alts    ::= seq ("|" seq)*
//	seq     ::= (item repeat?)*
//	item    ::= "literal" | [class] | [^class] | name | "(" alts ")" | "."
//	repeat  ::= "*" | "+" | "?" | "{" m "}" | "{" m ",}" | "{" m "," n "}"
//
// Comments run from # to the end of the line. Escapes in literals and
// classes: \n \r \t \\ \" \' \[ \] \- \/ \xHH \uHHHH \UHHHHHHHH.

type nodeKind uint8

const (
	nLiteral nodeKind = iota // bytes
	nClass                   // codepoint ranges, maybe negated
	nRef                     // rule name
	nAlt                     // alternatives
	nSeq                     // sequence
	nRepeat                  // sub{min,max}; max < 0 = unbounded
	nAny                     // any codepoint
)

type node struct {
	kind     nodeKind
	lit      string
	ranges   []cpRange
	negated  bool
	name     string
	children []*node
	min, max int
	ref      int32 // a rule id, when isID
	isID     bool
}

type cpRange struct{ lo, hi rune }

type ruleDef struct {
	name string
	body *node
	line int
}

// maxRepeat bounds {m,n} counts: each repetition is expanded.
const maxRepeat = 10000

type parser struct {
	src  string
	pos  int
	line int
	// depth bounds group nesting (the parser is recursive).
	depth int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("grammar: line %d: %s", p.line, fmt.Sprintf(format, args...))
}

func parseGBNF(src string) ([]ruleDef, error) {
	if !utf8.ValidString(src) {
		return nil, fmt.Errorf("grammar: not valid UTF-8")
	}
	p := &parser{src: src, line: 1}
	var rules []ruleDef
	for {
		p.space(true)
		if p.pos >= len(p.src) {
			break
		}
		name := p.name()
		if name == "" {
			return nil, p.errorf("expected a rule name at %q", p.peekText())
		}
		line := p.line
		p.space(false)
		if !strings.HasPrefix(p.src[p.pos:], "::=") {
			return nil, p.errorf("expected ::= after %q", name)
		}
		p.pos += 3
		p.space(true)
		body, err := p.alts(false)
		if err != nil {
			return nil, err
		}
		p.space(false)
		if p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '\r' {
			return nil, p.errorf("unexpected %q", p.peekText())
		}
		rules = append(rules, ruleDef{name: name, body: body, line: line})
	}
	return rules, nil
}

func (p *parser) peekText() string {
	s := p.src[p.pos:]
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

// space skips blanks and comments; newlines too when newlines is set.
func (p *parser) space(newlines bool) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case (c == '\n' || c == '\r') && newlines:
			if c == '\n' {
				p.line++
			}
			p.pos++
		default:
			return
		}
	}
}

func isNameChar(c byte) bool {
	return c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *parser) name() string {
	start := p.pos
	for p.pos < len(p.src) && isNameChar(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *parser) alts(nested bool) (*node, error) {
	var alts []*node
	for {
		seq, err := p.seq(nested)
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		p.space(nested)
		// A line that starts with | continues the rule (a superset of
		// llama.cpp, which only allows that inside parentheses).
		save, saveLine := p.pos, p.line
		p.space(true)
		if p.pos >= len(p.src) || p.src[p.pos] != '|' {
			p.pos, p.line = save, saveLine
		}
		if p.pos < len(p.src) && p.src[p.pos] == '|' {
			p.pos++
			p.space(true)
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &node{kind: nAlt, children: alts}, nil
}

func (p *parser) seq(nested bool) (*node, error) {
	var items []*node
	for {
		p.space(nested)
		if p.pos >= len(p.src) {
			break
		}
		c := p.src[p.pos]
		var it *node
		switch {
		case c == '"' || c == '\'':
			s, err := p.literal(c)
			if err != nil {
				return nil, err
			}
			it = &node{kind: nLiteral, lit: s}
		case c == '[':
			n, err := p.class()
			if err != nil {
				return nil, err
			}
			it = n
		case c == '.':
			p.pos++
			it = &node{kind: nAny}
		case c == '(':
			p.pos++
			p.depth++
			if p.depth > 200 {
				return nil, p.errorf("groups nested too deeply")
			}
			p.space(true)
			n, err := p.alts(true)
			if err != nil {
				return nil, err
			}
			p.space(true)
			if p.pos >= len(p.src) || p.src[p.pos] != ')' {
				return nil, p.errorf("expected )")
			}
			p.pos++
			p.depth--
			it = n
		case isNameChar(c):
			save, saveLine := p.pos, p.line
			name := p.name()
			// A name followed by ::= starts the next rule.
			p.space(false)
			if strings.HasPrefix(p.src[p.pos:], "::=") {
				p.pos, p.line = save, saveLine
				return seqNode(items), nil
			}
			p.pos = save
			p.name()
			it = &node{kind: nRef, name: name}
		default:
			return seqNode(items), nil
		}
		// Postfix repetition.
		p.space(nested)
		for p.pos < len(p.src) {
			c := p.src[p.pos]
			var lo, hi int
			switch c {
			case '*':
				lo, hi = 0, -1
				p.pos++
			case '+':
				lo, hi = 1, -1
				p.pos++
			case '?':
				lo, hi = 0, 1
				p.pos++
			case '{':
				var err error
				if lo, hi, err = p.braces(); err != nil {
					return nil, err
				}
			default:
				goto done
			}
			it = &node{kind: nRepeat, children: []*node{it}, min: lo, max: hi}
			p.space(nested)
		}
	done:
		items = append(items, it)
	}
	return seqNode(items), nil
}

func seqNode(items []*node) *node {
	if len(items) == 1 {
		return items[0]
	}
	return &node{kind: nSeq, children: items}
}

func (p *parser) braces() (int, int, error) {
	end := strings.IndexByte(p.src[p.pos:], '}')
	if end < 0 {
		return 0, 0, p.errorf("unclosed {")
	}
	body := strings.TrimSpace(p.src[p.pos+1 : p.pos+end])
	p.pos += end + 1
	num := func(s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || n > maxRepeat {
			return 0, p.errorf("bad repetition count %q (0 to %d)", s, maxRepeat)
		}
		return n, nil
	}
	a, b, comma := strings.Cut(body, ",")
	lo, err := num(a)
	if err != nil {
		return 0, 0, err
	}
	if !comma {
		return lo, lo, nil
	}
	if strings.TrimSpace(b) == "" {
		return lo, -1, nil
	}
	hi, err := num(b)
	if err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, p.errorf("repetition {%d,%d} has max < min", lo, hi)
	}
	return lo, hi, nil
}

// escape reads one possibly escaped codepoint.
func (p *parser) char() (rune, error) {
	if p.pos >= len(p.src) {
		return 0, p.errorf("unexpected end")
	}
	c := p.src[p.pos]
	if c != '\\' {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		p.pos += n
		if r == '\n' {
			p.line++
		}
		return r, nil
	}
	if p.pos+1 >= len(p.src) {
		return 0, p.errorf("unfinished escape")
	}
	e := p.src[p.pos+1]
	p.pos += 2
	hex := func(n int) (rune, error) {
		if p.pos+n > len(p.src) {
			return 0, p.errorf("short \\%c escape", e)
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
		if err != nil {
			return 0, p.errorf("bad \\%c escape", e)
		}
		p.pos += n
		if v > utf8.MaxRune || v >= 0xD800 && v <= 0xDFFF {
			return 0, p.errorf("escape \\%c is not a Unicode scalar value", e)
		}
		return rune(v), nil
	}
	switch e {
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case '\\', '"', '\'', '[', ']', '-', '/', '^':
		return rune(e), nil
	case 'x':
		return hex(2)
	case 'u':
		return hex(4)
	case 'U':
		return hex(8)
	}
	return 0, p.errorf("unknown escape \\%c", e)
}

func (p *parser) literal(quote byte) (string, error) {
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.src) {
			return "", p.errorf("unclosed string literal")
		}
		if p.src[p.pos] == quote {
			p.pos++
			return b.String(), nil
		}
		if p.src[p.pos] == '\n' {
			return "", p.errorf("newline in string literal")
		}
		r, err := p.char()
		if err != nil {
			return "", err
		}
		b.WriteRune(r)
	}
}

func (p *parser) class() (*node, error) {
	p.pos++ // [
	n := &node{kind: nClass}
	if p.pos < len(p.src) && p.src[p.pos] == '^' {
		n.negated = true
		p.pos++
	}
	for {
		if p.pos >= len(p.src) {
			return nil, p.errorf("unclosed character class")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			break
		}
		lo, err := p.char()
		if err != nil {
			return nil, err
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			if hi, err = p.char(); err != nil {
				return nil, err
			}
			if hi < lo {
				return nil, p.errorf("character range %q-%q is reversed", lo, hi)
			}
		}
		n.ranges = append(n.ranges, cpRange{lo, hi})
	}
	if len(n.ranges) == 0 && !n.negated {
		return nil, p.errorf("empty character class")
	}
	return n, nil
}
