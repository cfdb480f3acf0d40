package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Errors returned (wrapped) by Dequantize and Quantize; test with errors.Is.
var (
	// ErrUnsupported: the type is unknown, or known but has no conversion here.
	ErrUnsupported = errors.New("quant: unsupported tensor type")
	// ErrBlockMultiple: the element count is not a whole number of blocks.
	ErrBlockMultiple = errors.New("quant: element count is not a multiple of the block size")
	// ErrShortBuffer: the encoded buffer is smaller than the element count needs.
	ErrShortBuffer = errors.New("quant: buffer too short")
)

// dequantizers maps each type Dequantize supports to a function that
// decodes exactly len(dst)/BlockElems blocks from src. src has already been
// checked to hold at least that many blocks.
var dequantizers = map[Type]func(src []byte, dst []float32){
	F32:    dequantF32,
	F16:    dequantF16,
	BF16:   dequantBF16,
	Q4_0:   dequantQ4_0,
	Q4_1:   dequantQ4_1,
	Q5_0:   dequantQ5_0,
	Q5_1:   dequantQ5_1,
	Q8_0:   dequantQ8_0,
	Q8_1:   dequantQ8_1,
	Q2_K:   dequantQ2_K,
	Q3_K:   dequantQ3_K,
	Q4_K:   dequantQ4_K,
	Q5_K:   dequantQ5_K,
	Q6_K:   dequantQ6_K,
	Q8_K:   dequantQ8_K,
	IQ4_NL: dequantIQ4_NL,
	IQ4_XS: dequantIQ4_XS,
}

// CanDequantize reports whether Dequantize supports t.
func CanDequantize(t Type) bool { _, ok := dequantizers[t]; return ok }

// Dequantize decodes len(dst) elements of type t from the start of src into
// dst. len(dst) must be a whole number of blocks of t and src must hold at
// least t.RowBytes(len(dst)) bytes; extra bytes are ignored.
//
// The results are bit-identical to ggml's dequantize_row_<type> (and to
// ggml's F16/BF16 to F32 row conversions): every product and difference is
// rounded to float32 in the same order as ggml's reference C code. It never
// panics; bad arguments give an error wrapping ErrUnsupported,
// ErrBlockMultiple or ErrShortBuffer.
func Dequantize(t Type, src []byte, dst []float32) error {
	fn, ok := dequantizers[t]
	if !ok {
		return fmt.Errorf("%w: %v", ErrUnsupported, t)
	}
	l := layouts[t]
	if len(dst)%l.blockElems != 0 {
		return fmt.Errorf("%w: %v: %d elements, block size %d", ErrBlockMultiple, t, len(dst), l.blockElems)
	}
	need := len(dst) / l.blockElems * l.blockBytes
	if len(src) < need {
		return fmt.Errorf("%w: %v: %d elements need %d bytes, have %d", ErrShortBuffer, t, len(dst), need, len(src))
	}
	if len(dst) == 0 {
		return nil
	}
	fn(src[:need], dst)
	return nil
}

// Small little-endian readers shared by the block decoders.

func f16At(b []byte, off int) float32 { return F16ToF32(binary.LittleEndian.Uint16(b[off:])) }

func f32At(b []byte, off int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
}
