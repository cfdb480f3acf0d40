package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"

	"github.com/slm-dev/slm/quant"
)

// Parse parses a GGUF file held in memory. name labels errors. The File
// keeps data; tensor views alias it.
func Parse(name string, data []byte) (*File, error) {
	f, err := parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", name, err)
	}
	return f, nil
}

// Open maps (or, where mapping is unavailable, reads) the file at path and
// parses it.
func Open(path string) (*File, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	f, err := Parse(path, data)
	if err != nil {
		release()
		return nil, err
	}
	f.close = release
	return f, nil
}

// openRegular opens path for reading and returns its size; directories,
// devices and pipes are refused.
func openRegular(path string) (*os.File, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		fh.Close()
		return nil, 0, errors.New("not a regular file")
	}
	return fh, st.Size(), nil
}

// readAll is the fallback when the file cannot be mapped.
func readAll(path string) ([]byte, func() error, error) {
	fh, size, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to read into memory", size)
	}
	buf := make([]byte, size)
	if n, err := fh.ReadAt(buf, 0); err != nil {
		return nil, nil, fmt.Errorf("read %d of %d bytes: %w", n, size, err)
	}
	return buf, func() error { return nil }, nil
}

// errTruncated reports a read past the end of the file.
var errTruncated = errors.New("unexpected end of file (truncated?)")

// reader decodes little-endian values from a byte slice, remembering the
// first error so the parse reads straight through.
type reader struct {
	b   []byte
	off uint64
}

func (r *reader) left() uint64 { return uint64(len(r.b)) - r.off }

func (r *reader) take(n uint64) ([]byte, error) {
	if n > r.left() {
		return nil, fmt.Errorf("at byte %d: need %d bytes, %d left: %w", r.off, n, r.left(), errTruncated)
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) u8() (uint8, error) {
	b, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16() (uint16, error) {
	b, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *reader) u32() (uint32, error) {
	b, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64() (uint64, error) {
	b, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *reader) str() (string, error) {
	b, err := r.strBytes()
	return string(b), err
}

// strBytes reads a string without copying it.
func (r *reader) strBytes() ([]byte, error) {
	n, err := r.u64()
	if err != nil {
		return nil, err
	}
	b, err := r.take(n)
	if err != nil {
		return nil, fmt.Errorf("string of %d bytes: %w", n, err)
	}
	return b, nil
}

// elemSize is the encoded size of a scalar value type (strings: the minimum, 8).
func elemSize(t ValueType) (uint64, bool) {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1, true
	case TypeUint16, TypeInt16:
		return 2, true
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4, true
	case TypeUint64, TypeInt64, TypeFloat64, TypeString:
		return 8, true
	case TypeArray:
		return 12, true
	}
	return 0, false
}

func (r *reader) scalar(t ValueType) (any, error) {
	switch t {
	case TypeUint8:
		return r.u8()
	case TypeInt8:
		v, err := r.u8()
		return int8(v), err
	case TypeUint16:
		return r.u16()
	case TypeInt16:
		v, err := r.u16()
		return int16(v), err
	case TypeUint32:
		return r.u32()
	case TypeInt32:
		v, err := r.u32()
		return int32(v), err
	case TypeFloat32:
		v, err := r.u32()
		return math.Float32frombits(v), err
	case TypeBool:
		v, err := r.u8()
		if err == nil && v > 1 {
			return nil, fmt.Errorf("bool value %d is neither 0 nor 1", v)
		}
		return v == 1, err
	case TypeString:
		return r.str()
	case TypeUint64:
		return r.u64()
	case TypeInt64:
		v, err := r.u64()
		return int64(v), err
	case TypeFloat64:
		v, err := r.u64()
		return math.Float64frombits(v), err
	case TypeArray:
		return r.array(0)
	}
	return nil, fmt.Errorf("unknown value type %d", t)
}

// maxArrayDepth bounds nesting so a hostile file cannot recurse deeply.
const maxArrayDepth = 4

func (r *reader) array(depth int) (any, error) {
	if depth >= maxArrayDepth {
		return nil, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	et, err := r.u32()
	if err != nil {
		return nil, err
	}
	n, err := r.u64()
	if err != nil {
		return nil, err
	}
	size, ok := elemSize(ValueType(et))
	if !ok {
		return nil, fmt.Errorf("array of unknown value type %d", et)
	}
	if n > r.left()/size {
		return nil, fmt.Errorf("array of %d %s elements needs at least %d bytes each, %d left: %w", n, ValueType(et), size, r.left(), errTruncated)
	}
	switch ValueType(et) {
	case TypeUint8:
		return readN(r, n, (*reader).u8)
	case TypeInt8:
		return readN(r, n, func(r *reader) (int8, error) { v, err := r.u8(); return int8(v), err })
	case TypeUint16:
		return readN(r, n, (*reader).u16)
	case TypeInt16:
		return readN(r, n, func(r *reader) (int16, error) { v, err := r.u16(); return int16(v), err })
	case TypeUint32:
		return readN(r, n, (*reader).u32)
	case TypeInt32:
		return readN(r, n, func(r *reader) (int32, error) { v, err := r.u32(); return int32(v), err })
	case TypeFloat32:
		return readN(r, n, func(r *reader) (float32, error) { v, err := r.u32(); return math.Float32frombits(v), err })
	case TypeBool:
		return readN(r, n, func(r *reader) (bool, error) {
			v, err := r.u8()
			if err == nil && v > 1 {
				return false, fmt.Errorf("bool value %d is neither 0 nor 1", v)
			}
			return v == 1, err
		})
	case TypeString:
		return r.strs(n)
	case TypeUint64:
		return readN(r, n, (*reader).u64)
	case TypeInt64:
		return readN(r, n, func(r *reader) (int64, error) { v, err := r.u64(); return int64(v), err })
	case TypeFloat64:
		return readN(r, n, func(r *reader) (float64, error) { v, err := r.u64(); return math.Float64frombits(v), err })
	default: // TypeArray
		return readN(r, n, func(r *reader) (any, error) { return r.array(depth + 1) })
	}
}

// strs reads n strings. They share one copy of their stretch of the file,
// which takes one allocation instead of one per string (vocabularies hold
// tens of thousands).
func (r *reader) strs(n uint64) ([]string, error) {
	start := r.off
	for i := uint64(0); i < n; i++ {
		if _, err := r.strBytes(); err != nil {
			return nil, fmt.Errorf("array element %d: %w", i, err)
		}
	}
	all := string(r.b[start:r.off])
	out := make([]string, n)
	off := uint64(0)
	for i := range out {
		l := binary.LittleEndian.Uint64(r.b[start+off:])
		off += 8
		out[i] = all[off : off+l]
		off += l
	}
	return out, nil
}

func readN[T any](r *reader, n uint64, read func(*reader) (T, error)) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		v, err := read(r)
		if err != nil {
			return nil, fmt.Errorf("array element %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

func parse(name string, data []byte) (*File, error) {
	r := &reader{b: data}
	magic, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("not a GGUF file: %w", err)
	}
	if magic != Magic {
		return nil, fmt.Errorf("not a GGUF file: bad magic %q", data[:4])
	}
	f := &File{Name: name, data: data, Alignment: DefaultAlignment}
	if f.Version, err = r.u32(); err != nil {
		return nil, fmt.Errorf("header: version: %w", err)
	}
	if f.Version != 2 && f.Version != 3 {
		if v := bits.ReverseBytes32(f.Version); v >= 1 && v <= 3 {
			return nil, fmt.Errorf("unsupported GGUF version %#x (a big-endian file? only little-endian versions 2 and 3 are supported)", f.Version)
		}
		return nil, fmt.Errorf("unsupported GGUF version %d (2 and 3 are supported)", f.Version)
	}
	nTensors, err := r.u64()
	if err != nil {
		return nil, fmt.Errorf("header: tensor count: %w", err)
	}
	nKV, err := r.u64()
	if err != nil {
		return nil, fmt.Errorf("header: metadata count: %w", err)
	}
	// Each KV takes at least 8 (key length) + 4 (type) + 1 bytes; each
	// tensor info at least 8 + 4 + 4 + 8. Checking before allocating keeps a
	// hostile count from reserving gigabytes, and capping the initial
	// capacities keeps a merely large one from reserving several times the
	// file's size before the entries are actually there.
	if nKV > r.left()/13 {
		return nil, fmt.Errorf("metadata count %d cannot fit in the %d bytes left: %w", nKV, r.left(), errTruncated)
	}
	if nTensors > r.left()/24 {
		return nil, fmt.Errorf("tensor count %d cannot fit in the %d bytes left: %w", nTensors, r.left(), errTruncated)
	}
	const maxHint = 1024
	f.KVs = make([]KV, 0, min(nKV, maxHint))
	f.kv = make(map[string]int, min(nKV, maxHint))
	for i := uint64(0); i < nKV; i++ {
		key, err := r.str()
		if err != nil {
			return nil, fmt.Errorf("metadata %d: key: %w", i, err)
		}
		t, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := r.scalar(ValueType(t))
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		if _, dup := f.kv[key]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice", key)
		}
		f.kv[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	if v, ok := f.Get(alignmentKey); ok {
		a, err := checkAlignment(v)
		if err != nil {
			return nil, err
		}
		f.Alignment = a
	}
	f.Tensors = make([]TensorInfo, 0, min(nTensors, maxHint))
	f.tensor = make(map[string]int, min(nTensors, maxHint))
	for i := uint64(0); i < nTensors; i++ {
		t, err := r.tensorInfo()
		if err != nil {
			if t.Name == "" {
				return nil, fmt.Errorf("tensor %d: %w", i, err)
			}
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if _, dup := f.tensor[t.Name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		f.tensor[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(r.off, f.Alignment)
	if f.DataOffset > uint64(len(data)) {
		if nTensors != 0 {
			return nil, fmt.Errorf("data section starts at %d, past the end of the %d-byte file: %w", f.DataOffset, len(data), errTruncated)
		}
		// A file without tensors needs no padding after its header.
		f.DataOffset = uint64(len(data))
	}
	if err := f.checkTensors(); err != nil {
		return nil, err
	}
	return f, nil
}

// tensorInfo reads one entry of the tensor table. On error the returned
// TensorInfo holds the name if that was read.
func (r *reader) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = r.str(); err != nil {
		return t, fmt.Errorf("name: %w", err)
	}
	if err := checkName(t.Name); err != nil {
		return TensorInfo{}, err
	}
	nd, err := r.u32()
	if err != nil {
		return t, fmt.Errorf("rank: %w", err)
	}
	if nd > MaxDims {
		return t, fmt.Errorf("%d dimensions (at most %d)", nd, MaxDims)
	}
	t.Dims = make([]uint64, nd)
	for d := range t.Dims {
		if t.Dims[d], err = r.u64(); err != nil {
			return t, fmt.Errorf("dimension %d: %w", d, err)
		}
	}
	typ, err := r.u32()
	if err != nil {
		return t, fmt.Errorf("type: %w", err)
	}
	t.Type = quant.Type(typ)
	if t.Offset, err = r.u64(); err != nil {
		return t, fmt.Errorf("offset: %w", err)
	}
	return t, nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// alignmentKey is the metadata key that overrides DefaultAlignment.
const alignmentKey = "general.alignment"

// checkAlignment validates a general.alignment value.
func checkAlignment(v any) (uint64, error) {
	a, ok := v.(uint32)
	if !ok {
		return 0, fmt.Errorf("%s must be a uint32, not %T", alignmentKey, v)
	}
	if a == 0 || a&(a-1) != 0 {
		return 0, fmt.Errorf("%s %d is not a power of two", alignmentKey, a)
	}
	return uint64(a), nil
}
