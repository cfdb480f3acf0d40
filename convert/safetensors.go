package convert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/slm-dev/slm/quant"
)

// MaxHeaderSize bounds a safetensors header (the format's own limit is
// 100 MB).
const MaxHeaderSize = 100 << 20

// dtypeSizes is the element size of every safetensors dtype, so that files
// holding other tensors (int64 buffers, fp8 weights) can still be indexed;
// only F32, F16 and BF16 can be converted.
var dtypeSizes = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// STensor is one tensor of a safetensors file.
type STensor struct {
	Name  string
	Dtype string
	Shape []int64 // row-major, outermost first (PyTorch order)
	Begin int64   // byte offset of the data within the data section
	End   int64

	file *SafeTensors
}

// Elems is the number of elements.
func (t *STensor) Elems() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// SafeTensors is an opened safetensors file: its parsed header over the
// open file, from which tensor data are read on demand.
type SafeTensors struct {
	Path     string
	Tensors  []STensor // in order of their data
	Metadata map[string]string

	f       io.ReaderAt
	closer  io.Closer
	dataOff int64 // file offset of the data section
	byName  map[string]int
}

// OpenSafeTensors opens and validates a safetensors file.
func OpenSafeTensors(path string) (*SafeTensors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := statSize(f)
	if err == nil {
		var s *SafeTensors
		if s, err = readSafeTensors(path, f, st); err == nil {
			s.closer = f
			return s, nil
		}
	}
	f.Close()
	return nil, err
}

func statSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// readSafeTensors parses the header of a safetensors file of size bytes.
func readSafeTensors(name string, r io.ReaderAt, size int64) (*SafeTensors, error) {
	var lenBuf [8]byte
	if size < 8 {
		return nil, fmt.Errorf("%s: not a safetensors file: %d bytes, too short for the 8-byte header length", name, size)
	}
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("%s: safetensors header length %d exceeds the limit of %d bytes (not a safetensors file?)", name, n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("%s: safetensors header length %d runs past the end of the file (%d bytes; truncated?)", name, n, size)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, err := ParseSafeTensorsHeader(hdr, size-8-int64(n))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s.Path = name
	s.f = r
	s.dataOff = 8 + int64(n)
	for i := range s.Tensors {
		s.Tensors[i].file = s
	}
	return s, nil
}

// ParseSafeTensorsHeader parses a safetensors JSON header for a data
// section of dataLen bytes and checks every entry: known dtype, sane shape,
// offsets inside the data section, a byte length that matches the shape,
// and no two tensors sharing bytes.
func ParseSafeTensorsHeader(hdr []byte, dataLen int64) (*SafeTensors, error) {
	hdr = bytes.TrimRight(hdr, " ") // the format pads the header with spaces
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, errors.New("safetensors header is not a JSON object")
	}
	if dataLen < 0 {
		return nil, errors.New("negative data length")
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("safetensors header: %w", err)
	}
	if dec.More() {
		return nil, errors.New("safetensors header: trailing data after the JSON object")
	}
	s := &SafeTensors{byName: make(map[string]int, len(raw))}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		v := raw[name]
		if name == "__metadata__" {
			if err := json.Unmarshal(v, &s.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors header: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e struct {
			Dtype   *string  `json:"dtype"`
			Shape   *[]int64 `json:"shape"`
			Offsets *[]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("safetensors header: tensor %q: %w", name, err)
		}
		if e.Dtype == nil || e.Shape == nil || e.Offsets == nil {
			return nil, fmt.Errorf("safetensors header: tensor %q needs dtype, shape and data_offsets", name)
		}
		size, ok := dtypeSizes[*e.Dtype]
		if !ok {
			return nil, fmt.Errorf("safetensors header: tensor %q has unknown dtype %q", name, *e.Dtype)
		}
		if len(*e.Offsets) != 2 {
			return nil, fmt.Errorf("safetensors header: tensor %q: data_offsets must be [begin, end]", name)
		}
		begin, end := (*e.Offsets)[0], (*e.Offsets)[1]
		if begin < 0 || end < begin || end > dataLen {
			return nil, fmt.Errorf("safetensors header: tensor %q: data_offsets [%d, %d] are outside the data section of %d bytes (truncated file?)", name, begin, end, dataLen)
		}
		if len(*e.Shape) > 8 {
			return nil, fmt.Errorf("safetensors header: tensor %q has %d dimensions", name, len(*e.Shape))
		}
		elems := int64(1)
		for _, d := range *e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors header: tensor %q has a negative dimension in shape %v", name, *e.Shape)
			}
			if d != 0 && elems > math.MaxInt64/size/d {
				return nil, fmt.Errorf("safetensors header: tensor %q: shape %v overflows", name, *e.Shape)
			}
			elems *= d
		}
		if elems*size != end-begin {
			return nil, fmt.Errorf("safetensors header: tensor %q: shape %v of %s is %d bytes but data_offsets [%d, %d] hold %d", name, *e.Shape, *e.Dtype, elems*size, begin, end, end-begin)
		}
		s.byName[name] = len(s.Tensors)
		s.Tensors = append(s.Tensors, STensor{Name: name, Dtype: *e.Dtype, Shape: slices.Clone(*e.Shape), Begin: begin, End: end})
	}
	// Sort by data offset and reject tensors that share bytes.
	slices.SortStableFunc(s.Tensors, func(a, b STensor) int {
		if a.Begin != b.Begin {
			return int(min(max(a.Begin-b.Begin, -1), 1))
		}
		return strings.Compare(a.Name, b.Name)
	})
	var prev *STensor
	for i := range s.Tensors {
		t := &s.Tensors[i]
		s.byName[t.Name] = i
		if t.End == t.Begin {
			continue
		}
		if prev != nil && t.Begin < prev.End {
			return nil, fmt.Errorf("safetensors header: tensors %q and %q overlap", prev.Name, t.Name)
		}
		prev = t
	}
	return s, nil
}

// Close closes the file.
func (s *SafeTensors) Close() error {
	if s.closer == nil {
		return nil
	}
	c := s.closer
	s.closer = nil
	return c.Close()
}

// Tensor looks a tensor up by name.
func (s *SafeTensors) Tensor(name string) (*STensor, bool) {
	i, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return &s.Tensors[i], true
}

// Float32s reads the tensor and widens it to float32 (F32, F16 and BF16).
func (t *STensor) Float32s() ([]float32, error) {
	return t.Float32Range(0, t.Elems())
}

// Float32Range reads n elements starting at element start, widened to
// float32.
func (t *STensor) Float32Range(start, n int64) ([]float32, error) {
	size, ok := map[string]int64{"F32": 4, "F16": 2, "BF16": 2}[t.Dtype]
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q has dtype %s (only F32, F16 and BF16 can be converted)", t.file.Path, t.Name, t.Dtype)
	}
	if start < 0 || n < 0 || start > t.Elems() || n > t.Elems()-start {
		return nil, fmt.Errorf("%s: tensor %q: elements [%d, +%d) out of range", t.file.Path, t.Name, start, n)
	}
	if n > math.MaxInt32*4 {
		return nil, fmt.Errorf("%s: tensor %q is too large (%d elements)", t.file.Path, t.Name, n)
	}
	if n == 0 {
		return []float32{}, nil
	}
	raw := make([]byte, n*size)
	if _, err := t.file.f.ReadAt(raw, t.file.dataOff+t.Begin+start*size); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%s: reading tensor %q: %w", t.file.Path, t.Name, err)
	}
	out := make([]float32, n)
	switch t.Dtype {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case "F16":
		for i := range out {
			out[i] = quant.F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = quant.BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	}
	return out, nil
}

// WriteSafeTensors writes tensors (name -> shape and float32 data) as a
// safetensors file in the given dtype (F32, F16 or BF16), in name order.
// The converter's tests use it to make checkpoints; it is exported for
// tools that want to do the same.
func WriteSafeTensors(w io.Writer, tensors map[string]SafeTensorData, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	slices.Sort(names)
	hdr := map[string]any{}
	if metadata != nil {
		hdr["__metadata__"] = metadata
	}
	var off int64
	for _, n := range names {
		t := tensors[n]
		size, ok := map[string]int64{"F32": 4, "F16": 2, "BF16": 2}[t.Dtype]
		if !ok {
			return fmt.Errorf("tensor %q: dtype %q cannot be written", n, t.Dtype)
		}
		elems := int64(1)
		for _, d := range t.Shape {
			elems *= d
		}
		if elems != int64(len(t.Data)) {
			return fmt.Errorf("tensor %q: shape %v holds %d elements, data has %d", n, t.Shape, elems, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		hdr[n] = map[string]any{"dtype": t.Dtype, "shape": shape, "data_offsets": []int64{off, off + elems*size}}
		off += elems * size
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	for _, n := range names {
		t := tensors[n]
		var b []byte
		for _, v := range t.Data {
			switch t.Dtype {
			case "F32":
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			case "F16":
				b = binary.LittleEndian.AppendUint16(b, quant.F32ToF16(v))
			case "BF16":
				b = binary.LittleEndian.AppendUint16(b, quant.F32ToBF16(v))
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// SafeTensorData is one tensor for WriteSafeTensors.
type SafeTensorData struct {
	Dtype string
	Shape []int64
	Data  []float32
}
