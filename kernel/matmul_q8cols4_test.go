package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

// TestMatMulQ8Cols4 checks that the batched Q8_0 products that use the
// rows × 4-activation kernel (groups of 4 activation rows, the rest by the
// existing kernels) give bit for bit what the path without it gives, and
// what the single dot gives for each element, for MatMul and the fused
// MatMul3, pooled or not.
func TestMatMulQ8Cols4(t *testing.T) {
	ran := false
	for _, im := range q8Cols4 {
		if cpuHas(im.tier) {
			ran = true
			t.Run(im.tier.String(), func(t *testing.T) { testMatMulQ8Cols4(t, im.tier) })
		}
	}
	if !ran {
		t.Skip("no Q8_0 4-activation kernel in this build")
	}
}

func testMatMulQ8Cols4(t *testing.T, tier Tier) {
	rnd := rand.New(rand.NewPCG(43, 44))
	defer func() { serialOnly = false }()
	prev := setForcedTier(tier)
	defer setForcedTier(prev)
	typ := quant.Q8_0
	rt := routeFor(typ)
	if !rt.ok || rt.tier != tier || q8Cols4For(tier) == nil {
		t.Fatalf("Q8_0: dot tier %v, 4-activation kernel tier %v", rt.tier, tier)
	}
	for _, sh := range [][2]int{{24, 512}, {72, 1536}, {13, 96}, {15, 64}, {14, 160}} {
		cols := sh[1]
		var ms [3]*Matrix
		for i, rows := range []int{sh[0], 16, 40} {
			if sh[0]%8 != 0 && i > 0 {
				rows = sh[0] + 2*i // odd row counts: not fusable, run one by one
			}
			m, err := NewMatrix(typ, randomWeights(rnd, typ, rows*cols), rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			ms[i] = m
		}
		checkCols4Products(t, rnd, ms, rt.dot, quant.Q8_0, []int{1, 2, 3, 4, 5, 7, 8, 37},
			func() func() { saved := q8Cols4; q8Cols4 = nil; return func() { q8Cols4 = saved } },
			"Q8_0")
	}
}

// TestQ8Cols4Kernels checks each Q8_0 rows × 4-activation kernel directly
// against dotQ8_0Generic for every pair: row counts that leave each
// remainder of the 4- and 2-row kernels, padded and unpadded strides,
// weights and activations ending at an inaccessible page, and guard values
// between and after the 4 output columns. Where the kernel's tier has no
// sign trick (the VNNI one, for whole groups of 4 rows) the quants also
// take -128.
func TestQ8Cols4Kernels(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, im := range q8Cols4 {
		if !cpuHas(im.tier) {
			continue
		}
		for _, nb := range []int{1, 2, 3, 8, 19} {
			n := 32 * nb
			for _, rows := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13} {
				// -128 only where the 4-row VNNI kernel covers every row
				// (the remainders go to the AVX2 kernels).
				full := im.tier >= TierAVX512VNNI && rows%4 == 0
				for _, pad := range []int{0, 6} {
					stride, xstride := nb*34+pad, nb*34+2*pad
					wb := guarded(t, (rows-1)*stride+nb*34)
					xb := guarded(t, 3*xstride+nb*34)
					for _, m := range []struct {
						b            []byte
						rows, stride int
					}{{wb, rows, stride}, {xb, 4, xstride}} {
						for i := range m.b {
							m.b[i] = byte(r.Uint32()) // padding
						}
						for i := range m.rows {
							row := m.b[i*m.stride : i*m.stride+nb*34]
							copy(row, randomWeights(r, quant.Q8_0, n))
							for range full8(full, nb) {
								if j := r.IntN(len(row)); j%34 >= 2 {
									row[j] = 0x80
								}
							}
						}
					}
					dstStride := rows + 3
					dst := make([]float32, 3*dstStride+rows+2)
					for i := range dst {
						dst[i] = 42
					}
					im.fn(n, wb, stride, xb, xstride, dst[:3*dstStride+rows], dstStride)
					for c := range 4 {
						for i := range dstStride {
							k := c*dstStride + i
							if i >= rows {
								if k < len(dst) && dst[k] != 42 {
									t.Fatalf("%v nb=%d rows=%d: wrote dst[%d] outside the output", im.tier, nb, rows, k)
								}
								continue
							}
							want := dotQ8_0Generic(n, wb[i*stride:], xb[c*xstride:])
							if !sameBits(dst[k], want) {
								t.Fatalf("%v nb=%d rows=%d pad=%d row %d col %d: got %g, want %g", im.tier, nb, rows, pad, i, c, dst[k], want)
							}
						}
					}
				}
			}
		}
	}
}

// BenchmarkMatMulQ8Cols4 is a prompt's Q8_0 product (128 activation rows)
// on one goroutine with each tier's rows × 4-activation kernel; cpu-ns/op
// is the thread's CPU time.
//
//	go test ./kernel/ -run '^$' -bench MatMulQ8Cols4 -benchtime 20x
func BenchmarkMatMulQ8Cols4(b *testing.B) {
	const n = 128
	rnd := rand.New(rand.NewPCG(7, 8))
	serialOnly = true
	defer func() { serialOnly = false }()
	typ := quant.Q8_0
	for _, sh := range [][2]int{{576, 1536}, {1536, 576}, {896, 4864}, {4864, 896}} {
		rows, cols := sh[0], sh[1]
		m, err := NewMatrix(typ, randomWeights(rnd, typ, rows*cols), rows, cols)
		if err != nil {
			b.Fatal(err)
		}
		x, dst := randVec(rnd, n*cols), make([]float32, n*rows)
		for _, im := range q8Cols4 {
			if !cpuHas(im.tier) {
				continue
			}
			b.Run(fmt.Sprintf("%dx%dx%d/%v", rows, cols, n, im.tier), func(b *testing.B) {
				prev := setForcedTier(im.tier)
				defer setForcedTier(prev)
				kLoop(b, len(m.Data)*n, rows*cols*n, func() { m.MatMul(dst, x, n) })
			})
		}
	}
}

// full8 is how many quants of an nb-block row to set to -128: a quarter of
// them if full, else none.
func full8(full bool, nb int) int {
	if !full {
		return 0
	}
	return 8 * nb
}

// FuzzQ8Cols4 checks every tier's Q8_0 rows × 4-activation kernel against
// dotQ8_0Generic on fuzzer-chosen weight quants, row counts and lengths
// (activations from the Q8_0 quantizer).
func FuzzQ8Cols4(f *testing.F) {
	f.Add(uint8(4), uint16(3), []byte{1, 2, 3}, int64(1))
	f.Add(uint8(7), uint16(18), []byte{0xff, 0x81, 0x7f, 0}, int64(7))
	f.Add(uint8(13), uint16(1), []byte{0x7f}, int64(3))
	f.Fuzz(func(t *testing.T, nrows uint8, nblocks uint16, wbytes []byte, seed int64) {
		rows, nb := int(nrows)%24+1, int(nblocks)%64+1
		n := 32 * nb
		r := rand.New(rand.NewPCG(uint64(seed), 2))
		wb := randomWeights(r, quant.Q8_0, rows*n)
		for i := range wb {
			if len(wbytes) > 0 && i%34 >= 2 {
				// fuzzer bytes into the quants, in the quantizers' [-127, 127]
				if wb[i] = wbytes[i%len(wbytes)]; wb[i] == 0x80 {
					wb[i] = 0x81
				}
			}
		}
		xb := encodeAct(t, quant.Q8_0, testFloats(r, 4*n, int(seed&3)))
		dst := make([]float32, 4*rows)
		for _, im := range q8Cols4 {
			if !cpuHas(im.tier) {
				continue
			}
			clear(dst)
			im.fn(n, wb, nb*34, xb, nb*34, dst, rows)
			for c := range 4 {
				for i := range rows {
					want := dotQ8_0Generic(n, wb[i*nb*34:], xb[c*nb*34:])
					if got := dst[c*rows+i]; !sameBits(got, want) {
						t.Fatalf("%v rows=%d nb=%d row %d col %d: %v, generic %v", im.tier, rows, nb, i, c, got, want)
					}
				}
			}
		}
	})
}
