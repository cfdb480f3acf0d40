// Package gguf reads and writes GGUF model files (versions 2 and 3).
//
// A File is a parsed header over the file's bytes, which are memory-mapped
// where the platform allows (zero copy: tensor data are views into the map).
// Parsing trusts nothing: every count, length and offset is checked against
// the bytes that are actually there before anything is allocated, so a
// truncated or hostile file yields an error naming the file and the problem.
package gguf

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/slm-dev/slm/quant"
)

// Magic is "GGUF" read as a little-endian uint32.
const Magic = 0x46554747

// DefaultAlignment applies when general.alignment is absent.
const DefaultAlignment = 32

// MaxDims is ggml's limit on tensor rank.
const MaxDims = 4

// ValueType tags a metadata value in the file.
type ValueType uint32

// Metadata value types, numbered as in the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if uint64(t) < uint64(len(valueTypeNames)) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// KV is one metadata entry. Value holds the Go type matching its GGUF type:
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64, float64, or for arrays a typed slice of those ([]string, []int32, …);
// arrays of arrays are []any.
type KV struct {
	Key   string
	Value any
}

// TensorInfo describes one tensor. Dims[0] is the row length (ggml order).
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   quant.Type
	Offset uint64 // from the start of the data section
	Size   uint64 // encoded bytes
}

// Elems is the number of elements in the tensor.
func (t *TensorInfo) Elems() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Rows is the number of rows: the product of all dims but the first.
func (t *TensorInfo) Rows() uint64 {
	n := uint64(1)
	for _, d := range t.Dims[min(1, len(t.Dims)):] {
		n *= d
	}
	return n
}

// File is a parsed GGUF file.
type File struct {
	Name       string // path or label used in error messages
	Version    uint32
	KVs        []KV
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset uint64 // start of the tensor data section in the file

	data     []byte // the whole file
	kv       map[string]int
	tensor   map[string]int
	close    func() error
	resident bool // data read into huge-page memory (OpenResident)
}

// Close releases the file's mapping. Tensor data must not be used afterwards.
func (f *File) Close() error {
	if f.close == nil {
		return nil
	}
	c := f.close
	f.close = nil
	f.data = nil
	return c()
}

// Bytes is the whole file's contents.
func (f *File) Bytes() []byte { return f.data }

// Tensor looks a tensor up by name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensor[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// Data is the encoded bytes of t: a view into the file, not a copy.
func (f *File) Data(t *TensorInfo) []byte {
	start := f.DataOffset + t.Offset
	return f.data[start : start+t.Size : start+t.Size]
}

// Get returns a metadata value.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.kv[key]
	if !ok {
		return nil, false
	}
	return f.KVs[i].Value, true
}

// String returns a string value.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Uint returns a non-negative integer value of any integer type.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8, int16, int32, int64:
		n, _ := f.Int(key)
		if n >= 0 {
			return uint64(n), true
		}
	}
	return 0, false
}

// Int returns an integer value of any integer type that fits an int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= 1<<63-1 {
			return int64(x), true
		}
	}
	return 0, false
}

// Float returns a floating-point (or integer) value.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if n, ok := f.Int(key); ok {
		return float64(n), true
	}
	return 0, false
}

// Bool returns a boolean value.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Get(key)
	b, ok := v.(bool)
	return b, ok
}

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Get(key)
	s, ok := v.([]string)
	return s, ok
}

// Float32s returns an array of float32 values.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Get(key)
	s, ok := v.([]float32)
	return s, ok
}

// Int32s returns an array of integers of any integer type as int32s
// (values that do not fit make it fail).
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Get(key)
	return Int32s(v)
}

// Int32s converts a metadata array of any integer type to int32s; it fails
// when v is not an integer array or a value does not fit.
func Int32s(v any) ([]int32, bool) {
	switch x := v.(type) {
	case []int32:
		return x, true
	case []uint32:
		return convertInts[uint32](x)
	case []int64:
		return convertInts[int64](x)
	case []uint64:
		return convertInts[uint64](x)
	case []int16:
		return convertInts[int16](x)
	case []uint16:
		return convertInts[uint16](x)
	case []int8:
		return convertInts[int8](x)
	case []uint8:
		return convertInts[uint8](x)
	}
	return nil, false
}

func convertInts[T int8 | uint8 | int16 | uint16 | uint32 | int64 | uint64](x []T) ([]int32, bool) {
	out := make([]int32, len(x))
	for i, v := range x {
		if int64(v) != int64(int32(v)) || (v > 0 && int64(v) < 0) {
			return nil, false
		}
		out[i] = int32(v)
	}
	return out, true
}

// Arch is general.architecture, or "" when absent.
func (f *File) Arch() string {
	s, _ := f.String("general.architecture")
	return s
}

// MaxNameLen is the longest tensor name ggml accepts (GGML_MAX_NAME - 1).
const MaxNameLen = 63

// maxElems bounds a tensor's element count so it fits ggml's int64 sizes.
const maxElems = 1<<63 - 1

// tensorSize checks a tensor's rank, type and shape and returns its encoded
// size in bytes. Reader and Writer share it so that whatever one accepts the
// other does too.
func tensorSize(dims []uint64, typ quant.Type) (uint64, error) {
	if len(dims) > MaxDims {
		return 0, fmt.Errorf("%d dimensions (at most %d)", len(dims), MaxDims)
	}
	if !typ.Known() {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(typ))
	}
	n, empty := uint64(1), false
	for _, d := range dims {
		if d == 0 {
			empty = true
			continue
		}
		if d > maxElems/n {
			return 0, fmt.Errorf("dimensions %v overflow (more than 2^63 elements)", dims)
		}
		n *= d
	}
	if empty {
		n = 0
	}
	row := uint64(1)
	if len(dims) > 0 {
		row = dims[0]
	}
	be, bb := uint64(typ.BlockElems()), uint64(typ.BlockBytes())
	if row%be != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of %s's block size %d", row, typ, be)
	}
	if n/be > math.MaxUint64/bb {
		return 0, fmt.Errorf("dimensions %v overflow (%s data would exceed 2^64 bytes)", dims, typ)
	}
	return n / be * bb, nil
}

// checkName applies ggml's limit on tensor names.
func checkName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("name of %d bytes is too long (ggml allows at most %d)", len(name), MaxNameLen)
	}
	return nil
}

// checkTensors validates types, sizes, bounds and overlap of the tensor table.
func (f *File) checkTensors() error {
	dataLen := uint64(len(f.data)) - f.DataOffset
	order := make([]int, len(f.Tensors))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		order[i] = i
		size, err := tensorSize(t.Dims, t.Type)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		t.Size = size
		if t.Offset%f.Alignment != 0 {
			return fmt.Errorf("tensor %q: offset %d is not aligned to %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return fmt.Errorf("tensor %q: data [%d, +%d) runs past the end of the file (data section holds %d bytes; truncated file?)", t.Name, t.Offset, t.Size, dataLen)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(f.Tensors[a].Offset, f.Tensors[b].Offset) })
	// Sweep in offset order, remembering the non-empty tensor that reaches
	// furthest: empty tensors may sit anywhere, even inside another tensor.
	var last *TensorInfo
	for _, i := range order {
		t := &f.Tensors[i]
		if t.Size == 0 {
			continue
		}
		if last != nil && t.Offset < last.Offset+last.Size {
			return fmt.Errorf("tensors %q and %q overlap", last.Name, t.Name)
		}
		if last == nil || t.Offset+t.Size > last.Offset+last.Size {
			last = t
		}
	}
	return nil
}
