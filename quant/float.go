package quant

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// nativeLE: float32 memory has the GGUF byte order, so F32 rows can be copied.
var nativeLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Plain float formats. Each "block" is a single element, little-endian:
//
//	F32:  uint32 IEEE binary32 bits            (4 bytes)
//	F16:  uint16 IEEE binary16 bits            (2 bytes)
//	BF16: uint16 upper half of a binary32      (2 bytes)
//
// Widening F16 and BF16 to float32 is exact, so these decoders are trivially
// bit-identical to ggml_fp16_to_fp32_row / ggml_bf16_to_fp32_row (apart from
// NaN payloads, see F16ToF32).

func dequantF32(src []byte, dst []float32) {
	src = src[:4*len(dst)]
	if nativeLE && len(dst) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), src)
		return
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := 0; i+1 < len(src); i += 2 {
		dst[i/2] = F16ToF32(uint16(src[i]) | uint16(src[i+1])<<8)
	}
}

func dequantBF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := 0; i+1 < len(src); i += 2 {
		dst[i/2] = BF16ToF32(uint16(src[i]) | uint16(src[i+1])<<8)
	}
}

func quantF32(src []float32, dst []byte) {
	dst = dst[:4*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

func quantF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(v))
	}
}

func quantBF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(v))
	}
}
