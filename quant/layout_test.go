package quant_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// elemRef decodes element e of one block straight from the bit placement
// documented in simple.go / kquant.go, one element at a time, as a second,
// independent implementation to check Dequantize against on random blocks.
func elemRef(typ quant.Type, b []byte, e int) float32 {
	h16 := func(off int) float32 { return quant.F16ToF32(binary.LittleEndian.Uint16(b[off:])) }
	nib := func(qs []byte, e int) int32 { // simple formats: element e < 16 low nibble of qs[e]
		if e < 16 {
			return int32(qs[e] & 15)
		}
		return int32(qs[e-16] >> 4)
	}
	bit5 := func(qh []byte, e int) int32 {
		return int32(binary.LittleEndian.Uint32(qh)>>uint(e)&1) << 4
	}
	scaleMin := func(s []byte, j int) (float32, float32) { // 6-bit pairs of Q4_K/Q5_K
		var sc, m byte
		if j < 4 {
			sc, m = s[j]&63, s[j+4]&63
		} else {
			sc = s[j+4]&15 | s[j-4]>>6<<4
			m = s[j+4]>>4 | s[j]>>6<<4
		}
		return float32(sc), float32(m)
	}
	h, r := e/128, e%128
	k, l := r/32, r%32
	c, s := e/64, e%64
	switch typ {
	case quant.Q4_0:
		return float32(nib(b[2:], e)-8) * h16(0)
	case quant.Q4_1:
		return float32(float32(nib(b[4:], e))*h16(0)) + h16(2)
	case quant.Q5_0:
		return float32(nib(b[6:], e)|bit5(b[2:], e)-16) * h16(0)
	case quant.Q5_1:
		return float32(float32(nib(b[8:], e)|bit5(b[4:], e))*h16(0)) + h16(2)
	case quant.Q8_0:
		return float32(int8(b[2+e])) * h16(0)
	case quant.Q8_1:
		return float32(int8(b[4+e])) * h16(0)
	case quant.Q2_K:
		sc := b[e/16]
		q := int32(b[16+32*h+l]>>uint(2*k)) & 3
		return float32(h16(80)*float32(sc&15)*float32(q)) - float32(h16(82)*float32(sc>>4))
	case quant.Q3_K:
		j := e / 16
		var lo byte
		if j < 8 {
			lo = b[96+j] & 15
		} else {
			lo = b[96+j-8] >> 4
		}
		sc := int32(lo|(b[96+8+j%4]>>uint(2*(j/4))&3)<<4) - 32
		q := int32(b[32+32*h+l]>>uint(2*k)) & 3
		if b[l]>>uint(4*h+k)&1 == 0 {
			q -= 4
		}
		return h16(108) * float32(sc) * float32(q)
	case quant.Q4_K, quant.Q5_K:
		sc, m := scaleMin(b[4:16], 2*c+s/32)
		off := 16
		if typ == quant.Q5_K {
			off = 48
		}
		qb := b[off+32*c+s%32]
		q := int32(qb & 15)
		if s >= 32 {
			q = int32(qb >> 4)
		}
		if typ == quant.Q5_K && b[16+s%32]>>uint(2*c+s/32)&1 != 0 {
			q += 16
		}
		return float32(h16(0)*sc*float32(q)) - float32(h16(2)*m)
	case quant.Q6_K:
		qb := b[64*h+32*(k&1)+l]
		lo := int32(qb & 15)
		if k >= 2 {
			lo = int32(qb >> 4)
		}
		q := lo | int32(b[128+32*h+l]>>uint(2*k)&3)<<4 - 32
		return h16(208) * float32(int8(b[192+e/16])) * float32(q)
	case quant.Q8_K:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)) * float32(int8(b[4+e]))
	}
	panic("no reference for " + typ.String())
}

func sameOrBothNaN(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

func TestDequantizeLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	types := []quant.Type{quant.Q4_0, quant.Q4_1, quant.Q5_0, quant.Q5_1, quant.Q8_0, quant.Q8_1,
		quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K, quant.Q8_K}
	for _, typ := range types {
		const nblocks = 200
		n := nblocks * typ.BlockElems()
		src := make([]byte, nblocks*typ.BlockBytes())
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		// mostly ordinary scales, so most values are finite and distinct
		for blk := 0; blk < nblocks; blk++ {
			if blk%10 == 0 {
				continue // keep fully random bytes (NaN/Inf scales) in some blocks
			}
			b := src[blk*typ.BlockBytes():]
			h := func(off int) {
				binary.LittleEndian.PutUint16(b[off:], quant.F32ToF16(float32(r.NormFloat64()*0.01)))
			}
			switch typ {
			case quant.Q4_0, quant.Q5_0, quant.Q8_0:
				h(0)
			case quant.Q4_1, quant.Q5_1, quant.Q8_1, quant.Q4_K, quant.Q5_K:
				h(0)
				h(2)
			case quant.Q2_K:
				h(80)
				h(82)
			case quant.Q3_K:
				h(108)
			case quant.Q6_K:
				h(208)
			case quant.Q8_K:
				binary.LittleEndian.PutUint32(b, math.Float32bits(float32(r.NormFloat64())))
			}
		}
		got := make([]float32, n)
		if err := quant.Dequantize(typ, src, got); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			blk, e := i/typ.BlockElems(), i%typ.BlockElems()
			want := elemRef(typ, src[blk*typ.BlockBytes():(blk+1)*typ.BlockBytes()], e)
			if !sameOrBothNaN(got[i], want) {
				t.Fatalf("%v block %d elem %d: got %v, want %v", typ, blk, e, got[i], want)
			}
		}
	}
}
