package kernel

import (
	"github.com/slm-dev/slm/internal/hugepage"
	"github.com/slm-dev/slm/quant"
)

// Q4_0 weights repacked at load into row-interleaved blocks, as llama.cpp
// does on x86 (its q4_0_8x8 layout, ours differs in detail): for each group
// of 8 rows and each block b, 144 bytes
//
//	8 fp16 scales, rows in the order 0 2 4 6 1 3 5 7
//	the 16 quant bytes of rows 0|1, 2|3, 4|5, 6|7 (32 bytes per pair)
//
// so that an 8-row kernel streams one contiguous buffer and the scales
// come in the order its reduction tree leaves the rows in. The Matrix keeps
// its Data (Row, Slice, the exact float mode and the rows past the last
// whole group use it); the packed copy only feeds the fast path, and its
// results are those of dotQ4_0Generic row by row.

const q4PackBlock = 16 + 4*32

// q40Packed is the packed Q4_0 kernel set, filled in by an architecture's
// init when the CPU has one; tier is the tier of the dot it reproduces.
var q40Packed struct {
	tier Tier
	// x8 computes 8 rows (one packed group of nb blocks) against one Q8_0
	// activation row x with sums[b] = 8·Σ x of block b.
	x8 func(w *byte, nb int, x *byte, sums *int32, dst *float32)
	// x8x2 does the same for the activation rows x and x+xstride (sums at
	// sums and sums+nb), writing dst[0:8] and dst[dstride:dstride+8].
	x8x2 func(w *byte, nb int, x *byte, xstride int, sums *int32, dst *float32, dstride int)
}

var q4PackOrder = [8]int{0, 2, 4, 6, 1, 3, 5, 7}

// packQ4_0 repacks the whole groups of 8 rows of a Q4_0 matrix, into huge
// pages when the copy is large (decode streams it every token; see package
// hugepage).
func packQ4_0(data []byte, rows, rowBytes int) *hugepage.Buffer {
	groups, nb := rows/8, rowBytes/18
	buf := hugepage.New(groups*nb*q4PackBlock, hugepage.Size)
	out := buf.Bytes
	for g := range groups {
		for b := range nb {
			dst := out[(g*nb+b)*q4PackBlock:][:q4PackBlock]
			for k, r := range q4PackOrder {
				src := data[(8*g+r)*rowBytes+18*b:]
				copy(dst[2*k:2*k+2], src[:2])
			}
			for r := range 8 {
				src := data[(8*g+r)*rowBytes+18*b:]
				copy(dst[16+16*r:16+16*r+16], src[2:18])
			}
		}
	}
	return buf
}

// q8Sums sets sums[b] = 8·Σ q over each Q8_0 block of x (nb blocks).
func q8Sums(x []byte, sums []int32) {
	for b := range sums {
		var s int32
		for _, q := range x[34*b+2 : 34*b+34] {
			s += int32(int8(q))
		}
		sums[b] = 8 * s
	}
}

// usePacked reports whether m's product runs on the packed Q4_0 kernels
// with the route rt.
func (m *Matrix) usePacked(rt *route) bool {
	return m.pk != nil && q40Packed.x8 != nil && rt.tier == q40Packed.tier && m.Type == quant.Q4_0
}

// runPacked computes output rows [r0, r1) (r0 a multiple of 8) for all n
// inputs on the packed groups, and the rows past them with the row dot.
func (j *matJob) runPacked(r0, r1 int) {
	m, n, rows, cols := j.m, j.n, j.m.Rows, j.m.Cols
	nb := cols / 32
	gb := nb * q4PackBlock
	gEnd := min(r1, m.pkGroups*8)
	for r := r0; r+8 <= gEnd; r += 8 {
		w := &m.pk[r/8*gb]
		t := 0
		for ; t+2 <= n; t += 2 {
			q40Packed.x8x2(w, nb, &j.act[t*j.ab], j.ab, &j.sums[t*nb], &j.dst[t*rows+r], rows)
		}
		for ; t < n; t++ {
			q40Packed.x8(w, nb, &j.act[t*j.ab], &j.sums[t*nb], &j.dst[t*rows+r])
		}
	}
	for r := max(r0, gEnd); r < r1; r++ {
		wr := m.Data[r*m.RowBytes : (r+1)*m.RowBytes]
		for t := range n {
			j.dst[t*rows+r] = j.rt.dot(cols, wr, j.act[t*j.ab:(t+1)*j.ab])
		}
	}
}
