package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/slm-dev/slm/quant"
)

// WriteVersion is the GGUF version the Writer produces.
const WriteVersion = 3

// Writer streams a GGUF v3 file to an io.Writer in three phases:
//
//  1. describe the file: AddKV (or SetKV) for each metadata entry (in file
//     order) and AddTensor for each tensor (in file order, which is also the
//     order of their data);
//  2. WriteHeader writes the header, metadata and tensor table;
//  3. WriteTensorData (or WriteTensorFrom) once per tensor, in the order they
//     were added, then Close.
//
// Only the header is held in memory; tensor data passes straight through,
// so files of any size can be written one tensor at a time. Tensor data are
// laid out as llama.cpp does: each tensor starts on a multiple of the
// alignment (general.alignment if added, else DefaultAlignment) and is
// zero-padded up to the next multiple, including the last. A file without
// tensors ends right after its metadata, like the vocab-only files that
// llama.cpp ships.
//
// The first error (a rejected value, a write failure, a call out of order)
// sticks: every later call returns it. A Writer is not safe for concurrent
// use.
type Writer struct {
	out   *bufio.Writer
	off   uint64 // bytes written so far
	err   error
	state writerState

	kvs     []KV
	keys    map[string]int // index in kvs
	tensors []TensorInfo
	names   map[string]bool
	align   uint64
	next    int // index of the tensor whose data is due
	scratch []byte
}

type writerState int

const (
	stateMeta   writerState = iota // adding KVs and tensors
	stateData                      // header written, tensor data due
	stateClosed                    // Close called
)

// NewWriter returns a Writer that writes to out. It buffers its output;
// Close flushes it (but does not close out).
func NewWriter(out io.Writer) *Writer {
	return &Writer{
		out:   bufio.NewWriterSize(out, 1<<16),
		keys:  map[string]int{},
		names: map[string]bool{},
		align: DefaultAlignment,
	}
}

// fail records err (the first one sticks) and returns the sticky error.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = fmt.Errorf("gguf writer: %w", err)
	}
	return w.err
}

// AddKV appends a metadata entry. The Go type of value picks the GGUF type:
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64, float64, a slice of one of those for an array, or []any whose
// elements are themselves such slices (or []any) for an array of arrays —
// exactly the types Parse produces. Untyped Go ints are rejected: say which
// width is meant. A general.alignment entry must be a power-of-two uint32
// and sets the alignment of the tensor data. value is encoded by
// WriteHeader and must not change until then.
func (w *Writer) AddKV(key string, value any) error {
	if _, dup := w.keys[key]; dup && w.err == nil && w.state == stateMeta {
		return w.fail(fmt.Errorf("metadata key %q added twice", key))
	}
	return w.SetKV(key, value)
}

// SetKV is AddKV, except that a key already added keeps its place and
// takes the new value (for copying metadata while changing a few entries,
// such as general.file_type).
func (w *Writer) SetKV(key string, value any) error {
	if w.err != nil {
		return w.err
	}
	if w.state != stateMeta {
		return w.fail(fmt.Errorf("metadata %q added after WriteHeader", key))
	}
	if _, err := typeOf(value, 0); err != nil {
		return w.fail(fmt.Errorf("metadata %q: %w", key, err))
	}
	if key == alignmentKey {
		a, err := checkAlignment(value)
		if err != nil {
			return w.fail(err)
		}
		w.align = a
	}
	if i, ok := w.keys[key]; ok {
		w.kvs[i].Value = value
		return nil
	}
	w.keys[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: value})
	return nil
}

// AddTensor appends a tensor of the given shape (ggml order: dims[0] is the
// row length) and type, and returns its encoded size: the number of bytes
// WriteTensorData will expect for it.
func (w *Writer) AddTensor(name string, dims []uint64, typ quant.Type) (uint64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.state != stateMeta {
		return 0, w.fail(fmt.Errorf("tensor %q added after WriteHeader", name))
	}
	if err := checkName(name); err != nil {
		return 0, w.fail(fmt.Errorf("tensor %q: %w", name, err))
	}
	if w.names[name] {
		return 0, w.fail(fmt.Errorf("tensor %q added twice", name))
	}
	size, err := tensorSize(dims, typ)
	if err != nil {
		return 0, w.fail(fmt.Errorf("tensor %q: %w", name, err))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: typ, Size: size})
	return size, nil
}

// Tensors is (a copy of) the tensor table as added so far. After
// WriteHeader the offsets (relative to the data section) are filled in.
func (w *Writer) Tensors() []TensorInfo { return slices.Clone(w.tensors) }

// Alignment is the alignment the tensor data will have.
func (w *Writer) Alignment() uint64 { return w.align }

// WriteHeader lays the tensors out and writes the header, the metadata and
// the tensor table, followed (when there are tensors) by the padding that
// aligns the data section. It returns the data section's offset in the file.
func (w *Writer) WriteHeader() (uint64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.state != stateMeta {
		return 0, w.fail(errors.New("WriteHeader called twice"))
	}
	w.state = stateData
	var off uint64
	for i := range w.tensors {
		t := &w.tensors[i]
		t.Offset = off
		if off > math.MaxUint64-w.align || t.Size > math.MaxUint64-w.align-off {
			return 0, w.fail(fmt.Errorf("tensor %q: data section exceeds 2^64 bytes", t.Name))
		}
		off = alignUp(off+t.Size, w.align)
	}
	w.u32(Magic)
	w.u32(WriteVersion)
	w.u64(uint64(len(w.tensors)))
	w.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		w.str(kv.Key)
		t, _ := typeOf(kv.Value, 0) // checked by AddKV
		w.u32(uint32(t))
		w.value(kv.Value)
	}
	for _, t := range w.tensors {
		w.str(t.Name)
		w.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			w.u64(d)
		}
		w.u32(uint32(t.Type))
		w.u64(t.Offset)
	}
	if len(w.tensors) > 0 {
		w.pad()
	}
	if w.err != nil {
		return 0, w.err
	}
	return w.off, nil
}

// WriteTensorData writes the encoded data of the next tensor, which must be
// called name and take exactly len(data) bytes.
func (w *Writer) WriteTensorData(name string, data []byte) error {
	t, err := w.due(name)
	if err != nil {
		return err
	}
	if uint64(len(data)) != t.Size {
		return w.fail(fmt.Errorf("tensor %q: got %d bytes of data, want %d (%s %v)", name, len(data), t.Size, t.Type, t.Dims))
	}
	w.write(data)
	return w.done()
}

// WriteTensorFrom is WriteTensorData for data that are not all in memory:
// it copies the tensor's size in bytes from r.
func (w *Writer) WriteTensorFrom(name string, r io.Reader) error {
	t, err := w.due(name)
	if err != nil {
		return err
	}
	n, err := io.CopyN(w.out, r, int64(t.Size))
	w.off += uint64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return w.fail(fmt.Errorf("tensor %q: copied %d of %d bytes: %w", name, n, t.Size, err))
	}
	return w.done()
}

// due checks that name is the tensor whose data come next.
func (w *Writer) due(name string) (*TensorInfo, error) {
	if w.err != nil {
		return nil, w.err
	}
	switch {
	case w.state == stateMeta:
		return nil, w.fail(fmt.Errorf("tensor %q: data written before WriteHeader", name))
	case w.state == stateClosed:
		return nil, w.fail(fmt.Errorf("tensor %q: data written after Close", name))
	case w.next == len(w.tensors):
		if w.names[name] {
			return nil, w.fail(fmt.Errorf("tensor %q: data written twice", name))
		}
		return nil, w.fail(fmt.Errorf("tensor %q was not added", name))
	}
	t := &w.tensors[w.next]
	if t.Name != name {
		return nil, w.fail(fmt.Errorf("tensor %q: data written out of order (tensor %q is next)", name, t.Name))
	}
	return t, nil
}

// done pads after a tensor's data and moves on to the next.
func (w *Writer) done() error {
	w.pad()
	w.next++
	return w.err
}

// Close writes the header if WriteHeader has not been called (convenient
// for files without tensors), checks that every tensor's data were written,
// and flushes the buffered output. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.state == stateClosed {
		return nil
	}
	if w.state == stateMeta {
		if _, err := w.WriteHeader(); err != nil {
			return err
		}
	}
	if w.next < len(w.tensors) {
		return w.fail(fmt.Errorf("closed before the data of tensor %q (and %d after it) were written", w.tensors[w.next].Name, len(w.tensors)-w.next-1))
	}
	w.state = stateClosed
	if err := w.out.Flush(); err != nil {
		return w.fail(err)
	}
	return nil
}

// Size is the number of bytes written so far (including any still
// buffered).
func (w *Writer) Size() uint64 { return w.off }

// typeOf maps a Go value to its GGUF type, checking arrays of arrays all
// the way down (depth counts enclosing arrays, as in the reader).
func typeOf(v any, depth int) (ValueType, error) {
	switch x := v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		return TypeString, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64:
		if depth >= maxArrayDepth {
			return 0, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
		}
		return TypeArray, nil
	case []any:
		if depth >= maxArrayDepth {
			return 0, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
		}
		for i, e := range x {
			t, err := typeOf(e, depth+1)
			if err != nil {
				return 0, fmt.Errorf("element %d: %w", i, err)
			}
			if t != TypeArray {
				return 0, fmt.Errorf("element %d: []any may only hold arrays (GGUF arrays are homogeneous), not %T", i, e)
			}
		}
		return TypeArray, nil
	case int, uint, []int, []uint:
		return 0, fmt.Errorf("%T has no fixed width: use int32, uint32, int64, ...", v)
	case nil:
		return 0, errors.New("nil value")
	}
	return 0, fmt.Errorf("%T has no GGUF equivalent", v)
}

// value writes the payload of a value already checked by typeOf.
func (w *Writer) value(v any) {
	switch x := v.(type) {
	case uint8:
		w.write([]byte{x})
	case int8:
		w.write([]byte{byte(x)})
	case uint16:
		w.u16(x)
	case int16:
		w.u16(uint16(x))
	case uint32:
		w.u32(x)
	case int32:
		w.u32(uint32(x))
	case float32:
		w.u32(math.Float32bits(x))
	case bool:
		w.write([]byte{b2u(x)})
	case string:
		w.str(x)
	case uint64:
		w.u64(x)
	case int64:
		w.u64(uint64(x))
	case float64:
		w.u64(math.Float64bits(x))
	case []uint8:
		w.arrayHeader(TypeUint8, len(x))
		w.write(x)
	case []int8:
		putArray(w, TypeInt8, x, 1, func(b []byte, v int8) { b[0] = byte(v) })
	case []uint16:
		putArray(w, TypeUint16, x, 2, binary.LittleEndian.PutUint16)
	case []int16:
		putArray(w, TypeInt16, x, 2, func(b []byte, v int16) { binary.LittleEndian.PutUint16(b, uint16(v)) })
	case []uint32:
		putArray(w, TypeUint32, x, 4, binary.LittleEndian.PutUint32)
	case []int32:
		putArray(w, TypeInt32, x, 4, func(b []byte, v int32) { binary.LittleEndian.PutUint32(b, uint32(v)) })
	case []float32:
		putArray(w, TypeFloat32, x, 4, func(b []byte, v float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(v)) })
	case []bool:
		putArray(w, TypeBool, x, 1, func(b []byte, v bool) { b[0] = b2u(v) })
	case []string:
		w.arrayHeader(TypeString, len(x))
		for _, s := range x {
			w.str(s)
		}
	case []uint64:
		putArray(w, TypeUint64, x, 8, binary.LittleEndian.PutUint64)
	case []int64:
		putArray(w, TypeInt64, x, 8, func(b []byte, v int64) { binary.LittleEndian.PutUint64(b, uint64(v)) })
	case []float64:
		putArray(w, TypeFloat64, x, 8, func(b []byte, v float64) { binary.LittleEndian.PutUint64(b, math.Float64bits(v)) })
	case []any:
		w.arrayHeader(TypeArray, len(x))
		for _, e := range x {
			w.value(e) // each element is itself an array: type, count, values
		}
	default:
		panic(fmt.Sprintf("gguf: unchecked value of type %T", v)) // typeOf guards this
	}
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (w *Writer) arrayHeader(t ValueType, n int) {
	w.u32(uint32(t))
	w.u64(uint64(n))
}

// putArray writes a numeric array, encoding it a chunk at a time.
func putArray[T any](w *Writer, t ValueType, xs []T, size int, put func([]byte, T)) {
	w.arrayHeader(t, len(xs))
	const chunk = 4096
	if cap(w.scratch) < chunk*8 {
		w.scratch = make([]byte, chunk*8)
	}
	for len(xs) > 0 {
		n := min(len(xs), chunk)
		b := w.scratch[:n*size]
		for i, v := range xs[:n] {
			put(b[i*size:], v)
		}
		w.write(b)
		xs = xs[n:]
	}
}

func (w *Writer) write(p []byte) {
	if w.err != nil {
		return
	}
	n, err := w.out.Write(p)
	w.off += uint64(n)
	if err != nil {
		w.fail(err)
	}
}

func (w *Writer) u16(v uint16) { w.write(binary.LittleEndian.AppendUint16(w.small(), v)) }
func (w *Writer) u32(v uint32) { w.write(binary.LittleEndian.AppendUint32(w.small(), v)) }
func (w *Writer) u64(v uint64) { w.write(binary.LittleEndian.AppendUint64(w.small(), v)) }

func (w *Writer) small() []byte {
	if w.scratch == nil {
		w.scratch = make([]byte, 0, 64)
	}
	return w.scratch[:0]
}

func (w *Writer) str(s string) {
	w.u64(uint64(len(s)))
	if w.err == nil {
		n, err := w.out.WriteString(s)
		w.off += uint64(n)
		if err != nil {
			w.fail(err)
		}
	}
}

var zeros [256]byte

// pad writes zeros up to the next multiple of the alignment.
func (w *Writer) pad() {
	for n := alignUp(w.off, w.align) - w.off; n > 0 && w.err == nil; {
		k := min(n, uint64(len(zeros)))
		w.write(zeros[:k])
		n -= k
	}
}

// WriteTo writes f back out as a GGUF v3 file: its metadata in order and
// its tensors with their data, laid out afresh by a Writer (so a file
// written by llama.cpp comes back byte for byte). f.KVs may have been
// edited; f.Tensors must still describe f's own data.
func (f *File) WriteTo(out io.Writer) (int64, error) {
	w := NewWriter(out)
	for _, kv := range f.KVs {
		w.AddKV(kv.Key, kv.Value)
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		w.AddTensor(t.Name, t.Dims, t.Type)
	}
	w.WriteHeader()
	for i := range f.Tensors {
		t := &f.Tensors[i]
		w.WriteTensorData(t.Name, f.Data(t))
	}
	err := w.Close()
	return int64(w.Size()), err
}

// WriteFileAtomic creates (or replaces) the file at path with what write
// writes, never leaving a partial file behind: write writes to a temporary
// file in the same directory, which is synced and then renamed over path
// only if write and every file operation succeed. On failure path is left
// as it was and the temporary file is removed. The new file gets mode 0644.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable where directories can be synced.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
