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
		b.Run(name, func(b *testing.B) { benchDecode(b, modelPath(name)) })
	}
}

// BenchmarkPrompt measures a 64-token prompt evaluated in one Eval, logits
// for the last token only.
func BenchmarkPrompt(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) { benchPrompt(b, modelPath(name), 64) })
	}
}

// BenchmarkPromptFile and BenchmarkDecodeFile measure a 128-token prompt and
// decoding on the GGUF file named by SLM_BENCH_FILE (e.g. one written by
// `slm synth`), so that a profile on real shapes needs no CLI:
// SLM_BENCH_FILE=F go test ./model -run X -bench PromptFile -cpuprofile cpu.out.
func BenchmarkPromptFile(b *testing.B) { benchPrompt(b, benchFile(b), 128) }

func BenchmarkDecodeFile(b *testing.B) { benchDecode(b, benchFile(b)) }

func benchFile(b *testing.B) string {
	path := os.Getenv("SLM_BENCH_FILE")
	if path == "" {
		b.Skip("SLM_BENCH_FILE not set")
	}
	return path
}

func benchDecode(b *testing.B, path string) {
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

func benchPrompt(b *testing.B, path string, n int) {
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
