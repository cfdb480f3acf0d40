package quant_test

import (
	"errors"
	"testing"

	"github.com/slm-dev/slm/quant"
)

var allDequant = []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q4_0, quant.Q4_1, quant.Q5_0,
	quant.Q5_1, quant.Q8_0, quant.Q8_1, quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K, quant.Q8_K,
	quant.IQ4_NL, quant.IQ4_XS}

func TestDequantizeErrors(t *testing.T) {
	cases := []struct {
		name string
		typ  quant.Type
		src  int // bytes
		dst  int // elements
		want error
	}{
		{"unknown type", quant.Type(99), 1000, 32, quant.ErrUnsupported},
		{"removed Q4_2", quant.Type(4), 1000, 32, quant.ErrUnsupported},
		{"I8 has no float form", quant.I8, 1000, 32, quant.ErrUnsupported},
		{"F64", quant.F64, 1000, 32, quant.ErrUnsupported},
		{"Q4_0 odd length", quant.Q4_0, 1000, 31, quant.ErrBlockMultiple},
		{"Q4_0 half block", quant.Q4_0, 1000, 16, quant.ErrBlockMultiple},
		{"Q4_K 32 elements", quant.Q4_K, 1000, 32, quant.ErrBlockMultiple},
		{"Q6_K 257 elements", quant.Q6_K, 1000, 257, quant.ErrBlockMultiple},
		{"Q4_0 short", quant.Q4_0, 17, 32, quant.ErrShortBuffer},
		{"Q4_0 second block short", quant.Q4_0, 35, 64, quant.ErrShortBuffer},
		{"Q6_K short", quant.Q6_K, 209, 256, quant.ErrShortBuffer},
		{"Q8_K short", quant.Q8_K, 291, 256, quant.ErrShortBuffer},
		{"F32 short", quant.F32, 7, 2, quant.ErrShortBuffer},
		{"F16 odd bytes", quant.F16, 3, 2, quant.ErrShortBuffer},
		{"nil src", quant.Q8_0, 0, 32, quant.ErrShortBuffer},
		{"empty ok", quant.Q4_K, 0, 0, nil},
		{"exact ok", quant.Q5_K, 176, 256, nil},
		{"extra src bytes ok", quant.Q8_0, 100, 32, nil},
	}
	for _, c := range cases {
		var src []byte
		if c.src > 0 {
			src = make([]byte, c.src)
		}
		err := quant.Dequantize(c.typ, src, make([]float32, c.dst))
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got error %v, want %v", c.name, err, c.want)
		}
	}
	for _, typ := range allDequant {
		if !quant.CanDequantize(typ) {
			t.Errorf("CanDequantize(%v) = false", typ)
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	if err := quant.Quantize(quant.Q8_K, make([]float32, 256), make([]byte, 1000)); !errors.Is(err, quant.ErrUnsupported) {
		t.Errorf("Q8_K: %v", err)
	}
	if err := quant.Quantize(quant.Type(77), nil, nil); !errors.Is(err, quant.ErrUnsupported) {
		t.Errorf("type 77: %v", err)
	}
	if err := quant.Quantize(quant.Q4_0, make([]float32, 33), make([]byte, 1000)); !errors.Is(err, quant.ErrBlockMultiple) {
		t.Errorf("33 elements: %v", err)
	}
	if err := quant.Quantize(quant.Q8_0, make([]float32, 64), make([]byte, 67)); !errors.Is(err, quant.ErrShortBuffer) {
		t.Errorf("short dst: %v", err)
	}
	if err := quant.Quantize(quant.F16, make([]float32, 3), make([]byte, 6)); err != nil {
		t.Errorf("F16: %v", err)
	}
}

func TestActivationQuantizersPanicOnMisuse(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("Q8_0 length", func() { quant.QuantizeQ8_0(make([]float32, 31), make([]byte, 100)) })
	mustPanic("Q8_0 dst", func() { quant.QuantizeQ8_0(make([]float32, 32), make([]byte, 33)) })
	mustPanic("Q8_1 dst", func() { quant.QuantizeQ8_1(make([]float32, 32), make([]byte, 35)) })
	mustPanic("Q8_K length", func() { quant.QuantizeQ8_K(make([]float32, 128), make([]byte, 1000)) })
}

// FuzzDequantize feeds arbitrary bytes, types and lengths: Dequantize must
// never panic, and must succeed exactly when the arguments are valid.
func FuzzDequantize(f *testing.F) {
	f.Add(uint32(quant.Q4_0), uint16(32), []byte("0123456789abcdef0123"))
	f.Add(uint32(quant.Q6_K), uint16(256), make([]byte, 210))
	f.Add(uint32(quant.Q3_K), uint16(255), make([]byte, 300))
	f.Add(uint32(quant.F16), uint16(3), []byte{0xff, 0x7f, 0x01, 0x7c, 0x00, 0x80})
	f.Add(uint32(99), uint16(1), []byte{1})
	for _, typ := range allDequant {
		f.Add(uint32(typ), uint16(typ.BlockElems()), make([]byte, typ.BlockBytes()))
	}
	f.Fuzz(func(t *testing.T, typ uint32, n uint16, src []byte) {
		tp := quant.Type(typ % 40)
		dst := make([]float32, int(n)%2048)
		err := quant.Dequantize(tp, src, dst)
		need, rerr := tp.RowBytes(len(dst))
		valid := quant.CanDequantize(tp) && rerr == nil && len(src) >= need
		if valid != (err == nil) {
			t.Fatalf("%v, %d elements, %d bytes: err = %v, but valid = %v", tp, len(dst), len(src), err, valid)
		}
	})
}
