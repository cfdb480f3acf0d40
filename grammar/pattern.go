package grammar

import (
	"fmt"
	"regexp/syntax"
	"strings"
	"unicode"
)

// patternToGBNF translates a JSON Schema "pattern" into GBNF for the
// content of a JSON string (escapes included). The pattern is read with
// Go's regexp syntax (RE2, which agrees with ECMA-262 on the common
// subset: literals, classes, \d \w \s, groups, alternation, * + ? {m,n},
// ^ and $ at the ends). Patterns are unanchored as JSON Schema says: a
// side without ^ or $ may have any text. Backreferences and lookaround do
// not exist in RE2 and are errors; so are word boundaries and anchors in
// the middle.
func patternToGBNF(pattern string, c *schemaCompiler) (string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", c.errorf("pattern %q: %v", pattern, err)
	}
	// Peel the anchors.
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	anchoredStart, anchoredEnd := false, false
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		anchoredStart = true
		subs = subs[1:]
	}
	if len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText {
		anchoredEnd = true
		subs = subs[:len(subs)-1]
	}
	var parts []string
	if !anchoredStart {
		parts = append(parts, "char*")
	}
	for _, s := range subs {
		p, err := regexpGBNF(s, c, pattern)
		if err != nil {
			return "", err
		}
		parts = append(parts, p)
	}
	if !anchoredEnd {
		parts = append(parts, "char*")
	}
	if len(parts) == 0 {
		return `""`, nil
	}
	return "( " + strings.Join(parts, " ") + " )", nil
}

// jsonChar is the GBNF for one character r inside a JSON string.
func jsonChar(r rune) string {
	return gbnfLiteral(jsonEscape(string(r)))
}

func regexpGBNF(re *syntax.Regexp, c *schemaCompiler, pattern string) (string, error) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return `""`, nil
	case syntax.OpLiteral:
		var parts []string
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
				var alts []string
				for f := r; ; {
					alts = append(alts, jsonChar(f))
					if f = unicode.SimpleFold(f); f == r {
						break
					}
				}
				parts = append(parts, "( "+strings.Join(alts, " | ")+" )")
				continue
			}
			parts = append(parts, jsonChar(r))
		}
		return "( " + strings.Join(parts, " ") + " )", nil
	case syntax.OpCharClass:
		return classGBNF(re.Rune)
	case syntax.OpAnyCharNotNL:
		return classGBNF([]rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune})
	case syntax.OpAnyChar:
		return classGBNF([]rune{0, unicode.MaxRune})
	case syntax.OpCapture:
		return regexpGBNF(re.Sub[0], c, pattern)
	case syntax.OpConcat, syntax.OpAlternate:
		var parts []string
		for _, s := range re.Sub {
			p, err := regexpGBNF(s, c, pattern)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		sep := " "
		if re.Op == syntax.OpAlternate {
			sep = " | "
		}
		return "( " + strings.Join(parts, sep) + " )", nil
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		p, err := regexpGBNF(re.Sub[0], c, pattern)
		if err != nil {
			return "", err
		}
		op := map[syntax.Op]string{syntax.OpStar: "*", syntax.OpPlus: "+", syntax.OpQuest: "?"}[re.Op]
		return "( " + p + " )" + op, nil
	case syntax.OpRepeat:
		p, err := regexpGBNF(re.Sub[0], c, pattern)
		if err != nil {
			return "", err
		}
		if re.Min > maxRepeat || re.Max > maxRepeat {
			return "", c.errorf("pattern %q: repetition above %d", pattern, maxRepeat)
		}
		if re.Max < 0 {
			return fmt.Sprintf("( %s ){%d,}", p, re.Min), nil
		}
		return fmt.Sprintf("( %s ){%d,%d}", p, re.Min, re.Max), nil
	}
	return "", c.errorf("pattern %q: %v is not supported", pattern, re.Op)
}

// classGBNF: a character class (pairs of ranges) as JSON string content.
// Characters JSON must escape are written escaped.
func classGBNF(ranges []rune) (string, error) {
	var raw strings.Builder
	var escaped []string
	raw.WriteString("[")
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		// Split out the characters that need escapes.
		for _, r := range []rune{'"', '\\', 0x7f} {
			if lo <= r && r <= hi {
				escaped = append(escaped, jsonChar(r))
			}
		}
		for r := lo; r <= hi && r < 0x20; r++ {
			escaped = append(escaped, jsonChar(r))
		}
		for _, sub := range splitOut(lo, hi, []rune{'"', '\\', 0x7f}) {
			a, b := sub[0], sub[1]
			if b < 0x20 {
				continue
			}
			a = max(a, 0x20)
			fmt.Fprintf(&raw, `\U%08X-\U%08X`, a, b)
			n++
		}
	}
	raw.WriteString("]")
	var alts []string
	if n > 0 {
		alts = append(alts, raw.String())
	}
	alts = append(alts, escaped...)
	if len(alts) == 0 {
		return "", fmt.Errorf("%w: an empty character class in a pattern", ErrSchema)
	}
	return "( " + strings.Join(alts, " | ") + " )", nil
}

// splitOut removes the points in cut from [lo, hi].
func splitOut(lo, hi rune, cut []rune) [][2]rune {
	out := [][2]rune{{lo, hi}}
	for _, c := range cut {
		var next [][2]rune
		for _, r := range out {
			if c < r[0] || c > r[1] {
				next = append(next, r)
				continue
			}
			if r[0] < c {
				next = append(next, [2]rune{r[0], c - 1})
			}
			if c < r[1] {
				next = append(next, [2]rune{c + 1, r[1]})
			}
		}
		out = next
	}
	return out
}
