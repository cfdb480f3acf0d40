package tokenizer

import "fmt"

// SentencePiece BPE ("llama" vocabularies), as llama.cpp's llm_tokenizer_spm.
//
// The fragment (with " " prepended when it follows BOS, the start of the text
// or a special token) has its spaces replaced by "▁" and is cut into
// "characters" by the length its lead byte announces (so invalid UTF-8 is
// carried along byte-wise, never replaced). Then the adjacent pair whose
// concatenation is the highest-scoring vocabulary entry is merged, repeatedly,
// ties going to the leftmost pair. A priority queue of candidate pairs keeps
// this O(n log n); pairs made stale by an earlier merge are recognised by
// their length and skipped. Whatever is left that is not a token is emitted
// as byte tokens <0xAB>.

// spmSymbol is a span of the escaped text in a doubly linked list.
type spmSymbol struct {
	prev, next int32
	start, n   int32
}

// spmBigram is a candidate merge of two adjacent symbols.
type spmBigram struct {
	left, right int32
	score       float32
	size        int32
}

// before reports whether a must be merged before b: higher score first, then
// the leftmost pair (llama.cpp's llm_bigram_spm::comparator, reversed).
func (a spmBigram) before(b spmBigram) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

// spmHeap is a binary max-heap by before. Hand-written (rather than
// container/heap) because the pops dominate SPM encoding time.
type spmHeap []spmBigram

func (h *spmHeap) push(b spmBigram) {
	q := append(*h, b)
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !b.before(q[p]) {
			break
		}
		q[i] = q[p]
		i = p
	}
	q[i] = b
	*h = q
}

func (h *spmHeap) pop() spmBigram {
	q := *h
	top := q[0]
	last := len(q) - 1
	x := q[last]
	q = q[:last]
	if last > 0 {
		i := 0
		for {
			c := 2*i + 1
			if c >= last {
				break
			}
			if r := c + 1; r < last && q[r].before(q[c]) {
				c = r
			}
			if !q[c].before(x) {
				break
			}
			q[i] = q[c]
			i = c
		}
		q[i] = x
	}
	*h = q
	return top
}

// spmSeqLen is llama.cpp's unicode_len_utf8: the sequence length announced
// by a lead byte, trusting it blindly (continuation bytes count as 1, 0xF8-0xFF
// as 4).
func spmSeqLen(c byte) int {
	switch c >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

// spmEncode appends the ids of one raw-text fragment.
func (t *Tokenizer) spmEncode(frag string, spacePrefix bool, out []int32, sc *scratch) ([]int32, error) {
	// Escape: optional leading space, then ' ' -> "▁" (U+2581).
	text := sc.text[:0]
	if spacePrefix {
		text = append(text, "\u2581"...)
	}
	for i := 0; i < len(frag); i++ {
		if frag[i] == ' ' {
			text = append(text, "\u2581"...)
		} else {
			text = append(text, frag[i])
		}
	}
	sc.text = text
	if len(text) == 0 {
		return out, nil
	}
	if len(text) > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: text fragment of %d bytes is too long", len(text))
	}

	syms := sc.syms[:0]
	for off := 0; off < len(text); {
		n := min(spmSeqLen(text[off]), len(text)-off)
		idx := int32(len(syms))
		next := idx + 1
		if off+n == len(text) {
			next = -1
		}
		syms = append(syms, spmSymbol{prev: idx - 1, next: next, start: int32(off), n: int32(n)})
		off += n
	}

	heap := spmHeap(sc.heap[:0])
	tryAdd := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		l := &syms[left]
		size := l.n + syms[right].n
		id, ok := t.toID[string(text[l.start:l.start+size])]
		if !ok {
			return
		}
		heap.push(spmBigram{left: left, right: right, score: t.scores[id], size: size})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		tryAdd(i-1, i)
	}
	for len(heap) > 0 {
		b := heap.pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != b.size {
			continue // stale: one side has been merged since
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		tryAdd(l.prev, b.left)
		tryAdd(b.left, l.next)
	}
	sc.syms, sc.heap = syms, heap

	// Emit: a symbol is either a token (every merge produced one) or an
	// unmerged character that falls back to byte tokens.
	for i := int32(0); i != -1; i = syms[i].next {
		sym := syms[i]
		piece := text[sym.start : sym.start+sym.n]
		if id, ok := t.toID[string(piece)]; ok {
			out = append(out, id)
			continue
		}
		for _, c := range piece {
			id := t.byteTok[c]
			if id < 0 {
				return nil, fmt.Errorf("tokenizer: no byte-fallback token for byte 0x%02X", c)
			}
			out = append(out, id)
		}
	}
	return out, nil
}
