// Package synth writes GGUF models with random weights and the real shape
// of known models (SmolLM2, Qwen2.5, Llama 3.2, TinyLlama, GPT-2), so that
// benchmarks and tests need no download. The files follow what
// convert_hf_to_gguf.py and llama-quantize write — the same tensor names,
// shapes, types, order and metadata — with a synthetic byte-level BPE
// vocabulary, so llama.cpp loads them too.
//
// Weights are normal with standard deviation 0.02, norm weights are 1 and
// norm biases 0, so activations stay finite. Large K-quant tensors are made
// of blocks drawn from a pool of exactly encoded random blocks, because
// the K-quant encoders are slow (see Options.Exact). Tensors are generated and
// quantized in parallel, chunk by chunk, and streamed to the output: memory
// stays at a few megabytes per thread whatever the model's size. The
// output depends on the options and the seed only, not on the number of
// threads.
package synth

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
	"github.com/slm-dev/slm/quantize"
)

// Std is the standard deviation of the random weights.
const Std = 0.02

// MaxVocab bounds the vocabulary size.
const MaxVocab = 1 << 20

// Options describe the file to write.
type Options struct {
	// Shape is the model's architecture, normally from Lookup; tests shrink
	// its dimensions.
	Shape Shape
	// Type is a llama-quantize target: F16, BF16, F32, Q8_0, Q4_0, Q4_1,
	// Q5_0, Q5_1, Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K, or the
	// aliases Q3_K, Q4_K, Q5_K of the _M mixes (case-insensitive). Mixes
	// choose each tensor's type as llama-quantize does (package quantize).
	Type string
	// Pure gives every quantized tensor the type's base type, like
	// llama-quantize --pure (rows that do not fit it still fall back).
	Pure bool
	// Vocab is the vocabulary size; 0 means the shape's own.
	Vocab int
	// Seed picks the random weights and merges.
	Seed uint64
	// Threads generate and quantize chunks in parallel; 0 means
	// runtime.NumCPU().
	Threads int
	// Exact encodes every value of large K-quant tensors too, instead of
	// drawing their blocks from a pool (see poolBlocks): slower, the same
	// for benchmarks.
	Exact bool
	// Progress, if set, is called (from one goroutine) with the elements
	// written so far and their total.
	Progress func(done, total int64)
}

// Tensor is one tensor of the file.
type Tensor struct {
	Name     string
	Dims     []uint64   // ggml order: Dims[0] is the row length
	Type     quant.Type // type in the file
	Fallback bool       // the mix's type did not fit the rows (llama.cpp's fallback)

	fill  fill
	shape *Shape     // for fillRopeFreqs
	pool  *blockPool // set when the tensor is drawn from a pool of blocks
}

// Elems is the number of values in the tensor.
func (t *Tensor) Elems() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// fill is how a tensor's values are made.
type fill int

const (
	fillGauss     fill = iota // N(0, Std)
	fillOnes                  // norm weights
	fillZeros                 // norm biases
	fillRopeFreqs             // Llama 3 rope frequency factors
)

// Result summarizes a written file.
type Result struct {
	Shape     Shape
	FileType  quantize.FileType
	NVocab    int
	Tensors   []Tensor // in file order
	Params    uint64   // values in all tensors
	DataBytes uint64   // tensor data
	FileBytes uint64   // the whole file
	Duration  time.Duration
}

// TypeCounts counts the tensors of each type, as "Q4_K: 12, Q6_K: 3, …".
func (r *Result) TypeCounts() string {
	counts := map[string]int{}
	for _, t := range r.Tensors {
		counts[t.Type.String()]++
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", n, counts[n])
	}
	return b.String()
}

// spec is a planned file: its tensors (in file order) and metadata.
type spec struct {
	shape   Shape
	ft      quantize.FileType
	vocab   *Vocab
	tensors []Tensor
}

// Plan decides the file's tensors and their types without generating any
// weights: the tensors in file order.
func Plan(opt Options) ([]Tensor, error) {
	sp, err := plan(opt, false)
	if err != nil {
		return nil, err
	}
	return sp.tensors, nil
}

func plan(opt Options, withVocab bool) (*spec, error) {
	s := opt.Shape
	if opt.Vocab != 0 {
		s.NVocab = opt.Vocab
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("shape %s: %w", s.Like, err)
	}
	if s.NVocab < 257 || s.NVocab > MaxVocab {
		return nil, fmt.Errorf("vocabulary size %d: want 257 (256 bytes and %s) to %d", s.NVocab, EOT, MaxVocab)
	}
	ft, err := quantize.ParseFileType(opt.Type)
	if err != nil {
		return nil, err
	}
	sp := &spec{shape: s, ft: ft}
	src := sourceTensors(&s, ft.Default)
	if sp.tensors, err = chooseTypes(&s, src, ft, opt.Pure); err != nil {
		return nil, err
	}
	if withVocab {
		if sp.vocab, err = NewVocab(s.NVocab, opt.Seed); err != nil {
			return nil, err
		}
	}
	return sp, nil
}

// sourceTensors lists the tensors of the model as convert_hf_to_gguf.py
// writes them: 2-D weights in base (F16, or F32/BF16 for those targets),
// everything else — norms, biases, position embeddings, rope factors — in
// F32.
func sourceTensors(s *Shape, target quant.Type) []Tensor {
	base := quant.F16
	if target == quant.F32 || target == quant.BF16 {
		base = target
	}
	e, v, ff := uint64(s.NEmbd), uint64(s.NVocab), uint64(s.NFF)
	hd := uint64(s.HeadDim())
	q, kv := uint64(s.NHead)*hd, uint64(s.NHeadKV)*hd
	var ts []Tensor
	w := func(name string, dims ...uint64) {
		ts = append(ts, Tensor{Name: name, Dims: dims, Type: base, fill: fillGauss})
	}
	f32 := func(name string, f fill, dims ...uint64) {
		ts = append(ts, Tensor{Name: name, Dims: dims, Type: quant.F32, fill: f})
	}
	w("token_embd.weight", e, v)
	switch s.Arch {
	case "gpt2":
		f32("position_embd.weight", fillGauss, e, uint64(s.NCtx))
		for l := range s.NLayer {
			p := fmt.Sprintf("blk.%d.", l)
			f32(p+"attn_norm.weight", fillOnes, e)
			f32(p+"attn_norm.bias", fillZeros, e)
			w(p+"attn_qkv.weight", e, 3*e)
			f32(p+"attn_qkv.bias", fillGauss, 3*e)
			w(p+"attn_output.weight", e, e)
			f32(p+"attn_output.bias", fillGauss, e)
			f32(p+"ffn_norm.weight", fillOnes, e)
			f32(p+"ffn_norm.bias", fillZeros, e)
			w(p+"ffn_up.weight", e, ff)
			f32(p+"ffn_up.bias", fillGauss, ff)
			w(p+"ffn_down.weight", ff, e)
			f32(p+"ffn_down.bias", fillGauss, e)
		}
		f32("output_norm.weight", fillOnes, e)
		f32("output_norm.bias", fillZeros, e)
		w("output.weight", e, v)
	case "phi3":
		for l := range s.NLayer {
			p := fmt.Sprintf("blk.%d.", l)
			f32(p+"attn_norm.weight", fillOnes, e)
			w(p+"attn_qkv.weight", e, q+2*kv)
			w(p+"attn_output.weight", q, e)
			f32(p+"ffn_norm.weight", fillOnes, e)
			w(p+"ffn_up.weight", e, 2*ff) // gate, then up
			w(p+"ffn_down.weight", ff, e)
		}
		f32("output_norm.weight", fillOnes, e)
		if !s.Tied {
			w("output.weight", e, v)
		}
	case "gemma2", "gemma3":
		for l := range s.NLayer {
			p := fmt.Sprintf("blk.%d.", l)
			f32(p+"attn_norm.weight", fillOnes, e)
			w(p+"attn_q.weight", e, q)
			w(p+"attn_k.weight", e, kv)
			w(p+"attn_v.weight", e, kv)
			if s.Arch == "gemma3" {
				f32(p+"attn_q_norm.weight", fillOnes, hd)
				f32(p+"attn_k_norm.weight", fillOnes, hd)
			}
			w(p+"attn_output.weight", q, e)
			f32(p+"post_attention_norm.weight", fillOnes, e)
			f32(p+"ffn_norm.weight", fillOnes, e)
			w(p+"ffn_gate.weight", e, ff)
			w(p+"ffn_up.weight", e, ff)
			w(p+"ffn_down.weight", ff, e)
			f32(p+"post_ffw_norm.weight", fillOnes, e)
		}
		f32("output_norm.weight", fillOnes, e)
	default: // llama, qwen2, qwen3, gemma
		if s.Llama3Rope != nil {
			f32("rope_freqs.weight", fillRopeFreqs, hd/2)
			ts[len(ts)-1].shape = s
		}
		for l := range s.NLayer {
			p := fmt.Sprintf("blk.%d.", l)
			f32(p+"attn_norm.weight", fillOnes, e)
			w(p+"attn_q.weight", e, q)
			w(p+"attn_k.weight", e, kv)
			w(p+"attn_v.weight", e, kv)
			if s.Arch == "qwen3" {
				f32(p+"attn_q_norm.weight", fillOnes, hd)
				f32(p+"attn_k_norm.weight", fillOnes, hd)
			}
			if s.QKVBias {
				f32(p+"attn_q.bias", fillGauss, q)
				f32(p+"attn_k.bias", fillGauss, kv)
				f32(p+"attn_v.bias", fillGauss, kv)
			}
			w(p+"attn_output.weight", q, e)
			f32(p+"ffn_norm.weight", fillOnes, e)
			w(p+"ffn_gate.weight", e, ff)
			w(p+"ffn_up.weight", e, ff)
			w(p+"ffn_down.weight", ff, e)
		}
		f32("output_norm.weight", fillOnes, e)
		if !s.Tied {
			w("output.weight", e, v)
		}
	}
	return ts
}

// chooseTypes asks package quantize what llama-quantize would make of the
// converted file: each tensor's type and the file's tensor order. It plans
// on a stand-in file whose 2-D tensors have two rows each — the choice
// depends on names, row lengths and the head counts only — so no weights
// exist yet.
func chooseTypes(s *Shape, src []Tensor, ft quantize.FileType, pure bool) ([]Tensor, error) {
	var buf bytes.Buffer
	w := gguf.NewWriter(&buf)
	w.AddKV("general.architecture", s.Arch)
	w.AddKV(s.Arch+".block_count", uint32(s.NLayer))
	w.AddKV(s.Arch+".attention.head_count", uint32(s.NHead))
	w.AddKV(s.Arch+".attention.head_count_kv", uint32(s.NHeadKV))
	byName := map[string]*Tensor{}
	var sizes []uint64
	for i := range src {
		t := &src[i]
		byName[t.Name] = t
		dims := t.Dims
		if len(dims) == 2 {
			dims = []uint64{dims[0], 2}
		}
		n, err := w.AddTensor(t.Name, dims, t.Type)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, n)
	}
	if _, err := w.WriteHeader(); err != nil {
		return nil, err
	}
	for i := range src {
		if err := w.WriteTensorData(src[i].Name, make([]byte, sizes[i])); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	f, err := gguf.Parse("plan", buf.Bytes())
	if err != nil {
		return nil, err
	}
	plans, err := quantize.Plan(f, quantize.Options{Type: ft, Pure: pure})
	if err != nil {
		return nil, err
	}
	out := make([]Tensor, 0, len(plans))
	for _, p := range plans {
		t := *byName[p.Name]
		t.Type, t.Fallback = p.To, p.Fallback
		out = append(out, t)
	}
	return out, nil
}

// metadata is the file's key-value section, in the order
// convert_hf_to_gguf.py writes it, with general.quantization_version and
// general.file_type last, where llama-quantize puts them.
func (sp *spec) metadata(seed uint64) []gguf.KV {
	s, a := &sp.shape, sp.shape.Arch
	var kvs []gguf.KV
	add := func(k string, v any) { kvs = append(kvs, gguf.KV{Key: k, Value: v}) }
	add("general.architecture", a)
	add("general.type", "model")
	add("general.name", s.Name+" (synthetic)")
	add("general.description", fmt.Sprintf("random weights (normal, std %g, seed %d) with the shape of %s, written by slm synth", Std, seed, s.Like))
	add(a+".block_count", uint32(s.NLayer))
	add(a+".context_length", uint32(s.NCtx))
	add(a+".embedding_length", uint32(s.NEmbd))
	add(a+".feed_forward_length", uint32(s.NFF))
	add(a+".attention.head_count", uint32(s.NHead))
	add(a+".attention.head_count_kv", uint32(s.NHeadKV))
	switch a {
	case "gpt2":
		add(a+".attention.layer_norm_epsilon", float32(s.NormEps))
	case "gemma": // convert_hf_to_gguf.py writes no rope keys for Gemma
		add(a+".attention.layer_norm_rms_epsilon", float32(s.NormEps))
		add(a+".attention.key_length", uint32(s.HeadDim()))
		add(a+".attention.value_length", uint32(s.HeadDim()))
	case "gemma2":
		add(a+".attention.layer_norm_rms_epsilon", float32(s.NormEps))
		add(a+".attention.key_length", uint32(s.HeadDim()))
		add(a+".attention.value_length", uint32(s.HeadDim()))
		add(a+".attn_logit_softcapping", float32(s.AttnSoftcap))
		add(a+".final_logit_softcapping", float32(s.FinalSoftcap))
		add(a+".attention.sliding_window", uint32(s.SlidingWindow))
	case "gemma3":
		add(a+".attention.layer_norm_rms_epsilon", float32(s.NormEps))
		add(a+".attention.key_length", uint32(s.HeadDim()))
		add(a+".attention.value_length", uint32(s.HeadDim()))
		add(a+".rope.freq_base", float32(s.RopeTheta))
		add(a+".attention.sliding_window", uint32(s.SlidingWindow))
	case "qwen3": // convert_hf_to_gguf.py writes the head size, no rope.dimension_count
		add(a+".rope.freq_base", float32(s.RopeTheta))
		add(a+".attention.layer_norm_rms_epsilon", float32(s.NormEps))
		add(a+".attention.key_length", uint32(s.HeadDim()))
		add(a+".attention.value_length", uint32(s.HeadDim()))
	case "phi3":
		add(a+".rope.scaling.original_context_length", uint32(cmp.Or(s.OrigCtx, s.NCtx)))
		add(a+".attention.layer_norm_rms_epsilon", float32(s.NormEps))
		add(a+".rope.dimension_count", uint32(s.HeadDim()))
		add(a+".rope.freq_base", float32(s.RopeTheta))
		add(a+".attention.sliding_window", uint32(s.SlidingWindow))
	default:
		add(a+".rope.freq_base", float32(s.RopeTheta))
		add(a+".rope.dimension_count", uint32(s.HeadDim()))
		add(a+".attention.layer_norm_rms_epsilon", float32(s.NormEps))
	}
	if a == "llama" {
		add(a+".vocab_size", uint32(s.NVocab))
	}
	v := sp.vocab
	add("tokenizer.ggml.model", "gpt2")
	add("tokenizer.ggml.pre", s.Pre)
	add("tokenizer.ggml.tokens", v.Tokens)
	add("tokenizer.ggml.token_type", v.Types)
	add("tokenizer.ggml.merges", v.Merges)
	add("tokenizer.ggml.bos_token_id", uint32(v.EOT))
	add("tokenizer.ggml.eos_token_id", uint32(v.EOT))
	add("tokenizer.ggml.add_bos_token", false)
	add("general.quantization_version", uint32(quantize.QuantizationVersion))
	add("general.file_type", sp.ft.ID)
	return kvs
}

// Write writes the model described by opt to out as GGUF.
func Write(out io.Writer, opt Options) (*Result, error) {
	start := time.Now()
	sp, err := plan(opt, true)
	if err != nil {
		return nil, err
	}
	w := gguf.NewWriter(out)
	for _, kv := range sp.metadata(opt.Seed) {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			return nil, err
		}
	}
	res := &Result{Shape: sp.shape, FileType: sp.ft, NVocab: sp.shape.NVocab, Tensors: sp.tensors}
	for _, t := range sp.tensors {
		n, err := w.AddTensor(t.Name, t.Dims, t.Type)
		if err != nil {
			return nil, err
		}
		res.Params += t.Elems()
		res.DataBytes += n
	}
	if _, err := w.WriteHeader(); err != nil {
		return nil, err
	}
	if err := generate(w, sp, opt); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	res.FileBytes = w.Size()
	res.Duration = time.Since(start)
	return res, nil
}

// WriteFile writes the model to path atomically: nothing is left behind
// on failure.
func WriteFile(path string, opt Options) (*Result, error) {
	if _, err := plan(opt, false); err != nil { // fail before creating anything
		return nil, err
	}
	var res *Result
	err := gguf.WriteFileAtomic(path, func(w io.Writer) error {
		var err error
		res, err = Write(w, opt)
		return err
	})
	return res, err
}

// chunkElems is about how many values one piece of work generates: big
// enough to amortize the hand-offs, small enough to keep memory low.
const chunkElems = 1 << 20

// piece is a range of rows of one tensor, generated and encoded by a
// worker and written in order by the writer.
type piece struct {
	t      *Tensor
	index  int // chunk number within the tensor
	r0, r1 int // rows
	data   []byte
	err    error
	done   chan struct{}
}

// generate streams every tensor's data to w: a producer cuts the tensors
// into pieces, workers fill them, and the pieces are written in order.
func generate(w *gguf.Writer, sp *spec, opt Options) error {
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	var total int64
	for i := range sp.tensors {
		t := &sp.tensors[i]
		total += int64(t.Elems())
		if t.fill == fillGauss && usesPool(t.Type, t.Elems(), opt.Exact) {
			t.pool = &blockPool{typ: t.Type, seed: mix(opt.Seed, nameHash(t.Name), 2)}
		}
	}
	jobs := make(chan *piece, threads)
	queue := make(chan *piece, 2*threads)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
	}()
	wg.Go(func() { // producer
		defer close(jobs)
		defer close(queue)
		for i := range sp.tensors {
			t := &sp.tensors[i]
			rowLen := int(t.Dims[0])
			rows := int(t.Elems()) / rowLen
			step := max(1, chunkElems/rowLen)
			for c, r0 := 0, 0; r0 < rows; c, r0 = c+1, r0+step {
				p := &piece{t: t, index: c, r0: r0, r1: min(r0+step, rows), done: make(chan struct{})}
				select {
				case queue <- p:
				case <-stop:
					return
				}
				select {
				case jobs <- p:
				case <-stop:
					return
				}
			}
		}
	})
	for range threads {
		wg.Go(func() {
			var scratch []float32
			for p := range jobs {
				scratch = p.fill(scratch, opt.Seed)
				close(p.done)
			}
		})
	}
	var done atomic.Int64
	for i := range sp.tensors {
		t := &sp.tensors[i]
		r := &pieceReader{queue: queue, t: t, onPiece: func(p *piece) {
			d := done.Add(int64((p.r1 - p.r0) * int(p.t.Dims[0])))
			if opt.Progress != nil {
				opt.Progress(d, total)
			}
		}}
		if err := w.WriteTensorFrom(t.Name, r); err != nil {
			if r.err != nil {
				return r.err
			}
			return err
		}
	}
	return nil
}

// pieceReader reads one tensor's data from the ordered queue of pieces.
type pieceReader struct {
	queue   <-chan *piece
	t       *Tensor
	cur     []byte
	err     error
	onPiece func(*piece)
}

func (r *pieceReader) Read(b []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for len(r.cur) == 0 {
		p, ok := <-r.queue
		if !ok {
			r.err = errors.New("synth: ran out of pieces")
			return 0, r.err
		}
		<-p.done
		if p.err != nil {
			r.err = fmt.Errorf("tensor %s: %w", p.t.Name, p.err)
			return 0, r.err
		}
		if p.t != r.t {
			r.err = fmt.Errorf("synth: piece of %s while writing %s", p.t.Name, r.t.Name)
			return 0, r.err
		}
		r.cur = p.data
		r.onPiece(p)
	}
	n := copy(b, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// fill generates and encodes the piece's rows; scratch is the worker's
// float buffer, returned (grown if needed) for the next piece.
func (p *piece) fill(scratch []float32, seed uint64) []float32 {
	t := p.t
	rowLen := int(t.Dims[0])
	n := (p.r1 - p.r0) * rowLen
	if t.pool != nil {
		p.data, p.err = t.pool.draw(n, mix(seed, nameHash(t.Name), uint64(p.index), 1))
		return scratch
	}
	if cap(scratch) < n {
		scratch = make([]float32, n)
	}
	x := scratch[:n]
	switch t.fill {
	case fillGauss:
		gaussian(x, Std, mix(seed, nameHash(t.Name), uint64(p.index)))
	case fillOnes:
		for i := range x {
			x[i] = 1
		}
	case fillZeros:
		clear(x)
	case fillRopeFreqs:
		ropeFreqs(x, t.shape.RopeTheta, t.shape.HeadDim(), t.shape.Llama3Rope)
	}
	size, err := t.Type.RowBytes(n)
	if err != nil {
		p.err = err
		return scratch
	}
	p.data = make([]byte, size)
	p.err = quant.Quantize(t.Type, x, p.data)
	return scratch
}

func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// The K-quant reference encoders search for the best scales, which costs
// some 50 ns a value: minutes for a billion-parameter model. Unless
// Options.Exact is set, a large K-quant tensor is therefore made of blocks
// drawn at random from a pool of poolBlocks super-blocks, each the exact
// encoding of its own normal values. The weights have the same
// distribution and every row is a different random sequence of blocks;
// only their exact values repeat. Tensors with fewer than
// poolMinBlocks super-blocks are encoded value by value.
var (
	poolBlocks    = 1024
	poolMinBlocks = 16 * 1024
)

// usesPool reports whether a tensor of type typ with n values is drawn
// from a pool.
func usesPool(typ quant.Type, n uint64, exact bool) bool {
	switch typ {
	case quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K:
		return !exact && n/uint64(typ.BlockElems()) >= uint64(poolMinBlocks)
	}
	return false
}

// blockPool is a tensor's pool of encoded blocks, made on first use.
type blockPool struct {
	typ  quant.Type
	seed uint64
	once sync.Once
	data []byte
	err  error
}

// draw encodes n values as blocks picked from the pool by a random stream.
func (bp *blockPool) draw(n int, seed uint64) ([]byte, error) {
	bp.once.Do(func() {
		x := make([]float32, poolBlocks*bp.typ.BlockElems())
		gaussian(x, Std, bp.seed)
		size, _ := bp.typ.RowBytes(len(x))
		bp.data = make([]byte, size)
		bp.err = quant.Quantize(bp.typ, x, bp.data)
	})
	if bp.err != nil {
		return nil, bp.err
	}
	be := bp.typ.BlockBytes()
	nb := n / bp.typ.BlockElems()
	out := make([]byte, nb*be)
	r := rng{seed}
	for i := range nb {
		k := int(r.next() % uint64(poolBlocks))
		copy(out[i*be:(i+1)*be], bp.data[k*be:(k+1)*be])
	}
	return out, nil
}

// ropeFreqs fills x with the rope_freqs.weight convert_hf_to_gguf.py
// writes for a Llama 3 rope_scaling: per rotated pair of a head of headDim,
// the factor its wavelength is stretched by — 1 for high frequencies,
// Factor for low ones, a smooth blend in between.
func ropeFreqs(x []float32, theta float64, headDim int, r *Llama3Rope) {
	lowWavelen := float64(r.OrigCtx) / r.LowFreqFactor
	highWavelen := float64(r.OrigCtx) / r.HighFreqFactor
	for i := range x {
		freq := 1 / math.Pow(theta, float64(2*i)/float64(headDim))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			x[i] = 1
		case wavelen > lowWavelen:
			x[i] = float32(r.Factor)
		default:
			smooth := (float64(r.OrigCtx)/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			x[i] = float32(1 / ((1-smooth)/r.Factor + smooth))
		}
	}
}
