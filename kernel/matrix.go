package kernel

import (
	"fmt"
	"sync"
	"unsafe"

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
		m.pk, m.pkGroups = packQ4_0(m.Data, rows, rb), rows/8
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
	if n <= 0 || m.Rows == 0 {
		return
	}
	_ = dst[n*m.Rows-1]
	_ = x[n*m.Cols-1]
	mu.Lock()
	job.m, job.dst, job.x, job.n = m, dst, x, n
	job.rt = nil
	if rt := routeFor(m.Type); rt.ok && !exactFloat.Load() && m.Cols%rt.actElem == 0 {
		job.rt = rt
		job.ab = rt.actBytes(m.Cols)
		if rt.act == quant.F32 && littleEndian {
			job.act = bytesOf(x[:n*m.Cols])
		} else {
			if len(actBuf) < n*job.ab {
				actBuf = make([]byte, n*job.ab)
			}
			job.act = actBuf[:n*job.ab]
			for t := range n {
				rt.quant(x[t*m.Cols:(t+1)*m.Cols], job.act[t*job.ab:(t+1)*job.ab])
			}
		}
		if m.usePacked(rt) {
			nb := m.Cols / 32
			if len(sumBuf) < n*nb {
				sumBuf = make([]int32, n*nb)
			}
			job.sums = sumBuf[:n*nb]
			for t := range n {
				q8Sums(job.act[t*job.ab:(t+1)*job.ab], job.sums[t*nb:(t+1)*nb])
			}
		}
	}
	work := m.Rows * m.Cols * n
	p := pool()
	if work < parallelWork || p.Size() == 1 || serialOnly {
		job.Run(0, 0, m.Rows)
	} else {
		// Chunks of whole 4-row groups, several per goroutine so that a
		// slow one (a busy machine) does not hold up the product.
		grain := max(min(max(m.Rows/(8*p.Size()), 8), 64)&^7, 8)
		p.Do(m.Rows, grain, &job)
	}
	job = matJob{}
	mu.Unlock()
}

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
	job    matJob
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

type matJob struct {
	m      *Matrix
	dst, x []float32
	n      int

	rt   *route // the fast path, or nil for float activations
	act  []byte // n encoded activation rows of ab bytes
	ab   int
	sums []int32 // packed Q4_0: 8·Σx per activation block, or nil
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
