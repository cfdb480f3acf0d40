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
	reserve(cols)
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
// row-major input vectors x[t] the output row dst[t] = m @ x[t]. Each weight
// row is dequantized once and dotted with all n inputs, so a batch costs one
// pass over the weights. Large products are split over the worker pool by
// rows.
func (m *Matrix) MatMul(dst, x []float32, n int) {
	if n <= 0 || m.Rows == 0 {
		return
	}
	_ = dst[n*m.Rows-1]
	_ = x[n*m.Cols-1]
	mu.Lock()
	job.m, job.dst, job.x, job.n = m, dst, x, n
	work := m.Rows * m.Cols * n
	p := pool()
	if work < parallelWork || p.Size() == 1 {
		job.Run(0, 0, m.Rows)
	} else {
		grain := min(max(m.Rows/(8*p.Size()), 4), 256)
		p.Do(m.Rows, grain, &job)
	}
	job = matJob{}
	mu.Unlock()
}

// parallelWork is the number of multiply-adds below which a product runs on
// the calling goroutine alone (waking a worker costs a few microseconds).
const parallelWork = 1 << 15

// The kernel's shared state: one product runs at a time (the pool runs one
// job at a time anyway), which lets the per-worker dequantization buffers be
// reused without allocating.
var (
	mu   sync.Mutex
	job  matJob
	bufs [][]float32 // per worker, at least maxCols long
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

type matJob struct {
	m      *Matrix
	dst, x []float32
	n      int
}

// Run computes output rows [r0, r1) for all n inputs.
func (j *matJob) Run(worker, r0, r1 int) {
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
