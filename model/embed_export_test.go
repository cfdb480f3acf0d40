package model

import (
	"reflect"

	"github.com/slm-dev/slm/kernel"
)

// OutputMatrix is the output projection of a family's forward pass (its
// field Output).
func OutputMatrix(m Model) *kernel.Matrix {
	v := reflect.ValueOf(m.(*Net).fwd).Elem().FieldByName("Output")
	return v.Interface().(*kernel.Matrix)
}
