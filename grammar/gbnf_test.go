package grammar

import (
	"errors"
	"strings"
	"testing"
)

// accepts reports whether the grammar matches text exactly.
func accepts(g *Grammar, text string) bool {
	m := g.Matcher(NewVocab(nil, nil))
	if err := m.AcceptBytes([]byte(text)); err != nil {
		return false
	}
	return m.Complete()
}

const jsonGBNF = `
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
`

const arithmeticGBNF = `root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
`

const listGBNF = `root ::= item+
# Excludes various line break characters
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]+ "\n"
`

func TestGBNFExamples(t *testing.T) {
	cases := []struct {
		name, src string
		yes, no   []string
	}{
		{"json", jsonGBNF,
			[]string{`{}`, `{"a": 1}`, `{"a": [1, 2.5e3, "x\"y", true, null], "b": {"c": "é☃😀"}}`, "{\n  \"k\": -0.5}"},
			[]string{``, `[]`, `{"a": 01}`, `{"a" 1}`, `{"a": "\x01"}`, `{"a": tru}`, `{"a":1}x`}},
		{"arithmetic", arithmeticGBNF,
			[]string{"1+2=3\n", "(a*b) = c\nx=1\n"},
			[]string{"1+2=3", "1+=3\n", "=3\n"}},
		{"list", listGBNF,
			[]string{"- milk\n- eggs\n", "- ünïcode ✓\n"},
			[]string{"- \n", "milk\n", "- a\u2028b\n"}},
		{"repeat", `root ::= "a"{2,3} "b"{2} "c"{1,} "d"?`,
			[]string{"aabbc", "aaabbccccd"},
			[]string{"abbc", "aaaabbc", "aabc", "aabb", "aabbcdd"}},
		{"classes", `root ::= [a-cx] [^a-z] "\u00e9" [\u0100-\U0001F600] "\x41" .`,
			[]string{"a1éĀAz", "x-é😀A☃"},
			[]string{"d1éĀAz", "aa1éĀAz", "a1eĀAz", "a1é\u00ffAz"}},
		{"quotes and comments", "root ::= 'it''s' # comment\n  | \"\\\"q\\\"\"\n",
			[]string{"its", `"q"`},
			[]string{"it's"}},
		{"alternation across lines", "root ::= \"a\"\n  | \"b\"\n  | (\n \"c\"\n | \"d\" )",
			[]string{"a", "b", "c", "d"}, []string{"e", "ab"}},
		{"empty alternative", `root ::= "x" ( | "y")`, []string{"x", "xy"}, []string{"y"}},
		{"ambiguous", `root ::= ("" | "" | "a"){0,60} "b"`, []string{"b", "aab", strings.Repeat("a", 60) + "b"}, []string{strings.Repeat("a", 61) + "b"}},
		{"right recursion", `root ::= "(" root ")" | ""`, []string{"", "()", "((()))"}, []string{"(()", ")("}},
	}
	for _, tc := range cases {
		g, err := CompileGBNF(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, s := range tc.yes {
			if !accepts(g, s) {
				t.Errorf("%s: rejects %q", tc.name, s)
			}
		}
		for _, s := range tc.no {
			if accepts(g, s) {
				t.Errorf("%s: accepts %q", tc.name, s)
			}
		}
	}
}

func TestGBNFErrors(t *testing.T) {
	for _, src := range []string{
		``,
		`rot ::= "a"`,
		`root ::= "a`,
		`root ::= [a-`,
		`root ::= [z-a]`,
		`root ::= b`,
		`root ::= "a" root ::= "b"`,
		"root ::= \"a\"\nroot ::= \"b\"",
		`root ::= root "a"`,
		`root ::= x "a"` + "\nx ::= \"\" | root",
		`root ::= ("a"?)*`,
		`root ::= "a"{3,2}`,
		`root ::= ( "" | "a" ){0,10000}`,
		`root ::= "a"{100000}`,
		`root ::= "\q"`,
		`root ::= "\uD800"`,
		`root ::= ( "a"`,
		`root ::= "a" )`,
		`root = "a"`,
		`root ::= []`,
		"root ::= \"a\xff\"",
	} {
		if _, err := CompileGBNF(src); err == nil {
			t.Errorf("%q compiled", src)
		} else if !errors.Is(err, ErrGrammar) {
			t.Errorf("%q: error %v does not wrap ErrGrammar", src, err)
		}
	}
}

func TestUTF8Sequences(t *testing.T) {
	// Every codepoint's encoding is matched by exactly the classes that hold it.
	g, err := CompileGBNF(`root ::= [^\x00-\x7f\u0800-\uffff]`)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []rune{0x80, 0x7ff, 0x10000, 0x10ffff} {
		if !accepts(g, string(r)) {
			t.Errorf("rejects %U", r)
		}
	}
	for _, r := range []rune{0x7f, 0x800, 0xffff, 0xe000} {
		if accepts(g, string(r)) {
			t.Errorf("accepts %U", r)
		}
	}
	if accepts(g, "\xed\xa0\x80") { // a surrogate's encoding
		t.Error("accepts a surrogate")
	}
	if !strings.Contains(jsonGBNF, "ws") {
		t.Fatal()
	}
}

func FuzzCompileGBNF(f *testing.F) {
	for _, s := range []string{jsonGBNF, arithmeticGBNF, listGBNF, `root ::= [^a]{2,5} | "x"*`} {
		f.Add(s, "test input")
	}
	f.Fuzz(func(t *testing.T, src, input string) {
		if len(src) > 4096 {
			return
		}
		g, err := CompileGBNF(src)
		if err != nil {
			return
		}
		m := g.Matcher(NewVocab(nil, nil))
		_ = m.AcceptBytes([]byte(input))
	})
}
