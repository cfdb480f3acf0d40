// Package all registers every model family with package model; import it
// for its side effect.
package all

import (
	_ "github.com/slm-dev/slm/model/gemma"  // Gemma
	_ "github.com/slm-dev/slm/model/gemma2" // Gemma 2
	_ "github.com/slm-dev/slm/model/gemma3" // Gemma 3 (text)
	_ "github.com/slm-dev/slm/model/gpt2"   // GPT-2
	_ "github.com/slm-dev/slm/model/llama"  // LLaMA, Mistral, SmolLM, TinyLlama
	_ "github.com/slm-dev/slm/model/phi3"   // Phi-3, Phi-3.5
	_ "github.com/slm-dev/slm/model/qwen2"  // Qwen2
	_ "github.com/slm-dev/slm/model/qwen3"  // Qwen3 (dense)
)
