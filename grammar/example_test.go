package grammar_test

import (
	"fmt"

	"github.com/slm-dev/slm/grammar"
)

// Constraint is the hook proposed for engine.Options: *grammar.Matcher
// implements it.
type Constraint interface {
	Mask(logits []float32)
	Accept(token int32) error
	Done() bool
}

var _ Constraint = (*grammar.Matcher)(nil)

func Example() {
	g, err := grammar.CompileJSONSchema([]byte(`{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}`))
	if err != nil {
		panic(err)
	}
	// A toy vocabulary; a model's comes from grammar.TokenizerVocab.
	tokens := [][]byte{[]byte(`{"ok": `), []byte("true"), []byte("}"), []byte("hello"), nil}
	eog := []int32{4}
	m := g.Matcher(grammar.NewVocab(tokens, eog))
	for _, tok := range []int32{0, 1, 2} {
		logits := make([]float32, len(tokens))
		m.Mask(logits)
		fmt.Println(logits)
		if err := m.Accept(tok); err != nil {
			panic(err)
		}
	}
	fmt.Println(m.Complete(), m.Accept(3) != nil, m.Accept(4), m.Done())
	// Output:
	// [0 -Inf -Inf -Inf -Inf]
	// [-Inf 0 -Inf -Inf -Inf]
	// [-Inf -Inf 0 -Inf -Inf]
	// true true <nil> true
}
