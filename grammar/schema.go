package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// JSON Schema support.
//
// CompileJSONSchema turns a schema into GBNF and compiles it. Supported:
//
//   - type (one or a list), enum, const, anyOf, oneOf (as anyOf: the
//     alternatives should not overlap), allOf with one member, $ref to
//     "#", "#/$defs/…", "#/definitions/…" (or any JSON pointer in the
//     document; recursion is fine), nested objects and arrays;
//   - objects: properties (generated in the schema's order), required,
//     additionalProperties (false, true or a schema; when absent, no other
//     properties are generated, which is always valid), and the keys of
//     additional properties never repeat a declared property;
//   - arrays: items, prefixItems, minItems, maxItems;
//   - strings: minLength, maxLength, pattern (a regular expression, see
//     pattern.go), format date, time, date-time (never a 29 February:
//     leap years are not expressed), uuid (other formats are annotations,
//     as in JSON Schema 2020-12);
//   - integers: minimum, maximum, exclusiveMinimum, exclusiveMaximum
//     (also the draft-4 boolean form); numbers: the same bounds when they
//     are integers;
//   - annotations (title, description, default, examples, $schema, $id,
//     $comment, deprecated, readOnly, writeOnly) are ignored.
//
// Anything else that constrains values (multipleOf, uniqueItems, contains,
// minProperties, not, if/then/else, patternProperties, dependentRequired,
// …) is an error: the output could not be guaranteed to validate.
//
// Generated JSON is compact apart from optional single spaces and line
// breaks, so that a model cannot loop on whitespace.

// ErrSchema is wrapped by every schema error.
var ErrSchema = errors.New("unsupported JSON schema")

// CompileJSONSchema compiles a JSON Schema into a grammar of the JSON texts
// that validate against it.
func CompileJSONSchema(schema []byte) (*Grammar, error) {
	src, err := JSONSchemaToGBNF(schema)
	if err != nil {
		return nil, err
	}
	g, err := CompileGBNF(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSchema, err)
	}
	return g, nil
}

// JSONObject is the grammar of any JSON object (OpenAI's json_object
// response format, Ollama's format "json").
func JSONObject() *Grammar {
	jsonObjectOnce.Do(func() {
		g, err := CompileGBNF("root ::= object\n" + primitives)
		if err != nil {
			panic(err)
		}
		jsonObject = g
	})
	return jsonObject
}

var (
	jsonObjectOnce sync.Once
	jsonObject     *Grammar
)

// primitives are the shared rules of every JSON grammar.
const primitives = `value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}" ws
array ::= "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" char* "\"" ws
char ::= [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
keychar ::= [^"\\\x7F\x00-\x1F]
number ::= "-"? int frac? exp? ws
integer ::= "-"? int ws
int ::= "0" | [1-9] [0-9]{0,15}
frac ::= "." [0-9]{1,16}
exp ::= [eE] [-+]? [0-9]{1,3}
boolean ::= ( "true" | "false" ) ws
null ::= "null" ws
ws ::= ( " " | "\n" [ ]{0,16} )?
`

// ordered JSON: objects keep their key order.
type jobj struct {
	keys []string
	vals map[string]any
}

func (o *jobj) get(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	v, ok := o.vals[k]
	return v, ok
}

func parseOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeOrdered(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("trailing data after the schema")
	}
	return v, nil
}

func decodeOrdered(dec *json.Decoder, depth int) (any, error) {
	if depth > 128 {
		return nil, errors.New("nested too deeply")
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch d := t.(type) {
	case json.Delim:
		if d == '[' {
			var arr []any
			for dec.More() {
				v, err := decodeOrdered(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token()
			if arr == nil {
				arr = []any{}
			}
			return arr, err
		}
		o := &jobj{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			v, err := decodeOrdered(dec, depth+1)
			if err != nil {
				return nil, err
			}
			if _, dup := o.vals[k]; !dup {
				o.keys = append(o.keys, k)
			}
			o.vals[k] = v
		}
		_, err := dec.Token()
		return o, err
	}
	return t, nil
}

// canonical writes v as compact JSON (object keys in their order).
func canonical(b *strings.Builder, v any) {
	switch x := v.(type) {
	case *jobj:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			canonical(b, x.vals[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			canonical(b, e)
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(x.String())
	default:
		vb, _ := json.Marshal(x)
		b.Write(vb)
	}
}

// gbnfLiteral quotes s as a GBNF string literal.
func gbnfLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

type schemaCompiler struct {
	prefix  string // of rule names
	root    any
	rules   map[string]string
	order   []string
	refs    map[string]string // $ref -> rule name
	counter int
	depth   int
}

// JSONSchemaToGBNF translates a schema into GBNF (see CompileJSONSchema).
func JSONSchemaToGBNF(schema []byte) (string, error) {
	root, rules, err := JSONSchemaRules(schema, "")
	if err != nil {
		return "", err
	}
	return "root ::= " + root + "\n" + rules + JSONPrimitives, nil
}

// JSONPrimitives are the rules every JSON grammar shares: value (any JSON
// value), object, array, string, char, keychar, number, integer, int, frac,
// exp, boolean, null and ws (optional white space after a value).
const JSONPrimitives = primitives

// JSONSchemaRules translates a schema into GBNF rules whose names start
// with prefix (a letter, then letters, digits and "-"), to embed schemas in
// a larger grammar. It returns a GBNF expression for the schema's values
// and the rules it uses besides JSONPrimitives.
func JSONSchemaRules(schema []byte, prefix string) (expr, rules string, err error) {
	root, err := parseOrdered(schema)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrSchema, err)
	}
	c := &schemaCompiler{prefix: prefix, root: root, rules: map[string]string{}, refs: map[string]string{}}
	body, err := c.visit(root, "root")
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	for _, name := range c.order {
		fmt.Fprintf(&b, "%s ::= %s\n", name, c.rules[name])
	}
	return body, b.String(), nil
}

func (c *schemaCompiler) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSchema, fmt.Sprintf(format, args...))
}

// rule adds a named rule and returns its name.
func (c *schemaCompiler) rule(hint, body string) string {
	c.counter++
	name := fmt.Sprintf("%s%s-%d", c.prefix, sanitize(hint), c.counter)
	c.rules[name] = body
	c.order = append(c.order, name)
	return name
}

func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 24; i++ {
		if isNameChar(s[i]) {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "r"
	}
	return b.String()
}

var annotations = map[string]bool{
	"title": true, "description": true, "default": true, "examples": true, "$schema": true,
	"$id": true, "$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true,
	"$defs": true, "definitions": true, "format": true, "contentMediaType": true, "contentEncoding": true,
	"$anchor": true,
}

// handled lists the keywords each part of visit understands.
var handled = map[string]bool{
	"type": true, "enum": true, "const": true, "anyOf": true, "oneOf": true, "allOf": true, "$ref": true,
	"properties": true, "required": true, "additionalProperties": true,
	"items": true, "prefixItems": true, "minItems": true, "maxItems": true,
	"minLength": true, "maxLength": true, "pattern": true,
	"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true,
}

// visit returns a GBNF expression for the values valid under schema.
func (c *schemaCompiler) visit(schema any, hint string) (string, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 64 {
		return "", c.errorf("schema nested too deeply")
	}
	switch s := schema.(type) {
	case bool:
		if s {
			return "value", nil
		}
		return "", c.errorf("the schema false matches nothing")
	case *jobj:
		return c.visitObject(s, hint)
	}
	return "", c.errorf("a schema must be an object or a boolean")
}

func (c *schemaCompiler) visitObject(s *jobj, hint string) (string, error) {
	for _, k := range s.keys {
		if !handled[k] && !annotations[k] {
			return "", c.errorf("keyword %q is not supported", k)
		}
	}
	if ref, ok := s.get("$ref"); ok {
		r, ok := ref.(string)
		if !ok {
			return "", c.errorf("$ref must be a string")
		}
		if len(s.keys) > 1 {
			for _, k := range s.keys {
				if k != "$ref" && !annotations[k] {
					return "", c.errorf("$ref beside %q is not supported", k)
				}
			}
		}
		return c.visitRef(r)
	}
	if v, ok := s.get("const"); ok {
		var b strings.Builder
		canonical(&b, v)
		return gbnfLiteral(b.String()) + " ws", nil
	}
	if v, ok := s.get("enum"); ok {
		arr, ok := v.([]any)
		if !ok || len(arr) == 0 {
			return "", c.errorf("enum must be a non-empty array")
		}
		alts := make([]string, len(arr))
		for i, e := range arr {
			var b strings.Builder
			canonical(&b, e)
			alts[i] = gbnfLiteral(b.String())
		}
		return "( " + strings.Join(alts, " | ") + " ) ws", nil
	}
	for _, kw := range []string{"anyOf", "oneOf"} {
		if v, ok := s.get(kw); ok {
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				return "", c.errorf("%s must be a non-empty array", kw)
			}
			var alts []string
			for i, sub := range arr {
				merged, err := c.mergeSiblings(s, sub, kw)
				if err != nil {
					return "", err
				}
				a, err := c.visit(merged, fmt.Sprintf("%s-%s%d", hint, kw, i))
				if err != nil {
					return "", err
				}
				alts = append(alts, a)
			}
			return c.rule(hint, strings.Join(alts, " | ")), nil
		}
	}
	if v, ok := s.get("allOf"); ok {
		arr, ok := v.([]any)
		if !ok || len(arr) != 1 {
			return "", c.errorf("allOf is only supported with one schema")
		}
		merged, err := c.mergeSiblings(s, arr[0], "allOf")
		if err != nil {
			return "", err
		}
		return c.visit(merged, hint)
	}
	types, err := schemaTypes(s)
	if err != nil {
		return "", err
	}
	var alts []string
	for _, t := range types {
		var a string
		var err error
		switch t {
		case "object":
			a, err = c.visitObjectType(s, hint)
		case "array":
			a, err = c.visitArray(s, hint)
		case "string":
			a, err = c.visitString(s, hint)
		case "integer", "number":
			a, err = c.visitNumber(s, t, hint)
		case "boolean":
			a = "boolean"
		case "null":
			a = "null"
		default:
			err = c.errorf("unknown type %q", t)
		}
		if err != nil {
			return "", err
		}
		alts = append(alts, a)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return c.rule(hint, strings.Join(alts, " | ")), nil
}

// mergeSiblings applies the keywords beside anyOf/oneOf/allOf to a member:
// {"type":"object","anyOf":[A,B]} is treated as anyOf:[A+type, B+type].
func (c *schemaCompiler) mergeSiblings(parent *jobj, member any, skip string) (any, error) {
	var extra []string
	for _, k := range parent.keys {
		if k != skip && !annotations[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return member, nil
	}
	m, ok := member.(*jobj)
	if !ok {
		return nil, c.errorf("%s members must be objects", skip)
	}
	out := &jobj{vals: map[string]any{}}
	for _, k := range m.keys {
		out.keys = append(out.keys, k)
		out.vals[k] = m.vals[k]
	}
	for _, k := range extra {
		if _, clash := out.vals[k]; clash {
			return nil, c.errorf("%q both beside and inside %s is not supported", k, skip)
		}
		out.keys = append(out.keys, k)
		out.vals[k] = parent.vals[k]
	}
	return out, nil
}

func schemaTypes(s *jobj) ([]string, error) {
	t, ok := s.get("type")
	if !ok {
		// Infer from the keywords; none at all means any value.
		_, p := s.get("properties")
		_, a := s.get("additionalProperties")
		_, r := s.get("required")
		_, it := s.get("items")
		_, pi := s.get("prefixItems")
		_, mi := s.get("minItems")
		_, ma := s.get("maxItems")
		_, ml := s.get("minLength")
		_, xl := s.get("maxLength")
		_, pt := s.get("pattern")
		_, mn := s.get("minimum")
		_, mx := s.get("maximum")
		_, emn := s.get("exclusiveMinimum")
		_, emx := s.get("exclusiveMaximum")
		var ts []string
		if p || a || r {
			ts = append(ts, "object")
		}
		if it || pi || mi || ma {
			ts = append(ts, "array")
		}
		if ml || xl || pt {
			ts = append(ts, "string")
		}
		if mn || mx || emn || emx {
			ts = append(ts, "number")
		}
		if len(ts) == 0 {
			return []string{"object", "array", "string", "number", "boolean", "null"}, nil
		}
		if len(ts) > 1 {
			return nil, fmt.Errorf("%w: a schema without type mixes keywords of several types", ErrSchema)
		}
		return ts, nil
	}
	switch x := t.(type) {
	case string:
		return []string{x}, nil
	case []any:
		var ts []string
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: type must hold strings", ErrSchema)
			}
			ts = append(ts, s)
		}
		if len(ts) == 0 {
			return nil, fmt.Errorf("%w: empty type list", ErrSchema)
		}
		// integer is a subset of number.
		hasNumber := false
		for _, s := range ts {
			hasNumber = hasNumber || s == "number"
		}
		if hasNumber {
			out := ts[:0]
			for _, s := range ts {
				if s != "integer" {
					out = append(out, s)
				}
			}
			ts = out
		}
		return ts, nil
	}
	return nil, fmt.Errorf("%w: type must be a string or a list", ErrSchema)
}

func (c *schemaCompiler) visitRef(ref string) (string, error) {
	if name, ok := c.refs[ref]; ok {
		return name, nil
	}
	if !strings.HasPrefix(ref, "#") {
		return "", c.errorf("only local $refs (starting with #) are supported, not %q", ref)
	}
	target, err := resolvePointer(c.root, ref[1:])
	if err != nil {
		return "", c.errorf("$ref %q: %v", ref, err)
	}
	hint := ref[strings.LastIndexByte(ref, '/')+1:]
	if hint == "" {
		hint = "ref"
	}
	c.counter++
	name := fmt.Sprintf("%s%s-%d", c.prefix, sanitize(hint), c.counter)
	c.refs[ref] = name
	c.order = append(c.order, name)
	c.rules[name] = "" // placeholder: recursion resolves to the name
	body, err := c.visit(target, hint)
	if err != nil {
		return "", err
	}
	c.rules[name] = body
	return name, nil
}

func resolvePointer(doc any, ptr string) (any, error) {
	if ptr == "" {
		return doc, nil
	}
	if ptr[0] != '/' {
		return nil, errors.New("not a JSON pointer")
	}
	cur := doc
	for _, part := range strings.Split(ptr[1:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		switch x := cur.(type) {
		case *jobj:
			v, ok := x.get(part)
			if !ok {
				return nil, fmt.Errorf("no %q", part)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("bad index %q", part)
			}
			cur = x[i]
		default:
			return nil, fmt.Errorf("cannot descend into %q", part)
		}
	}
	return cur, nil
}

func (c *schemaCompiler) visitObjectType(s *jobj, hint string) (string, error) {
	var props *jobj
	if p, ok := s.get("properties"); ok {
		if props, ok = p.(*jobj); !ok {
			return "", c.errorf("properties must be an object")
		}
	}
	required := map[string]bool{}
	if r, ok := s.get("required"); ok {
		arr, ok := r.([]any)
		if !ok {
			return "", c.errorf("required must be an array")
		}
		for _, e := range arr {
			name, ok := e.(string)
			if !ok {
				return "", c.errorf("required must hold strings")
			}
			required[name] = true
		}
	}
	var names []string
	if props != nil {
		names = append(names, props.keys...)
	}
	declared := map[string]bool{}
	for _, n := range names {
		declared[n] = true
	}
	var undeclared []string
	for r := range required {
		if !declared[r] {
			undeclared = append(undeclared, r)
		}
	}
	sort.Strings(undeclared)
	for _, r := range undeclared {
		{
			// A required property without a declaration takes any value
			// (or the additionalProperties schema).
			names = append(names, r)
		}
	}
	// Additional properties.
	additional := ""
	if a, ok := s.get("additionalProperties"); ok {
		switch x := a.(type) {
		case bool:
			if x {
				additional = "value"
			}
		case *jobj:
			v, err := c.visit(x, hint+"-additional")
			if err != nil {
				return "", err
			}
			additional = v
		default:
			return "", c.errorf("additionalProperties must be a boolean or a schema")
		}
	}
	kv := make([]string, len(names))
	for i, n := range names {
		var sub any = true
		if props != nil {
			if v, ok := props.get(n); ok {
				sub = v
			}
		}
		if !declared[n] && additional != "" {
			kv[i] = gbnfLiteral(`"`+jsonEscape(n)+`"`) + " ws \":\" ws " + additional
			continue
		}
		v, err := c.visit(sub, hint+"-"+n)
		if err != nil {
			return "", err
		}
		kv[i] = gbnfLiteral(`"`+jsonEscape(n)+`"`) + " ws \":\" ws " + v
	}
	addKV := ""
	if additional != "" {
		key := c.keyExcluding(names)
		addKV = c.rule(hint+"-kv", key+" \":\" ws "+additional)
	}
	// after(i): the members from i on, when one has been written already.
	// first(i): the same, when none has.
	n := len(names)
	after := make([]string, n+1)
	first := make([]string, n+1)
	if addKV != "" {
		after[n] = "( \",\" ws " + addKV + " )*"
		first[n] = "( " + addKV + " ( \",\" ws " + addKV + " )* )?"
	} else {
		after[n], first[n] = "", ""
	}
	for i := n - 1; i >= 0; i-- {
		req := required[names[i]]
		a := "\",\" ws " + kv[i] + " " + after[i+1]
		f := kv[i] + " " + after[i+1]
		if !req {
			a = "( " + a + " | " + orEmpty(after[i+1]) + " )"
			f = "( " + f + " | " + orEmpty(first[i+1]) + " )"
		}
		after[i] = c.rule(hint+"-after", a)
		first[i] = c.rule(hint+"-first", f)
	}
	return "\"{\" ws " + first[0] + " \"}\" ws", nil
}

func orEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return `""`
	}
	return s
}

// jsonEscape writes s as JSON string content, escaping only what JSON
// requires (the form a model would write).
func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// keyExcluding is a rule for the key of an additional property: a JSON
// string that is none of names. Such keys are written without escapes, so
// that each key has one spelling and the exclusion is exact.
func (c *schemaCompiler) keyExcluding(names []string) string {
	if len(names) == 0 {
		return `"\"" keychar* "\"" ws`
	}
	type tnode struct {
		kids map[rune]*tnode
		end  bool
	}
	root := &tnode{kids: map[rune]*tnode{}}
	for _, n := range names {
		if strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' || r == 0x7f }) {
			continue // cannot be spelled without escapes
		}
		cur := root
		for _, r := range n {
			nx, ok := cur.kids[r]
			if !ok {
				nx = &tnode{kids: map[rune]*tnode{}}
				cur.kids[r] = nx
			}
			cur = nx
		}
		cur.end = true
	}
	var build func(t *tnode) string
	build = func(t *tnode) string {
		var alts []string
		if !t.end {
			alts = append(alts, `"\""`)
		}
		var ks []int
		for k := range t.kids {
			ks = append(ks, int(k))
		}
		sort.Ints(ks)
		var excl strings.Builder
		excl.WriteString(`[^"\\\x7F\x00-\x1F`)
		for _, k := range ks {
			fmt.Fprintf(&excl, `\U%08X`, k)
		}
		excl.WriteString(`]`)
		alts = append(alts, excl.String()+` keychar* "\""`)
		for _, k := range ks {
			alts = append(alts, gbnfLiteral(string(rune(k)))+" "+build(t.kids[rune(k)]))
		}
		return c.rule("key", strings.Join(alts, " | "))
	}
	return `"\"" ` + build(root) + " ws"
}

func intKeyword(s *jobj, k string) (int, bool, error) {
	v, ok := s.get(k)
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, false, fmt.Errorf("%w: %s must be a number", ErrSchema, k)
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || i < 0 {
		f, ferr := n.Float64()
		if ferr != nil || f < 0 || f != math.Trunc(f) {
			return 0, false, fmt.Errorf("%w: %s must be a non-negative integer", ErrSchema, k)
		}
		i = int64(f)
	}
	if i > maxRepeat {
		return 0, false, fmt.Errorf("%w: %s above %d is not supported", ErrSchema, k, maxRepeat)
	}
	return int(i), true, nil
}

func (c *schemaCompiler) visitArray(s *jobj, hint string) (string, error) {
	lo, _, err := intKeyword(s, "minItems")
	if err != nil {
		return "", err
	}
	hi, hasHi, err := intKeyword(s, "maxItems")
	if err != nil {
		return "", err
	}
	if hasHi && hi < lo {
		return "", c.errorf("maxItems < minItems")
	}
	var prefix []string
	if p, ok := s.get("prefixItems"); ok {
		arr, ok := p.([]any)
		if !ok {
			return "", c.errorf("prefixItems must be an array")
		}
		for i, sub := range arr {
			v, err := c.visit(sub, fmt.Sprintf("%s-%d", hint, i))
			if err != nil {
				return "", err
			}
			prefix = append(prefix, v)
		}
	}
	item := "value"
	if it, ok := s.get("items"); ok {
		if b, ok := it.(bool); ok && !b {
			item = ""
		} else {
			v, err := c.visit(it, hint+"-item")
			if err != nil {
				return "", err
			}
			item = v
		}
	}
	// The elements: prefix[0..], then items; element k is written with a
	// leading comma when k > 0.
	total := -1 // unbounded
	if hasHi {
		total = hi
	}
	if item == "" {
		if total < 0 || total > len(prefix) {
			total = len(prefix)
		}
	}
	if lo > len(prefix) && item == "" {
		return "", c.errorf("minItems exceeds prefixItems with items false")
	}
	elem := func(k int) string {
		v := item
		if k < len(prefix) {
			v = prefix[k]
		}
		if k == 0 {
			return v
		}
		return "\",\" ws " + v
	}
	// Build from the end: tail(k) = the elements from k on.
	// Elements beyond the prefix repeat, so after the prefix, a repetition.
	var tail string
	p := len(prefix)
	if total >= 0 && total < p {
		p = total
	}
	// Repetition part for k >= p.
	if item != "" && (total < 0 || total > p) {
		minRep := max(lo-p, 0)
		if p == 0 {
			// First element has no comma.
			if total < 0 {
				if minRep >= 1 {
					tail = fmt.Sprintf("%s ( \",\" ws %s ){%d,}", item, item, minRep-1)
				} else {
					tail = fmt.Sprintf("( %s ( \",\" ws %s )* )?", item, item)
				}
			} else {
				if minRep >= 1 {
					tail = fmt.Sprintf("%s ( \",\" ws %s ){%d,%d}", item, item, minRep-1, total-1)
				} else {
					tail = fmt.Sprintf("( %s ( \",\" ws %s ){0,%d} )?", item, item, total-1)
				}
			}
		} else {
			if total < 0 {
				tail = fmt.Sprintf("( \",\" ws %s ){%d,}", item, minRep)
			} else {
				tail = fmt.Sprintf("( \",\" ws %s ){%d,%d}", item, minRep, total-p)
			}
		}
	}
	for k := p - 1; k >= 0; k-- {
		part := elem(k)
		if tail != "" {
			part += " " + tail
		}
		if k >= lo {
			part = "( " + part + " )?"
		}
		tail = c.rule(hint+"-items", part)
	}
	if tail == "" {
		tail = `""`
	}
	return "\"[\" ws " + tail + " \"]\" ws", nil
}

func (c *schemaCompiler) visitString(s *jobj, hint string) (string, error) {
	lo, _, err := intKeyword(s, "minLength")
	if err != nil {
		return "", err
	}
	hi, hasHi, err := intKeyword(s, "maxLength")
	if err != nil {
		return "", err
	}
	if hasHi && hi < lo {
		return "", c.errorf("maxLength < minLength")
	}
	if p, ok := s.get("pattern"); ok {
		ps, ok := p.(string)
		if !ok {
			return "", c.errorf("pattern must be a string")
		}
		if _, l := s.get("minLength"); l {
			return "", c.errorf("pattern together with minLength/maxLength is not supported")
		}
		if _, l := s.get("maxLength"); l {
			return "", c.errorf("pattern together with minLength/maxLength is not supported")
		}
		body, err := patternToGBNF(ps, c)
		if err != nil {
			return "", err
		}
		return "\"\\\"\" " + body + " \"\\\"\" ws", nil
	}
	if f, ok := s.get("format"); ok {
		if fs, _ := f.(string); formats[fs] != "" {
			if _, l := s.get("minLength"); l {
				return "", c.errorf("format together with minLength/maxLength is not supported")
			}
			if _, l := s.get("maxLength"); l {
				return "", c.errorf("format together with minLength/maxLength is not supported")
			}
			return "\"\\\"\" " + formats[fs] + " \"\\\"\" ws", nil
		}
	}
	var rep string
	switch {
	case hasHi:
		rep = fmt.Sprintf("char{%d,%d}", lo, hi)
	case lo > 0:
		rep = fmt.Sprintf("char{%d,}", lo)
	default:
		return "string", nil
	}
	return "\"\\\"\" " + rep + " \"\\\"\" ws", nil
}

// formats maps string formats to GBNF (their content, without quotes).
var formats = map[string]string{
	"date":      `[0-9]{4} "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) )`,
	"time":      `( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )`,
	"date-time": `[0-9]{4} "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ) "T" ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )`,
	"uuid":      `[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}`,
}

// bound reads a numeric bound as an integer, rounding toward the inside of
// the range (for integer schemas); exact reports whether it was an integer.
func bound(v any, up bool) (int64, bool, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false, fmt.Errorf("%w: bounds must be numbers", ErrSchema)
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return 0, false, fmt.Errorf("%w: bound %s is out of the supported range (±1e15)", ErrSchema, n)
	}
	if up {
		return int64(math.Ceil(f)), f == math.Trunc(f), nil
	}
	return int64(math.Floor(f)), f == math.Trunc(f), nil
}

func (c *schemaCompiler) visitNumber(s *jobj, typ, hint string) (string, error) {
	const inf = math.MaxInt64
	lo, hi := int64(-inf), int64(inf)
	loSet, hiSet := false, false
	exactBounds := true
	// minimum / exclusiveMinimum (number form, or draft-4 boolean form).
	exclMin, exclMax := false, false
	if v, ok := s.get("exclusiveMinimum"); ok {
		if b, isBool := v.(bool); isBool {
			exclMin = b
		} else {
			x, exact, err := bound(v, true)
			if err != nil {
				return "", err
			}
			if exact {
				x++
			}
			exactBounds = exactBounds && exact
			lo, loSet = x, true
		}
	}
	if v, ok := s.get("minimum"); ok {
		x, exact, err := bound(v, true)
		if err != nil {
			return "", err
		}
		if exclMin && exact {
			x++
		}
		exactBounds = exactBounds && exact
		if !loSet || x > lo {
			lo, loSet = x, true
		}
	}
	if v, ok := s.get("exclusiveMaximum"); ok {
		if b, isBool := v.(bool); isBool {
			exclMax = b
		} else {
			x, exact, err := bound(v, false)
			if err != nil {
				return "", err
			}
			if exact {
				x--
			}
			exactBounds = exactBounds && exact
			hi, hiSet = x, true
		}
	}
	if v, ok := s.get("maximum"); ok {
		x, exact, err := bound(v, false)
		if err != nil {
			return "", err
		}
		if exclMax && exact {
			x--
		}
		exactBounds = exactBounds && exact
		if !hiSet || x < hi {
			hi, hiSet = x, true
		}
	}
	if !loSet && !hiSet {
		return typ, nil
	}
	if loSet && hiSet && lo > hi {
		return "", c.errorf("the range of %s is empty", typ)
	}
	if typ == "integer" {
		return c.rule(hint+"-int", "( "+intRange(lo, loSet, hi, hiSet)+" ) ws"), nil
	}
	// A number with bounds: supported when the bounds are inclusive
	// integers (fractions are then exact to write).
	if !exactBounds || exclMin || exclMax {
		return "", c.errorf("number bounds must be inclusive integers (or use type integer)")
	}
	if _, ok := s.get("exclusiveMinimum"); ok {
		return "", c.errorf("exclusive bounds on numbers are not supported (use type integer)")
	}
	if _, ok := s.get("exclusiveMaximum"); ok {
		return "", c.errorf("exclusive bounds on numbers are not supported (use type integer)")
	}
	return c.rule(hint+"-num", "( "+numRange(lo, loSet, hi, hiSet)+" ) ws"), nil
}

// numRange is a GBNF expression for decimal numbers (no exponent) in
// [lo, hi] (either side may be open).
func numRange(lo int64, loSet bool, hi int64, hiSet bool) string {
	const frac = `( "." [0-9]{1,15} )?`
	const zeros = `( "." "0"{1,15} )?`
	var alts []string
	// Non-negative: integer part I in [a, hi]; I == hi only with a zero fraction.
	if !hiSet || hi >= 0 {
		a := int64(0)
		if loSet && lo > 0 {
			a = lo
		}
		switch {
		case !hiSet:
			alts = append(alts, "( "+uintAtLeast(uint64(a))+" ) "+frac)
		default:
			if a <= hi-1 {
				alts = append(alts, "( "+uintRange(uint64(a), uint64(hi-1))+" ) "+frac)
			}
			alts = append(alts, gbnfLiteral(strconv.FormatInt(hi, 10))+" "+zeros)
		}
	}
	// Negative: -(I.F) with I in [m, -lo]; I == -lo only with a zero
	// fraction; m = 0 when hi >= 0 (e.g. -0.5), else -hi.
	if !loSet || lo < 0 {
		m := uint64(0)
		if hiSet && hi < 0 {
			m = uint64(-hi)
		}
		switch {
		case !loSet:
			alts = append(alts, `"-" ( `+uintAtLeast(m)+" ) "+frac)
		default:
			top := uint64(-lo)
			if m <= top-1 {
				alts = append(alts, `"-" ( `+uintRange(m, top-1)+" ) "+frac)
			}
			alts = append(alts, `"-" `+gbnfLiteral(strconv.FormatUint(top, 10))+" "+zeros)
		}
	}
	return strings.Join(alts, " | ")
}

// intRange is a GBNF expression for the decimal integers in [lo, hi]
// (either side may be open).
func intRange(lo int64, loSet bool, hi int64, hiSet bool) string {
	var alts []string
	// Non-negative part.
	if !hiSet || hi >= 0 {
		a := int64(0)
		if loSet && lo > 0 {
			a = lo
		}
		if hiSet {
			alts = append(alts, uintRange(uint64(a), uint64(hi)))
		} else {
			alts = append(alts, uintAtLeast(uint64(a)))
		}
	}
	// Negative part: -m with m in [max(1, -hi), -lo].
	if !loSet || lo < 0 {
		a := uint64(1)
		if hiSet && hi < -1 {
			a = uint64(-hi)
		}
		if loSet {
			alts = append(alts, `"-" ( `+uintRange(a, uint64(-lo))+" )")
		} else {
			alts = append(alts, `"-" ( `+uintAtLeast(a)+" )")
		}
	}
	return strings.Join(alts, " | ")
}

// uintAtLeast: the decimals >= a without leading zeros (up to 16 digits).
func uintAtLeast(a uint64) string {
	d := len(strconv.FormatUint(a, 10))
	top := uint64(math.Pow10(d)) - 1
	s := uintRange(a, top)
	if d < 16 {
		s += fmt.Sprintf(" | [1-9] [0-9]{%d,%d}", d, 15)
	}
	return s
}

// uintRange: the decimals in [a, b] without leading zeros.
func uintRange(a, b uint64) string {
	if a > b {
		return `"" [^\x00-\U0010FFFF]` // never used: callers keep a <= b
	}
	as, bs := strconv.FormatUint(a, 10), strconv.FormatUint(b, 10)
	var alts []string
	for d := len(as); d <= len(bs); d++ {
		lo, hi := as, bs
		if d > len(as) {
			lo = "1" + strings.Repeat("0", d-1)
		}
		if d < len(bs) {
			hi = strings.Repeat("9", d)
		}
		alts = append(alts, digitRange(lo, hi)...)
	}
	return strings.Join(alts, " | ")
}

// digitRange: the strings of len(lo) digits between lo and hi (same length).
func digitRange(lo, hi string) []string {
	if lo == hi {
		return []string{gbnfLiteral(lo)}
	}
	if len(lo) == 1 {
		return []string{fmt.Sprintf("[%c-%c]", lo[0], hi[0])}
	}
	if lo[0] == hi[0] {
		var out []string
		for _, r := range digitRange(lo[1:], hi[1:]) {
			out = append(out, gbnfLiteral(lo[:1])+" ( "+r+" )")
		}
		return []string{strings.Join(out, " | ")}
	}
	rest := len(lo) - 1
	var out []string
	allZero := strings.Trim(lo[1:], "0") == ""
	allNine := strings.Trim(hi[1:], "9") == ""
	first, last := lo[0], hi[0]
	if !allZero {
		out = append(out, gbnfLiteral(lo[:1])+" ( "+strings.Join(digitRange(lo[1:], strings.Repeat("9", rest)), " | ")+" )")
		first++
	}
	if !allNine {
		last--
	}
	if first <= last {
		out = append(out, fmt.Sprintf("[%c-%c] [0-9]{%d}", first, last, rest))
	}
	if !allNine {
		out = append(out, gbnfLiteral(hi[:1])+" ( "+strings.Join(digitRange(strings.Repeat("0", rest), hi[1:]), " | ")+" )")
	}
	return out
}
