package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/tokenizer"
)

var (
	gpt2Once  sync.Once
	gpt2Vocab *Vocab
	gpt2Err   error
	gpt2EOG   int32
)

// gpt2 is the GPT-2 vocabulary (50257 tokens) prepared for matching.
func gpt2(t testing.TB) *Vocab {
	gpt2Once.Do(func() {
		f, err := gguf.Open("../testdata/tokenizer/gguf/ggml-vocab-gpt-2.gguf")
		if err != nil {
			gpt2Err = err
			return
		}
		defer f.Close()
		tok, err := tokenizer.FromGGUF(f)
		if err != nil {
			gpt2Err = err
			return
		}
		tokens := make([][]byte, tok.NVocab())
		var eog []int32
		for i := range tokens {
			if tok.IsEOG(int32(i)) {
				eog = append(eog, int32(i))
				continue
			}
			if tok.IsControl(int32(i)) {
				continue
			}
			tokens[i] = bytes.Clone(tok.Piece(int32(i)))
		}
		gpt2EOG = eog[0]
		gpt2Vocab = NewVocab(tokens, eog)
	})
	if gpt2Err != nil {
		t.Fatal(gpt2Err)
	}
	return gpt2Vocab
}

// sample generates under the matcher with random logits until it is done;
// after budget tokens it favours tokens that close strings, arrays and
// objects, so that every generation ends.
func sample(t testing.TB, m *Matcher, v *Vocab, rng *rand.Rand, budget int) string {
	var out []byte
	logits := make([]float32, v.NVocab())
	bias := closingBiases(v)
	for step := 0; step < 2000; step++ {
		if m.Done() {
			return string(out)
		}
		for i := range logits {
			logits[i] = rng.Float32()
			if step >= budget {
				logits[i] += bias[i]
			}
		}
		m.Mask(logits)
		best, bestV := -1, float32(math.Inf(-1))
		for i, l := range logits {
			if l > bestV {
				best, bestV = i, l
			}
		}
		if best < 0 {
			t.Fatalf("no token allowed after %q", out)
		}
		if err := m.Accept(int32(best)); err != nil {
			t.Fatalf("accept after %q: %v", out, err)
		}
		if v.eog[best] {
			return string(out)
		}
		out = append(out, v.tokens[best]...)
	}
	t.Fatalf("no end after 2000 tokens: %q", out)
	return ""
}

var (
	biasOnce sync.Once
	biases   []float32
)

func closingBiases(v *Vocab) []float32 {
	biasOnce.Do(func() {
		biases = make([]float32, v.NVocab())
		for i, tok := range v.tokens {
			biases[i] = closingBias(tok)
			if v.eog[i] {
				biases[i] = 100
			}
		}
	})
	return biases
}

func closingBias(tok []byte) float32 {
	if len(tok) == 0 {
		return 0
	}
	var b float32
	for _, c := range tok {
		switch {
		case c == '"':
			b += 6
		case c == ']' || c == '}':
			b += 4
		case c >= '0' && c <= '9' || c == 'a' || c == '-':
			b += 1
		case c == ',' || c == ' ' || c == '\n' || c == '.':
			b -= 1
		default:
			b -= 2
		}
	}
	return b / float32(len(tok))
}

// schemaGen makes random schemas.
type schemaGen struct {
	rng  *rand.Rand
	defs map[string]any
}

func (g *schemaGen) pick(n int) int { return g.rng.IntN(n) }

func (g *schemaGen) schema(depth int) map[string]any {
	kinds := []string{"string", "integer", "number", "boolean", "null", "enum", "const", "object", "array", "anyOf", "oneOf", "ref", "pattern", "format"}
	if depth >= 3 {
		kinds = kinds[:7]
	}
	switch kinds[g.pick(len(kinds))] {
	case "string":
		s := map[string]any{"type": "string"}
		if g.pick(2) == 0 {
			lo := g.pick(4)
			s["minLength"] = lo
			if g.pick(2) == 0 {
				s["maxLength"] = lo + g.pick(6)
			}
		}
		return s
	case "pattern":
		pats := []string{`^[a-z]{2,4}$`, `^\d{3}-\d{2}$`, `^ab+c`, `^(yes|no)$`, `^[A-Z][a-z]*\.?$`, `^x\"y$`, `^[^a-z]{1,3}$`}
		return map[string]any{"type": "string", "pattern": pats[g.pick(len(pats))]}
	case "format":
		fs := []string{"date", "uuid", "date-time", "time"}
		return map[string]any{"type": "string", "format": fs[g.pick(len(fs))]}
	case "integer", "number":
		typ := []string{"integer", "number"}[g.pick(2)]
		s := map[string]any{"type": typ}
		lo := g.rng.IntN(2000) - 1000
		switch g.pick(4) {
		case 0:
			s["minimum"] = lo
		case 1:
			s["maximum"] = lo
		case 2:
			s["minimum"], s["maximum"] = lo, lo+g.rng.IntN(3000)
		}
		if typ == "integer" && g.pick(4) == 0 {
			s["exclusiveMinimum"] = lo - 1
		}
		return s
	case "boolean":
		return map[string]any{"type": "boolean"}
	case "null":
		return map[string]any{"type": "null"}
	case "enum":
		vals := []any{"red", "green", 3, 2.5, true, nil, "with \"quote\"", map[string]any{"a": 1}, []any{1, "x"}}
		n := 1 + g.pick(4)
		var e []any
		seen := map[int]bool{}
		for len(e) < n {
			i := g.pick(len(vals))
			if !seen[i] {
				seen[i] = true
				e = append(e, vals[i])
			}
		}
		return map[string]any{"enum": e}
	case "const":
		return map[string]any{"const": []any{"fixed", 42, false, map[string]any{"k": []any{nil}}}[g.pick(4)]}
	case "object":
		s := map[string]any{"type": "object"}
		props := map[string]any{}
		var req []any
		n := 1 + g.pick(4)
		for i := 0; i < n; i++ {
			name := []string{"id", "name", "tags", "value", "nested", "a b", "ünï", "x"}[g.pick(8)]
			props[name] = g.schema(depth + 1)
			if g.pick(2) == 0 {
				req = append(req, name)
			}
		}
		s["properties"] = props
		if len(req) > 0 {
			s["required"] = dedupAny(req)
		}
		switch g.pick(4) {
		case 0:
			s["additionalProperties"] = false
		case 1:
			s["additionalProperties"] = map[string]any{"type": "integer"}
		}
		return s
	case "array":
		s := map[string]any{"type": "array", "items": g.schema(depth + 1)}
		if g.pick(2) == 0 {
			lo := g.pick(3)
			s["minItems"] = lo
			s["maxItems"] = lo + g.pick(3)
		} else if g.pick(2) == 0 {
			s["maxItems"] = g.pick(3)
		}
		return s
	case "anyOf", "oneOf":
		// Disjoint alternatives, so oneOf holds too.
		opts := []map[string]any{{"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "null"}, {"type": "array", "items": map[string]any{"type": "integer"}, "maxItems": 2}}
		g.rng.Shuffle(len(opts), func(i, j int) { opts[i], opts[j] = opts[j], opts[i] })
		var alts []any
		for _, o := range opts[:2+g.pick(2)] {
			alts = append(alts, o)
		}
		return map[string]any{[]string{"anyOf", "oneOf"}[g.pick(2)]: alts}
	case "ref":
		name := fmt.Sprintf("d%d", len(g.defs))
		g.defs[name] = true // reserve the name
		if g.pick(3) == 0 {
			// A recursive tree.
			g.defs[name] = map[string]any{"type": "object", "properties": map[string]any{
				"v":        map[string]any{"type": "integer"},
				"children": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/" + name}, "maxItems": 2},
			}, "required": []any{"v"}, "additionalProperties": false}
		} else {
			g.defs[name] = g.schema(depth + 1)
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	}
	panic("unreachable")
}

func dedupAny(xs []any) []any {
	seen := map[any]bool{}
	var out []any
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func validator(t testing.TB, schema []byte) *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("validator rejects %s: %v", schema, err)
	}
	return sch
}

func checkValid(t testing.TB, sch *jsonschema.Schema, schema []byte, out string) {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("schema %s: output %q does not parse: %v", schema, out, err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("schema %s: output %q does not validate: %v", schema, out, err)
	}
}

func TestRandomSchemas(t *testing.T) {
	v := gpt2(t)
	n := 60
	if s := os.Getenv("SLM_SCHEMA_SEEDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		n = 15
	}
	for seed := 0; seed < n; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		gen := &schemaGen{rng: rng, defs: map[string]any{}}
		root := gen.schema(0)
		if len(gen.defs) > 0 {
			root["$defs"] = gen.defs
		}
		schema, _ := json.Marshal(root)
		g, err := CompileJSONSchema(schema)
		if err != nil {
			t.Fatalf("seed %d: %s: %v", seed, schema, err)
		}
		sch := validator(t, schema)
		for k := 0; k < 3; k++ {
			out := sample(t, g.Matcher(v), v, rng, 10+rng.IntN(30))
			checkValid(t, sch, schema, out)
		}
	}
}

func TestJSONObjectGrammar(t *testing.T) {
	v := gpt2(t)
	g := JSONObject()
	for seed := 0; seed < 5; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 9))
		out := sample(t, g.Matcher(v), v, rng, 30)
		var x map[string]any
		if err := json.Unmarshal([]byte(out), &x); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
	}
}

func TestSchemaAcceptsAndRejects(t *testing.T) {
	cases := []struct {
		schema  string
		yes, no []string
	}{
		{`{"type":"integer","minimum":-15,"maximum":230}`, []string{"-15", "0", "7", "99", "100", "230"}, []string{"-16", "231", "1000", "07", "1.5"}},
		{`{"type":"integer","minimum":5}`, []string{"5", "9", "10", "123456"}, []string{"4", "-1", "0"}},
		{`{"type":"integer","exclusiveMaximum":0}`, []string{"-1", "-100"}, []string{"0", "1"}},
		{`{"type":"number","minimum":0,"maximum":1}`, []string{"0", "0.5", "1", "1.000", "0.999"}, []string{"1.01", "-0.1", "2", "1e0"}},
		{`{"type":"number","minimum":-2,"maximum":-1}`, []string{"-1", "-1.5", "-2", "-2.0"}, []string{"-0.5", "-2.1", "0"}},
		{`{"type":"string","minLength":2,"maxLength":3}`, []string{`"ab"`, `"abc"`, `"é\n"`}, []string{`"a"`, `"abcd"`}},
		{`{"type":"string","pattern":"^[a-c]+x?$"}`, []string{`"abc"`, `"ax"`}, []string{`"x"`, `"abd"`}},
		{`{"type":"string","pattern":"q\"r"}`, []string{`"q\"r"`, `"..q\"r.."`}, []string{`"qr"`}},
		{`{"enum":["a",1,null,{"b":[true]}]}`, []string{`"a"`, `1`, `null`, `{"b":[true]}`}, []string{`"b"`, `2`}},
		{`{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["b"]}`,
			[]string{`{"b":"x"}`, `{"a":1,"b":"x"}`, `{ "a": 1, "b": "x" }`}, []string{`{}`, `{"a":1}`, `{"b":"x","a":1}`, `{"b":"x","c":1}`}},
		{`{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"boolean"}}`,
			[]string{`{}`, `{"a":1}`, `{"a":1,"ab":true}`, `{"b":false,"c":true}`}, []string{`{"a":true}`, `{"b":1}`, `{"a":1,"a":2}`}},
		{`{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":2}`, []string{`[1]`, `[1,2]`}, []string{`[]`, `[1,2,3]`}},
		{`{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, []string{`[]`, `["a"]`, `["a",1]`}, []string{`["a",1,2]`, `[1]`}},
		{`{"$ref":"#/$defs/n","$defs":{"n":{"type":"object","properties":{"c":{"type":"array","items":{"$ref":"#/$defs/n"}}},"additionalProperties":false}}}`,
			[]string{`{}`, `{"c":[{},{"c":[]}]}`}, []string{`{"c":[1]}`}},
		{`{"type":["string","null"]}`, []string{`"x"`, `null`}, []string{`1`}},
		{`{"type":"string","format":"date"}`, []string{`"2024-02-28"`, `"2024-12-31"`}, []string{`"2024-13-01"`, `"2024-04-31"`, `"x"`}},
		{`true`, []string{`1`, `{"a":[]}`}, []string{`x`}},
		{`{"anyOf":[{"type":"integer"},{"$ref":"#/$defs/inf"}],"$defs":{"inf":{"type":"array","items":{"$ref":"#/$defs/inf"},"minItems":1}}}`, []string{`1`}, []string{`[`, `[[`}},
		{`{}`, []string{`1`, `"s"`}, []string{``}},
	}
	for _, tc := range cases {
		g, err := CompileJSONSchema([]byte(tc.schema))
		if err != nil {
			t.Fatalf("%s: %v", tc.schema, err)
		}
		for _, s := range tc.yes {
			if !accepts(g, s) {
				t.Errorf("%s: rejects %s", tc.schema, s)
			}
		}
		for _, s := range tc.no {
			if accepts(g, s) {
				t.Errorf("%s: accepts %s", tc.schema, s)
			}
		}
	}
}

func TestInvalidSchemas(t *testing.T) {
	for _, s := range []string{
		``, `[`, `1`, `"x"`, `false`, `{"type":"strin"}`, `{"type":5}`,
		`{"type":"string","minLength":-1}`, `{"type":"string","minLength":3,"maxLength":2}`,
		`{"type":"array","minItems":3,"maxItems":1}`, `{"type":"integer","minimum":5,"maximum":1}`,
		`{"$ref":"#/$defs/missing"}`, `{"$ref":"http://example.com/s.json"}`,
		`{"type":"number","multipleOf":2}`, `{"type":"array","uniqueItems":true}`, `{"not":{}}`,
		`{"type":"string","pattern":"(a"}`, `{"type":"string","pattern":"\\bword"}`,
		`{"type":"number","minimum":0.5}`, `{"type":"number","exclusiveMinimum":0}`,
		`{"allOf":[{},{}]}`, `{"enum":[]}`, `{"anyOf":[]}`, `{"type":"object","properties":[]}`,
		`{"type":"integer","minimum":1e300}`,
		`{"$ref":"#/$defs/d","$defs":{"d":{"type":"array","items":{"$ref":"#/$defs/d"},"minItems":1}}}`,
		`{"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]}`,
	} {
		_, err := CompileJSONSchema([]byte(s))
		if err == nil {
			t.Errorf("%s compiled", s)
		} else if !errors.Is(err, ErrSchema) {
			t.Errorf("%s: %v does not wrap ErrSchema", s, err)
		}
	}
}

func FuzzCompileJSONSchema(f *testing.F) {
	for _, s := range []string{`{"type":"object","properties":{"a":{"type":"integer","minimum":3}},"required":["a"]}`, `{"enum":[1,"x"]}`, `{"type":"string","pattern":"^a+$"}`, `{"$ref":"#"}`} {
		f.Add([]byte(s), []byte(`{"a":3}`))
	}
	f.Fuzz(func(t *testing.T, schema, input []byte) {
		if len(schema) > 2048 {
			return
		}
		g, err := CompileJSONSchema(schema)
		if err != nil {
			return
		}
		m := g.Matcher(NewVocab(nil, nil))
		_ = m.AcceptBytes(input)
	})
}
