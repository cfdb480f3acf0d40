//go:build !purego && !noasm

package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// TestDotKCols4 checks the one-row × 4-activation-rows kernels against the
// generic dot of each column, bit for bit, on quantized and random-byte
// blocks, with padded strides and guarded memory.
func TestDotKCols4(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, kt := range kTypes {
		for _, im := range kCols4[kt.typ] {
			if cpuHas(im.tier) {
				testCols4(t, r, kt.typ, kt.bytes, kt.generic, im.fn)
			}
		}
	}
}

func testCols4(t *testing.T, r *rand.Rand, typ quant.Type, wbytes int, generic VecDot, cols4 func(n int, w, x []byte, xstride int, dst []float32, dstStride int)) {
	for _, nb := range []int{0, 1, 2, 6, 19} {
		n := nb * quant.QKK
		for trial := range 3 {
			w := randBytes(r, nb*wbytes)
			if trial == 0 && nb > 0 {
				if err := quant.Quantize(typ, randGauss(r, n, 0.05), w); err != nil {
					t.Fatal(err)
				}
			}
			xstride := nb*bytesQ8K + 13*trial
			x := randBytes(r, 4*xstride)
			if trial < 2 && nb > 0 {
				for c := range 4 {
					quant.QuantizeQ8_K(randGauss(r, n, 1), x[c*xstride:])
				}
			}
			for _, dstStride := range []int{1, 5} {
				for _, end := range []bool{false, true} {
					gw, fw := guardedCopy(w, end)
					gx, fx := guardedCopy(x[:max(0, 3*xstride+nb*bytesQ8K)], end)
					dst := make([]float32, 3*dstStride+1)
					for i := range dst {
						dst[i] = float32(math.NaN())
					}
					cols4(n, gw, gx, xstride, dst, dstStride)
					fw()
					fx()
					for c := range 4 {
						want := generic(n, w, x[c*xstride:])
						if got := dst[c*dstStride]; !sameFloat(got, want) {
							t.Fatalf("%v nb=%d trial %d column %d: %v, generic %v", typ, nb, trial, c, got, want)
						}
					}
				}
			}
		}
	}
}

func init() {
	// The fuzzers also run the 4-column kernels: activation rows x, x
	// with its scales negated, and x again, against the generic dot.
	kFuzzMore = func(t *testing.T, typ quant.Type, n int, w, x []byte) {
		xs := len(x)
		all := make([]byte, 4*xs)
		for c := range 4 {
			copy(all[c*xs:], x)
			if c == 1 {
				for b := 0; b+bytesQ8K <= xs; b += bytesQ8K {
					all[c*xs+b+3] ^= 0x80
				}
			}
		}
		for _, im := range kCols4[typ] {
			if !cpuHas(im.tier) {
				continue
			}
			var dst [4]float32
			im.fn(n, w, all, xs, dst[:], 1)
			for c := range 4 {
				if want := dotKGenericOf(typ)(n, w, all[c*xs:]); !sameFloat(dst[c], want) {
					t.Fatalf("%v %v 4 columns, column %d: %v, generic %v", typ, im.tier, c, dst[c], want)
				}
			}
		}
	}
}

func dotKGenericOf(typ quant.Type) VecDot {
	for _, kt := range kTypes {
		if kt.typ == typ {
			return kt.generic
		}
	}
	panic(typ)
}

// BenchmarkMatMulK is a prompt-sized product (rows × cols weights, 16
// activation rows; GB/s counts the weights once per activation row): the single-row dot per (row, activation) against the
// kernels that share each weight row's decoding by 4 activations.
func BenchmarkMatMulK(b *testing.B) {
	const tokens = 16
	for _, kt := range kTypes {
		for _, sh := range [][2]int{{576, 1536}, {2048, 2048}, {2048, 8192}} {
			rows, cols := sh[0], sh[1]
			w, _ := kBenchOperands(b, kt.typ, kt.bytes, rows, cols)
			r := rand.New(rand.NewPCG(1, 1))
			x := q8KFromFloats(randGauss(r, tokens*cols, 1))
			rb, xb := cols/quant.QKK*kt.bytes, cols/quant.QKK*bytesQ8K
			dst := make([]float32, tokens*rows)
			for _, im := range kTiers(kt.typ) {
				if im.tier == TierGeneric {
					continue
				}
				b.Run(fmt.Sprintf("%v/%v-dot/%dx%dx%d", kt.typ, im.tier, rows, cols, tokens), func(b *testing.B) {
					kLoop(b, len(w)*tokens, rows*cols*tokens, func() {
						for i := range rows {
							for t := range tokens {
								dst[t*rows+i] = im.fn(cols, w[i*rb:(i+1)*rb], x[t*xb:])
							}
						}
					})
				})
			}
			for _, im := range kCols4[kt.typ] {
				if !cpuHas(im.tier) {
					continue
				}
				b.Run(fmt.Sprintf("%v/%v-cols4/%dx%dx%d", kt.typ, im.tier, rows, cols, tokens), func(b *testing.B) {
					kLoop(b, len(w)*tokens, rows*cols*tokens, func() {
						for i := range rows {
							for t := 0; t < tokens; t += 4 {
								im.fn(cols, w[i*rb:(i+1)*rb], x[t*xb:], xb, dst[t*rows+i:], rows)
							}
						}
					})
				})
			}
		}
	}
}
