package model_test

import (
	"os"
	"testing"
)

// The largest test models: the two with real vocabularies (32000 and 50257
// rows of output), and F32/quantized bases.
var benchModels = []string{"llama-vocab-spm-f16", "gpt2-vocab-gpt2-q8_0", "llama-f32", "llama-q4_k_m", "qwen2-f32", "gpt2-f32"}

// BenchmarkDecode measures one-token Evals at position ~64.
func BenchmarkDecode(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			_, m := openModel(b, modelPath(name))
			nv := m.Config().NVocab
			s := newState(b, m, 96)
			evalAll(b, m, s, randomTokens(64, nv, 8))
			logits := make([]float32, nv)
			tok := []int32{5}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				s.Truncate(64 + i%16)
				if err := m.Eval(s, tok, logits, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkPrompt measures a 64-token prompt evaluated in one Eval, logits
// for the last token only.
func BenchmarkPrompt(b *testing.B) {
	const n = 64
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			_, m := openModel(b, modelPath(name))
			nv := m.Config().NVocab
			s := newState(b, m, n)
			tokens := randomTokens(n, nv, 9)
			logits := make([]float32, nv)
			b.ResetTimer()
			for b.Loop() {
				s.Truncate(0)
				if err := m.Eval(s, tokens, logits, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkPromptFile runs BenchmarkPrompt's measurement, with 128 tokens, on
// the GGUF file named by SLM_BENCH_FILE (e.g. one written by `slm synth`), so
// a profile of prefill on real shapes needs no CLI: go test ./model -run X
// -bench PromptFile -cpuprofile cpu.out.
func BenchmarkPromptFile(b *testing.B) {
	path := os.Getenv("SLM_BENCH_FILE")
	if path == "" {
		b.Skip("SLM_BENCH_FILE not set")
	}
	const n = 128
	_, m := openModel(b, path)
	nv := m.Config().NVocab
	s := newState(b, m, n)
	tokens := randomTokens(n, nv, 9)
	logits := make([]float32, nv)
	b.ResetTimer()
	for b.Loop() {
		s.Truncate(0)
		if err := m.Eval(s, tokens, logits, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkDecodeFile is BenchmarkDecode (one-token Evals at position ~64)
// on the GGUF file named by SLM_BENCH_FILE.
func BenchmarkDecodeFile(b *testing.B) {
	path := os.Getenv("SLM_BENCH_FILE")
	if path == "" {
		b.Skip("SLM_BENCH_FILE not set")
	}
	_, m := openModel(b, path)
	nv := m.Config().NVocab
	s := newState(b, m, 96)
	evalAll(b, m, s, randomTokens(64, nv, 8))
	logits := make([]float32, nv)
	tok := []int32{5}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Truncate(64 + i%16)
		if err := m.Eval(s, tok, logits, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}
