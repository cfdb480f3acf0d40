package grammar

import (
	"testing"

	"github.com/slm-dev/slm/tokenizer/hf"
)

// BenchmarkMask measures one uncached mask over the GPT-2 vocabulary
// (50257 tokens) in the states that dominate JSON generation.
func BenchmarkMask(b *testing.B) {
	v := gpt2(b)
	g, err := CompileJSONSchema([]byte(`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["name","age","tags"]}`))
	if err != nil {
		b.Fatal(err)
	}
	for _, st := range []struct{ name, prefix string }{
		{"start", ``},
		{"in-string", `{"name": "Jo`},
		{"in-number", `{"name": "Jo", "age": 4`},
		{"array", `{"name": "Jo", "age": 4, "tags": [`},
	} {
		b.Run(st.name, func(b *testing.B) {
			m := g.Matcher(v)
			if err := m.AcceptBytes([]byte(st.prefix)); err != nil {
				b.Fatal(err)
			}
			logits := make([]float32, v.NVocab())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				clear(m.masks)
				m.Mask(logits)
			}
		})
	}
}

// BenchmarkMaskQwen3 is BenchmarkMask over Qwen3's 151669-token vocabulary,
// cold: a new matcher (empty caches) for each mask.
func BenchmarkMaskQwen3(b *testing.B) {
	tok, err := hf.Load("../testdata/tokenizer/hf/qwen3", hf.Options{})
	if err != nil {
		b.Fatal(err)
	}
	v := TokenizerVocab(tok.GGUF())
	g, err := CompileJSONSchema([]byte(`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}`))
	if err != nil {
		b.Fatal(err)
	}
	logits := make([]float32, v.NVocab())
	for _, st := range []struct{ name, prefix string }{{"start", ``}, {"in-string", `{"name": "Jo`}, {"in-number", `{"name": "Jo", "age": 4`}} {
		b.Run(st.name+"-cold", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				m := g.Matcher(v)
				if err := m.AcceptBytes([]byte(st.prefix)); err != nil {
					b.Fatal(err)
				}
				m.Mask(logits)
			}
		})
		b.Run(st.name+"-cached", func(b *testing.B) {
			m := g.Matcher(v)
			if err := m.AcceptBytes([]byte(st.prefix)); err != nil {
				b.Fatal(err)
			}
			m.Mask(logits)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Mask(logits)
			}
		})
	}
}
