package chat

import "strings"

// Reasoning tags of thinking models (Qwen3, DeepSeek-R1, SmolLM3, …).
const (
	ThinkOpen  = "<think>"
	ThinkClose = "</think>"
)

// SplitReasoning separates a complete answer into its reasoning (the text of
// a leading <think>…</think> block) and its content. With startInReasoning
// the answer is taken to begin inside the block (templates that end the
// generation prompt with "<think>\n"). An unclosed block is all reasoning.
func SplitReasoning(text string, startInReasoning bool) (reasoning, content string) {
	s := NewReasoningSplitter(startInReasoning)
	r1, c1 := s.Push(text)
	r2, c2 := s.Flush()
	return r1 + r2, c1 + c2
}

// ReasoningSplitter splits a streamed answer into reasoning and content,
// piece by piece: a tag split across pieces is held back until it is
// complete. Whitespace right after <think>, right before </think> and right
// after </think> is dropped, as chat APIs return it.
type ReasoningSplitter struct {
	state   int    // 0: before any text, 1: in reasoning, 2: in content
	pending string // held back: a possible tag prefix, or reasoning's trailing whitespace
	skipWS  bool   // drop leading whitespace of the next text
}

// NewReasoningSplitter starts a splitter; see SplitReasoning for
// startInReasoning.
func NewReasoningSplitter(startInReasoning bool) *ReasoningSplitter {
	if startInReasoning {
		return &ReasoningSplitter{state: 1, skipWS: true}
	}
	return &ReasoningSplitter{}
}

// InReasoning reports whether the text so far ends inside the block.
func (s *ReasoningSplitter) InReasoning() bool { return s.state == 1 }

// Push adds a piece and returns the reasoning and content that are now
// certain.
func (s *ReasoningSplitter) Push(piece string) (reasoning, content string) {
	text := s.pending + piece
	s.pending = ""
	var r, c strings.Builder
	for len(text) > 0 {
		switch s.state {
		case 0: // an answer may open with whitespace then <think>
			t := strings.TrimLeft(text, " \t\r\n")
			if t == "" {
				s.pending = text
				return r.String(), c.String()
			}
			if strings.HasPrefix(t, ThinkOpen) {
				text = t[len(ThinkOpen):]
				s.state, s.skipWS = 1, true
				continue
			}
			if strings.HasPrefix(ThinkOpen, t) {
				s.pending = text
				return r.String(), c.String()
			}
			s.state = 2
		case 1:
			if s.skipWS {
				text = strings.TrimLeft(text, " \t\r\n")
				if text == "" {
					return r.String(), c.String()
				}
				s.skipWS = false
			}
			if i := strings.Index(text, ThinkClose); i >= 0 {
				r.WriteString(strings.TrimRight(text[:i], " \t\r\n"))
				text = text[i+len(ThinkClose):]
				s.state, s.skipWS = 2, true
				continue
			}
			// Hold back a possible partial close tag and trailing whitespace.
			keep := partialSuffix(text, ThinkClose)
			body := text[:len(text)-keep]
			trimmed := strings.TrimRight(body, " \t\r\n")
			r.WriteString(trimmed)
			s.pending = text[len(trimmed):]
			return r.String(), c.String()
		case 2:
			if s.skipWS {
				text = strings.TrimLeft(text, " \t\r\n")
				if text == "" {
					return r.String(), c.String()
				}
				s.skipWS = false
			}
			c.WriteString(text)
			text = ""
		}
	}
	return r.String(), c.String()
}

// Flush returns what was held back, at the end of the answer.
func (s *ReasoningSplitter) Flush() (reasoning, content string) {
	p := s.pending
	s.pending = ""
	switch s.state {
	case 1:
		return strings.TrimRight(p, " \t\r\n"), ""
	case 0:
		return "", strings.TrimLeft(p, " \t\r\n")
	}
	return "", p
}

// partialSuffix is the length of the longest proper prefix of tag that text
// ends with.
func partialSuffix(text, tag string) int {
	for n := min(len(tag)-1, len(text)); n > 0; n-- {
		if strings.HasSuffix(text, tag[:n]) {
			return n
		}
	}
	return 0
}
