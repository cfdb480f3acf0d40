// Package defaultmodel embeds the model that `slm run` uses when no model
// file is given, so the binary works with no download.
//
// The model is llama-vocab-spm-f16.gguf from the project's test data: a tiny
// llama-architecture network (n_embd 64, 2 layers) with pseudo-random weights
// and the real LLaMA/LLaMA-2 SentencePiece vocabulary (32000 tokens, copied
// from llama.cpp's models/ggml-vocab-llama-spm.gguf). Its text is therefore
// well-formed tokens in a random order: it demonstrates the whole pipeline,
// not language ability. See NOTICE for the vocabulary's licence.
package defaultmodel

import _ "embed"

//go:embed model.gguf
var data []byte

// Name labels the embedded model in messages.
const Name = "embedded:slm-test-llama-spm-vocab (random weights, LLaMA vocabulary)"

// Bytes is the GGUF file. Callers must not modify it.
func Bytes() []byte { return data }
