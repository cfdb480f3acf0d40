package gguf

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/slm-dev/slm/quant"
)

// TestRoundTrip rewrites every shipped file and expects it back byte for
// byte: the writer keeps the metadata order, the tensor order and llama.cpp's
// layout (zero padding to the alignment after the tensor table and after
// every tensor; no padding in files without tensors).
func TestRoundTrip(t *testing.T) {
	for _, path := range testFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var buf bytes.Buffer
			n, err := f.WriteTo(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(buf.Len()) {
				t.Errorf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
			}
			orig, out := f.Bytes(), buf.Bytes()
			if !bytes.Equal(orig, out) {
				i := 0
				for i < len(orig) && i < len(out) && orig[i] == out[i] {
					i++
				}
				t.Errorf("rewritten file differs from the original: %d vs %d bytes, first difference at byte %d (data section at %d)", len(out), len(orig), i, f.DataOffset)
			}
			g, err := Parse("rewritten", out)
			if err != nil {
				t.Fatal(err)
			}
			if d := sameContent(f, g); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestWriterAllTypes(t *testing.T) {
	kvs := append(allTypesKVs(), KV{"general.alignment", uint32(64)})
	data := buildFile(t, kvs, sampleTensors)
	f, err := Parse("sample.gguf", data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != WriteVersion || f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("version %d, alignment %d, data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	if len(f.KVs) != len(kvs) {
		t.Fatalf("%d KVs, want %d", len(f.KVs), len(kvs))
	}
	for i, kv := range kvs {
		if got := f.KVs[i]; got.Key != kv.Key || !reflect.DeepEqual(got.Value, kv.Value) {
			t.Errorf("KV %d: got %q=%#v, want %q=%#v", i, got.Key, got.Value, kv.Key, kv.Value)
		}
	}
	if len(f.Tensors) != len(sampleTensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(sampleTensors))
	}
	for i, tt := range sampleTensors {
		ti := &f.Tensors[i]
		if ti.Name != tt.name || ti.Type != tt.typ || len(ti.Dims) != len(tt.dims) || ti.Offset%64 != 0 {
			t.Errorf("tensor %d: %+v, want %+v", i, *ti, tt)
		}
		if !bytes.Equal(f.Data(ti), pattern(ti.Size, byte(i))) {
			t.Errorf("tensor %q: data differ", ti.Name)
		}
	}
	if len(data)%64 != 0 {
		t.Errorf("file of %d bytes does not end padded to the alignment", len(data))
	}
	if ti, _ := f.Tensor("output.weight"); ti.Size != 2*210 || ti.Rows() != 2 || ti.Elems() != 512 {
		t.Errorf("output.weight: size %d rows %d elems %d", ti.Size, ti.Rows(), ti.Elems())
	}
	if ti, _ := f.Tensor("empty"); ti.Size != 0 || ti.Rows() != 5 || ti.Elems() != 0 {
		t.Errorf("empty: size %d rows %d elems %d", ti.Size, ti.Rows(), ti.Elems())
	}
	if ti, _ := f.Tensor("scalar"); ti.Size != 2 || ti.Rows() != 1 || ti.Elems() != 1 {
		t.Errorf("scalar: size %d rows %d elems %d", ti.Size, ti.Rows(), ti.Elems())
	}
}

func TestWriterStreaming(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.AddKV("general.architecture", "test"); err != nil {
		t.Fatal(err)
	}
	size, err := w.AddTensor("a", []uint64{32, 4}, quant.Q8_0)
	if err != nil || size != 4*34 {
		t.Fatalf("AddTensor: %d, %v", size, err)
	}
	if _, err := w.AddTensor("b", []uint64{3}, quant.F32); err != nil {
		t.Fatal(err)
	}
	off, err := w.WriteHeader()
	if err != nil || off%DefaultAlignment != 0 || off != w.Size() {
		t.Fatalf("WriteHeader: %d, %v (size %d)", off, err, w.Size())
	}
	if ts := w.Tensors(); ts[0].Offset != 0 || ts[1].Offset != alignUp(4*34, DefaultAlignment) {
		t.Errorf("offsets %d, %d", ts[0].Offset, ts[1].Offset)
	}
	// Data arriving in dribs and drabs.
	if err := w.WriteTensorFrom("a", iotest.OneByteReader(bytes.NewReader(pattern(size, 1)))); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensorData("b", pattern(12, 2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	f, err := Parse("streamed", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Tensor("a")
	b, _ := f.Tensor("b")
	if !bytes.Equal(f.Data(a), pattern(size, 1)) || !bytes.Equal(f.Data(b), pattern(12, 2)) {
		t.Error("data differ")
	}
	if uint64(buf.Len()) != w.Size() {
		t.Errorf("Size %d, wrote %d", w.Size(), buf.Len())
	}
}

// TestWriterNoTensors: Close alone writes a metadata-only file, unpadded.
func TestWriterNoTensors(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.AddKV("tokenizer.ggml.tokens", []string{"a", "b"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := header(3, 0, 1).str("tokenizer.ggml.tokens").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(2).str("a").str("b").b
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("got\n%x\nwant\n%x", buf.Bytes(), want)
	}
}

func TestWriterSetKV(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.AddKV("general.architecture", "llama")
	w.AddKV("general.file_type", uint32(0))
	w.AddKV("general.name", "x")
	w.SetKV("general.file_type", uint32(15))
	w.SetKV("general.quantization_version", uint32(2))
	w.SetKV("general.alignment", uint32(128))
	if _, err := w.AddTensor("t", []uint64{1}, quant.F32); err != nil {
		t.Fatal(err)
	}
	w.WriteHeader()
	w.WriteTensorData("t", []byte{1, 2, 3, 4})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("setkv", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range f.KVs {
		keys = append(keys, kv.Key)
	}
	if got := strings.Join(keys, " "); got != "general.architecture general.file_type general.name general.quantization_version general.alignment" {
		t.Errorf("keys %s", got)
	}
	if ft, _ := f.Uint("general.file_type"); ft != 15 || f.Alignment != 128 || f.DataOffset%128 != 0 || buf.Len()%128 != 0 {
		t.Errorf("file_type %d, alignment %d, data offset %d, size %d", ft, f.Alignment, f.DataOffset, buf.Len())
	}
}

func TestWriterErrors(t *testing.T) {
	type step func(w *Writer) error
	kv := func(k string, v any) step { return func(w *Writer) error { return w.AddKV(k, v) } }
	tensor := func(name string, typ quant.Type, dims ...uint64) step {
		return func(w *Writer) error { _, err := w.AddTensor(name, dims, typ); return err }
	}
	hdr := func(w *Writer) error { _, err := w.WriteHeader(); return err }
	data := func(name string, n int) step {
		return func(w *Writer) error { return w.WriteTensorData(name, make([]byte, n)) }
	}
	from := func(name string, n int) step {
		return func(w *Writer) error { return w.WriteTensorFrom(name, bytes.NewReader(make([]byte, n))) }
	}
	closeW := func(w *Writer) error { return w.Close() }
	cases := []struct {
		name  string
		steps []step
		want  string
	}{
		{"int", []step{kv("k", 3)}, `metadata "k": int has no fixed width`},
		{"uint slice", []step{kv("k", []uint{3})}, `metadata "k": []uint has no fixed width`},
		{"nil", []step{kv("k", nil)}, `metadata "k": nil value`},
		{"struct", []step{kv("k", struct{}{})}, `metadata "k": struct {} has no GGUF equivalent`},
		{"mixed array", []step{kv("k", []any{[]int32{1}, int32(2)})}, `metadata "k": element 1: []any may only hold arrays`},
		{"too deep", []step{kv("k", []any{[]any{[]any{[]any{[]uint8{}}}}})}, "arrays nested deeper than 4"},
		{"duplicate key", []step{kv("k", true), kv("k", false)}, `metadata key "k" added twice`},
		{"alignment 0", []step{kv("general.alignment", uint32(0))}, "general.alignment 0 is not a power of two"},
		{"alignment 3", []step{kv("general.alignment", uint32(3))}, "general.alignment 3 is not a power of two"},
		{"alignment type", []step{kv("general.alignment", uint64(32))}, "general.alignment must be a uint32, not uint64"},
		{"unknown type", []step{tensor("t", quant.Type(4), 32)}, `tensor "t": unknown tensor type 4`},
		{"rank 5", []step{tensor("t", quant.F32, 1, 1, 1, 1, 1)}, `tensor "t": 5 dimensions (at most 4)`},
		{"block", []step{tensor("t", quant.Q4_K, 128, 2)}, `tensor "t": row length 128 is not a multiple of Q4_K's block size 256`},
		{"overflow", []step{tensor("t", quant.F32, 1<<32, 1<<32)}, `tensor "t": dimensions [4294967296 4294967296] overflow`},
		{"bytes overflow", []step{tensor("t", quant.F64, 1<<62)}, "would exceed 2^64 bytes"},
		{"long name", []step{tensor(strings.Repeat("x", 64), quant.F32, 1)}, "name of 64 bytes is too long"},
		{"duplicate tensor", []step{tensor("t", quant.F32, 1), tensor("t", quant.F32, 1)}, `tensor "t" added twice`},
		{"kv after header", []step{hdr, kv("k", true)}, `metadata "k" added after WriteHeader`},
		{"tensor after header", []step{hdr, tensor("t", quant.F32, 1)}, `tensor "t" added after WriteHeader`},
		{"header twice", []step{hdr, hdr}, "WriteHeader called twice"},
		{"data before header", []step{tensor("t", quant.F32, 1), data("t", 4)}, `tensor "t": data written before WriteHeader`},
		{"wrong size", []step{tensor("t", quant.F32, 2), hdr, data("t", 4)}, `tensor "t": got 4 bytes of data, want 8 (F32 [2])`},
		{"out of order", []step{tensor("a", quant.F32, 1), tensor("b", quant.F32, 1), hdr, data("b", 4)}, `tensor "b": data written out of order (tensor "a" is next)`},
		{"unknown tensor", []step{hdr, data("zz", 4)}, `tensor "zz" was not added`},
		{"data twice", []step{tensor("t", quant.F32, 1), hdr, data("t", 4), data("t", 4)}, `tensor "t": data written twice`},
		{"short reader", []step{tensor("t", quant.F32, 4), hdr, from("t", 10)}, `tensor "t": copied 10 of 16 bytes: unexpected EOF`},
		{"missing data", []step{tensor("a", quant.F32, 1), tensor("b", quant.F32, 1), hdr, closeW}, `closed before the data of tensor "a" (and 1 after it) were written`},
		{"data after close", []step{closeW, data("t", 4)}, `tensor "t": data written after Close`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWriter(io.Discard)
			var err error
			for _, s := range c.steps {
				if err = s(w); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gguf writer: ") {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
			// Errors stick.
			if err2 := w.Close(); err2 != err {
				t.Errorf("Close after error: %v", err2)
			}
			if err2 := w.AddKV("other", true); err2 != err {
				t.Errorf("AddKV after error: %v", err2)
			}
		})
	}
}

type failWriter struct{ left int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n := f.left
		f.left = 0
		return n, errDiskFull
	}
	f.left -= len(p)
	return len(p), nil
}

func TestWriterWriteError(t *testing.T) {
	full := sampleFile(t)
	f, err := Parse("sample", full)
	if err != nil {
		t.Fatal(err)
	}
	var limits []int
	for limit := 0; limit < len(full); limit += 1 + limit/4 {
		limits = append(limits, limit)
	}
	for _, limit := range append(limits, len(full)-1) {
		_, err := f.WriteTo(&failWriter{left: limit})
		if !errors.Is(err, errDiskFull) {
			t.Errorf("limit %d: got %v, want disk full", limit, err)
		}
	}
	if _, err := f.WriteTo(&failWriter{left: len(full)}); err != nil {
		t.Errorf("exact fit: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	data := sampleFile(t)
	f, err := Parse("sample", data)
	if err != nil {
		t.Fatal(err)
	}
	err = WriteFileAtomic(path, func(w io.Writer) error { _, err := f.WriteTo(w); return err })
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(data))
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	// A failing write leaves the old file alone and no temporary behind.
	boom := errors.New("boom")
	err = WriteFileAtomic(path, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if err != boom {
		t.Errorf("got %v, want boom", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Error("failed write changed the file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x.gguf"), func(io.Writer) error { return nil }); err == nil {
		t.Error("no error for a missing directory")
	}
}
