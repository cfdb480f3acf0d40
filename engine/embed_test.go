package engine

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/slm-dev/slm/gguf"
)

func l2(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// The same text gives the same vector, bit for bit, alone or with others in
// one batch, also when the batch splits inputs across forward passes; the
// vectors have L2 norm 1.
func TestEmbedSameAloneOrBatched(t *testing.T) {
	texts := []string{"Once upon a time", "The quick brown fox jumps over the lazy dog", "a", "Once upon a time", "hello world, hello embeddings"}
	for _, name := range []string{"llama-q8_0.gguf", "qwen2-q4_k.gguf", "gpt2-f32.gguf"} {
		m := open(t, name)
		for _, pool := range []string{"", "mean", "cls", "last"} {
			opts := EmbedOptions{Pooling: pool}
			all, counts, err := m.EmbedTexts(context.Background(), texts, opts)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range texts {
				one, c, err := m.EmbedTexts(context.Background(), []string{s}, opts)
				if err != nil {
					t.Fatal(err)
				}
				if !sameBits(one[0], all[i]) {
					t.Errorf("%s/%s: %q alone and batched differ", name, pool, s)
				}
				if c[0] != counts[i] {
					t.Errorf("%s: token counts %d and %d", name, c[0], counts[i])
				}
				if n := l2(all[i]); math.Abs(n-1) > 1e-6 {
					t.Errorf("%s/%s: L2 norm %v, want 1", name, pool, n)
				}
				if len(all[i]) != m.Config().NEmbd {
					t.Errorf("%s: %d dimensions, want %d", name, len(all[i]), m.Config().NEmbd)
				}
			}
			if !sameBits(all[0], all[3]) {
				t.Errorf("%s/%s: the same text twice in a batch gives different vectors", name, pool)
			}
			// Passes of 4 tokens: every input spans several passes and shares them.
			prev := embedBatch
			embedBatch = 4
			split, _, err := m.EmbedTexts(context.Background(), texts, opts)
			embedBatch = prev
			if err != nil {
				t.Fatal(err)
			}
			for i := range texts {
				if !sameBits(split[i], all[i]) {
					t.Errorf("%s/%s: input %d differs when split across passes", name, pool, i)
				}
			}
		}
	}
}

// Pooling: last is the last token's hidden state, cls the first token's and
// mean the mean of all; Raw keeps the unnormalized vector.
func TestEmbedPooling(t *testing.T) {
	m := open(t, "llama-q8_0.gguf")
	if p := m.Pooling(); p != PoolingLast {
		t.Errorf("default pooling %v, want last", p)
	}
	ids, err := m.Tokenize("The quick brown fox", true, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw := func(pool string, in []int32) []float32 {
		v, _, err := m.Embed(ctx, [][]int32{in}, EmbedOptions{Raw: true, Pooling: pool})
		if err != nil {
			t.Fatal(err)
		}
		return v[0]
	}
	// The hidden state of each prefix's last token is that token's row.
	d := m.Config().NEmbd
	rows := make([][]float32, len(ids))
	for i := range ids {
		rows[i] = raw("last", ids[:i+1])
	}
	if got := raw("cls", ids); !sameBits(got, rows[0]) {
		t.Error("cls pooling is not the first token's hidden state")
	}
	mean := raw("mean", ids)
	for j := range d {
		var s float64
		for i := range rows {
			s += float64(rows[i][j])
		}
		if want := float32(s / float64(len(rows))); math.Abs(float64(mean[j]-want)) > 1e-6*max(1, math.Abs(float64(want))) {
			t.Fatalf("mean pooling [%d] = %v, want %v", j, mean[j], want)
		}
	}
	if n := l2(rows[len(ids)-1]); math.Abs(n-1) < 1e-3 {
		t.Errorf("raw vector has norm %v: looks normalized", n)
	}
	norm, _, err := m.Embed(ctx, [][]int32{ids}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := rows[len(ids)-1]
	n := l2(r)
	for j := range d {
		if math.Abs(float64(norm[0][j])-float64(r[j])/n) > 1e-6 {
			t.Fatalf("normalized [%d] = %v, want %v", j, norm[0][j], float64(r[j])/n)
		}
	}
}

func TestEmbedErrors(t *testing.T) {
	m := open(t, "gpt2-f32.gguf")
	ctx := context.Background()
	long := make([]int32, m.ContextSize()+3)
	for i := range long {
		long[i] = int32(i % 100)
	}
	_, _, err := m.Embed(ctx, [][]int32{{1, 2}, long}, EmbedOptions{})
	var tl *TooLongError
	if !errors.As(err, &tl) || tl.Index != 1 || tl.Tokens != len(long) || tl.Context != m.ContextSize() {
		t.Errorf("too long: %v", err)
	}
	v, counts, err := m.Embed(ctx, [][]int32{long[:m.ContextSize()], long}, EmbedOptions{Truncate: true})
	if err != nil {
		t.Fatal(err)
	}
	if counts[1] != m.ContextSize() || !sameBits(v[0], v[1]) {
		t.Errorf("truncated: counts %v, same vector %v", counts, sameBits(v[0], v[1]))
	}
	if _, _, err := m.Embed(ctx, [][]int32{{1}, {}}, EmbedOptions{}); !errors.Is(err, ErrEmptyInput) {
		t.Errorf("empty input: %v", err)
	}
	if _, _, err := m.Embed(ctx, nil, EmbedOptions{}); err == nil {
		t.Error("no inputs: no error")
	}
	if _, _, err := m.Embed(ctx, [][]int32{{1 << 30}}, EmbedOptions{}); err == nil {
		t.Error("token outside the vocabulary: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := m.Embed(cctx, [][]int32{{1}}, EmbedOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// withPooling is the model file with <arch>.pooling_type set to p.
func withPooling(t *testing.T, name string, p uint32) *Model {
	t.Helper()
	src := open(t, name)
	f := src.File()
	key := src.Config().Arch + ".pooling_type"
	f.KVs = append(slices.Clone(f.KVs), gguf.KV{Key: key, Value: p})
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	m, err := OpenBytes(name, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The model's pooling comes from <arch>.pooling_type.
func TestEmbedPoolingFromMetadata(t *testing.T) {
	ctx := context.Background()
	in := [][]int32{{1, 20, 300, 40, 5}}
	for p, name := range map[Pooling]string{PoolingMean: "mean", PoolingCLS: "cls", PoolingLast: "last"} {
		m := withPooling(t, "llama-q8_0.gguf", uint32(p))
		if m.Pooling() != p {
			t.Errorf("Pooling() = %v, want %v", m.Pooling(), p)
		}
		got, _, err := m.Embed(ctx, in, EmbedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := open(t, "llama-q8_0.gguf").Embed(ctx, in, EmbedOptions{Pooling: name})
		if err != nil {
			t.Fatal(err)
		}
		if !sameBits(got[0], want[0]) {
			t.Errorf("pooling_type %d differs from pooling %q", p, name)
		}
	}
	for _, p := range []Pooling{PoolingNone, PoolingRank} {
		m := withPooling(t, "llama-q8_0.gguf", uint32(p))
		if _, _, err := m.Embed(ctx, in, EmbedOptions{}); err == nil || !strings.Contains(err.Error(), p.String()) {
			t.Errorf("pooling_type %v: %v", p, err)
		}
	}
}
