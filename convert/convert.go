// Package convert turns a Hugging Face checkpoint (config.json, safetensors
// weights, tokenizer.json and tokenizer_config.json) into a GGUF file the
// way llama.cpp's convert_hf_to_gguf.py does: the same tensor names, the
// same q/k permutation for Llama's RoPE, the same metadata keys and the
// same tokenizer metadata, so that the file loads in slm and in llama.cpp.
//
// Supported architectures: LlamaForCausalLM (Llama 2/3, TinyLlama, SmolLM),
// MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM (dense Qwen3;
// per-head q/k norms), GPT2LMHeadModel (GPT-2,
// distilgpt2), Phi3ForCausalLM (Phi-3, Phi-3.5; fused qkv and gate/up,
// LongRoPE factors), GemmaForCausalLM (Gemma 1; norms stored as
// 1 + w), Gemma2ForCausalLM (soft-capping, sliding window, post-norms) and
// Gemma3ForCausalLM (Gemma 3 text: q/k norms, local and global layers). Weights may be F32, F16 or BF16; the output type is any that
// package quant can encode (1-D tensors and norms stay F32).
package convert

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
	"github.com/slm-dev/slm/tokenizer/hf"
)

// Options adjust Convert.
type Options struct {
	// Type is the weight type of 2-D tensors: F32 (the zero value), F16, BF16,
	// or a quantized type (Q8_0, Q4_0, ..., Q6_K). Tensors whose rows are
	// not a whole number of blocks fall back to F16.
	Type quant.Type
	// Auto picks F16 or BF16 from the checkpoint's first 2-D tensor (F32
	// checkpoints give F16), like convert_hf_to_gguf.py --outtype auto.
	Auto bool
	// Name is general.name (default: the directory's name).
	Name string
	// Pre overrides the detected tokenizer.ggml.pre.
	Pre string
	// Threads quantize rows in parallel (0: GOMAXPROCS).
	Threads int
	// Progress, if set, is called before each tensor is written.
	Progress func(i, n int, name string, typ quant.Type, dims []uint64)
}

// fileTypes maps an output type to general.file_type (llama_ftype).
var fileTypes = map[quant.Type]uint32{
	quant.F32: 0, quant.F16: 1, quant.Q4_0: 2, quant.Q4_1: 3, quant.Q8_0: 7,
	quant.Q5_0: 8, quant.Q5_1: 9, quant.Q2_K: 10, quant.Q3_K: 11, quant.Q4_K: 14,
	quant.Q5_K: 16, quant.Q6_K: 18, quant.BF16: 32,
}

// planned is one output tensor.
type planned struct {
	name  string
	src   *STensor   // nil for generated tensors
	data  []float32  // generated data
	fix   reshape    // applied to src's data
	shape []int64    // PyTorch order, after fix
	typ   quant.Type // output type
}

// Convert writes the GGUF for the checkpoint in dir to out (atomically: out
// appears only when complete).
func Convert(dir, out string, opt Options) error {
	c, err := OpenCheckpoint(dir)
	if err != nil {
		return err
	}
	defer c.Close()
	return gguf.WriteFileAtomic(out, func(w io.Writer) error { return c.Write(w, opt) })
}

// Write converts the checkpoint, writing GGUF to w.
func (c *Checkpoint) Write(w io.Writer, opt Options) error {
	fam, _, err := familyFor(c.Config)
	if err != nil {
		return err
	}
	if opt.Auto {
		opt.Type = c.autoType()
	}
	ftype, ok := fileTypes[opt.Type]
	if !ok || !quant.CanQuantize(opt.Type) {
		return fmt.Errorf("cannot convert to %v", opt.Type)
	}

	// Tokenizer (needs config.json for special ids it does not name).
	tokOpt := hf.Options{Pre: opt.Pre, ModelConfig: c.modelConfigForTokenizer()}
	tok, err := hf.Load(c.Dir, tokOpt)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}

	// The config first: its errors are clearer than the shape errors a
	// wrong config causes.
	if _, err := fam.params(c.Config, 0); err != nil {
		return err
	}
	plan, err := c.plan(fam, opt.Type)
	if err != nil {
		return err
	}
	nVocab := 0
	for _, p := range plan {
		if p.name == "token_embd.weight" {
			if len(p.shape) != 2 {
				return fmt.Errorf("token_embd.weight has shape %v, want 2 dimensions", p.shape)
			}
			nVocab = int(p.shape[0])
		}
	}
	if nVocab == 0 {
		return errors.New("the checkpoint has no token embedding (model.embed_tokens / wte)")
	}
	if tok.NVocab() > nVocab {
		return fmt.Errorf("the tokenizer has %d tokens but the embedding only %d rows", tok.NVocab(), nVocab)
	}
	params, err := fam.params(c.Config, nVocab)
	if err != nil {
		return err
	}
	if err := c.checkShapes(fam, plan); err != nil {
		return err
	}

	gw := gguf.NewWriter(w)
	name := opt.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(c.Dir))
	}
	gw.AddKV("general.architecture", fam.arch)
	gw.AddKV("general.type", "model")
	gw.AddKV("general.name", name)
	for _, kv := range params {
		gw.AddKV(kv.Key, kv.Value)
	}
	gw.AddKV("general.file_type", ftype)
	gw.AddKV("general.quantization_version", uint32(2))
	for _, kv := range tok.Metadata(nVocab) {
		gw.AddKV(kv.Key, kv.Value)
	}
	dims := make([][]uint64, len(plan))
	for i, p := range plan {
		dims[i] = ggmlDims(p.shape)
		if _, err := gw.AddTensor(p.name, dims[i], p.typ); err != nil {
			return err
		}
	}
	if _, err := gw.WriteHeader(); err != nil {
		return err
	}
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	for i, p := range plan {
		if opt.Progress != nil {
			opt.Progress(i, len(plan), p.name, p.typ, dims[i])
		}
		rowLen := int(dims[i][0])
		if p.src != nil && p.fix == nil {
			// Stream large tensors a block of rows at a time.
			r := &encodeReader{t: p.src, typ: p.typ, rowLen: rowLen, rows: int(p.src.Elems()) / max(rowLen, 1), threads: threads}
			if err := gw.WriteTensorFrom(p.name, r); err != nil {
				if r.err != nil {
					return r.err
				}
				return err
			}
			continue
		}
		data := p.data
		if p.src != nil {
			if data, err = p.src.Float32s(); err != nil {
				return err
			}
			_, data = p.fix(p.src.Shape, data)
		}
		enc, err := encode(p.typ, data, rowLen, threads)
		if err != nil {
			return fmt.Errorf("tensor %s: %w", p.name, err)
		}
		if err := gw.WriteTensorData(p.name, enc); err != nil {
			return err
		}
	}
	return gw.Close()
}

// autoType is BF16 for a BF16 checkpoint, else F16.
func (c *Checkpoint) autoType() quant.Type {
	for _, n := range c.names {
		t := c.tensors[n]
		if len(t.Shape) < 2 {
			continue
		}
		if t.Dtype == "BF16" {
			return quant.BF16
		}
		return quant.F16
	}
	return quant.F16
}

// modelConfigForTokenizer is config.json with generation_config.json's
// special token ids added where config.json lacks them.
func (c *Checkpoint) modelConfigForTokenizer() []byte {
	gen, err := os.ReadFile(filepath.Join(c.Dir, "generation_config.json"))
	if err != nil {
		return c.RawCfg
	}
	g, err := parseHparams(gen)
	if err != nil {
		return c.RawCfg
	}
	merged := hparams{}
	for k, v := range c.Config {
		merged[k] = v
	}
	for _, k := range []string{"bos_token_id", "eos_token_id", "pad_token_id"} {
		if !merged.has(k) && g.has(k) {
			merged[k] = g[k]
		}
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return c.RawCfg
	}
	return b
}

// plan maps every checkpoint tensor, adds generated ones, picks types and
// orders the output like llama.cpp's files: token_embd, position_embd and
// rope_freqs first, then the blocks in order, then the output tensors.
func (c *Checkpoint) plan(fam *family, typ quant.Type) ([]planned, error) {
	var plan []planned
	seen := map[string]string{}
	if fam.extra != nil {
		gen, err := fam.extra(c.Config)
		if err != nil {
			return nil, err
		}
		for _, g := range gen {
			plan = append(plan, planned{name: g.name, data: g.data, shape: g.shape})
		}
	}
	for _, n := range c.names {
		t := c.tensors[n]
		name, fix, err := fam.tensor(c.Config, n, t.Shape)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("tensors %q and %q both map to %s", prev, n, name)
		}
		seen[name] = n
		if _, ok := map[string]bool{"F32": true, "F16": true, "BF16": true}[t.Dtype]; !ok {
			return nil, fmt.Errorf("%s: tensor %q has dtype %s (only F32, F16 and BF16 can be converted)", t.file.Path, n, t.Dtype)
		}
		if len(t.Shape) == 0 || len(t.Shape) > gguf.MaxDims {
			return nil, fmt.Errorf("tensor %q has shape %v (want 1 to %d dimensions)", n, t.Shape, gguf.MaxDims)
		}
		shape := t.Shape
		if fix != nil {
			shape, _ = fix(t.Shape, nil)
			fix = inDtype(fix, t.Dtype)
		}
		plan = append(plan, planned{name: name, src: t, fix: fix, shape: shape})
	}
	for i := range plan {
		plan[i].typ = tensorType(plan[i].name, plan[i].shape, typ)
	}
	rank := func(name string) (int, int) {
		switch name {
		case "token_embd.weight":
			return 0, 0
		case "position_embd.weight":
			return 0, 1
		case "rope_freqs.weight":
			return 0, 2
		case "rope_factors_long.weight":
			return 0, 3
		case "rope_factors_short.weight":
			return 0, 4
		}
		if b := blockOf(name); b >= 0 {
			return 1, b
		}
		return 2, 0
	}
	slices.SortStableFunc(plan, func(a, b planned) int {
		ga, ia := rank(a.name)
		gb, ib := rank(b.name)
		return cmp.Or(cmp.Compare(ga, gb), cmp.Compare(ia, ib), strings.Compare(a.name, b.name))
	})
	return plan, nil
}

// inDtype rounds what fix computes to the checkpoint's dtype, as PyTorch
// does when convert_hf_to_gguf.py changes a tensor in its own dtype (Gemma's
// norm + 1 in BF16). Reordering fixes (permutations, transposes) are left
// exact by the rounding.
func inDtype(fix reshape, dtype string) reshape {
	var round func(float32) float32
	switch dtype {
	case "F16":
		round = func(v float32) float32 { return quant.F16ToF32(quant.F32ToF16(v)) }
	case "BF16":
		round = func(v float32) float32 { return quant.BF16ToF32(quant.F32ToBF16(v)) }
	default:
		return fix
	}
	return func(shape []int64, data []float32) ([]int64, []float32) {
		shape, data = fix(shape, data)
		for i, v := range data {
			data[i] = round(v)
		}
		return shape, data
	}
}

// tensorType is convert_hf_to_gguf.py's choice: 1-D tensors, norms,
// position embeddings and anything that is not a weight stay F32; the rest
// get the requested type, or F16 when their rows do not fill whole blocks.
func tensorType(name string, shape []int64, want quant.Type) quant.Type {
	if len(shape) <= 1 || strings.HasSuffix(name, "_norm.weight") || name == "position_embd.weight" || !strings.HasSuffix(name, ".weight") {
		return quant.F32
	}
	if shape[len(shape)-1]%int64(want.BlockElems()) != 0 {
		return quant.F16
	}
	return want
}

// ggmlDims reverses a PyTorch shape into ggml's order (row length first).
func ggmlDims(shape []int64) []uint64 {
	d := make([]uint64, len(shape))
	for i, s := range shape {
		d[len(shape)-1-i] = uint64(s)
	}
	return d
}

// checkShapes verifies the shapes the architecture implies before anything
// is written, so that a wrong config gives an error instead of a broken file.
func (c *Checkpoint) checkShapes(fam *family, plan []planned) error {
	shapes := map[string][]int64{}
	for _, p := range plan {
		shapes[p.name] = p.shape
	}
	var embd, layers int
	var err error
	switch fam.arch {
	case "gpt2":
		embd, _, err = c.Config.intOf("n_embd")
		if err == nil {
			layers, _, err = c.Config.intOf("n_layer")
		}
	default:
		embd, _, err = c.Config.intOf("hidden_size", "n_embd", "dim")
		if err == nil {
			layers, _, err = c.Config.intOf("num_hidden_layers", "n_layer", "num_layers")
		}
	}
	if err != nil {
		return err
	}
	if s := shapes["token_embd.weight"]; len(s) != 2 || s[1] != int64(embd) {
		return fmt.Errorf("token_embd.weight has shape %v, but the config says the embedding width is %d", s, embd)
	}
	for b := 0; b < layers; b++ {
		if _, ok := shapes[fmt.Sprintf("blk.%d.attn_norm.weight", b)]; !ok {
			return fmt.Errorf("the config says %d layers but the checkpoint has no layer %d", layers, b)
		}
	}
	for name := range shapes {
		if b := blockOf(name); b >= layers {
			return fmt.Errorf("tensor %s is beyond the %d layers of the config", name, layers)
		}
	}
	return nil
}

// encode converts data (rows of rowLen elements) to typ, in parallel over
// row ranges for the quantized types.
func encode(typ quant.Type, data []float32, rowLen, threads int) ([]byte, error) {
	if rowLen <= 0 || len(data)%rowLen != 0 {
		return nil, fmt.Errorf("%d elements are not whole rows of %d", len(data), rowLen)
	}
	rowBytes, err := typ.RowBytes(rowLen)
	if err != nil {
		return nil, err
	}
	rows := len(data) / rowLen
	out := make([]byte, rows*rowBytes)
	if rows < 64 || threads == 1 {
		return out, quant.Quantize(typ, data, out)
	}
	chunk := (rows + threads - 1) / threads
	var wg sync.WaitGroup
	errs := make([]error, threads)
	for t := 0; t < threads; t++ {
		a, b := t*chunk, min((t+1)*chunk, rows)
		if a >= b {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[t] = quant.Quantize(typ, data[a*rowLen:b*rowLen], out[a*rowBytes:b*rowBytes])
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// chunkElems is about how many elements encodeReader converts at a time
// (a variable for the tests).
var chunkElems = 1 << 22

// encodeReader yields a tensor's encoded bytes, reading and converting a
// block of rows at a time, so that converting a large embedding does not
// hold it all in memory.
type encodeReader struct {
	t       *STensor
	typ     quant.Type
	rowLen  int
	rows    int
	next    int
	threads int
	buf     []byte
	err     error
}

func (r *encodeReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.next >= r.rows {
			return 0, io.EOF
		}
		n := min(max(1, chunkElems/max(r.rowLen, 1)), r.rows-r.next)
		data, err := r.t.Float32Range(int64(r.next)*int64(r.rowLen), int64(n)*int64(r.rowLen))
		if err == nil {
			r.buf, err = encode(r.typ, data, r.rowLen, r.threads)
		}
		if err != nil {
			r.err = fmt.Errorf("tensor %q: %w", r.t.Name, err)
			return 0, r.err
		}
		r.next += n
	}
	k := copy(p, r.buf)
	r.buf = r.buf[k:]
	return k, nil
}
