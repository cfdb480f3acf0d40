package engine

import (
	"bytes"
	"unicode/utf8"
)

// textStream assembles generated text token by token. It holds back bytes
// that may still change meaning: an unfinished UTF-8 sequence, or a tail
// that could be the start of a stop string. Once a stop string appears, the
// text is cut before it.
type textStream struct {
	stops   [][]byte
	buf     []byte // all generated text so far (stop string excluded once found)
	emitted int    // bytes of buf already handed out
	stopped bool
}

func (t *textStream) reset(stops []string) {
	t.stops = t.stops[:0]
	for _, s := range stops {
		if s != "" {
			t.stops = append(t.stops, []byte(s))
		}
	}
	t.buf = t.buf[:0]
	t.emitted = 0
	t.stopped = false
}

// push adds a token's bytes and returns the text that is now final, and
// whether a stop string has been reached. The returned slice aliases the
// stream's buffer.
func (t *textStream) push(piece []byte) (out []byte, stopped bool) {
	if t.stopped {
		return nil, true
	}
	from := t.emitted
	t.buf = append(t.buf, piece...)
	// A stop string may straddle earlier text that is still held back, so
	// search from the longest possible overlap.
	for _, s := range t.stops {
		lo := max(0, from-len(s)+1)
		if i := bytes.Index(t.buf[lo:], s); i >= 0 {
			t.buf = t.buf[:lo+i]
			t.stopped = true
		}
	}
	end := len(t.buf)
	if !t.stopped {
		end = t.safeEnd(from)
	}
	if end < t.emitted {
		end = t.emitted
	}
	out = t.buf[t.emitted:end]
	t.emitted = end
	return out, t.stopped
}

// safeEnd is how far text can be released: before a trailing incomplete
// UTF-8 sequence and before any suffix that begins a stop string.
func (t *textStream) safeEnd(from int) int {
	end := len(t.buf)
	// Hold back a trailing sequence that is a valid start of a longer rune.
	for k := 1; k <= 3 && k <= end-from; k++ {
		c := t.buf[end-k]
		if c < 0x80 {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(t.buf[end-k:]) {
				end -= k
			}
			break
		}
	}
	for _, s := range t.stops {
		for k := min(len(s)-1, end-from); k > 0; k-- {
			if bytes.HasPrefix(s, t.buf[end-k:end]) {
				end -= k
				break
			}
		}
	}
	return end
}

// flush releases whatever is still held back (the generation is over).
func (t *textStream) flush() []byte {
	out := t.buf[t.emitted:]
	t.emitted = len(t.buf)
	return out
}

// String is all text generated so far.
func (t *textStream) String() string { return string(t.buf) }
