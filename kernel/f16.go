package kernel

import (
	"encoding/binary"
	"sync"

	"github.com/slm-dev/slm/quant"
)

var (
	f16Once  sync.Once
	f16Table []float32 // exact float32 value of every fp16 bit pattern
)

func f16ToF32Table() []float32 {
	f16Once.Do(func() {
		f16Table = make([]float32, 1<<16)
		for i := range f16Table {
			f16Table[i] = quant.F16ToF32(uint16(i))
		}
	})
	return f16Table
}

// dotF16 is Dot(w, x) for a row w of fp16 values, widened exactly on the
// fly: the same sums in the same order as dequantizing the row first.
func dotF16(tab []float32, w []byte, x []float32) float32 {
	tab = tab[:1<<16]
	x = x[:len(w)/2]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i <= len(x)-8; i += 8 {
		a := w[2*i : 2*i+16 : 2*i+16]
		b := x[i : i+8 : i+8]
		s0 += tab[binary.LittleEndian.Uint16(a[0:])] * b[0]
		s1 += tab[binary.LittleEndian.Uint16(a[2:])] * b[1]
		s2 += tab[binary.LittleEndian.Uint16(a[4:])] * b[2]
		s3 += tab[binary.LittleEndian.Uint16(a[6:])] * b[3]
		s4 += tab[binary.LittleEndian.Uint16(a[8:])] * b[4]
		s5 += tab[binary.LittleEndian.Uint16(a[10:])] * b[5]
		s6 += tab[binary.LittleEndian.Uint16(a[12:])] * b[6]
		s7 += tab[binary.LittleEndian.Uint16(a[14:])] * b[7]
	}
	for ; i < len(x); i++ {
		s0 += tab[binary.LittleEndian.Uint16(w[2*i:])] * x[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
