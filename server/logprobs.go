package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/slm-dev/slm/engine"
)

// Logprobs on every dialect: the engine reports each generated token's
// log-probability under the model's distribution (log-softmax of the raw
// logits, before penalties, grammar masking and temperature) and the top
// alternatives; this file keeps them per token and renders them in each
// dialect's shape. A token is reported with the text chunk that completes
// it; tokens that only formed a stop string (cut from the text) are not
// reported, as llama-server does.

// piecer is implemented by generators that can give a token's own text
// (Pool and Batcher); others fall back to Detokenize.
type piecer interface {
	TokenPiece(id int32) []byte
}

// TokenPiece implements piecer.
func (p *Pool) TokenPiece(id int32) []byte { return p.m.Tokenizer().Piece(id) }

// TokenPiece implements piecer.
func (b *Batcher) TokenPiece(id int32) []byte { return b.m.Tokenizer().Piece(id) }

func pieceOf(gen Generator, id int32) []byte {
	if p, ok := gen.(piecer); ok {
		return p.TokenPiece(id)
	}
	return []byte(gen.Detokenize([]int32{id}))
}

// lpAlt is one alternative.
type lpAlt struct {
	id      int32
	piece   []byte
	logprob float32
}

// lpEntry is one generated token's logprobs; start and end are its bytes
// in the generated text.
type lpEntry struct {
	lpAlt
	start, end int
	top        []lpAlt
}

// lpCollector gathers the tokens' logprobs of one generation.
type lpCollector struct {
	gen      Generator
	entries  []lpEntry
	pos      int // bytes of generated text so far (all pieces)
	released int // bytes the engine released
	taken    int // entries handed out
}

// newCollector returns a collector if opts ask for logprobs, else nil
// (whose methods do nothing).
func newCollector(gen Generator, opts engine.Options) *lpCollector {
	if !opts.Logprobs && opts.TopLogprobs == 0 {
		return nil
	}
	return &lpCollector{gen: gen}
}

// add records a token (the engine's buffers are copied).
func (c *lpCollector) add(t engine.Token) {
	if c == nil {
		return
	}
	c.released += len(t.Text)
	if t.ID < 0 {
		return
	}
	p := pieceOf(c.gen, t.ID)
	e := lpEntry{lpAlt: lpAlt{t.ID, p, t.Logprob}, start: c.pos, end: c.pos + len(p), top: make([]lpAlt, len(t.Top))}
	c.pos = e.end
	for i, a := range t.Top {
		e.top[i] = lpAlt{a.ID, pieceOf(c.gen, a.ID), a.Logprob}
	}
	c.entries = append(c.entries, e)
}

// fn wraps a token callback so that the collector sees every token first.
func (c *lpCollector) fn(next func(engine.Token) error) func(engine.Token) error {
	if c == nil {
		return next
	}
	return func(t engine.Token) error {
		c.add(t)
		if next != nil {
			return next(t)
		}
		return nil
	}
}

// take hands out the entries whose text has been released.
func (c *lpCollector) take() []lpEntry {
	if c == nil {
		return nil
	}
	n := c.taken
	for n < len(c.entries) && c.entries[n].end <= c.released {
		n++
	}
	out := c.entries[c.taken:n]
	c.taken = n
	return out
}

// rest hands out the remaining entries of a finished generation whose
// final text has textLen bytes: those that contributed to it.
func (c *lpCollector) rest(textLen int) []lpEntry {
	if c == nil {
		return nil
	}
	n := c.taken
	for n < len(c.entries) && (c.entries[n].start < textLen || c.entries[n].end <= textLen) {
		n++
	}
	out := c.entries[c.taken:n]
	c.taken = len(c.entries)
	return out
}

// checkTopLogprobs is the 0..20 bound on every route.
func checkTopLogprobs(n int, param string) error {
	if n < 0 || n > engine.MaxTopLogprobs {
		return &apiError{Status: http.StatusBadRequest, Param: param,
			Message: fmt.Sprintf("invalid %q: %d is outside 0..%d", param, n, engine.MaxTopLogprobs)}
	}
	return nil
}

func byteList(p []byte) []int {
	out := make([]int, len(p))
	for i, b := range p {
		out[i] = int(b)
	}
	return out
}

// oaiTokenString is OpenAI's token text: the text, or "bytes:\xNN…" for a
// piece that is not valid UTF-8 on its own.
func oaiTokenString(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	var b strings.Builder
	b.WriteString("bytes:")
	for _, c := range p {
		fmt.Fprintf(&b, "\\x%02x", c)
	}
	return b.String()
}

// oaiChatLogprobs is chat's choices[].logprobs: {"content": [...], "refusal": null}.
func oaiChatLogprobs(es []lpEntry) map[string]any {
	content := make([]any, len(es))
	for i, e := range es {
		top := make([]any, len(e.top))
		for j, a := range e.top {
			top[j] = map[string]any{"token": oaiTokenString(a.piece), "logprob": a.logprob, "bytes": byteList(a.piece)}
		}
		content[i] = map[string]any{"token": oaiTokenString(e.piece), "logprob": e.logprob, "bytes": byteList(e.piece), "top_logprobs": top}
	}
	return map[string]any{"content": content, "refusal": nil}
}

// oaiCompletionLogprobs is the legacy completions shape; offsets count from
// base (the echoed prompt's length, or 0).
func oaiCompletionLogprobs(es []lpEntry, base int) map[string]any {
	tokens := make([]string, len(es))
	lps := make([]float32, len(es))
	tops := make([]map[string]float32, len(es))
	offs := make([]int, len(es))
	for i, e := range es {
		tokens[i], lps[i], offs[i] = oaiTokenString(e.piece), e.logprob, base+e.start
		tops[i] = make(map[string]float32, len(e.top))
		for _, a := range slices.Backward(e.top) { // the best wins a clash of texts
			tops[i][oaiTokenString(a.piece)] = a.logprob
		}
	}
	return map[string]any{"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offs}
}

// ollamaLogprobs is Ollama's "logprobs": [{token, logprob, bytes, top_logprobs}].
func ollamaLogprobs(es []lpEntry) []any {
	out := make([]any, len(es))
	for i, e := range es {
		m := map[string]any{"token": string(e.piece), "logprob": e.logprob, "bytes": byteList(e.piece)}
		if len(e.top) > 0 {
			top := make([]any, len(e.top))
			for j, a := range e.top {
				top[j] = map[string]any{"token": string(a.piece), "logprob": a.logprob, "bytes": byteList(a.piece)}
			}
			m["top_logprobs"] = top
		}
		out[i] = m
	}
	return out
}

// llamaProbs is llama-server's completion_probabilities.
func llamaProbs(es []lpEntry) []any {
	out := make([]any, len(es))
	for i, e := range es {
		top := make([]any, len(e.top))
		for j, a := range e.top {
			top[j] = map[string]any{"id": a.id, "token": string(a.piece), "logprob": a.logprob, "bytes": byteList(a.piece)}
		}
		out[i] = map[string]any{"id": e.id, "token": string(e.piece), "logprob": e.logprob, "bytes": byteList(e.piece), "top_logprobs": top}
	}
	return out
}
