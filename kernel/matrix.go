package kernel

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/slm-dev/slm/internal/hugepage"
	"github.com/slm-dev/slm/internal/parallel"
	"github.com/slm-dev/slm/quant"
)

// Matrix is a weight matrix of Rows rows of Cols elements, stored as ggml
// encodes it: each row is RowBytes bytes of Type blocks, rows back to back.
// A GGUF tensor with dims [n_in, n_out] is a Matrix of n_out rows of n_in.
// The data is typically a zero-copy view into a memory-mapped model file.
type Matrix struct {
	Type     quant.Type
	Data     []byte
	Rows     int
	Cols     int
	RowBytes int

	f32 []float32 // Data seen as float32 (F32 matrices, when aligned)

	pk       []byte // Q4_0: the whole 8-row groups repacked (pack.go), or nil
	pkGroups int
	pkMem    *hugepage.Buffer // owns pk (shared by Slices); keep with pk
}

// NewMatrix wraps encoded weights. It checks that t can be dequantized, that
// cols is a whole number of t's blocks and that data holds rows rows.
func NewMatrix(t quant.Type, data []byte, rows, cols int) (*Matrix, error) {
	if rows < 0 || cols <= 0 {
		return nil, fmt.Errorf("kernel: bad matrix shape %d×%d", rows, cols)
	}
	if !quant.CanDequantize(t) {
		return nil, fmt.Errorf("kernel: weights of type %v are not supported", t)
	}
	rb, err := t.RowBytes(cols)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	if len(data)/rb < rows {
		return nil, fmt.Errorf("kernel: %d×%d %v matrix needs %d bytes, have %d", rows, cols, t, rows*rb, len(data))
	}
	m := &Matrix{Type: t, Data: data[: rows*rb : rows*rb], Rows: rows, Cols: cols, RowBytes: rb}
	m.f32 = asFloat32(t, m.Data)
	if t == quant.F16 {
		f16ToF32Table()
	}
	if t == quant.Q4_0 && q40Packed.x8 != nil && rows >= 8 {
		m.pkMem = packQ4_0(m.Data, rows, rb)
		m.pk, m.pkGroups = m.pkMem.Bytes, rows/8
	}
	reserve(cols)
	if rt := routeFor(t); rt.ok && cols%rt.actElem == 0 {
		reserveAct(rt.actBytes(cols), cols/32)
	}
	return m, nil
}

// asFloat32 views F32 data as []float32 without copying, where the host is
// little-endian and the bytes are 4-aligned; otherwise rows are decoded.
func asFloat32(t quant.Type, b []byte) []float32 {
	if t != quant.F32 || len(b) == 0 || !littleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Slice is the sub-matrix of rows [r0, r1), sharing the data.
func (m *Matrix) Slice(r0, r1 int) *Matrix {
	if r0 < 0 || r1 < r0 || r1 > m.Rows {
		panic(fmt.Sprintf("kernel: rows [%d, %d) of a %d-row matrix", r0, r1, m.Rows))
	}
	s := *m
	s.Data = m.Data[r0*m.RowBytes : r1*m.RowBytes : r1*m.RowBytes]
	s.Rows = r1 - r0
	if m.f32 != nil {
		s.f32 = m.f32[r0*m.Cols : r1*m.Cols : r1*m.Cols]
	}
	s.pk, s.pkGroups = nil, 0
	if m.pk != nil && r0%8 == 0 {
		gb := len(m.pk) / m.pkGroups
		s.pkGroups = (r1 - r0) / 8
		s.pk = m.pk[r0/8*gb : (r0/8+s.pkGroups)*gb]
	}
	return &s
}

// Row dequantizes row r into dst[:Cols].
func (m *Matrix) Row(r int, dst []float32) {
	dst = dst[:m.Cols]
	if m.f32 != nil {
		copy(dst, m.f32[r*m.Cols:(r+1)*m.Cols])
		return
	}
	if err := quant.Dequantize(m.Type, m.Data[r*m.RowBytes:(r+1)*m.RowBytes], dst); err != nil {
		panic("kernel: " + err.Error()) // unreachable: NewMatrix checked type and size
	}
}

// MatVec computes dst (Rows) = m (Rows, Cols) @ x (Cols).
func (m *Matrix) MatVec(dst, x []float32) { m.MatMul(dst, x, 1) }

// MatMul computes dst (n, Rows) = x (n, Cols) @ mᵀ: for each of the n
// row-major input vectors x[t] the output row dst[t] = m @ x[t].
//
// By default the activations are first encoded once, as llama.cpp's CPU
// path does (quantized to Q8_0/Q8_1/Q8_K for quantized weights, rounded to
// fp16/bf16 for F16/BF16 weights), and each weight row is dotted with them by
// the best kernel of the active tier. Weight types without such a kernel, and
// every product while SetExactFloat(true), dequantize each weight row once
// and dot it in float32 with all n inputs. Either way a batch costs one pass
// over the weights, and large products are split over the worker pool in
// chunks of rows.
func (m *Matrix) MatMul(dst, x []float32, n int) {
	matMul([maxFused]*Matrix{m}, [maxFused][]float32{dst}, 1, x, n)
}

// MatMul2 is a.MatMul(da, x, n) and b.MatMul(db, x, n) in one product: the
// activations are encoded once and the rows of both matrices are split over
// the worker pool in one job. The results are those of the two MatMuls.
func MatMul2(a, b *Matrix, da, db, x []float32, n int) {
	if !fusable(a, b) {
		a.MatMul(da, x, n)
		b.MatMul(db, x, n)
		return
	}
	matMul([maxFused]*Matrix{a, b}, [maxFused][]float32{da, db}, 2, x, n)
}

// MatMul3 is MatMul2 for three matrices.
func MatMul3(a, b, c *Matrix, da, db, dc, x []float32, n int) {
	if !fusable(a, b) || !fusable(a, c) {
		a.MatMul(da, x, n)
		b.MatMul(db, x, n)
		c.MatMul(dc, x, n)
		return
	}
	matMul([maxFused]*Matrix{a, b, c}, [maxFused][]float32{da, db, dc}, 3, x, n)
}

// maxFused is the most matrices one product covers.
const maxFused = 3

// fusable reports whether a and b can share one product: the same encoding
// of the same activations, the same packing, and whole 8-row groups (so
// that chunks of the joint row range split into the chunks one matrix's
// product would use).
func fusable(a, b *Matrix) bool {
	return a.Type == b.Type && a.Cols == b.Cols && a.Rows%8 == 0 && b.Rows%8 == 0 &&
		(a.pk == nil) == (b.pk == nil) && (a.f32 == nil) == (b.f32 == nil)
}

// matMul computes ds[i] = x @ ms[i]ᵀ for i < k, matrices that are fusable
// with each other.
func matMul(ms [maxFused]*Matrix, ds [maxFused][]float32, k int, x []float32, n int) {
	m := ms[0]
	if n <= 0 {
		return
	}
	rows := 0
	for i := range k {
		if ms[i].Rows > 0 {
			_ = ds[i][n*ms[i].Rows-1]
		}
		rows += ms[i].Rows
	}
	if rows == 0 {
		return
	}
	_ = x[n*m.Cols-1]
	mu.Lock()
	job := &jobs.parts[0]
	job.m, job.dst, job.x, job.n = m, ds[0], x, n
	job.rt, job.cols4 = nil, nil
	if rt := routeFor(m.Type); rt.ok && !exactFloat.Load() && m.Cols%rt.actElem == 0 {
		job.rt = rt
		if n >= 4 && cols4For != nil {
			job.cols4 = cols4For(m.Type, rt.tier)
		}
		job.ab = rt.actBytes(m.Cols)
		if rt.act == quant.F32 && littleEndian {
			job.act = bytesOf(x[:n*m.Cols])
		} else {
			if len(actBuf) < n*job.ab {
				actBuf = make([]byte, n*job.ab)
			}
			job.act = actBuf[:n*job.ab]
			job.quant = true
		}
		if m.usePacked(rt) {
			nb := m.Cols / 32
			if len(sumBuf) < n*nb {
				sumBuf = make([]int32, n*nb)
			}
			job.sums = sumBuf[:n*nb]
		}
		// Encode the activations, each row on its own (so a row's
		// encoding does not depend on the batch), split over the pool when
		// there are enough of them.
		if job.quant || job.sums != nil {
			if p := pool(); n >= 2 && n*m.Cols >= parallelQuant && p.Size() > 1 && !serialOnly {
				p.Do(n, max(1, n/(4*p.Size())), actJob{job})
			} else {
				actJob{job}.Run(0, 0, n)
			}
		}
	}
	jobs.k = k
	jobs.off[0] = 0
	for i := range k {
		if i > 0 {
			jobs.parts[i] = *job
			jobs.parts[i].m, jobs.parts[i].dst = ms[i], ds[i]
		}
		jobs.off[i+1] = jobs.off[i] + ms[i].Rows
	}
	work := rows * m.Cols * n
	p := pool()
	if work < parallelWork || p.Size() == 1 || serialOnly {
		jobs.Run(0, 0, rows)
	} else {
		p.Do(rows, grainFor(rows, m.RowBytes*n, p.Size()), &jobs)
	}
	jobs = multiJob{}
	mu.Unlock()
}

// multiJob is the product of up to maxFused matrices with the same
// activations, their rows numbered one after another.
type multiJob struct {
	parts [maxFused]matJob
	off   [maxFused + 1]int // parts[i] has rows [off[i], off[i+1])
	k     int
}

func (j *multiJob) Run(worker, r0, r1 int) {
	for i := range j.k {
		a, b := max(r0, j.off[i]), min(r1, j.off[i+1])
		if a < b {
			j.parts[i].Run(worker, a-j.off[i], b-j.off[i])
		}
	}
}

// grainFor is the chunk of rows a pooled product hands out at a time, for a
// product of rows rows that each cost rowCost weight bytes times inputs:
// whole 8-row groups (the packed and 4-row kernels' unit), about four chunks
// per goroutine so that a slow one (a busy machine) does not hold up the
// product, but at least minChunkCost of work each, since claiming a chunk
// costs a cache-line transfer between cores, and at most 256 rows.
func grainFor(rows, rowCost, threads int) int {
	g := (rows + 4*threads - 1) / (4 * threads)
	g = max(g, minChunkCost/max(rowCost, 1))
	g = min(g, 256)
	return max((g+7)&^7, 8)
}

// minChunkCost is the least work in a chunk of a pooled product, in weight
// bytes times inputs.
const minChunkCost = 16 << 10

// parallelWork is the number of multiply-adds below which a product runs on
// the calling goroutine alone (waking a worker costs a few microseconds).
const parallelWork = 1 << 15

// serialOnly keeps every product on the calling goroutine (single-thread
// kernel benchmarks).
var serialOnly bool

// The kernel's shared state: one product runs at a time (the pool runs one
// job at a time anyway), which lets the per-worker dequantization buffers be
// reused without allocating.
var (
	mu     sync.Mutex
	jobs   multiJob
	bufs   [][]float32 // per worker, at least maxCols long
	actBuf []byte      // the encoded activations of the current product
	sumBuf []int32     // their block sums, for the packed Q4_0 kernels
)

func pool() *parallel.Pool { return parallel.Default() }

// Threads is the number of goroutines that run a large product.
func Threads() int { return pool().Size() }

// reserve makes every worker's buffer hold n values, so that products over
// rows of n elements allocate nothing.
func reserve(n int) {
	mu.Lock()
	defer mu.Unlock()
	if bufs == nil {
		bufs = make([][]float32, pool().Size())
	}
	for w := range bufs {
		if len(bufs[w]) < n {
			bufs[w] = make([]float32, n)
		}
	}
}

// reserveAct makes the activation buffer hold one encoded row of n bytes,
// so that single-vector products allocate nothing.
func reserveAct(n, blocks int) {
	mu.Lock()
	defer mu.Unlock()
	if len(actBuf) < n {
		actBuf = make([]byte, n)
	}
	if len(sumBuf) < blocks {
		sumBuf = make([]int32, blocks)
	}
}

// parallelQuant is the number of activation values below which they are
// encoded on the calling goroutine alone.
const parallelQuant = 1 << 13

// actJob encodes rows [t0, t1) of a product's activations (and their block
// sums for the packed kernels).
type actJob struct{ j *matJob }

func (a actJob) Run(_, t0, t1 int) {
	j := a.j
	cols := j.m.Cols
	for t := t0; t < t1; t++ {
		act := j.act[t*j.ab : (t+1)*j.ab]
		if j.quant {
			j.rt.quant(j.x[t*cols:(t+1)*cols], act)
		}
		if j.sums != nil {
			nb := cols / 32
			q8Sums(act, j.sums[t*nb:(t+1)*nb])
		}
	}
}

type matJob struct {
	m      *Matrix
	dst, x []float32
	n      int
	quant  bool // act must be encoded from x

	rt   *route // the fast path, or nil for float activations
	act  []byte // n encoded activation rows of ab bytes
	ab   int
	sums []int32 // packed Q4_0: 8·Σx per activation block, or nil

	cols4 cols4Fn // one weight row × 4 activation rows, or nil
}

// cols4Fn computes, for c < 4, dst[c*dstStride] = the dot of the weight row
// w (n elements) with the encoded activation row x[c*xstride:], bit for bit
// the route's VecDot of each column.
type cols4Fn = func(n int, w, x []byte, xstride int, dst []float32, dstStride int)

// cols4For gives the 4-column kernel of weight type t at exactly the tier
// of its dot (nil if none); set by the architectures that have them.
var cols4For func(t quant.Type, tier Tier) cols4Fn

// rowsCols4Fn computes, for c < 4 and r < rows = len(dst)-3*dstStride,
// dst[c*dstStride+r] = the dot of weight row r (w[r*stride:], n elements)
// with the encoded activation row x[c*xstride:], bit for bit the route's
// VecDot of each pair.
type rowsCols4Fn = func(n int, w []byte, stride int, x []byte, xstride int, dst []float32, dstStride int)

// q8Cols4 lists the Q8_0 rows × 4 activations kernels by tier; set by the
// architectures that have them.
var q8Cols4 []impl[rowsCols4Fn]

// q8Cols4For is the Q8_0 rows × 4 activations kernel of exactly the given
// tier (a route's dot tier), or nil.
func q8Cols4For(tier Tier) rowsCols4Fn {
	for _, im := range q8Cols4 {
		if im.tier == tier {
			return im.fn
		}
	}
	return nil
}

// Run computes output rows [r0, r1) for all n inputs.
func (j *matJob) Run(worker, r0, r1 int) {
	m, n := j.m, j.n
	if j.rt != nil {
		// Tiles of rows whose weights stay in cache while every input
		// passes (when one goroutine runs the whole product, and within
		// large chunks).
		tile := r1 - r0
		if n > 1 {
			tile = min(max(tileBytes/m.RowBytes, 8), 64) &^ 7
		}
		for a := r0; a < r1; a += tile {
			j.runFast(a, min(a+tile, r1))
		}
		return
	}
	j.runFloat(worker, r0, r1)
}

// tileBytes is the weight bytes of a tile of rows in a batched product.
const tileBytes = 64 << 10

// runFast computes output rows [r0, r1) for all n inputs on the fast path.
func (j *matJob) runFast(r0, r1 int) {
	m, n, rows, cols, rt := j.m, j.n, j.m.Rows, j.m.Cols, j.rt
	if j.sums != nil {
		j.runPacked(r0, r1)
		return
	}
	w := m.Data[r0*m.RowBytes : r1*m.RowBytes]
	t0 := 0
	if c4 := j.cols4; c4 != nil && n >= 4 {
		// Each weight row's decoding shared by 4 activation rows at a
		// time; the tile's weights stay in cache for every group.
		ab, rb := j.ab, m.RowBytes
		for ; t0+4 <= n; t0 += 4 {
			a := j.act[t0*ab : (t0+4)*ab]
			for i := range r1 - r0 {
				c4(cols, w[i*rb:(i+1)*rb], a, ab, j.dst[t0*rows+r0+i:], rows)
			}
		}
	}
	if f := q8Cols4For(rt.tier); f != nil && n >= 4 && m.Type == quant.Q8_0 {
		// Each weight block load shared by 4 activation rows.
		ab := j.ab
		for ; t0+4 <= n; t0 += 4 {
			f(cols, w, m.RowBytes, j.act[t0*ab:(t0+4)*ab], ab, j.dst[t0*rows+r0:(t0+3)*rows+r1], rows)
		}
	}
	if rt.rows2 != nil {
		for ; t0+2 <= n; t0 += 2 {
			rt.rows2(cols, w, m.RowBytes, j.act[t0*j.ab:(t0+1)*j.ab], j.act[(t0+1)*j.ab:(t0+2)*j.ab],
				j.dst[t0*rows+r0:t0*rows+r1], j.dst[(t0+1)*rows+r0:(t0+1)*rows+r1])
		}
	}
	for t := t0; t < n; t++ {
		a := j.act[t*j.ab : (t+1)*j.ab]
		out := j.dst[t*rows+r0 : t*rows+r1]
		if rt.rows != nil {
			rt.rows(cols, w, m.RowBytes, a, out)
			continue
		}
		for i := range out {
			out[i] = rt.dot(cols, w[i*m.RowBytes:(i+1)*m.RowBytes], a)
		}
	}
}

// runFloat computes output rows [r0, r1) for all n inputs with float
// activations on dequantized rows.
func (j *matJob) runFloat(worker, r0, r1 int) {
	m, n, rows, cols := j.m, j.n, j.m.Rows, j.m.Cols
	if m.Type == quant.F16 && n == 1 { // decode: widen on the fly
		tab := f16ToF32Table()
		for r := r0; r < r1; r++ {
			j.dst[r] = dotF16(tab, m.Data[r*m.RowBytes:(r+1)*m.RowBytes], j.x)
		}
		return
	}
	for r := r0; r < r1; r++ {
		var w []float32
		if m.f32 != nil {
			w = m.f32[r*cols : (r+1)*cols]
		} else {
			w = bufs[worker][:cols]
			if err := quant.Dequantize(m.Type, m.Data[r*m.RowBytes:(r+1)*m.RowBytes], w); err != nil {
				panic("kernel: " + err.Error()) // unreachable: NewMatrix checked type and size
			}
		}
		for t := range n {
			j.dst[t*rows+r] = Dot(w, j.x[t*cols:(t+1)*cols])
		}
	}
}
