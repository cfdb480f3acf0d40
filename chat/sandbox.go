package chat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// The sandbox.
//
// Chat templates come from model files, which are downloaded from anywhere,
// so a template is treated as hostile. The Jinja engine itself has no notion
// of budgets, so the sandbox works around it, without forking it:
//
//  1. A static check of the template, on the same segments and tokens as the
//     engine's own scanner, rejects what cannot be bounded cheaply at run time:
//     names starting with "__slm" (the sandbox's own hooks), recursive for
//     loops, list/dict mutation methods (append, extend, insert, update,
//     setdefault: they can build cyclic values that recurse forever in
//     tojson), "*" without a small numeric literal beside it (string
//     repetition), size-multiplying filters and methods (replace, join,
//     indent, center, tojson(indent=…, separators=…), …) with non-literal
//     arguments, more than maxConcatPerTag "+"/"~" in one tag, and nesting
//     deeper than maxNesting (blocks or brackets: the engine's parser is
//     recursive).
//  2. The template is rewritten so that the engine calls back into the
//     sandbox: "{{ __slm_tick(N) }}" at the start of every for-loop body
//     (N = bytes of literal text that one iteration can emit),
//     "{{ __slm_enter(N) }}" / "{{ __slm_leave() }}" around every macro and
//     call-block body (recursion depth), "{{ __slm_out(E) }}" around every
//     printed expression (output budget) and "set x = __slm_cap(E)" around
//     every assigned value (size of stored values; for "set ns.attr = E",
//     "__slm_cap(E, ns)" also refuses an E that contains ns: the only way
//     left to build a cyclic value). The inserted tags are
//     expression tags without trim markers, which the engine's whitespace
//     rules (trim_blocks, lstrip_blocks, "-") never see, so the rendering is
//     byte for byte the same.
//  3. Each callback counts work (loop iterations, output bytes) against the
//     render's budget and checks the context's deadline; past either, the
//     callback returns an error and the engine stops rendering.
//
// What remains is the work between two callbacks, which the static rules
// bound by the template size times the input size.

// Limits bound one render. The zero value means DefaultLimits.
type Limits struct {
	MaxTemplateBytes int   // template source size
	MaxInputBytes    int   // all strings in messages, tools and extra variables
	MaxOutputBytes   int   // rendered text (and text printed into set blocks and macros)
	MaxValueBytes    int   // a value stored by "set"
	MaxIterations    int64 // for-loop iterations, all loops together
	MaxDepth         int   // macro/call nesting at run time
	// Relaxed drops the static rules against size-multiplying operators
	// ("*" and the literal-argument rule of replace, join, indent, …) for
	// templates from a trusted source, such as an operator's
	// --chat-template file whose template needs them. The run-time budget,
	// the recursion and cycle rules and the nesting limits still apply;
	// only a string repeated by a huge count can then exhaust memory.
	Relaxed bool
}

// DefaultLimits are generous for real chat templates (a few KB, a few hundred
// iterations) and small enough to stop a hostile one quickly.
var DefaultLimits = Limits{
	MaxTemplateBytes: 256 << 10,
	MaxInputBytes:    4 << 20,
	MaxOutputBytes:   16 << 20,
	MaxValueBytes:    4 << 20,
	MaxIterations:    1 << 20,
	MaxDepth:         32,
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits
	if l.MaxTemplateBytes > 0 {
		d.MaxTemplateBytes = l.MaxTemplateBytes
	}
	if l.MaxInputBytes > 0 {
		d.MaxInputBytes = l.MaxInputBytes
	}
	if l.MaxOutputBytes > 0 {
		d.MaxOutputBytes = l.MaxOutputBytes
	}
	if l.MaxValueBytes > 0 {
		d.MaxValueBytes = l.MaxValueBytes
	}
	if l.MaxIterations > 0 {
		d.MaxIterations = l.MaxIterations
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	d.Relaxed = l.Relaxed
	return d
}

const (
	maxNesting      = 48  // block and bracket nesting in the source
	maxConcatPerTag = 64  // "+" and "~" operators in one tag
	maxMulPerTag    = 1   // "*" operators in one tag
	maxMulLiteral   = 16  // the numeric literal beside a "*"
	maxLiteralArg   = 128 // bytes of a string literal argument to a size-multiplying filter
	maxNumberArg    = 64  // numeric literal argument to a size-multiplying filter
	hookPrefix      = "__slm"
)

// ErrUnsafeTemplate is wrapped by the errors of templates the sandbox refuses.
var ErrUnsafeTemplate = errors.New("chat template refused by the sandbox")

// segment kinds, as the engine's scanner splits a template.
type segKind int

const (
	segText segKind = iota
	segComment
	segExpr
	segStmt
)

type segment struct {
	kind                segKind
	text                string // between the delimiters (and trim markers)
	trimLeft, trimRight bool
	line                int
}

// scanSegments splits src exactly as github.com/ardanlabs/jinja v1.8.0's
// scanner does: tags end at the first closer outside a quoted string
// (comments ignore quotes), "-" right after the opener or right before the
// closer is a trim marker.
func scanSegments(src string) ([]segment, error) {
	var segs []segment
	line := 1
	i, textStart := 0, 0
	for i < len(src) {
		if src[i] != '{' || i+1 >= len(src) {
			if src[i] == '\n' {
				line++
			}
			i++
			continue
		}
		var kind segKind
		var closer string
		switch src[i+1] {
		case '{':
			kind, closer = segExpr, "}}"
		case '%':
			kind, closer = segStmt, "%}"
		case '#':
			kind, closer = segComment, "#}"
		default:
			i++
			continue
		}
		if i > textStart {
			segs = append(segs, segment{kind: segText, text: src[textStart:i], line: line})
		}
		tagLine := line
		i += 2
		trimLeft := false
		if i < len(src) && src[i] == '-' {
			trimLeft = true
			i++
		}
		start := i
		found := false
		for i < len(src) {
			ch := src[i]
			if kind != segComment && (ch == '\'' || ch == '"') {
				i++
				for i < len(src) && src[i] != ch {
					if src[i] == '\\' && i+1 < len(src) {
						if src[i+1] == '\n' {
							line++
						}
						i++
					}
					if src[i] == '\n' {
						line++
					}
					i++
				}
				if i < len(src) {
					i++
				}
				continue
			}
			if ch == '-' && i+2 < len(src) && src[i+1] == closer[0] && src[i+2] == closer[1] {
				segs = append(segs, segment{kind: kind, text: src[start:i], trimLeft: trimLeft, trimRight: true, line: tagLine})
				i += 3
				found = true
				break
			}
			if i+1 < len(src) && ch == closer[0] && src[i+1] == closer[1] {
				segs = append(segs, segment{kind: kind, text: src[start:i], trimLeft: trimLeft, line: tagLine})
				i += 2
				found = true
				break
			}
			if ch == '\n' {
				line++
			}
			i++
		}
		if !found {
			return nil, fmt.Errorf("line %d: unclosed tag", tagLine)
		}
		textStart = i
	}
	if textStart < len(src) {
		segs = append(segs, segment{kind: segText, text: src[textStart:], line: line})
	}
	return segs, nil
}

// stmtKeyword is the engine's: the leading run of letters and '_' of the
// trimmed statement.
func stmtKeyword(text string) string {
	text = strings.TrimSpace(text)
	for i, r := range text {
		if !unicode.IsLetter(r) && r != '_' {
			return text[:i]
		}
	}
	return text
}

// token of an expression, as the engine's tokenizer splits it.
type tokKind int

const (
	tkName tokKind = iota
	tkString
	tkNumber
	tkPunct
)

type token struct {
	kind tokKind
	val  string // punctuation/name/number text; the decoded string for tkString
}

// tokenize mirrors the engine's expression tokenizer (unknown characters are
// skipped there; they are kept here as punctuation, which only makes the
// checks stricter).
func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '\'' || ch == '"':
			i++
			var b strings.Builder
			for i < len(s) && s[i] != ch {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
				i++
			}
			if i < len(s) {
				i++
			}
			toks = append(toks, token{tkString, b.String()})
		case ch >= '0' && ch <= '9':
			start := i
			for i < len(s) && (s[i] >= '0' && s[i] <= '9') {
				i++
			}
			if i+1 < len(s) && s[i] == '.' && s[i+1] >= '0' && s[i+1] <= '9' {
				i++
				for i < len(s) && s[i] >= '0' && s[i] <= '9' {
					i++
				}
				if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
					i++
					if i < len(s) && (s[i] == '+' || s[i] == '-') {
						i++
					}
					for i < len(s) && s[i] >= '0' && s[i] <= '9' {
						i++
					}
				}
			}
			toks = append(toks, token{tkNumber, s[start:i]})
		case ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z':
			start := i
			for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
				i++
			}
			toks = append(toks, token{tkName, s[start:i]})
		default:
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "**", "//", "==", "!=", "<=", ">=":
					toks = append(toks, token{tkPunct, two})
					i += 2
					continue
				}
			}
			toks = append(toks, token{tkPunct, s[i : i+1]})
			i++
		}
	}
	return toks
}

// sizeMultipliers are filters and methods whose output can be much larger
// than their input when given large arguments; their arguments must be
// small literals.
var sizeMultipliers = map[string]bool{
	"replace": true, "join": true, "indent": true, "center": true, "tojson": true,
	"ljust": true, "rjust": true, "zfill": true, "wordwrap": true, "expandtabs": true,
	"truncate": true, "batch": true, "format": false,
}

// mutators build cyclic or ever-growing values.
var mutators = map[string]bool{
	"append": true, "extend": true, "insert": true, "update": true, "setdefault": true,
}

type checker struct{ relaxed bool }

func refused(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrUnsafeTemplate, line, fmt.Sprintf(format, args...))
}

// checkTokens applies the static rules to one tag's tokens.
func (c *checker) checkTokens(toks []token, line int) error {
	depth, concat, mul := 0, 0, 0
	for i, t := range toks {
		switch t.kind {
		case tkName:
			if strings.HasPrefix(t.val, hookPrefix) {
				return refused(line, "the name %q is reserved", t.val)
			}
			prevDot := i > 0 && toks[i-1].val == "."
			if prevDot && mutators[t.val] {
				return refused(line, "the mutating method %q is not allowed", t.val)
			}
			if t.val == "recursive" {
				return refused(line, "recursive loops are not allowed")
			}
			if !c.relaxed && sizeMultipliers[t.val] && i > 0 && (toks[i-1].val == "|" || toks[i-1].val == ".") {
				if t.val == "join" && toks[i-1].val == "." {
					if i < 2 || toks[i-2].kind != tkString || len(toks[i-2].val) > maxLiteralArg {
						return refused(line, "str.join needs a short string literal separator")
					}
				}
				if err := checkLiteralArgs(toks[i+1:], t.val, line); err != nil {
					return err
				}
			}
		case tkPunct:
			switch t.val {
			case "(", "[", "{":
				depth++
				if depth > maxNesting {
					return refused(line, "brackets nested deeper than %d", maxNesting)
				}
			case ")", "]", "}":
				depth--
			case "+", "~":
				concat++
				if concat > maxConcatPerTag {
					return refused(line, "more than %d concatenations in one tag", maxConcatPerTag)
				}
			case "*":
				if c.relaxed {
					break
				}
				mul++
				if mul > maxMulPerTag || !(smallNumber(toks, i-1, maxMulLiteral) || smallNumber(toks, i+1, maxMulLiteral)) {
					return refused(line, "'*' is only allowed once per tag, beside a numeric literal of at most %d", maxMulLiteral)
				}
			}
		}
	}
	return nil
}

func smallNumber(toks []token, i int, limit float64) bool {
	if i < 0 || i >= len(toks) || toks[i].kind != tkNumber {
		return false
	}
	f, err := strconv.ParseFloat(toks[i].val, 64)
	return err == nil && f <= limit
}

// checkLiteralArgs checks that an optional "(…)" argument list holds only
// short literals (and keyword names).
func checkLiteralArgs(toks []token, name string, line int) error {
	if len(toks) == 0 || toks[0].val != "(" {
		return nil
	}
	depth := 0
	for i, t := range toks {
		switch {
		case t.kind == tkPunct && (t.val == "(" || t.val == "["):
			depth++
		case t.kind == tkPunct && (t.val == ")" || t.val == "]"):
			depth--
			if depth == 0 {
				return nil
			}
		case t.kind == tkPunct && (t.val == "," || t.val == "=" || t.val == "-"):
		case t.kind == tkString && len(t.val) <= maxLiteralArg:
		case t.kind == tkNumber && smallNumber(toks, i, maxNumberArg):
		case t.kind == tkName && i+1 < len(toks) && toks[i+1].val == "=":
		case t.kind == tkName && (t.val == "true" || t.val == "false" || t.val == "True" || t.val == "False" || t.val == "none" || t.val == "None"):
		default:
			return refused(line, "%s() takes only short literal arguments here", name)
		}
	}
	return nil
}

// sandbox checks src and returns the rewritten template.
func sandbox(src string, lim Limits) (string, error) {
	if len(src) > lim.MaxTemplateBytes {
		return "", fmt.Errorf("%w: the template has %d bytes, more than %d", ErrUnsafeTemplate, len(src), lim.MaxTemplateBytes)
	}
	segs, err := scanSegments(src)
	if err != nil {
		return "", err
	}
	c := &checker{relaxed: lim.Relaxed}
	type frame struct {
		keyword string
		text    int // literal bytes of this body (for loops, macros, call blocks)
		mark    int // index in out of the placeholder for the tick
	}
	var stack []frame
	var out []string
	// addText charges literal text to the innermost loop, macro or call
	// body: that is what one iteration or call can emit.
	addText := func(n int) {
		for i := len(stack) - 1; i >= 0; i-- {
			switch stack[i].keyword {
			case "for", "macro", "call":
				stack[i].text += n
				return
			}
		}
	}
	inRaw := false
	for _, s := range segs {
		if inRaw {
			if s.kind == segStmt && stmtKeyword(s.text) == "endraw" {
				inRaw = false
			}
			out = append(out, render(s, s.text))
			addText(len(s.text) + 6)
			continue
		}
		switch s.kind {
		case segText, segComment:
			if s.kind == segText {
				addText(len(s.text))
			}
			out = append(out, render(s, s.text))
		case segExpr:
			if err := c.checkTokens(tokenize(s.text), s.line); err != nil {
				return "", err
			}
			out = append(out, render(s, " "+hookPrefix+"_out("+s.text+") "))
		case segStmt:
			if err := c.checkTokens(tokenize(s.text), s.line); err != nil {
				return "", err
			}
			kw := stmtKeyword(s.text)
			text := s.text
			switch kw {
			case "raw":
				inRaw = true
			case "set":
				body := strings.TrimSpace(s.text)[3:]
				if target, value, ok := strings.Cut(body, "="); ok {
					// A namespace attribute: pass the namespace too, so
					// that storing it into itself (a cycle) is refused.
					extra := ""
					if ns, _, isAttr := strings.Cut(target, "."); isAttr {
						extra = ", " + strings.TrimSpace(ns)
					}
					text = " set " + target + "= " + hookPrefix + "_cap(" + value + extra + ") "
				}
			}
			out = append(out, render(s, text))
			switch kw {
			case "if", "filter", "generation":
				stack = append(stack, frame{keyword: kw})
			case "set":
				if !strings.Contains(s.text, "=") {
					stack = append(stack, frame{keyword: kw})
				}
			case "for", "macro", "call":
				stack = append(stack, frame{keyword: kw, mark: len(out)})
				out = append(out, "") // placeholder
			case "endfor", "endmacro", "endcall":
				if len(stack) == 0 || "end"+stack[len(stack)-1].keyword != kw {
					return "", fmt.Errorf("line %d: unexpected %s", s.line, kw)
				}
				f := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if kw == "endfor" {
					out[f.mark] = "{{ " + hookPrefix + "_tick(" + strconv.Itoa(f.text) + ") }}"
				} else {
					out[f.mark] = "{{ " + hookPrefix + "_enter(" + strconv.Itoa(f.text) + ") }}"
					// Close the body just before the end tag.
					last := out[len(out)-1]
					out[len(out)-1] = "{{ " + hookPrefix + "_leave() }}"
					out = append(out, last)
				}
			case "endif", "endfilter", "endset", "endgeneration":
				if len(stack) == 0 || "end"+stack[len(stack)-1].keyword != kw {
					return "", fmt.Errorf("line %d: unexpected %s", s.line, kw)
				}
				stack = stack[:len(stack)-1]
			}
			if len(stack) > maxNesting {
				return "", refused(s.line, "blocks nested deeper than %d", maxNesting)
			}
		}
	}
	if len(stack) > 0 {
		return "", fmt.Errorf("unclosed %s block", stack[len(stack)-1].keyword)
	}
	return strings.Join(out, ""), nil
}

// render writes a segment back with its delimiters and trim markers.
func render(s segment, text string) string {
	var open, close string
	switch s.kind {
	case segText:
		return text
	case segComment:
		open, close = "{#", "#}"
	case segExpr:
		open, close = "{{", "}}"
	case segStmt:
		open, close = "{%", "%}"
	}
	if s.trimLeft {
		open += "-"
	}
	if s.trimRight {
		close = "-" + close
	}
	return open + text + close
}
