package quant

import "fmt"

// quantizers maps each type Quantize can encode to its reference encoder.
var quantizers = map[Type]func(src []float32, dst []byte){
	F32:    quantF32,
	F16:    quantF16,
	BF16:   quantBF16,
	Q4_0:   QuantizeQ4_0Ref,
	Q4_1:   QuantizeQ4_1Ref,
	Q5_0:   QuantizeQ5_0Ref,
	Q5_1:   QuantizeQ5_1Ref,
	Q8_0:   QuantizeQ8_0Ref,
	Q2_K:   QuantizeQ2_KRef,
	Q3_K:   QuantizeQ3_KRef,
	Q4_K:   QuantizeQ4_KRef,
	Q5_K:   QuantizeQ5_KRef,
	Q6_K:   QuantizeQ6_KRef,
	IQ4_NL: QuantizeIQ4_NLRef,
	IQ4_XS: QuantizeIQ4_XSRef,
}

// CanQuantize reports whether Quantize supports t.
func CanQuantize(t Type) bool { _, ok := quantizers[t]; return ok }

// Quantize encodes src as type t into the start of dst with ggml's
// deterministic reference encoders (the ones llama-quantize uses without an
// importance matrix), so the bytes match llama.cpp's output exactly.
// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K,
// Q5_K, Q6_K, IQ4_NL, IQ4_XS (see QuantizeWeighted for the importance-matrix encoders).
// len(src) must be a whole number of blocks and dst must hold
// t.RowBytes(len(src)) bytes.
func Quantize(t Type, src []float32, dst []byte) error {
	fn, ok := quantizers[t]
	if !ok {
		return fmt.Errorf("%w: cannot quantize to %v", ErrUnsupported, t)
	}
	l := layouts[t]
	if len(src)%l.blockElems != 0 {
		return fmt.Errorf("%w: %v: %d elements, block size %d", ErrBlockMultiple, t, len(src), l.blockElems)
	}
	need := len(src) / l.blockElems * l.blockBytes
	if len(dst) < need {
		return fmt.Errorf("%w: %v: %d elements need %d bytes, have %d", ErrShortBuffer, t, len(src), need, len(dst))
	}
	fn(src, dst[:need])
	return nil
}
