// Package imatrix computes and stores importance matrices: for each weight
// matrix of a model, the mean of the squared activations that enter it,
// column by column, over a calibration text. Quantizers weight each column's
// rounding error by it (slm quantize --imatrix, llama-quantize --imatrix).
//
// Files use llama.cpp's legacy binary format (imatrix.dat), the one
// llama-imatrix wrote and llama-quantize read at llama.cpp c392e5094; all
// integers are little-endian int32:
//
//	n_entries
//	n_entries × { len, name[len], ncall, nval, float32 values[nval] }
//	last_call                  (optional trailer: chunks processed)
//	len, dataset[len]          (the calibration file's name)
//
// values[i] is mean(x_i²)·ncall, where ncall counts the matrix
// multiplications the statistics came from; readers divide by ncall.
package imatrix

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/slm-dev/slm/gguf"
)

// Entry is one matrix's statistics.
type Entry struct {
	Name   string
	NCall  int32     // matrix multiplications accumulated
	Values []float32 // mean of x² per column (already divided by NCall)
}

// Matrix is a whole importance matrix.
type Matrix struct {
	Entries []Entry
	Chunks  int32  // last_call: chunks processed
	Dataset string // calibration text file
}

// Map returns the values by tensor name, as quantize.Options.Imatrix wants.
func (m *Matrix) Map() map[string][]float32 {
	out := make(map[string][]float32, len(m.Entries))
	for _, e := range m.Entries {
		out[e.Name] = e.Values
	}
	return out
}

// maxLen bounds names and value counts read from a file.
const maxLen = 1 << 28

// Read parses a legacy imatrix file. Values come back divided by ncall, as
// llama-quantize's load_imatrix leaves them.
func Read(r io.Reader) (*Matrix, error) {
	br := bufio.NewReader(r)
	var n int32
	if err := binary.Read(br, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("not an imatrix file: %w", err)
	}
	if n < 1 {
		return nil, fmt.Errorf("imatrix holds %d entries", n)
	}
	m := &Matrix{}
	i32 := func(what string) (int32, error) {
		var v int32
		if err := binary.Read(br, binary.LittleEndian, &v); err != nil {
			return 0, fmt.Errorf("reading %s: %w", what, noEOF(err))
		}
		return v, nil
	}
	for i := range int(n) {
		l, err := i32("name length")
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if l < 0 || l > 4096 {
			return nil, fmt.Errorf("entry %d: bad name length %d", i, l)
		}
		name := make([]byte, l)
		if _, err := io.ReadFull(br, name); err != nil {
			return nil, fmt.Errorf("entry %d: reading name: %w", i, noEOF(err))
		}
		ncall, err := i32("ncall")
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i, name, err)
		}
		nval, err := i32("value count")
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i, name, err)
		}
		if nval < 1 || nval > maxLen {
			return nil, fmt.Errorf("entry %d (%s): bad value count %d", i, name, nval)
		}
		vals := make([]float32, nval)
		if err := binary.Read(br, binary.LittleEndian, vals); err != nil {
			return nil, fmt.Errorf("entry %d (%s): reading %d values: %w", i, name, nval, noEOF(err))
		}
		for j, v := range vals {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("entry %s: value %d is %v", name, j, v)
			}
			if ncall > 0 {
				vals[j] = v / float32(ncall)
			}
		}
		m.Entries = append(m.Entries, Entry{Name: string(name), NCall: ncall, Values: vals})
	}
	if _, err := br.Peek(1); err == nil {
		if m.Chunks, err = i32("chunk count"); err != nil {
			return nil, err
		}
		l, err := i32("dataset name length")
		if err != nil {
			return nil, err
		}
		if l < 0 || l > 1<<16 {
			return nil, fmt.Errorf("bad dataset name length %d", l)
		}
		ds := make([]byte, l)
		if _, err := io.ReadFull(br, ds); err != nil {
			return nil, fmt.Errorf("reading dataset name: %w", noEOF(err))
		}
		m.Dataset = string(ds)
	}
	return m, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadFile reads an importance matrix file and returns its values by tensor
// name. A GGUF file (the format later llama.cpp versions write) is refused
// with a clear message.
func ReadFile(path string) (map[string][]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("importance matrix: %w", err)
	}
	if bytes.HasPrefix(b, []byte("GGUF")) {
		return nil, fmt.Errorf("%s: a GGUF importance matrix (llama.cpp after mid-2025); slm reads the legacy .dat format (llama-imatrix --output-format dat, or slm imatrix)", path)
	}
	m, err := Read(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m.Map(), nil
}

// Write stores m in the legacy format. Values are multiplied back by ncall,
// as llama-imatrix stores them.
func (m *Matrix) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	put := func(v int32) { binary.Write(bw, binary.LittleEndian, v) }
	put(int32(len(m.Entries)))
	for _, e := range m.Entries {
		put(int32(len(e.Name)))
		bw.WriteString(e.Name)
		put(e.NCall)
		put(int32(len(e.Values)))
		tmp := make([]float32, len(e.Values))
		for i, v := range e.Values {
			tmp[i] = v * float32(e.NCall)
		}
		binary.Write(bw, binary.LittleEndian, tmp)
	}
	put(m.Chunks)
	put(int32(len(m.Dataset)))
	bw.WriteString(m.Dataset)
	return bw.Flush()
}

// WriteFile stores m atomically at path.
func (m *Matrix) WriteFile(path string) error {
	return gguf.WriteFileAtomic(path, m.Write)
}

// Names lists the entries' names, sorted.
func (m *Matrix) Names() []string {
	var s []string
	for _, e := range m.Entries {
		s = append(s, e.Name)
	}
	slices.Sort(s)
	return s
}
