package gguf

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/slm-dev/slm/quant"
)

const huge = 1 << 60

// hostileCases are malformed files, each with what its error must say.
// Every error must also start with "gguf hostile.gguf: ".
func hostileCases() []struct {
	name string
	data []byte
	want []string
} {
	// oneTensor is a file whose tensor table is tensors, with data bytes of
	// data after the aligned header.
	oneTensor := func(data int, kvs func(*raw), tensors func(*raw), n uint64) []byte {
		nkv := 0
		r := &raw{}
		if kvs != nil {
			kvs(r)
			nkv = strings.Count(string(r.b), "general.alignment") // at most one KV in these cases
		}
		body := r.b
		r = header(3, n, uint64(nkv))
		r.b = append(r.b, body...)
		tensors(r)
		align := 32
		if nkv > 0 {
			align = 64
		}
		return r.pad(align).zeros(data).b
	}
	align64 := func(r *raw) { r.kvU32("general.alignment", 64) }
	kv := func(key string, typ ValueType) *raw { return header(3, 0, 1).str(key).u32(uint32(typ)) }

	type tc = struct {
		name string
		data []byte
		want []string
	}
	return []tc{
		{"empty", nil, []string{"not a GGUF file", "unexpected end of file"}},
		{"short magic", []byte("GGU"), []string{"not a GGUF file", "need 4 bytes, 3 left"}},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), []string{"not a GGUF file: bad magic \"GGML\""}},
		{"no version", []byte("GGUF"), []string{"header: version", "unexpected end of file"}},
		{"version 0", header(0, 0, 0).b, []string{"unsupported GGUF version 0 (2 and 3 are supported)"}},
		{"version 1", header(1, 0, 0).b, []string{"unsupported GGUF version 1 (2 and 3 are supported)"}},
		{"version 4", header(4, 0, 0).b, []string{"unsupported GGUF version 4 (2 and 3 are supported)"}},
		{"big-endian", header(3<<24, 0, 0).b, []string{"unsupported GGUF version 0x3000000", "big-endian"}},
		{"no counts", (&raw{}).u32(Magic).u32(3).u32(0).b, []string{"header: tensor count", "need 8 bytes, 4 left"}},
		{"no kv count", (&raw{}).u32(Magic).u32(3).u64(0).b, []string{"header: metadata count"}},

		// Counts that no file could back: rejected before allocating.
		{"huge kv count", header(3, 0, huge).zeros(64).b, []string{"metadata count 1152921504606846976 cannot fit in the 64 bytes left"}},
		{"huge tensor count", header(3, huge, 0).zeros(64).b, []string{"tensor count 1152921504606846976 cannot fit in the 64 bytes left"}},
		{"max counts", header(3, 1<<64-1, 1<<64-1).b, []string{"cannot fit in the 0 bytes left"}},
		{"huge key", header(3, 0, 1).u64(huge).zeros(16).b, []string{"metadata 0: key: string of 1152921504606846976 bytes", "16 left"}},
		{"huge string", kv("s", TypeString).u64(huge).u8(0).b, []string{`metadata "s": string of 1152921504606846976 bytes`}},
		{"huge u8 array", kv("a", TypeArray).u32(uint32(TypeUint8)).u64(huge).zeros(16).b, []string{`metadata "a": array of 1152921504606846976 uint8 elements needs at least 1 bytes each, 16 left`}},
		{"huge u64 array", kv("a", TypeArray).u32(uint32(TypeUint64)).u64(huge).zeros(16).b, []string{`array of 1152921504606846976 uint64 elements`}},
		{"huge string array", kv("a", TypeArray).u32(uint32(TypeString)).u64(huge).zeros(16).b, []string{`array of 1152921504606846976 string elements`}},
		{"huge nested array", kv("a", TypeArray).u32(uint32(TypeArray)).u64(huge).zeros(16).b, []string{`array of 1152921504606846976 array elements`}},
		{"huge inner array", kv("a", TypeArray).u32(uint32(TypeArray)).u64(1).u32(uint32(TypeFloat32)).u64(huge).zeros(16).b, []string{`array element 0: array of 1152921504606846976 float32 elements`}},
		{"huge string in array", kv("a", TypeArray).u32(uint32(TypeString)).u64(2).str("ok").u64(huge).zeros(8).b, []string{`array element 1: string of 1152921504606846976 bytes`}},
		{"huge tensor name", header(3, 1, 0).u64(huge).zeros(32).b, []string{"tensor 0: name: string of 1152921504606846976 bytes"}},

		// Bad values.
		{"unknown value type", kv("k", 13).u32(0).b, []string{`metadata "k": unknown value type 13`}},
		{"unknown value type max", kv("k", 1<<32-1).u32(0).b, []string{`metadata "k": unknown value type 4294967295`}},
		{"unknown array type", kv("k", TypeArray).u32(99).u64(0).b, []string{`metadata "k": array of unknown value type 99`}},
		{"bool 2", kv("b", TypeBool).u8(2).b, []string{`metadata "b": bool value 2 is neither 0 nor 1`}},
		{"bool array", kv("b", TypeArray).u32(uint32(TypeBool)).u64(2).u8(1).u8(7).b, []string{`metadata "b": array element 1: bool value 7`}},
		{"too deep", kv("a", TypeArray).u32(uint32(TypeArray)).u64(1).u32(uint32(TypeArray)).u64(1).u32(uint32(TypeArray)).u64(1).u32(uint32(TypeArray)).u64(1).u32(uint32(TypeUint8)).u64(0).b, []string{`metadata "a": array element 0: array element 0: array element 0: array element 0: arrays nested deeper than 4`}},
		{"truncated value", kv("k", TypeUint64).u32(0).b, []string{`metadata "k": at byte 37: need 8 bytes, 4 left`}},
		{"duplicate key", header(3, 0, 2).kvU32("a", 1).kvU32("a", 2).b, []string{`metadata key "a" appears twice`}},
		{"alignment 0", header(3, 0, 1).kvU32("general.alignment", 0).b, []string{"general.alignment 0 is not a power of two"}},
		{"alignment 3", header(3, 0, 1).kvU32("general.alignment", 3).b, []string{"general.alignment 3 is not a power of two"}},
		{"alignment 96", header(3, 0, 1).kvU32("general.alignment", 96).b, []string{"general.alignment 96 is not a power of two"}},
		{"alignment uint64", header(3, 0, 1).str("general.alignment").u32(uint32(TypeUint64)).u64(32).b, []string{"general.alignment must be a uint32, not uint64"}},
		{"alignment int32", header(3, 0, 1).str("general.alignment").u32(uint32(TypeInt32)).u32(32).b, []string{"general.alignment must be a uint32, not int32"}},
		{"alignment string", header(3, 0, 1).str("general.alignment").u32(uint32(TypeString)).str("32").b, []string{"general.alignment must be a uint32, not string"}},

		// Bad tensor tables.
		{"unknown tensor type", oneTensor(32, nil, func(r *raw) { r.tensor("t", 99, 0, 8) }, 1), []string{`tensor "t": unknown tensor type 99`}},
		{"removed tensor type", oneTensor(32, nil, func(r *raw) { r.tensor("t", 4, 0, 32) }, 1), []string{`tensor "t": unknown tensor type 4`}},
		{"rank 5", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.F32, 0, 1, 1, 1, 1, 1) }, 1), []string{`tensor "t": 5 dimensions (at most 4)`}},
		{"rank huge", header(3, 1, 0).str("t").u32(1 << 31).zeros(64).b, []string{`tensor "t": 2147483648 dimensions (at most 4)`}},
		{"dims overflow", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.F32, 0, 1<<32, 1<<31, 2) }, 1), []string{`tensor "t": dimensions [4294967296 2147483648 2] overflow`}},
		{"dim 2^64-1", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.I8, 0, 1<<64-1) }, 1), []string{`tensor "t": dimensions [18446744073709551615] overflow`}},
		{"zero dim hides overflow", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.I8, 0, 0, 1<<64-1) }, 1), []string{`tensor "t": dimensions [0 18446744073709551615] overflow`}},
		{"bytes overflow", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.F64, 0, 1<<61) }, 1), []string{`tensor "t": dimensions [2305843009213693952] overflow (F64 data would exceed 2^64 bytes)`}},
		{"block multiple", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.Q4_0, 0, 48) }, 1), []string{`tensor "t": row length 48 is not a multiple of Q4_0's block size 32`}},
		{"quantized scalar", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.Q8_0, 0) }, 1), []string{`tensor "t": row length 1 is not a multiple of Q8_0's block size 32`}},
		{"too big for file", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.F32, 0, 1<<40) }, 1), []string{`tensor "t": data [0, +4398046511104) runs past the end of the file (data section holds 32 bytes`}},
		{"offset past end", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.F32, 64, 8) }, 1), []string{`tensor "t": data [64, +32) runs past the end`}},
		{"offset 2^64-32", oneTensor(32, nil, func(r *raw) { r.tensor("t", quant.F32, 1<<64-32, 8) }, 1), []string{`tensor "t": data [18446744073709551584, +32) runs past the end`}},
		{"end past end", oneTensor(63, nil, func(r *raw) { r.tensor("t", quant.F32, 32, 8) }, 1), []string{`tensor "t": data [32, +32) runs past the end of the file (data section holds 63 bytes`}},
		{"misaligned", oneTensor(64, nil, func(r *raw) { r.tensor("t", quant.F32, 4, 8) }, 1), []string{`tensor "t": offset 4 is not aligned to 32`}},
		{"misaligned 64", oneTensor(128, align64, func(r *raw) { r.tensor("t", quant.F32, 32, 8) }, 1), []string{`tensor "t": offset 32 is not aligned to 64`}},
		{"overlap", oneTensor(128, nil, func(r *raw) { r.tensor("a", quant.F32, 0, 16).tensor("b", quant.F32, 32, 8) }, 2), []string{`tensors "a" and "b" overlap`}},
		{"overlap reversed", oneTensor(128, nil, func(r *raw) { r.tensor("b", quant.F32, 32, 8).tensor("a", quant.F32, 0, 16) }, 2), []string{`tensors "a" and "b" overlap`}},
		{"same offset", oneTensor(128, nil, func(r *raw) { r.tensor("a", quant.F32, 32, 8).tensor("b", quant.F32, 32, 8) }, 2), []string{`tensors "a" and "b" overlap`}},
		// An empty tensor between two overlapping ones must not hide the overlap.
		{"overlap behind empty", oneTensor(128, nil, func(r *raw) {
			r.tensor("a", quant.F32, 0, 24).tensor("e", quant.F32, 32, 0).tensor("b", quant.F32, 64, 8)
		}, 3), []string{`tensors "a" and "b" overlap`}},
		{"duplicate tensor", oneTensor(64, nil, func(r *raw) { r.tensor("t", quant.F32, 0, 8).tensor("t", quant.F32, 32, 8) }, 2), []string{`tensor "t" appears twice`}},
		{"long name", oneTensor(32, nil, func(r *raw) { r.tensor(strings.Repeat("n", 64), quant.F32, 0, 8) }, 1), []string{"tensor 0: name of 64 bytes is too long (ggml allows at most 63)"}},
		{"truncated table", header(3, 1, 0).str("tensor").u32(2).u64(8).b, []string{`tensor "tensor": dimension 1: at byte 50: need 8 bytes, 0 left`}},
		{"no data section", header(3, 1, 0).tensor("t", quant.F32, 0, 0).b, []string{"data section starts at 64, past the end of the 57-byte file"}},
	}
}

func TestHostile(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse("hostile.gguf", c.data)
			if err == nil {
				t.Fatalf("parsed: %d KVs, %d tensors", len(f.KVs), len(f.Tensors))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "gguf hostile.gguf: ") {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// TestHostileAllocs checks that files claiming 2^60 of something fail
// without allocating anything like it: every hostile case allocates little.
func TestHostileAllocs(t *testing.T) {
	for _, c := range hostileCases() {
		allocs := testing.AllocsPerRun(20, func() { Parse("hostile.gguf", c.data) })
		bytes := allocBytes(20, func() { Parse("hostile.gguf", c.data) })
		if allocs > 64 || bytes > 16<<10 {
			t.Errorf("%s: %.0f allocations, %d bytes per parse", c.name, allocs, bytes)
		}
	}
	// A count the file could almost back: 2 MB of zeros holds 2^21/13
	// empty-key uint8 KVs as far as the up-front check can tell; the parse
	// fails at the second (duplicate) key and must not have reserved room
	// for all of them.
	r := header(3, 0, (2<<20)/13).zeros(2 << 20)
	if _, err := Parse("hostile.gguf", r.b); err == nil || !strings.Contains(err.Error(), `metadata key "" appears twice`) {
		t.Fatalf("got %v", err)
	}
	if n := allocBytes(5, func() { Parse("hostile.gguf", r.b) }); n > 256<<10 {
		t.Errorf("2 MB file claiming %d KVs: %d bytes allocated per parse", (2<<20)/13, n)
	}
}

// allocBytes is the average number of bytes f allocates.
func allocBytes(runs int, f func()) uint64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestTruncated parses every proper prefix of valid files: all must fail
// (with an error naming the file) and none may panic. The sample file's
// last tensor fills its last aligned block, so every prefix cuts into data
// the tensor table points at. (Trailing padding after the last tensor is
// optional, as in llama.cpp's loader, so a file cut inside it would load.)
func TestTruncated(t *testing.T) {
	noTensors := buildFile(t, allTypesKVs(), nil)
	files := map[string][]byte{"sample": sampleFile(t), "no tensors": noTensors}
	for name, data := range files {
		if _, err := Parse(name, data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for n := range len(data) {
			_, err := Parse("cut.gguf", data[:n:n])
			if err == nil {
				t.Errorf("%s cut to %d of %d bytes: no error", name, n, len(data))
				continue
			}
			if !strings.HasPrefix(err.Error(), "gguf cut.gguf: ") {
				t.Errorf("%s cut to %d bytes: error %q does not name the file", name, n, err)
			}
		}
	}
}

// TestTruncatedVocab cuts a shipped vocabulary file at a spread of lengths.
func TestTruncatedVocab(t *testing.T) {
	data, err := readTestFile(smallestVocab(t))
	if err != nil {
		t.Skip(err)
	}
	for n := 0; n < len(data); n += 1 + n/8 {
		if _, err := Parse("vocab.gguf", data[:n:n]); err == nil || !strings.Contains(err.Error(), "vocab.gguf") {
			t.Errorf("cut to %d bytes: %v", n, err)
		}
	}
}

func readTestFile(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("no test file")
	}
	data, release, err := readAll(path)
	if err != nil {
		return nil, err
	}
	release()
	return data, nil
}
