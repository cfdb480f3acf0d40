package tokenizer

import (
	"slices"
	"strings"
)

// fragment is a piece of the input after special-token partitioning: either
// raw text s[start:end] (tok < 0) or one special token.
type fragment struct {
	start, end int
	tok        int32
}

// specialMatcher holds llama.cpp's cache_special_tokens (every CONTROL,
// USER_DEFINED and UNKNOWN token, longest text first) plus a byte trie over
// their texts.
//
// llama.cpp partitions by running a full search of the text for each special
// token in that order. The outcome depends on the order (a longer token wins
// over a shorter one that overlaps it, wherever each starts), so the same
// per-token passes are run here; the trie only finds, in one sweep over the
// text, which special tokens occur at all, so that the passes are made for
// those few instead of for every special token of the vocabulary (thousands
// in some).
type specialMatcher struct {
	order []int32          // special token ids in llama.cpp's priority order
	rank  []int32          // trie node -> index into order, or -1
	edges map[uint32]int32 // node<<8 | byte -> child node
	first [256]bool        // bytes that start some special token
}

func newSpecialMatcher(tokens []string, attrs []tokenAttr) specialMatcher {
	var m specialMatcher
	for id, a := range attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			m.order = append(m.order, int32(id))
		}
	}
	// llama.cpp uses std::sort by text length (descending), which does not
	// keep the id order among equal lengths; equal-length tokens can only
	// compete where one's suffix is the other's prefix, which real
	// vocabularies avoid. Ties are broken by id here.
	slices.SortStableFunc(m.order, func(a, b int32) int {
		return len(tokens[b]) - len(tokens[a])
	})

	m.rank = []int32{-1}
	m.edges = make(map[uint32]int32)
	for r, id := range m.order {
		s := tokens[id]
		m.first[s[0]] = true
		node := int32(0)
		for i := 0; i < len(s); i++ {
			key := uint32(node)<<8 | uint32(s[i])
			next, ok := m.edges[key]
			if !ok {
				next = int32(len(m.rank))
				m.rank = append(m.rank, -1)
				m.edges[key] = next
			}
			node = next
		}
		if m.rank[node] < 0 {
			m.rank[node] = int32(r)
		}
	}
	return m
}

// isCSpace is C's isspace in the "C" locale, which llama.cpp uses for the
// lstrip/rstrip attributes.
func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// partition splits s into raw-text and special-token fragments exactly like
// llama.cpp's tokenizer_st_partition. With parseSpecial false, CONTROL and
// UNKNOWN tokens are left in the text; USER_DEFINED tokens are always split
// out (Hugging Face does the same with non-special added tokens).
func (t *Tokenizer) partition(s string, parseSpecial bool, sc *scratch) []fragment {
	frags := sc.frags[:0]
	if s == "" {
		return frags
	}
	frags = append(frags, fragment{start: 0, end: len(s), tok: -1})
	m := &t.special
	if len(m.order) == 0 {
		sc.frags = frags
		return frags
	}

	// Which special tokens occur anywhere in s?
	ranks := sc.ranks[:0]
	for i := 0; i < len(s); i++ {
		if !m.first[s[i]] {
			continue
		}
		node := int32(0)
		for j := i; j < len(s); j++ {
			next, ok := m.edges[uint32(node)<<8|uint32(s[j])]
			if !ok {
				break
			}
			node = next
			if r := m.rank[node]; r >= 0 {
				if parseSpecial || t.attrs[m.order[r]]&(attrControl|attrUnknown) == 0 {
					ranks = append(ranks, r)
				}
			}
		}
	}
	slices.Sort(ranks)
	ranks = slices.Compact(ranks)
	sc.ranks = ranks

	next := sc.frags2[:0]
	for _, r := range ranks {
		id := m.order[r]
		next = splitOn(s, frags, next[:0], id, t.tokens[id], t.attrs[id])
		frags, next = next, frags
	}
	sc.frags, sc.frags2 = frags, next
	return frags
}

// splitOn is one pass of llama.cpp's partition for a single special token:
// every raw fragment is cut at each non-overlapping occurrence (left to
// right), with whitespace next to the token dropped on the side its
// LSTRIP/RSTRIP attribute names.
func splitOn(s string, in, out []fragment, id int32, text string, a tokenAttr) []fragment {
	for _, f := range in {
		if f.tok >= 0 {
			out = append(out, f)
			continue
		}
		base, end := f.start, f.end
		for base < end {
			k := strings.Index(s[base:end], text)
			if k < 0 {
				break
			}
			m := base + k
			if m > base {
				l := m
				if a&attrLStrip != 0 {
					for l > base && isCSpace(s[l-1]) {
						l--
					}
				}
				if l > base {
					out = append(out, fragment{start: base, end: l, tok: -1})
				}
			}
			out = append(out, fragment{tok: id})
			base = m + len(text)
			if a&attrRStrip != 0 {
				for base < end && isCSpace(s[base]) {
					base++
				}
			}
		}
		if base < end {
			out = append(out, fragment{start: base, end: end, tok: -1})
		}
	}
	return out
}
