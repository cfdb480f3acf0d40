package quantize

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
)

// QuantizationVersion is ggml's GGML_QNT_VERSION, written to
// general.quantization_version.
const QuantizationVersion = 2

// Options steer a quantization.
type Options struct {
	Type FileType
	// Pure gives every quantizable tensor Type's default type instead of
	// llama.cpp's mix (llama-quantize --pure).
	Pure bool
	// AllowRequantize permits quantizing tensors that are already quantized
	// (their dequantized values are requantized; quality suffers).
	AllowRequantize bool
	// Overrides force types by tensor name (--tensor-type).
	Overrides []Override
	// OutputType and TokenEmbdType, when non-zero, force the type of
	// output.weight and token_embd.weight (llama-quantize
	// --output-tensor-type, --token-embedding-type), mix or not.
	OutputType, TokenEmbdType quant.Type
	// Imatrix maps tensor names to importance weights (one per column, or
	// per column and expert), as read by imatrix.Read.
	Imatrix map[string][]float32
	// Threads quantizing rows in parallel; 0 means runtime.NumCPU().
	Threads int
	// Progress, when set, is called with the number of input elements done
	// and the total. It may be called from several goroutines at once.
	Progress func(done, total int64)
}

// TensorPlan is what happens to one tensor.
type TensorPlan struct {
	Name     string
	Dims     []uint64
	From, To quant.Type
	Fallback bool // the chosen type did not fit the rows (see fallback)
	Imatrix  bool // quantized with importance weights
}

// Converted reports whether the tensor's data change.
func (p *TensorPlan) Converted() bool { return p.From != p.To }

// Plan decides each tensor's output type without writing anything. The
// plans are in output order (llama.cpp's).
func Plan(f *gguf.File, opt Options) ([]TensorPlan, error) {
	if opt.Type.Name == "" {
		return nil, errors.New("no quantization type given")
	}
	c := newChooser(f, opt.Type, opt.Imatrix != nil)
	var plans []TensorPlan
	for _, t := range order(f.Tensors) {
		p := TensorPlan{Name: t.Name, Dims: t.Dims, From: t.Type, To: t.Type}
		if quantizable(t.Name, t.Dims) {
			to := opt.Type.Default
			ne0 := t.Dims[0]
			var err error
			if !opt.Pure && isQuantized(to) {
				if to, err = c.mixType(t.Name, ne0, to); err != nil {
					return nil, err
				}
			}
			// llama.cpp applies the fallback inside the mix only; slm also
			// applies it to --pure (where c392e5094 would abort).
			if to, p.Fallback, err = fallback(t.Name, ne0, to); err != nil {
				return nil, err
			}
			if !p.Fallback {
				for _, o := range opt.Overrides {
					if o.Pattern.MatchString(t.Name) {
						to = o.Type
					}
				}
			}
			if opt.TokenEmbdType != 0 && t.Name == "token_embd.weight" {
				to = opt.TokenEmbdType
			}
			if opt.OutputType != 0 && t.Name == "output.weight" {
				to = opt.OutputType
			}
			if ne0%uint64(to.BlockElems()) != 0 {
				return nil, fmt.Errorf("tensor %s cannot be %s: its rows of %d values are not a multiple of %s's block size %d", t.Name, to, ne0, to, to.BlockElems())
			}
			p.To = to
		}
		if p.Converted() {
			if !quant.CanDequantize(p.From) {
				return nil, fmt.Errorf("tensor %s: cannot convert from type %s", t.Name, p.From)
			}
			if isQuantized(p.From) && !opt.AllowRequantize {
				return nil, fmt.Errorf("tensor %s is already quantized (%s): requantizing loses quality; pass --allow-requantize to do it anyway, or start from an F32/F16/BF16 file", t.Name, p.From)
			}
			if w, ok := opt.Imatrix[t.Name]; ok {
				ne2 := uint64(1)
				if len(t.Dims) > 2 {
					ne2 = t.Dims[2]
				}
				switch {
				case uint64(len(w)) == t.Dims[0]*ne2:
					p.Imatrix = true
				case t.Name != "token_embd.weight":
					return nil, fmt.Errorf("the importance matrix has %d values for %s, but the tensor needs %d: was it made for another model?", len(w), t.Name, t.Dims[0]*ne2)
				}
			}
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// Result summarises a quantization.
type Result struct {
	Plans           []TensorPlan
	BytesIn         uint64 // tensor data read
	BytesOut        uint64 // tensor data written
	FileBytes       uint64 // size of the output file
	NConverted      int    // tensors whose type changed
	NFallback       int    // of which took a fallback type
	NImatrixTensors int    // of which used importance weights
}

// Write quantizes f into out as a GGUF file: f's metadata (with
// general.quantization_version and general.file_type set as llama-quantize
// sets them, and split keys removed) and its tensors in llama.cpp's order.
func Write(f *gguf.File, out io.Writer, opt Options) (*Result, error) {
	plans, err := Plan(f, opt)
	if err != nil {
		return nil, err
	}
	res := &Result{Plans: plans}
	w := gguf.NewWriter(out)
	for _, kv := range f.KVs {
		switch kv.Key {
		case "general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count":
			continue // llama.cpp removes these and (the first two) appends them anew
		}
		w.AddKV(kv.Key, kv.Value)
	}
	w.AddKV("general.quantization_version", uint32(QuantizationVersion))
	w.AddKV("general.file_type", opt.Type.ID)
	var total int64
	for i := range plans {
		p := &plans[i]
		if _, err := w.AddTensor(p.Name, p.Dims, p.To); err != nil {
			return nil, err
		}
		total += int64(elems(p.Dims))
	}
	if _, err := w.WriteHeader(); err != nil {
		return nil, err
	}
	q := &quantizer{threads: opt.Threads, progress: opt.Progress, total: total}
	if q.threads <= 0 {
		q.threads = runtime.NumCPU()
	}
	for i := range plans {
		p := &plans[i]
		t, _ := f.Tensor(p.Name)
		src := f.Data(t)
		res.BytesIn += t.Size
		if !p.Converted() {
			if err := w.WriteTensorData(p.Name, src); err != nil {
				return nil, err
			}
			q.advance(int64(t.Elems()))
			res.BytesOut += t.Size
			continue
		}
		var iw []float32
		if p.Imatrix {
			iw = opt.Imatrix[p.Name]
			res.NImatrixTensors++
		}
		data, err := q.convert(p, src, iw)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", p.Name, err)
		}
		if err := w.WriteTensorData(p.Name, data); err != nil {
			return nil, err
		}
		res.BytesOut += uint64(len(data))
		res.NConverted++
		if p.Fallback {
			res.NFallback++
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	res.FileBytes = w.Size()
	return res, nil
}

// QuantizeFile quantizes the GGUF file in into out, which is written
// atomically (a temporary file renamed into place only when complete).
func QuantizeFile(in, out string, opt Options) (*Result, error) {
	f, err := gguf.Open(in)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := Plan(f, opt); err != nil { // fail before creating anything
		return nil, fmt.Errorf("%s: %w", in, err)
	}
	var res *Result
	err = gguf.WriteFileAtomic(out, func(w io.Writer) error {
		var err error
		res, err = Write(f, w, opt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func elems(dims []uint64) uint64 {
	n := uint64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// quantizer converts tensors with a few goroutines, each taking chunks of
// rows from an atomic counter (as llama-quantize's threads do).
type quantizer struct {
	threads  int
	progress func(done, total int64)
	done     atomic.Int64
	total    int64
	f32      []float32
	out      []byte
}

func (q *quantizer) advance(n int64) {
	d := q.done.Add(n)
	if q.progress != nil {
		q.progress(d, q.total)
	}
}

// convert decodes src (type p.From) and encodes it as p.To, rows in
// parallel. iw is the tensor's importance matrix (nil for none).
func (q *quantizer) convert(p *TensorPlan, src []byte, iw []float32) ([]byte, error) {
	n := int(elems(p.Dims))
	rowLen := int(p.Dims[0])
	if cap(q.f32) < n {
		q.f32 = make([]float32, n)
	}
	x := q.f32[:n]
	outLen, err := p.To.RowBytes(n)
	if err != nil {
		return nil, err
	}
	if cap(q.out) < outLen {
		q.out = make([]byte, outLen)
	}
	out := q.out[:outLen]
	rowBytes, _ := p.To.RowBytes(rowLen)
	inRowBytes, err := p.From.RowBytes(rowLen)
	if err != nil {
		return nil, err
	}
	nRows := n / max(rowLen, 1)
	rowsPerMatrix := nRows
	if len(p.Dims) > 1 {
		rowsPerMatrix = int(p.Dims[1])
	}
	// Chunks of at least 32·512 values, as llama-quantize hands out.
	chunk := max(1, (32*512+rowLen-1)/max(rowLen, 1))
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	work := func() {
		for {
			r0 := int(next.Add(int64(chunk))) - chunk
			if r0 >= nRows {
				return
			}
			r1 := min(r0+chunk, nRows)
			err := quant.Dequantize(p.From, src[r0*inRowBytes:r1*inRowBytes], x[r0*rowLen:r1*rowLen])
			if err == nil {
				if iw == nil {
					err = quant.Quantize(p.To, x[r0*rowLen:r1*rowLen], out[r0*rowBytes:r1*rowBytes])
				} else {
					// rows of one matrix share its importance weights; the
					// chunk may span several matrices (experts).
					for r := r0; r < r1 && err == nil; {
						m := r / rowsPerMatrix
						e := min(r1, (m+1)*rowsPerMatrix)
						err = quant.QuantizeWeighted(p.To, x[r*rowLen:e*rowLen], out[r*rowBytes:e*rowBytes], iw[m*rowLen:(m+1)*rowLen])
						r = e
					}
				}
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			q.advance(int64((r1 - r0) * rowLen))
		}
	}
	threads := min(q.threads, (nRows+chunk-1)/chunk)
	var wg sync.WaitGroup
	for range threads - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return out, firstErr
}

// RMSE is the root-mean-square difference between the weights of ref and
// those of q (dequantized), over the tensors whose type differs between
// the two files: the quantization error of q's weights.
func RMSE(ref, q *gguf.File) (float64, error) {
	var sum float64
	var n int
	for i := range q.Tensors {
		tq := &q.Tensors[i]
		tr, ok := ref.Tensor(tq.Name)
		if !ok {
			return 0, fmt.Errorf("tensor %s is missing from %s", tq.Name, ref.Name)
		}
		if tr.Type == tq.Type {
			continue
		}
		if tr.Elems() != tq.Elems() {
			return 0, fmt.Errorf("tensor %s has %d elements in %s, %d in %s", tq.Name, tr.Elems(), ref.Name, tq.Elems(), q.Name)
		}
		a := make([]float32, tr.Elems())
		b := make([]float32, tq.Elems())
		if err := quant.Dequantize(tr.Type, ref.Data(tr), a); err != nil {
			return 0, err
		}
		if err := quant.Dequantize(tq.Type, q.Data(tq), b); err != nil {
			return 0, err
		}
		for j := range a {
			d := float64(a[j]) - float64(b[j])
			sum += d * d
		}
		n += len(a)
	}
	if n == 0 {
		return 0, nil
	}
	return math.Sqrt(sum / float64(n)), nil
}
