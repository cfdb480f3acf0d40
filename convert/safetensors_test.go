package convert

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// stFile assembles a safetensors file from a header and a data section.
func stFile(header string, data int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

func TestSafeTensorsRoundTrip(t *testing.T) {
	in := map[string]SafeTensorData{
		"a": {Dtype: "F32", Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 4, 5, -6}},
		"b": {Dtype: "F16", Shape: []int64{3}, Data: []float32{0.5, -1, 65504}},
		"c": {Dtype: "BF16", Shape: []int64{2}, Data: []float32{1.5, -2}},
		"d": {Dtype: "F32", Shape: []int64{0, 4}, Data: nil},
	}
	var buf bytes.Buffer
	if err := WriteSafeTensors(&buf, in, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	s, err := readSafeTensors("rt", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Metadata["format"] != "pt" || len(s.Tensors) != 4 {
		t.Fatalf("metadata %v, %d tensors", s.Metadata, len(s.Tensors))
	}
	for name, want := range in {
		st, ok := s.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		got, err := st.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want.Data) {
			t.Fatalf("%s: %d values, want %d", name, len(got), len(want.Data))
		}
		for i := range got {
			if got[i] != want.Data[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want.Data[i])
			}
		}
	}
}

func TestSafeTensorsHostile(t *testing.T) {
	big := func(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"short", []byte{1, 2, 3}, "too short"},
		{"huge header", big(1 << 40), "exceeds the limit"},
		{"header past end", append(big(100), "{}"...), "runs past the end"},
		{"not json", stFile("hello", 0), "not a JSON object"},
		{"array", stFile("[1,2]", 0), "not a JSON object"},
		{"bad json", stFile(`{"a":`, 0), "safetensors header"},
		{"trailing", stFile(`{} {}`, 0), "trailing data"},
		{"missing fields", stFile(`{"a":{"dtype":"F32"}}`, 0), "needs dtype, shape and data_offsets"},
		{"unknown dtype", stFile(`{"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}`, 4), "unknown dtype"},
		{"negative dim", stFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "negative dimension"},
		{"overflow", stFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4), "overflows"},
		{"size mismatch", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "hold 4"},
		{"past data", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "outside the data section"},
		{"reversed", stFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, 8), "outside the data section"},
		{"negative offset", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, 8), "outside the data section"},
		{"offsets arity", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 8), "[begin, end]"},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlap"},
		{"bad metadata", stFile(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
		{"shape type", stFile(`{"a":{"dtype":"F32","shape":"x","data_offsets":[0,4]}}`, 4), "tensor \"a\""},
		{"offset float", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}`, 8), "tensor \"a\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readSafeTensors("x.safetensors", bytes.NewReader(tc.file), int64(len(tc.file)))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x.safetensors") {
				t.Errorf("error %q does not name the file and %q", err, tc.want)
			}
		})
	}
}

func TestSafeTensorsUnsupportedDtype(t *testing.T) {
	f := stFile(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, 8)
	s, err := readSafeTensors("x", bytes.NewReader(f), int64(len(f)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tensors[0].Float32s(); err == nil || !strings.Contains(err.Error(), "I64") {
		t.Errorf("I64 tensor read as floats: %v", err)
	}
}

// FuzzSafeTensorsHeader: no header crashes the parser, and whatever it
// accepts has every tensor inside the data section with a size matching
// its shape.
func FuzzSafeTensorsHeader(f *testing.F) {
	f.Add([]byte(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), int64(8))
	f.Add([]byte(`{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[],"data_offsets":[8,10]}}`), int64(10))
	f.Add([]byte(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}  `), int64(0))
	f.Fuzz(func(t *testing.T, hdr []byte, dataLen int64) {
		s, err := ParseSafeTensorsHeader(hdr, dataLen)
		if err != nil {
			return
		}
		for _, ts := range s.Tensors {
			if ts.Begin < 0 || ts.End < ts.Begin || ts.End > dataLen {
				t.Fatalf("tensor %q at [%d, %d) outside %d bytes", ts.Name, ts.Begin, ts.End, dataLen)
			}
			n := ts.Elems()
			if n < 0 || n > math.MaxInt64/8 || n*dtypeSizes[ts.Dtype] != ts.End-ts.Begin {
				t.Fatalf("tensor %q: %d elements of %s in %d bytes", ts.Name, n, ts.Dtype, ts.End-ts.Begin)
			}
		}
	})
}
