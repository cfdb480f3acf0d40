package model

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/quant"
)

// Bind fills the struct that dst points to with the file's tensors, led by
// struct tags in the manner of Ollama's model definitions:
//
//	type Layer struct {
//		Norm []float32      `gguf:"blk.%d.attn_norm.weight" shape:"embd"`
//		Wq   *kernel.Matrix `gguf:"blk.%d.attn_q.weight"    shape:"embd,q"`
//		Bq   []float32      `gguf:"blk.%d.attn_q.bias,optional" shape:"q"`
//	}
//	type Weights struct {
//		TokEmbd *kernel.Matrix `gguf:"token_embd.weight" shape:"embd,vocab"`
//		Layers  []Layer        // one per block; %d in the tags is the block index
//	}
//
// A *kernel.Matrix field is bound zero-copy to a 2-D tensor; a []float32
// field gets a dequantized copy of a 1-D tensor; a slice of structs gets
// NLayer elements. The shape tag lists the expected GGUF dims in ggml order
// (row length first) as symbols of the config:
//
//	embd = NEmbd, vocab = NVocab, ff = NFF, 2ff = 2·NFF, ctx = NCtxTrain,
//	q = NHead·HeadDim, kv = NHeadKV·HeadDim, qkv = q + 2·kv, rot/2 = RopeDims/2,
//	head = HeadDim
//
// A missing tensor (unless tagged optional), a shape that differs from the
// config, or an unsupported type is an error naming the tensor.
func Bind(f *gguf.File, c *Config, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("model.Bind: want a pointer to a struct, have %T", dst)
	}
	b := &binder{f: f, sym: symbols(c), nLayer: c.NLayer}
	return b.bindStruct(v.Elem(), -1)
}

func symbols(c *Config) map[string]int {
	q, kv := c.QDim(), c.KVDim()
	return map[string]int{
		"embd":  c.NEmbd,
		"vocab": c.NVocab,
		"ff":    c.NFF,
		"2ff":   2 * c.NFF,
		"ctx":   c.NCtxTrain,
		"q":     q,
		"kv":    kv,
		"qkv":   q + 2*kv,
		"rot/2": c.RopeDims / 2,
		"head":  c.HeadDim,
	}
}

type binder struct {
	f      *gguf.File
	sym    map[string]int
	nLayer int
}

var (
	matrixType = reflect.TypeFor[*kernel.Matrix]()
	vectorType = reflect.TypeFor[[]float32]()
)

func (b *binder) bindStruct(v reflect.Value, layer int) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fv := v.Field(i)
		tag, ok := sf.Tag.Lookup("gguf")
		if !ok {
			if sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct {
				if layer >= 0 {
					return fmt.Errorf("model.Bind: nested per-layer field %s", sf.Name)
				}
				fv.Set(reflect.MakeSlice(sf.Type, b.nLayer, b.nLayer))
				for l := range b.nLayer {
					if err := b.bindStruct(fv.Index(l), l); err != nil {
						return err
					}
				}
			}
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		optional := opts == "optional"
		if strings.Contains(name, "%d") {
			if layer < 0 {
				return fmt.Errorf("model.Bind: field %s: %q outside a per-layer struct", sf.Name, name)
			}
			name = fmt.Sprintf(name, layer)
		}
		want, wantDesc, err := b.shape(sf.Tag.Get("shape"))
		if err != nil {
			return fmt.Errorf("model.Bind: field %s: %w", sf.Name, err)
		}
		ti, ok := b.f.Tensor(name)
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("missing tensor %s", name)
		}
		if !sameShape(ti.Dims, want) {
			return fmt.Errorf("tensor %s has shape %v, want %v (%s)", name, ti.Dims, want, wantDesc)
		}
		if !quant.CanDequantize(ti.Type) {
			return fmt.Errorf("tensor %s has type %v, which is not supported", name, ti.Type)
		}
		switch sf.Type {
		case matrixType:
			if len(want) != 2 {
				return fmt.Errorf("model.Bind: field %s: a matrix needs a 2-D shape", sf.Name)
			}
			m, err := kernel.NewMatrix(ti.Type, b.f.Data(ti), want[1], want[0])
			if err != nil {
				return fmt.Errorf("tensor %s: %w", name, err)
			}
			fv.Set(reflect.ValueOf(m))
		case vectorType:
			n := 1
			for _, d := range want {
				n *= d
			}
			vec := make([]float32, n)
			if err := quant.Dequantize(ti.Type, b.f.Data(ti), vec); err != nil {
				return fmt.Errorf("tensor %s: %w", name, err)
			}
			fv.Set(reflect.ValueOf(vec))
		default:
			return fmt.Errorf("model.Bind: field %s has type %v (want *kernel.Matrix or []float32)", sf.Name, sf.Type)
		}
	}
	return nil
}

// shape resolves a shape tag such as "embd,q".
func (b *binder) shape(tag string) ([]int, string, error) {
	if tag == "" {
		return nil, "", fmt.Errorf("no shape tag")
	}
	var dims []int
	for _, s := range strings.Split(tag, ",") {
		d, ok := b.sym[strings.TrimSpace(s)]
		if !ok {
			return nil, "", fmt.Errorf("unknown shape symbol %q", s)
		}
		dims = append(dims, d)
	}
	return dims, tag, nil
}

// sameShape compares GGUF dims with the expected ones, ignoring trailing 1s.
func sameShape(have []uint64, want []int) bool {
	for len(have) > len(want) && have[len(have)-1] == 1 {
		have = have[:len(have)-1]
	}
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		if have[i] != uint64(want[i]) {
			return false
		}
	}
	return true
}
