// Package quantize rewrites a GGUF model with its weights in another block
// format, choosing each tensor's type the way llama.cpp's llama-quantize
// does (src/llama-quant.cpp at commit c392e5094), so that the files it
// writes are the ones llama-quantize writes: same tensor types, same
// tensor order, same metadata, same bytes.
package quantize

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slm-dev/slm/quant"
)

// FileType is a target of llama-quantize: a llama_ftype (the value stored
// in general.file_type) and the default tensor type it quantizes to.
type FileType struct {
	Name    string     // canonical name, as llama-quantize prints it
	ID      uint32     // llama_ftype, written to general.file_type
	Default quant.Type // the type most weights get
	Desc    string
}

// The llama_ftype values (llama.h).
const (
	ftypeAllF32 = 0
	ftypeF16    = 1
	ftypeQ4_0   = 2
	ftypeQ4_1   = 3
	ftypeQ8_0   = 7
	ftypeQ5_0   = 8
	ftypeQ5_1   = 9
	ftypeQ2_K   = 10
	ftypeQ3_K_S = 11
	ftypeQ3_K_M = 12
	ftypeQ3_K_L = 13
	ftypeQ4_K_S = 14
	ftypeQ4_K_M = 15
	ftypeQ5_K_S = 16
	ftypeQ5_K_M = 17
	ftypeQ6_K   = 18
	ftypeIQ4_NL = 25
	ftypeIQ4_XS = 30
	ftypeBF16   = 32
)

// FileTypes lists the targets slm quantize accepts, in llama-quantize's
// order.
var FileTypes = []FileType{
	{"Q4_0", ftypeQ4_0, quant.Q4_0, "4.5 bits per weight, symmetric blocks of 32"},
	{"Q4_1", ftypeQ4_1, quant.Q4_1, "5.0 bpw, blocks of 32 with a minimum"},
	{"Q5_0", ftypeQ5_0, quant.Q5_0, "5.5 bpw, symmetric blocks of 32"},
	{"Q5_1", ftypeQ5_1, quant.Q5_1, "6.0 bpw, blocks of 32 with a minimum"},
	{"Q2_K", ftypeQ2_K, quant.Q2_K, "K-quant mix around Q2_K"},
	{"Q3_K_S", ftypeQ3_K_S, quant.Q3_K, "K-quant mix: Q3_K almost everywhere"},
	{"Q3_K_M", ftypeQ3_K_M, quant.Q3_K, "K-quant mix: Q3_K, some Q4_K/Q5_K"},
	{"Q3_K_L", ftypeQ3_K_L, quant.Q3_K, "K-quant mix: Q3_K, more Q5_K"},
	{"IQ4_NL", ftypeIQ4_NL, quant.IQ4_NL, "4.5 bpw non-linear blocks of 32"},
	{"IQ4_XS", ftypeIQ4_XS, quant.IQ4_XS, "4.25 bpw non-linear super-blocks of 256"},
	{"Q4_K_S", ftypeQ4_K_S, quant.Q4_K, "K-quant mix: Q4_K, a little Q5_K"},
	{"Q4_K_M", ftypeQ4_K_M, quant.Q4_K, "K-quant mix: Q4_K, some Q6_K (the usual choice)"},
	{"Q5_K_S", ftypeQ5_K_S, quant.Q5_K, "K-quant mix: Q5_K almost everywhere"},
	{"Q5_K_M", ftypeQ5_K_M, quant.Q5_K, "K-quant mix: Q5_K, some Q6_K"},
	{"Q6_K", ftypeQ6_K, quant.Q6_K, "6.6 bpw K-quant"},
	{"Q8_0", ftypeQ8_0, quant.Q8_0, "8.5 bpw, nearly lossless"},
	{"F16", ftypeF16, quant.F16, "IEEE half precision"},
	{"BF16", ftypeBF16, quant.BF16, "bfloat16"},
	{"F32", ftypeAllF32, quant.F32, "float32 (dequantizes; needs --allow-requantize for quantized input)"},
}

// aliases are llama-quantize's short names for the medium mixes: Q3_K is
// Q3_K_M, Q4_K is Q4_K_M, Q5_K is Q5_K_M. With --pure they give all-Q3_K,
// all-Q4_K, all-Q5_K files (whose general.file_type is still the mix's).
var aliases = map[string]string{"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}

// ParseFileType maps a name (case-insensitive: q4_k_m, Q8_0, Q4_K, ...) or a
// llama_ftype number to its FileType.
func ParseFileType(name string) (FileType, error) {
	up := strings.ToUpper(strings.TrimSpace(name))
	if a, ok := aliases[up]; ok {
		up = a
	}
	n, numErr := strconv.ParseUint(up, 10, 32)
	for _, ft := range FileTypes {
		if ft.Name == up || (numErr == nil && uint64(ft.ID) == n) {
			return ft, nil
		}
	}
	return FileType{}, fmt.Errorf("unknown quantization type %q (want one of %s)", name, TypeNames())
}

// TypeNames lists the accepted names, aliases included.
func TypeNames() string {
	var names []string
	for _, ft := range FileTypes {
		names = append(names, ft.Name)
	}
	names = append(names, "Q3_K", "Q4_K", "Q5_K")
	return strings.Join(names, ", ")
}

// isQuantized is ggml_is_quantized for the types slm handles.
func isQuantized(t quant.Type) bool {
	switch t {
	case quant.F32, quant.F16, quant.BF16, quant.F64, quant.I8, quant.I16, quant.I32, quant.I64:
		return false
	}
	return true
}
