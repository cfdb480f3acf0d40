package quant_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
)

const testdata = "../testdata"

type refFile struct {
	Model struct {
		File string `json:"file"`
	} `json:"model"`
	DequantRows []struct {
		Tensor string        `json:"tensor"`
		Type   string        `json:"type"`
		Row    int           `json:"row"`
		Values []json.Number `json:"values"`
	} `json:"dequant_rows"`
}

func loadRef(t *testing.T, path string) *refFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r refFile
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &r
}

// tensorRow returns the encoded bytes of row `row` of tensor name.
func tensorRow(t *testing.T, f *gguf.File, name string, row int) (*gguf.TensorInfo, []byte) {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("tensor %q not found", name)
	}
	rb, err := ti.Type.RowBytes(int(ti.Dims[0]))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	data := f.Data(ti)
	if (row+1)*rb > len(data) {
		t.Fatalf("%s: row %d beyond %d data bytes", name, row, len(data))
	}
	return ti, data[row*rb : (row+1)*rb]
}

// sameBits compares float32 values bit for bit (NaN-safe: NaNs are equal
// only if their bits are).
func sameBits(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

// TestDequantizeReference checks every dequant_rows entry of the llama.cpp
// reference files bit for bit.
func TestDequantizeReference(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "reference", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference files (%v)", err)
	}
	seen := map[quant.Type]int{}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ref := loadRef(t, path)
			f, err := gguf.Open(filepath.Join(testdata, "models", ref.Model.File))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, dr := range ref.DequantRows {
				typ, ok := quant.ParseType(dr.Type)
				if !ok {
					t.Fatalf("%s: unknown type %q", dr.Tensor, dr.Type)
				}
				ti, src := tensorRow(t, f, dr.Tensor, dr.Row)
				if ti.Type != typ {
					t.Fatalf("%s: file type %v, reference says %v", dr.Tensor, ti.Type, typ)
				}
				if int(ti.Dims[0]) != len(dr.Values) {
					t.Fatalf("%s: row length %d, reference has %d values", dr.Tensor, ti.Dims[0], len(dr.Values))
				}
				got := make([]float32, len(dr.Values))
				if err := quant.Dequantize(typ, src, got); err != nil {
					t.Fatalf("%s: %v", dr.Tensor, err)
				}
				bad := 0
				for i, s := range dr.Values {
					w, err := strconv.ParseFloat(string(s), 32)
					if err != nil {
						t.Fatalf("%s: value %d %q: %v", dr.Tensor, i, s, err)
					}
					if want := float32(w); !sameBits(got[i], want) {
						if bad++; bad <= 5 {
							t.Errorf("%s row %d (%v) [%d]: got %v (%#08x), want %v (%#08x)",
								dr.Tensor, dr.Row, typ, i, got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
						}
					}
				}
				if bad > 0 {
					t.Errorf("%s row %d (%v): %d of %d values differ", dr.Tensor, dr.Row, typ, bad, len(got))
				}
				seen[typ]++
			}
		})
	}
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q4_0, quant.Q4_1, quant.Q5_0, quant.Q5_1,
		quant.Q8_0, quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K} {
		if seen[typ] == 0 {
			t.Errorf("no reference rows of type %v were checked", typ)
		}
	}
	t.Logf("rows checked per type: %v", seen)
}

// TestQuantizeMatchesLlamaQuantize re-encodes the F32 weights of each base
// model with Quantize and compares the bytes with the files llama-quantize
// (--pure, no importance matrix) and the generator (F16) wrote.
func TestQuantizeMatchesLlamaQuantize(t *testing.T) {
	variants := map[string]quant.Type{
		"f16": quant.F16, "q4_0": quant.Q4_0, "q4_1": quant.Q4_1,
		"q5_0": quant.Q5_0, "q5_1": quant.Q5_1, "q8_0": quant.Q8_0,
	}
	for _, base := range []string{"llama", "qwen2", "gpt2"} {
		fp, err := gguf.Open(filepath.Join(testdata, "models", base+"-f32.gguf"))
		if err != nil {
			t.Fatal(err)
		}
		for v, typ := range variants {
			t.Run(base+"-"+v, func(t *testing.T) {
				fq, err := gguf.Open(filepath.Join(testdata, "models", base+"-"+v+".gguf"))
				if err != nil {
					t.Fatal(err)
				}
				defer fq.Close()
				n := 0
				for i := range fq.Tensors {
					tq := &fq.Tensors[i]
					if tq.Type != typ {
						continue
					}
					tf, ok := fp.Tensor(tq.Name)
					if !ok || tf.Type != quant.F32 {
						t.Fatalf("%s: no F32 source", tq.Name)
					}
					raw := fp.Data(tf)
					src := make([]float32, len(raw)/4)
					if err := quant.Dequantize(quant.F32, raw, src); err != nil {
						t.Fatal(err)
					}
					want := fq.Data(tq)
					got := make([]byte, len(want))
					if err := quant.Quantize(typ, src, got); err != nil {
						t.Fatalf("%s: %v", tq.Name, err)
					}
					for j := range got {
						if got[j] != want[j] {
							t.Errorf("%s (%v): first difference at byte %d of %d: got %#02x want %#02x",
								tq.Name, typ, j, len(got), got[j], want[j])
							break
						}
					}
					n++
				}
				if n == 0 {
					t.Fatalf("no %v tensors", typ)
				}
			})
		}
		fp.Close()
	}
}
