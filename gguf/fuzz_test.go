package gguf

import (
	"bytes"
	"strings"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// fuzzSeeds are small valid files, plus the start of a shipped vocabulary
// and a shrunken copy of it (same keys and types, arrays cut short).
func fuzzSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		sampleFile(t),
		buildFile(t, allTypesKVs(), nil),
		buildFile(t, []KV{{"general.alignment", uint32(8)}, {"a", []any{[]any{[]bool{true}}}}}, []testTensor{
			{"x", []uint64{2, 1, 1, 1}, quant.I16}, {"y", []uint64{32}, quant.Q8_0}, {"z", []uint64{0}, quant.Q2_K},
		}),
		buildFile(t, nil, []testTensor{{"w", []uint64{256}, quant.Q5_K}}),
		buildFile(t, nil, nil),
	}
	if data, err := readTestFile(smallestVocab(t)); err == nil {
		seeds = append(seeds, data[:min(len(data), 2048)])
		if f, err := Parse("vocab", data); err == nil {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			for _, kv := range f.KVs {
				v := kv.Value
				switch x := v.(type) {
				case []string:
					v = x[:min(len(x), 6)]
				case []int32:
					v = x[:min(len(x), 6)]
				case []float32:
					v = x[:min(len(x), 6)]
				}
				w.AddKV(kv.Key, v)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, buf.Bytes())
		}
	}
	return seeds
}

// FuzzParse checks that Parse never panics, that its errors name the file,
// and that whatever it accepts is consistent: tensor views have their
// sizes, and the writer can write the file back out, the result parses to
// the same content, and writing that again gives the same bytes.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse("fuzz.gguf", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gguf fuzz.gguf: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, kv := range g.KVs {
			g.Get(kv.Key)
			g.String(kv.Key)
			g.Uint(kv.Key)
			g.Int(kv.Key)
			g.Float(kv.Key)
			g.Bool(kv.Key)
			g.Strings(kv.Key)
			g.Float32s(kv.Key)
			g.Int32s(kv.Key)
		}
		g.Arch()
		for i := range g.Tensors {
			ti := &g.Tensors[i]
			if byName, ok := g.Tensor(ti.Name); !ok || byName != ti {
				t.Fatalf("tensor %q: lookup by name failed", ti.Name)
			}
			if d := g.Data(ti); uint64(len(d)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes of data, size %d", ti.Name, len(d), ti.Size)
			}
			if rows := ti.Rows(); ti.Elems() > 0 && rows > ti.Elems() {
				t.Fatalf("tensor %q: %d rows of %d elements", ti.Name, ti.Rows(), ti.Elems())
			}
		}
		var out1 bytes.Buffer
		if _, err := g.WriteTo(&out1); err != nil {
			t.Fatalf("writer rejects a file the reader accepts: %v", err)
		}
		h, err := Parse("rewritten", out1.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if d := sameContent(g, h); d != "" {
			t.Fatalf("rewritten file differs: %s", d)
		}
		var out2 bytes.Buffer
		if _, err := h.WriteTo(&out2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out1.Bytes(), out2.Bytes()) {
			t.Fatal("second rewrite differs from the first")
		}
	})
}
