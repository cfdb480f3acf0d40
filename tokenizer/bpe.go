package tokenizer

// Byte-level BPE (tokenizer.ggml.model = "gpt2"), equal to llama.cpp's
// llm_tokenizer_bpe_session::tokenize: pre-tokenize, map every byte of a pre-token to
// its GPT-2 byte-unicode symbol, merge adjacent symbols lowest rank first (leftmost on
// ties) and look the resulting strings up in the vocab. A string that is not a token
// falls back to its single bytes (each one that is a token on its own), as llama.cpp
// does.

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is a byte-level BPE tokenizer. It is safe for concurrent use.
type bpe struct {
	pre          *preTokenizer
	ignoreMerges bool

	tokToID map[string]int32 // llama.cpp's token_to_id (the last duplicate wins)
	byteTok [256]int32       // id of the one-byte string b, or -1

	// Every string that can appear as a symbol during merging (a byte's symbol or a
	// merge result) is interned; merges are keyed by the pair of symbol ids.
	symStr  []string
	symTok  []int32 // token id of symStr[i], or -1
	charSym [256]int32
	merges  mergeTable

	cache   wordCache
	scratch sync.Pool
}

type mergeRule struct {
	rank   int32
	result int32 // symbol id of the concatenation
}

// newBPE builds a byte-level BPE tokenizer from tokenizer.ggml.tokens,
// tokenizer.ggml.merges ("a b" per merge, rank = index) and tokenizer.ggml.pre.
func newBPE(tokens []string, merges []string, pre string) (*bpe, error) {
	cfg, err := preConfigFor(pre)
	if err != nil {
		return nil, err
	}
	initFlags()
	b := &bpe{
		pre:          cfg.pre,
		ignoreMerges: cfg.ignoreMerges,
		tokToID:      make(map[string]int32, len(tokens)),
	}
	for i, t := range tokens {
		if t == "" {
			t = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		b.tokToID[t] = int32(i)
	}
	for i := range b.byteTok {
		b.byteTok[i] = b.lookup(string([]byte{byte(i)}))
	}

	b.merges.init(len(merges))
	symIndex := make(map[string]int32, len(merges)+256)
	intern := func(s string) int32 {
		if id, ok := symIndex[s]; ok {
			return id
		}
		id := int32(len(b.symStr))
		symIndex[s] = id
		b.symStr = append(b.symStr, s)
		b.symTok = append(b.symTok, b.lookup(s))
		return id
	}
	for i := range b.charSym {
		b.charSym[i] = intern(string(byteToRune[i]))
	}
	for rank, m := range merges {
		// llama.cpp splits at the first space at byte index >= 1.
		if len(m) < 2 {
			continue
		}
		k := strings.IndexByte(m[1:], ' ')
		if k < 0 {
			continue
		}
		first, second := m[:k+1], m[k+2:]
		if first == "" || second == "" {
			continue // can never be the pair of two symbols
		}
		l, r := intern(first), intern(second)
		if _, dup := b.merges.get(l, r); dup {
			continue // std::unordered_map::emplace keeps the first rank
		}
		b.merges.put(l, r, mergeRule{rank: int32(rank), result: intern(first + second)})
	}
	if len(b.symStr) >= 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: too many BPE symbols")
	}
	b.cache.init(1 << 14)
	return b, nil
}

func (b *bpe) lookup(s string) int32 {
	if id, ok := b.tokToID[s]; ok {
		return id
	}
	return -1
}

// bpeScratch holds per-call buffers.
type bpeScratch struct {
	pc       preCtx
	ends     []int32
	spare    []int32
	word     []byte
	enc      []byte
	sym      []int32
	prev     []int32
	next     []int32
	heap     bigramHeap
	wordToks []int32
}

func (b *bpe) getScratch() *bpeScratch {
	if s, ok := b.scratch.Get().(*bpeScratch); ok {
		return s
	}
	return &bpeScratch{}
}

// encode appends the ids of a fragment that contains no special tokens (the front end
// has split those out and has already replaced invalid UTF-8 with U+FFFD). It runs the
// pre-tokenizer named by pre, maps bytes to GPT-2's byte-unicode symbols and applies
// merges by rank. Invalid UTF-8 that does reach it is decoded as llama.cpp does (one
// U+FFFD per bad byte); a code point above U+10FFFF, on which llama.cpp throws, is
// encoded as U+FFFD.
func (b *bpe) encode(text string, out []int32) []int32 {
	if text == "" {
		return out
	}
	sc := b.getScratch()
	defer b.scratch.Put(sc)

	sc.pc.load(text)
	sc.ends, sc.spare = b.pre.split(&sc.pc, sc.ends, sc.spare)
	s := 0
	for _, e32 := range sc.ends {
		e := int(e32)
		w := sc.word[:0]
		for _, r := range sc.pc.cps[s:e] {
			w = appendCP(w, r)
		}
		sc.word = w
		s = e
		out = b.encodeWord(sc, w, out)
	}
	return out
}

const maxCachedWord = 64

// encodeWord appends the ids of one pre-token (raw UTF-8 bytes).
func (b *bpe) encodeWord(sc *bpeScratch, w []byte, out []int32) []int32 {
	if len(w) <= maxCachedWord {
		if ids, ok := b.cache.get(w); ok {
			return append(out, ids...)
		}
	}
	n := len(out)
	out = b.bpeWord(sc, w, out)
	if len(w) <= maxCachedWord {
		b.cache.put(w, out[n:])
	}
	return out
}

func (b *bpe) bpeWord(sc *bpeScratch, w []byte, out []int32) []int32 {
	if b.ignoreMerges {
		enc := sc.enc[:0]
		for _, c := range w {
			enc = utf8.AppendRune(enc, byteToRune[c])
		}
		sc.enc = enc
		if id, ok := b.tokToID[string(enc)]; ok {
			return append(out, id)
		}
	}
	n := len(w)
	if n == 1 {
		return b.emitSym(b.charSym[w[0]], out)
	}

	sym, prev, next := sc.sym[:0], sc.prev[:0], sc.next[:0]
	for i, c := range w {
		sym = append(sym, b.charSym[c])
		prev = append(prev, int32(i-1))
		next = append(next, int32(i+1))
	}
	next[n-1] = -1
	sc.sym, sc.prev, sc.next = sym, prev, next

	h := sc.heap[:0]
	for i := 1; i < n; i++ {
		h = b.addBigram(h, sym, int32(i-1), int32(i))
	}
	h.init()
	for len(h) > 0 {
		var bg bigram
		h, bg = h.pop()
		l, r := bg.left, bg.right
		// Skip bigrams whose symbols have changed since they were queued.
		if sym[l] != bg.lsym || sym[r] != bg.rsym || sym[l] < 0 || next[l] != r {
			continue
		}
		sym[l] = bg.result
		sym[r] = -1
		next[l] = next[r]
		if next[r] >= 0 {
			prev[next[r]] = l
		}
		if prev[l] >= 0 {
			h = b.pushBigram(h, sym, prev[l], l)
		}
		if next[l] >= 0 {
			h = b.pushBigram(h, sym, l, next[l])
		}
	}
	sc.heap = h

	for i := int32(0); i >= 0; i = next[i] {
		out = b.emitSym(sym[i], out)
	}
	return out
}

func (b *bpe) emitSym(s int32, out []int32) []int32 {
	if id := b.symTok[s]; id >= 0 {
		return append(out, id)
	}
	// llama.cpp: a string that is not a token is output byte by byte, keeping the
	// bytes that are tokens on their own and dropping the others.
	str := b.symStr[s]
	for i := 0; i < len(str); i++ {
		if id := b.byteTok[str[i]]; id >= 0 {
			out = append(out, id)
		}
	}
	return out
}

func (b *bpe) addBigram(h bigramHeap, sym []int32, l, r int32) bigramHeap {
	m, ok := b.merges.get(sym[l], sym[r])
	if !ok {
		return h
	}
	return append(h, bigram{rank: m.rank, left: l, right: r, lsym: sym[l], rsym: sym[r], result: m.result})
}

func (b *bpe) pushBigram(h bigramHeap, sym []int32, l, r int32) bigramHeap {
	n := len(h)
	h = b.addBigram(h, sym, l, r)
	if len(h) > n {
		h.up(n)
	}
	return h
}

// mergeTable is an open-addressing hash table from a pair of symbol ids to its merge.
type mergeTable struct {
	keys []uint64 // emptyKey or l<<32|r
	vals []mergeRule
	mask uint64
}

const emptyKey = ^uint64(0)

func (t *mergeTable) init(n int) {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	t.keys = make([]uint64, size)
	for i := range t.keys {
		t.keys[i] = emptyKey
	}
	t.vals = make([]mergeRule, size)
	t.mask = uint64(size - 1)
}

func mergeHash(k uint64) uint64 {
	k *= 0x9E3779B97F4A7C15
	return k ^ k>>29
}

func (t *mergeTable) get(l, r int32) (mergeRule, bool) {
	k := uint64(uint32(l))<<32 | uint64(uint32(r))
	for i := mergeHash(k) & t.mask; ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case k:
			return t.vals[i], true
		case emptyKey:
			return mergeRule{}, false
		}
	}
}

// put adds a pair that is not in the table yet.
func (t *mergeTable) put(l, r int32, v mergeRule) {
	k := uint64(uint32(l))<<32 | uint64(uint32(r))
	i := mergeHash(k) & t.mask
	for t.keys[i] != emptyKey {
		i = (i + 1) & t.mask
	}
	t.keys[i], t.vals[i] = k, v
}

// bigram is a candidate merge of the adjacent symbols left and right.
type bigram struct {
	rank, left, right, lsym, rsym, result int32
}

func (a bigram) less(b bigram) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
}

// bigramHeap is a binary min-heap ordered by (rank, left).
type bigramHeap []bigram

func (h bigramHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h bigramHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (h bigramHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h bigramHeap) pop() (bigramHeap, bigram) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	if n > 0 {
		h.down(0)
	}
	return h, top
}

// wordCache is a bounded map from pre-token bytes to ids. When full it is emptied.
type wordCache struct {
	mu  sync.Mutex
	max int
	m   map[string][]int32
}

func (c *wordCache) init(max int) {
	c.max = max
	c.m = make(map[string][]int32)
}

func (c *wordCache) get(w []byte) ([]int32, bool) {
	c.mu.Lock()
	ids, ok := c.m[string(w)]
	c.mu.Unlock()
	return ids, ok
}

func (c *wordCache) put(w []byte, ids []int32) {
	if c.max <= 0 {
		return
	}
	cp := append([]int32(nil), ids...)
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[string(w)] = cp
	c.mu.Unlock()
}

// GPT-2's byte <-> unicode map: printable Latin-1 bytes map to themselves, the others
// to U+0100 onwards in byte order.
var (
	byteToRune [256]rune
	runeToByte [324]int16
)

func init() {
	for i := range runeToByte {
		runeToByte[i] = -1
	}
	n := 0
	for c := 0; c < 256; c++ {
		if (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF) {
			byteToRune[c] = rune(c)
		} else {
			byteToRune[c] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[c]] = int16(c)
	}
}
