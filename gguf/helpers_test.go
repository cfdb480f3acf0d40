package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// testFiles lists the shipped GGUF files.
func testFiles(t testing.TB) []string {
	t.Helper()
	var all []string
	for _, pat := range []string{"../testdata/models/*.gguf", "../testdata/tokenizer/gguf/*.gguf"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m...)
	}
	if len(all) == 0 {
		t.Skip("no GGUF files under ../testdata")
	}
	return all
}

// smallestVocab is the smallest shipped tokenizer-only GGUF file.
func smallestVocab(t testing.TB) string {
	t.Helper()
	m, _ := filepath.Glob("../testdata/tokenizer/gguf/*.gguf")
	best, bestSize := "", int64(-1)
	for _, p := range m {
		st, err := os.Stat(p)
		if err == nil && (bestSize < 0 || st.Size() < bestSize) {
			best, bestSize = p, st.Size()
		}
	}
	return best
}

// testTensor is a tensor for building sample files.
type testTensor struct {
	name string
	dims []uint64
	typ  quant.Type
}

// pattern is deterministic, non-zero filler data.
func pattern(n uint64, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// buildFile writes a file with the writer, filling tensors with pattern.
func buildFile(t testing.TB, kvs []KV, tensors []testTensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, kv := range kvs {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	sizes := make([]uint64, len(tensors))
	for i, tt := range tensors {
		size, err := w.AddTensor(tt.name, tt.dims, tt.typ)
		if err != nil {
			t.Fatal(err)
		}
		sizes[i] = size
	}
	if _, err := w.WriteHeader(); err != nil {
		t.Fatal(err)
	}
	for i, tt := range tensors {
		if err := w.WriteTensorData(tt.name, pattern(sizes[i], byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// allTypesKVs has one value of every GGUF type, arrays of every element
// type and nested arrays.
func allTypesKVs() []KV {
	return []KV{
		{"general.architecture", "llama"},
		{"u8", uint8(200)},
		{"i8", int8(-100)},
		{"u16", uint16(60000)},
		{"i16", int16(-30000)},
		{"u32", uint32(4000000000)},
		{"i32", int32(-2000000000)},
		{"f32", float32(1.5)},
		{"bool", true},
		{"str", "héllo\x00world"},
		{"u64", uint64(1) << 63},
		{"i64", int64(-1) << 62},
		{"f64", float64(-2.25)},
		{"empty.str", ""},
		{"a.u8", []uint8{1, 2, 255}},
		{"a.i8", []int8{-1, 2}},
		{"a.u16", []uint16{1, 65535}},
		{"a.i16", []int16{-1, 32767}},
		{"a.u32", []uint32{7}},
		{"a.i32", []int32{-7, 8, 9}},
		{"a.f32", []float32{0.5, -1e30}},
		{"a.bool", []bool{true, false, true}},
		{"a.str", []string{"a", "", "ccc"}},
		{"a.u64", []uint64{1 << 40}},
		{"a.i64", []int64{-1 << 40}},
		{"a.f64", []float64{3.25}},
		{"a.empty", []string{}},
		{"a.nested", []any{[]int32{1, 2}, []string{"x"}, []any{[]uint8{9}}, []any{}}},
	}
}

// sampleTensors ends with a tensor whose size is a multiple of the default
// alignment, so that the file has no trailing padding and every strict
// prefix of it is truncated data.
var sampleTensors = []testTensor{
	{"token_embd.weight", []uint64{64, 3}, quant.Q4_0},
	{"empty", []uint64{0, 5}, quant.F32},
	{"blk.0.attn_norm.weight", []uint64{5}, quant.F32},
	{"scalar", nil, quant.F16},
	{"output.weight", []uint64{256, 2}, quant.Q6_K},
	{"last", []uint64{8}, quant.F32},
}

func sampleFile(t testing.TB) []byte { return buildFile(t, allTypesKVs(), sampleTensors) }

// encodeValue is a value's GGUF type and encoding, for exact comparison
// (NaNs included).
func encodeValue(v any) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	typ, err := typeOf(v, 0)
	if err != nil {
		return []byte("invalid: " + err.Error())
	}
	w.u32(uint32(typ))
	w.value(v)
	w.out.Flush()
	return buf.Bytes()
}

// sameContent reports how a and b differ in metadata, tensor table or
// tensor data ("" when they agree). Offsets and versions may differ.
func sameContent(a, b *File) string {
	if len(a.KVs) != len(b.KVs) {
		return fmt.Sprintf("%d vs %d KVs", len(a.KVs), len(b.KVs))
	}
	for i := range a.KVs {
		ka, kb := a.KVs[i], b.KVs[i]
		if ka.Key != kb.Key {
			return fmt.Sprintf("KV %d: key %q vs %q", i, ka.Key, kb.Key)
		}
		if !bytes.Equal(encodeValue(ka.Value), encodeValue(kb.Value)) {
			return fmt.Sprintf("KV %q: value %T differs", ka.Key, ka.Value)
		}
	}
	if a.Alignment != b.Alignment {
		return fmt.Sprintf("alignment %d vs %d", a.Alignment, b.Alignment)
	}
	if len(a.Tensors) != len(b.Tensors) {
		return fmt.Sprintf("%d vs %d tensors", len(a.Tensors), len(b.Tensors))
	}
	for i := range a.Tensors {
		ta, tb := &a.Tensors[i], &b.Tensors[i]
		if ta.Name != tb.Name || ta.Type != tb.Type || ta.Size != tb.Size || fmt.Sprint(ta.Dims) != fmt.Sprint(tb.Dims) {
			return fmt.Sprintf("tensor %d: %+v vs %+v", i, *ta, *tb)
		}
		if !bytes.Equal(a.Data(ta), b.Data(tb)) {
			return fmt.Sprintf("tensor %q: data differ", ta.Name)
		}
	}
	return ""
}

// raw assembles deliberately malformed files byte by byte.
type raw struct{ b []byte }

func header(version uint32, nTensors, nKV uint64) *raw {
	r := &raw{}
	return r.u32(Magic).u32(version).u64(nTensors).u64(nKV)
}

func (r *raw) u8(v uint8) *raw   { r.b = append(r.b, v); return r }
func (r *raw) u32(v uint32) *raw { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *raw) zeros(n int) *raw  { r.b = append(r.b, make([]byte, n)...); return r }

// pad zero-fills up to a multiple of a.
func (r *raw) pad(a int) *raw { return r.zeros((a - len(r.b)%a) % a) }

func (r *raw) kvU32(key string, v uint32) *raw { return r.str(key).u32(uint32(TypeUint32)).u32(v) }

// tensor appends a tensor-table entry.
func (r *raw) tensor(name string, typ quant.Type, off uint64, dims ...uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(uint32(typ)).u64(off)
}
