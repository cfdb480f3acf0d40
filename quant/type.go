// Package quant defines ggml's tensor block formats: their sizes and a plain-Go
// reference dequantization that every faster kernel is tested against.
package quant

import "fmt"

// Type is a ggml tensor type, numbered as in GGUF files.
type Type uint32

// The ggml type ids. Ids missing here (4, 5: removed Q4_2/Q4_3) are rejected.
const (
	F32    Type = 0
	F16    Type = 1
	Q4_0   Type = 2
	Q4_1   Type = 3
	Q5_0   Type = 6
	Q5_1   Type = 7
	Q8_0   Type = 8
	Q8_1   Type = 9
	Q2_K   Type = 10
	Q3_K   Type = 11
	Q4_K   Type = 12
	Q5_K   Type = 13
	Q6_K   Type = 14
	Q8_K   Type = 15
	IQ4_NL Type = 20
	IQ4_XS Type = 23
	I8     Type = 24
	I16    Type = 25
	I32    Type = 26
	I64    Type = 27
	F64    Type = 28
	BF16   Type = 30
)

// QK is the block length of the simple formats; QKK is the K-quant super-block.
const (
	QK  = 32
	QKK = 256
)

type layout struct {
	name       string
	blockElems int // elements per block
	blockBytes int // bytes per block
}

var layouts = map[Type]layout{
	F32:    {"F32", 1, 4},
	F16:    {"F16", 1, 2},
	BF16:   {"BF16", 1, 2},
	F64:    {"F64", 1, 8},
	I8:     {"I8", 1, 1},
	I16:    {"I16", 1, 2},
	I32:    {"I32", 1, 4},
	I64:    {"I64", 1, 8},
	Q4_0:   {"Q4_0", QK, 2 + QK/2},
	Q4_1:   {"Q4_1", QK, 2 + 2 + QK/2},
	Q5_0:   {"Q5_0", QK, 2 + 4 + QK/2},
	Q5_1:   {"Q5_1", QK, 2 + 2 + 4 + QK/2},
	Q8_0:   {"Q8_0", QK, 2 + QK},
	Q8_1:   {"Q8_1", QK, 2 + 2 + QK},
	Q2_K:   {"Q2_K", QKK, QKK/16 + QKK/4 + 2 + 2},
	Q3_K:   {"Q3_K", QKK, QKK/8 + QKK/4 + 12 + 2},
	Q4_K:   {"Q4_K", QKK, 2 + 2 + 12 + QKK/2},
	Q5_K:   {"Q5_K", QKK, 2 + 2 + 12 + QKK/8 + QKK/2},
	Q6_K:   {"Q6_K", QKK, QKK/2 + QKK/4 + QKK/16 + 2},
	Q8_K:   {"Q8_K", QKK, 4 + QKK + QKK/16*2},
	IQ4_NL: {"IQ4_NL", QK, 2 + QK/2},
	IQ4_XS: {"IQ4_XS", QKK, 2 + 2 + QKK/64 + QKK/2},
}

// Known reports whether t is a type this package can size.
func (t Type) Known() bool { _, ok := layouts[t]; return ok }

func (t Type) String() string {
	if l, ok := layouts[t]; ok {
		return l.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockElems is the number of elements one block holds (1 for plain types).
func (t Type) BlockElems() int { return layouts[t].blockElems }

// BlockBytes is the encoded size of one block.
func (t Type) BlockBytes() int { return layouts[t].blockBytes }

// RowBytes is the encoded size of n elements, or an error when n is not a
// whole number of blocks or t is unknown.
func (t Type) RowBytes(n int) (int, error) {
	l, ok := layouts[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%l.blockElems != 0 {
		return 0, fmt.Errorf("%s: %d elements is not a multiple of the block size %d", l.name, n, l.blockElems)
	}
	return n / l.blockElems * l.blockBytes, nil
}

// ParseType maps a type name such as "q4_k" or "F16" to its Type.
func ParseType(name string) (Type, bool) {
	for t, l := range layouts {
		if equalFold(l.name, name) {
			return t, true
		}
	}
	return 0, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
