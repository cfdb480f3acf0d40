package model

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/slm-dev/slm/kernel"
)

// Observer sees the input of every weight matrix product of a forward
// pass, before the kernels quantize it: name is the weight's GGUF tensor
// name (e.g. blk.3.ffn_down.weight), x the n rows of cols activations it
// multiplies (row-major, a row per token). x is only valid during the
// call. The importance-matrix collection (package imatrix) is one.
type Observer interface {
	ObserveMatMul(name string, x []float32, n, cols int)
}

// SetObserver makes o see the matmul inputs of the batch's passes (nil
// turns observation off). Without an observer a pass pays one nil check
// per product.
func (b *Batch) SetObserver(o Observer) { b.obs = o }

// SetObserver makes o see the matmul inputs of Eval's passes on s (nil
// turns observation off).
func (s *State) SetObserver(o Observer) { s.obs = o }

// Observe reports x, the n-row input of a product with w, to the batch's
// observer if it has one and w is a weight bound from the file. Blocks
// call it for every weight product; a family calls it itself only when it
// multiplies by parts of a weight (such as the q, k and v row blocks of a
// fused qkv matrix), once for the whole weight.
func (b *Batch) Observe(w *kernel.Matrix, x []float32, n int) {
	if b.obs == nil || n == 0 {
		return
	}
	if name, ok := b.net.names[w]; ok {
		b.obs.ObserveMatMul(name, x[:n*w.Cols], n, w.Cols)
	}
}

// Linear is model.Linear with its input observed (see Observe).
func (b *Batch) Linear(out []float32, w *kernel.Matrix, bias []float32, x []float32, n int) {
	b.Observe(w, x, n)
	Linear(out, w, bias, x, n)
}

// weightNames maps the matrices of a family's weights struct (as filled
// by Bind, led by the same gguf tags) to their tensor names. A matrix
// bound under two names (a tied output) keeps the first, in field order.
func weightNames(fwd any) map[*kernel.Matrix]string {
	names := map[*kernel.Matrix]string{}
	v := reflect.ValueOf(fwd)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return names
	}
	var walk func(v reflect.Value, layer int)
	walk = func(v reflect.Value, layer int) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			fv := v.Field(i)
			tag, ok := sf.Tag.Lookup("gguf")
			if !ok {
				if layer < 0 && sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct {
					for l := range fv.Len() {
						walk(fv.Index(l), l)
					}
				}
				continue
			}
			if sf.Type != matrixType || fv.IsNil() {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if strings.Contains(name, "%d") {
				if layer < 0 {
					continue
				}
				name = fmt.Sprintf(name, layer)
			}
			m := fv.Interface().(*kernel.Matrix)
			if _, dup := names[m]; !dup {
				names[m] = name
			}
		}
	}
	walk(v.Elem(), -1)
	return names
}
