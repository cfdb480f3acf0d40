package imatrix

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/model"
	"github.com/slm-dev/slm/quant"
)

// The engine's forward pass has no hook to observe the inputs of its
// matrix multiplications, so the statistics come from this package's own
// forward pass: a plain float32/float64 implementation of the llama, qwen2
// and gpt2 families written from the model definitions (as llama.cpp
// builds them), reading the weights straight from the GGUF file and
// dequantizing one row at a time. It is slow next to the engine (no
// kernels, no KV cache: each chunk is one batch from position 0) but
// exact enough for statistics, and it is checked against the engine's
// logits in the tests.

// Net evaluates a model from its GGUF file.
type Net struct {
	// Native emulates llama.cpp's CPU numerics instead of plain float
	// arithmetic: activations rounded or quantized as ggml does before each
	// matrix product (F16 for F16 weights, Q8_0/Q8_1/Q8_K for quantized
	// ones).
	Native bool
	// KVF16 emulates an F16 KV cache (llama.cpp's default, which its
	// perplexity and imatrix tools use): keys, values, and the queries and
	// attention weights that meet them, rounded to F16.
	KVF16 bool

	cfg     model.Config
	f       *gguf.File
	neox    bool // rotary pairs (i, i+d/2) instead of (2i, 2i+1)
	freqs   []float32
	threads int
	vecs    map[string][]float32
}

// NewNet prepares the forward pass for f, whose hyperparameters are cfg
// (engine.Model.Config()).
func NewNet(f *gguf.File, cfg model.Config) (*Net, error) {
	n := &Net{cfg: cfg, f: f, threads: runtime.NumCPU(), vecs: map[string][]float32{}}
	switch cfg.Arch {
	case "llama":
	case "qwen2":
		n.neox = true
	case "gpt2":
	default:
		return nil, fmt.Errorf("imatrix: architecture %q is not supported (llama, qwen2, gpt2)", cfg.Arch)
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		v, err := n.vec("rope_freqs.weight")
		if err != nil {
			return nil, err
		}
		n.freqs = v
	}
	return n, nil
}

// vec returns a small tensor (norm, bias) as float32, cached.
func (n *Net) vec(name string) ([]float32, error) {
	if v, ok := n.vecs[name]; ok {
		return v, nil
	}
	t, ok := n.f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("imatrix: tensor %s is missing", name)
	}
	v := make([]float32, t.Elems())
	if err := quant.Dequantize(t.Type, n.f.Data(t), v); err != nil {
		return nil, fmt.Errorf("imatrix: %s: %w", name, err)
	}
	n.vecs[name] = v
	return v, nil
}

// optVec is vec for tensors that may be absent (nil then).
func (n *Net) optVec(name string) ([]float32, error) {
	if _, ok := n.f.Tensor(name); !ok {
		return nil, nil
	}
	return n.vec(name)
}

// Observer receives the input of every matrix multiplication: the weight's
// name and the T×nIn activations (row-major, a row per token).
type Observer func(weight string, x []float32, T, nIn int)

// linear computes out (T×nOut) = x (T×nIn) · Wᵀ (+ bias), W being the
// tensor name (dims [nIn, nOut]); obs sees x first.
func (n *Net) linear(out []float32, name, bias string, x []float32, T int, obs Observer) error {
	t, ok := n.f.Tensor(name)
	if !ok {
		return fmt.Errorf("imatrix: tensor %s is missing", name)
	}
	if len(t.Dims) != 2 {
		return fmt.Errorf("imatrix: %s has %d dimensions, want 2", name, len(t.Dims))
	}
	nIn, nOut := int(t.Dims[0]), int(t.Dims[1])
	if len(x) != T*nIn || len(out) != T*nOut {
		return fmt.Errorf("imatrix: %s: shape [%d %d] does not fit %d tokens", name, nIn, nOut, T)
	}
	if obs != nil {
		obs(name, x, T, nIn)
	}
	if n.Native {
		var err error
		if x, err = activations(t.Type, x, T, nIn); err != nil {
			return fmt.Errorf("imatrix: %s: %w", name, err)
		}
	}
	b, err := n.optVec(bias)
	if err != nil {
		return err
	}
	rowBytes, err := t.Type.RowBytes(nIn)
	if err != nil {
		return err
	}
	data := n.f.Data(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	per := (nOut + n.threads - 1) / n.threads
	for lo := 0; lo < nOut; lo += per {
		hi := min(lo+per, nOut)
		wg.Go(func() {
			row := make([]float32, nIn)
			for j := lo; j < hi; j++ {
				if err := quant.Dequantize(t.Type, data[j*rowBytes:(j+1)*rowBytes], row); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				for tk := range T {
					xs := x[tk*nIn : (tk+1)*nIn]
					var s float64
					for i, w := range row {
						s += float64(w) * float64(xs[i])
					}
					if b != nil {
						s += float64(b[j])
					}
					out[tk*nOut+j] = float32(s)
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

func rmsNorm(out, x, w []float32, eps float32, T, d int) {
	for t := range T {
		xs, os := x[t*d:(t+1)*d], out[t*d:(t+1)*d]
		var ss float64
		for _, v := range xs {
			ss += float64(v) * float64(v)
		}
		scale := 1 / math.Sqrt(ss/float64(d)+float64(eps))
		for i, v := range xs {
			os[i] = float32(float64(v)*scale) * w[i]
		}
	}
}

func layerNorm(out, x, w, b []float32, eps float32, T, d int) {
	for t := range T {
		xs, os := x[t*d:(t+1)*d], out[t*d:(t+1)*d]
		var mean, v float64
		for _, a := range xs {
			mean += float64(a)
		}
		mean /= float64(d)
		for _, a := range xs {
			v += (float64(a) - mean) * (float64(a) - mean)
		}
		scale := 1 / math.Sqrt(v/float64(d)+float64(eps))
		for i, a := range xs {
			os[i] = float32((float64(a)-mean)*scale)*w[i] + b[i]
		}
	}
}

// rope rotates the first RopeDims of each head of x (T × nHead·headDim) by
// position, as ggml_rope_ext does (with YaRN ramps and Llama 3 frequency
// factors).
func (n *Net) rope(x []float32, T, nHead int) {
	c := &n.cfg
	hd, dims := c.HeadDim, c.RopeDims
	freqScale := float32(1)
	if c.RopeFactor != 0 {
		freqScale = 1 / c.RopeFactor
	}
	var extFactor float32
	if c.RopeScaling == "yarn" {
		extFactor = 1
	}
	corrDim := func(nRot float64) float64 {
		return float64(dims) * math.Log(float64(c.RopeOrigCtx)/(nRot*2*math.Pi)) / (2 * math.Log(float64(c.RopeBase)))
	}
	low := max(0, math.Floor(corrDim(32)))
	high := min(float64(dims-1), math.Ceil(corrDim(1)))
	mscale := float32(1)
	if extFactor != 0 {
		mscale *= 1 + 0.1*float32(math.Log(float64(1/freqScale)))
	}
	cs := make([]float64, dims) // cos, sin per pair
	for t := range T {
		for i := 0; i < dims; i += 2 {
			theta := float64(t) * math.Pow(float64(c.RopeBase), -float64(i)/float64(dims))
			if n.freqs != nil {
				theta /= float64(n.freqs[i/2])
			}
			interp := float64(freqScale) * theta
			th := interp
			if extFactor != 0 {
				y := (float64(i)/2 - low) / max(0.001, high-low)
				mix := (1 - min(1, max(0, y))) * float64(extFactor)
				th = interp*(1-mix) + theta*mix
			}
			cs[i], cs[i+1] = math.Cos(th)*float64(mscale), math.Sin(th)*float64(mscale)
		}
		for h := range nHead {
			v := x[(t*nHead+h)*hd : (t*nHead+h+1)*hd]
			for i := 0; i < dims; i += 2 {
				a, b := i, i+1
				if n.neox {
					a, b = i/2, i/2+dims/2
				}
				x0, x1 := float64(v[a]), float64(v[b])
				v[a] = float32(x0*cs[i] - x1*cs[i+1])
				v[b] = float32(x0*cs[i+1] + x1*cs[i])
			}
		}
	}
}

// activations returns x as ggml's CPU matrix product sees it for a weight
// of type t: rounded to the weight's vec_dot type.
func activations(t quant.Type, x []float32, T, nIn int) ([]float32, error) {
	var act quant.Type
	var enc func(src []float32, dst []byte)
	switch t {
	case quant.F32:
		return x, nil
	case quant.F16:
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = quant.F16ToF32(quant.F32ToF16(v))
		}
		return out, nil
	case quant.BF16:
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = quant.BF16ToF32(quant.F32ToBF16(v))
		}
		return out, nil
	case quant.Q4_0, quant.Q5_0, quant.Q8_0:
		act, enc = quant.Q8_0, quant.QuantizeQ8_0
	case quant.Q4_1, quant.Q5_1:
		act, enc = quant.Q8_1, quant.QuantizeQ8_1
	case quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K:
		act, enc = quant.Q8_K, quant.QuantizeQ8_K
	default:
		return x, nil
	}
	rb, err := act.RowBytes(nIn)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, rb)
	out := make([]float32, len(x))
	for r := range T {
		enc(x[r*nIn:(r+1)*nIn], buf)
		if err := quant.Dequantize(act, buf, out[r*nIn:(r+1)*nIn]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func roundF16(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = quant.F16ToF32(quant.F32ToF16(v))
	}
	return out
}

// attention: causal softmax(q·kᵀ·scale)·v per head, with GQA.
func (n *Net) attention(out, q, k, v []float32, T int) {
	c := &n.cfg
	native := n.KVF16
	if native { // F16 KV cache: K, V stored as F16, q and the weights rounded to meet them
		q, k, v = roundF16(q), roundF16(k), roundF16(v)
	}
	hd, nh, nkv := c.HeadDim, c.NHead, c.NHeadKV
	scale := float64(c.KQScale())
	var wg sync.WaitGroup
	for h := range nh {
		wg.Go(func() {
			kh := h / (nh / nkv)
			sc := make([]float64, T)
			for t := range T {
				qs := q[(t*nh+h)*hd : (t*nh+h+1)*hd]
				mx := math.Inf(-1)
				for s := 0; s <= t; s++ {
					ks := k[(s*nkv+kh)*hd : (s*nkv+kh+1)*hd]
					var d float64
					for i := range hd {
						d += float64(qs[i]) * float64(ks[i])
					}
					sc[s] = d * scale
					mx = max(mx, sc[s])
				}
				var sum float64
				for s := 0; s <= t; s++ {
					sc[s] = math.Exp(sc[s] - mx)
					sum += sc[s]
				}
				if native {
					for s := 0; s <= t; s++ {
						sc[s] = float64(quant.F16ToF32(quant.F32ToF16(float32(sc[s] / sum))))
					}
					sum = 1
				}
				o := out[(t*nh+h)*hd : (t*nh+h+1)*hd]
				for i := range hd {
					var a float64
					for s := 0; s <= t; s++ {
						a += sc[s] * float64(v[(s*nkv+kh)*hd+i])
					}
					o[i] = float32(a / sum)
				}
			}
		})
	}
	wg.Wait()
}

func silu(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// geluFP16 is ggml's GELU on the CPU: the input rounded to fp16, looked up
// in a table of fp16 results of the tanh approximation.
func geluFP16(x float32) float32 {
	if x <= -10 {
		return 0
	}
	if x >= 10 {
		return x
	}
	h := quant.F16ToF32(quant.F32ToF16(x))
	const a, s = float32(0.044715), float32(0.79788456080286535587989211986876)
	g := 0.5 * h * (1 + float32(math.Tanh(float64(s*h*(1+a*h*h)))))
	return quant.F16ToF32(quant.F32ToF16(g))
}

func embed(n *Net, out []float32, name string, ids []int32, offset int) error {
	t, ok := n.f.Tensor(name)
	if !ok {
		return fmt.Errorf("imatrix: tensor %s is missing", name)
	}
	d := int(t.Dims[0])
	rb, err := t.Type.RowBytes(d)
	if err != nil {
		return err
	}
	data, row := n.f.Data(t), make([]float32, d)
	for i, id := range ids {
		if int(id) < 0 || uint64(id) >= t.Rows() {
			return fmt.Errorf("imatrix: token %d is outside %s", id, name)
		}
		if err := quant.Dequantize(t.Type, data[int(id)*rb:(int(id)+1)*rb], row); err != nil {
			return err
		}
		for j, v := range row {
			out[(i+offset)*d+j] += v
		}
	}
	return nil
}

// Forward evaluates tokens from position 0 as one batch, calling obs with
// the input of every matrix multiplication, and returns the logits (a row
// per token) when logits is true (the output matrix is observed then too).
func (n *Net) Forward(tokens []int32, obs Observer, logits bool) ([][]float32, error) {
	c := &n.cfg
	T, d := len(tokens), c.NEmbd
	x := make([]float32, T*d)
	xb := make([]float32, T*d)
	if err := embed(n, x, "token_embd.weight", tokens, 0); err != nil {
		return nil, err
	}
	gpt2 := c.Arch == "gpt2"
	if gpt2 {
		pos := make([]int32, T)
		for i := range pos {
			pos[i] = int32(i)
		}
		if err := embed(n, x, "position_embd.weight", pos, 0); err != nil {
			return nil, err
		}
	}
	q := make([]float32, T*c.QDim())
	k := make([]float32, T*c.KVDim())
	v := make([]float32, T*c.KVDim())
	att := make([]float32, T*c.QDim())
	ff := make([]float32, T*c.NFF)
	ff2 := make([]float32, T*c.NFF)
	must := func(names ...string) ([][]float32, error) {
		var out [][]float32
		for _, nm := range names {
			v, err := n.vec(nm)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	for l := range c.NLayer {
		p := fmt.Sprintf("blk.%d.", l)
		if gpt2 {
			w, err := must(p+"attn_norm.weight", p+"attn_norm.bias")
			if err != nil {
				return nil, err
			}
			layerNorm(xb, x, w[0], w[1], c.NormEps, T, d)
			qd, kd := c.QDim(), c.KVDim()
			qkv := make([]float32, T*(qd+2*kd))
			if err := n.linear(qkv, p+"attn_qkv.weight", p+"attn_qkv.bias", xb, T, obs); err != nil {
				return nil, err
			}
			for t := range T {
				r := qkv[t*(qd+2*kd):]
				copy(q[t*qd:(t+1)*qd], r[:qd])
				copy(k[t*kd:(t+1)*kd], r[qd:qd+kd])
				copy(v[t*kd:(t+1)*kd], r[qd+kd:qd+2*kd])
			}
		} else {
			w, err := must(p + "attn_norm.weight")
			if err != nil {
				return nil, err
			}
			rmsNorm(xb, x, w[0], c.NormEps, T, d)
			for _, m := range []struct {
				out  []float32
				name string
			}{{q, "attn_q"}, {k, "attn_k"}, {v, "attn_v"}} {
				if err := n.linear(m.out, p+m.name+".weight", p+m.name+".bias", xb, T, obs); err != nil {
					return nil, err
				}
			}
			n.rope(q, T, c.NHead)
			n.rope(k, T, c.NHeadKV)
		}
		n.attention(att, q, k, v, T)
		if err := n.linear(xb, p+"attn_output.weight", p+"attn_output.bias", att, T, obs); err != nil {
			return nil, err
		}
		for i := range x {
			x[i] += xb[i]
		}
		if gpt2 {
			w, err := must(p+"ffn_norm.weight", p+"ffn_norm.bias")
			if err != nil {
				return nil, err
			}
			layerNorm(xb, x, w[0], w[1], c.NormEps, T, d)
			if err := n.linear(ff, p+"ffn_up.weight", p+"ffn_up.bias", xb, T, obs); err != nil {
				return nil, err
			}
			for i, a := range ff {
				ff[i] = geluFP16(a)
			}
		} else {
			w, err := must(p + "ffn_norm.weight")
			if err != nil {
				return nil, err
			}
			rmsNorm(xb, x, w[0], c.NormEps, T, d)
			if err := n.linear(ff, p+"ffn_gate.weight", p+"ffn_gate.bias", xb, T, obs); err != nil {
				return nil, err
			}
			if err := n.linear(ff2, p+"ffn_up.weight", p+"ffn_up.bias", xb, T, obs); err != nil {
				return nil, err
			}
			for i, g := range ff {
				ff[i] = silu(g) * ff2[i]
			}
		}
		if err := n.linear(xb, p+"ffn_down.weight", p+"ffn_down.bias", ff, T, obs); err != nil {
			return nil, err
		}
		for i := range x {
			x[i] += xb[i]
		}
	}
	if !logits {
		return nil, nil
	}
	if gpt2 {
		w, err := must("output_norm.weight", "output_norm.bias")
		if err != nil {
			return nil, err
		}
		layerNorm(xb, x, w[0], w[1], c.NormEps, T, d)
	} else {
		w, err := must("output_norm.weight")
		if err != nil {
			return nil, err
		}
		rmsNorm(xb, x, w[0], c.NormEps, T, d)
	}
	out := "output.weight"
	if _, ok := n.f.Tensor(out); !ok {
		out = "token_embd.weight"
	}
	flat := make([]float32, T*c.NVocab)
	if err := n.linear(flat, out, "", xb, T, obs); err != nil {
		return nil, err
	}
	rows := make([][]float32, T)
	for i := range rows {
		rows[i] = flat[i*c.NVocab : (i+1)*c.NVocab]
	}
	return rows, nil
}

// Logits evaluates tokens from position 0 and returns a row of logits per
// token (so a Net can stand in for engine.Model in perplexity runs).
func (n *Net) Logits(tokens []int32) ([][]float32, error) { return n.Forward(tokens, nil, true) }

// Collector accumulates llama-imatrix's statistics: for each weight of the
// blocks (and output.weight with ProcessOutput), the sum of x² per input
// column over every token of every batch of at least 16 tokens.
type Collector struct {
	ProcessOutput bool
	stats         map[string]*stat
	chunks        int32
}

type stat struct {
	sum   []float64
	count int64
	ncall int32
}

// Observe is an Observer that accumulates x².
func (c *Collector) Observe(name string, x []float32, T, nIn int) {
	if T < 16 { // as llama-imatrix: small batches are ignored
		return
	}
	if !strings.HasPrefix(name, "blk.") && !(c.ProcessOutput && name == "output.weight") {
		return
	}
	if c.stats == nil {
		c.stats = map[string]*stat{}
	}
	s := c.stats[name]
	if s == nil {
		s = &stat{sum: make([]float64, nIn)}
		c.stats[name] = s
	}
	for t := range T {
		for j, v := range x[t*nIn : (t+1)*nIn] {
			s.sum[j] += float64(v) * float64(v)
		}
	}
	s.count += int64(T)
	s.ncall++
}

// Matrix returns the collected importance matrix.
func (c *Collector) Matrix(dataset string) *Matrix {
	m := &Matrix{Chunks: c.chunks, Dataset: dataset}
	names := make([]string, 0, len(c.stats))
	for k := range c.stats {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if a, b := layer(names[i]), layer(names[j]); a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		s := c.stats[name]
		vals := make([]float32, len(s.sum))
		for j, v := range s.sum {
			vals[j] = float32(v / float64(s.count))
		}
		m.Entries = append(m.Entries, Entry{Name: name, NCall: s.ncall, Values: vals})
	}
	return m
}

func layer(name string) int {
	var l int
	if _, err := fmt.Sscanf(name, "blk.%d.", &l); err != nil {
		return -1
	}
	return l
}
