package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// EOT is the one special token of a synthetic vocabulary, its last token:
// beginning and end of text, as in GPT-2.
const EOT = "<|endoftext|>"

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	tokenNormal  int32 = 1
	tokenControl int32 = 3
)

// Vocab is a byte-level BPE vocabulary in GGUF form.
type Vocab struct {
	Tokens []string // tokenizer.ggml.tokens, in the byte-to-unicode spelling
	Types  []int32  // tokenizer.ggml.token_type
	Merges []string // tokenizer.ggml.merges: "left right", by rank
	EOT    int32    // id of EOT (bos, eos)
}

// byteRunes is GPT-2's bytes_to_unicode: printable bytes stand for
// themselves, the other 68 are moved to U+0100 onwards, in byte order.
var byteRunes = func() (m [256]rune) {
	n := 0
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}()

// gpt2ByteOrder is the order of the 256 byte tokens at the start of GPT-2's
// vocabulary: the printable bytes first, then the moved ones (so id 0 is
// "!" and id 220 is "Ġ", the space).
func gpt2ByteOrder() []byte {
	var order []byte
	for b := range 256 {
		if byteRunes[b] == rune(b) {
			order = append(order, byte(b))
		}
	}
	for b := range 256 {
		if byteRunes[b] != rune(b) {
			order = append(order, byte(b))
		}
	}
	return order
}

// spell writes raw bytes as a byte-level BPE token.
func spell(raw string) string {
	var sb strings.Builder
	for i := 0; i < len(raw); i++ {
		sb.WriteRune(byteRunes[raw[i]])
	}
	return sb.String()
}

// maxTokenBytes bounds the length of a merged token.
const maxTokenBytes = 12

// NewVocab makes a byte-level BPE vocabulary of n tokens: the 256 byte
// tokens in GPT-2's order, n-257 merges that build word-like tokens (lower
// case letters, optionally after one leading space, as GPT-2's merges
// mostly are) and EOT last. The merges are a pseudo-random function of
// seed; each merged token is new, and both of its halves are tokens, so
// llama.cpp's and slm's BPE tokenizers can use every merge.
func NewVocab(n int, seed uint64) (*Vocab, error) {
	if n < 257 || n > MaxVocab {
		return nil, fmt.Errorf("vocabulary size %d: want 257 (256 bytes and %s) to %d", n, EOT, MaxVocab)
	}
	v := &Vocab{
		Tokens: make([]string, 0, n),
		Types:  make([]int32, 0, n),
		Merges: make([]string, 0, n-257),
	}
	for _, b := range gpt2ByteOrder() {
		v.Tokens = append(v.Tokens, string(byteRunes[b]))
	}
	// Raw (unspelled) strings that merges combine: letters and a space to
	// start with, then every merged token.
	pool := []string{" "}
	for c := 'a'; c <= 'z'; c++ {
		pool = append(pool, string(c))
	}
	seen := make(map[string]bool, n)
	for _, s := range pool {
		seen[s] = true
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for len(v.Merges) < n-257 {
		a := pool[rng.IntN(len(pool))]
		// Favour short right halves, as real merge lists do.
		var b string
		if rng.IntN(2) == 0 {
			b = pool[1+rng.IntN(26)]
		} else {
			b = pool[rng.IntN(len(pool))]
		}
		s := a + b
		if b[0] == ' ' || len(s) > maxTokenBytes || seen[s] {
			continue
		}
		seen[s] = true
		pool = append(pool, s)
		v.Merges = append(v.Merges, spell(a)+" "+spell(b))
		v.Tokens = append(v.Tokens, spell(s))
	}
	v.EOT = int32(len(v.Tokens))
	v.Tokens = append(v.Tokens, EOT)
	for range v.Tokens {
		v.Types = append(v.Types, tokenNormal)
	}
	v.Types[v.EOT] = tokenControl
	return v, nil
}
