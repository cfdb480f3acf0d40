package convert

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/slm-dev/slm/gguf"
)

// family is how one Hugging Face architecture becomes a GGUF one.
type family struct {
	arch string // general.architecture
	// params writes the <arch>.* metadata.
	params func(h hparams, nVocab int) ([]gguf.KV, error)
	// tensor maps a checkpoint tensor to its GGUF name and the change its
	// data need ("" name: not converted, e.g. buffers and tied heads).
	tensor func(h hparams, name string, shape []int64) (string, reshape, error)
	// extra generates tensors that the checkpoint does not hold.
	extra func(h hparams) ([]generated, error)
}

// reshape changes a tensor's data (row-major, PyTorch order) and returns its
// new shape; with nil data it only returns the shape.
type reshape func(shape []int64, data []float32) ([]int64, []float32)

type generated struct {
	name  string
	shape []int64
	data  []float32
}

// families by the config.json "architectures" entry.
var families = map[string]*family{
	"LlamaForCausalLM":   llamaFamily,
	"MistralForCausalLM": llamaFamily,
	"Qwen2ForCausalLM":   qwen2Family,
	"Qwen3ForCausalLM":   qwen3Family,
	"GPT2LMHeadModel":    gpt2Family,
	"Phi3ForCausalLM":    phi3Family,
	"GemmaForCausalLM":   gemmaFamily,
	"Gemma2ForCausalLM":  gemma2Family,
	"Gemma3ForCausalLM":  gemma3Family,
}

// familyFor picks the family from config.json.
func familyFor(h hparams) (*family, string, error) {
	var names []string
	if list, ok := h["architectures"].([]any); ok {
		for _, a := range list {
			if s, ok := a.(string); ok {
				names = append(names, s)
			}
		}
	}
	for _, n := range names {
		if f, ok := families[n]; ok {
			return f, n, nil
		}
		if n == "Gemma3ForConditionalGeneration" {
			return nil, "", fmt.Errorf("architecture Gemma3ForConditionalGeneration (Gemma 3 with vision) is not supported: convert a text-only checkpoint (Gemma3ForCausalLM: gemma-3-270m, gemma-3-1b)")
		}
	}
	if len(names) == 0 {
		switch h.str("model_type") {
		case "llama", "mistral":
			return llamaFamily, h.str("model_type"), nil
		case "qwen2":
			return qwen2Family, "qwen2", nil
		case "qwen3":
			return qwen3Family, "qwen3", nil
		case "gpt2":
			return gpt2Family, "gpt2", nil
		case "phi3":
			return phi3Family, "phi3", nil
		case "gemma":
			return gemmaFamily, "gemma", nil
		case "gemma2":
			return gemma2Family, "gemma2", nil
		case "gemma3_text":
			return gemma3Family, "gemma3_text", nil
		}
		return nil, "", fmt.Errorf("config.json: no architectures entry and model_type %q is not supported (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GPT2LMHeadModel, Phi3ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM)", h.str("model_type"))
	}
	return nil, "", fmt.Errorf("architecture %s is not supported (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GPT2LMHeadModel, Phi3ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM)", strings.Join(names, ", "))
}

// kvs collects metadata, keeping the first config error.
type kvs struct {
	arch string
	out  []gguf.KV
	err  error
}

func (k *kvs) add(key string, v any) {
	k.out = append(k.out, gguf.KV{Key: k.arch + "." + key, Value: v})
}

func (k *kvs) intKey(key string, h hparams, required bool, names ...string) int {
	v, _, err := h.intOf(names...)
	if err != nil {
		if required || !isMissing(err) {
			k.fail(err)
		}
		return -1
	}
	k.add(key, uint32(v))
	return v
}

func (k *kvs) floatKey(key string, h hparams, required bool, names ...string) {
	v, _, err := h.floatOf(names...)
	if err != nil {
		if required || !isMissing(err) {
			k.fail(err)
		}
		return
	}
	k.add(key, float32(v))
}

func (k *kvs) fail(err error) {
	if k.err == nil {
		k.err = err
	}
}

// headCounts writes attention.head_count from the first of headNames and
// attention.head_count_kv from the first of kvNames present, or the head
// count when none is (no grouped-query attention); kv heads that do not
// divide the heads are an error. It returns the head count (-1 when it
// could not be read).
func (k *kvs) headCounts(h hparams, headNames, kvNames []string) int {
	heads := k.intKey("attention.head_count", h, true, headNames...)
	if slices.ContainsFunc(kvNames, h.has) {
		if kv := k.intKey("attention.head_count_kv", h, true, kvNames...); kv > 0 && heads > 0 && heads%kv != 0 {
			k.fail(fmt.Errorf("config.json: num_key_value_heads %d does not divide num_attention_heads %d", kv, heads))
		}
	} else if heads >= 0 {
		k.add("attention.head_count_kv", uint32(heads))
	}
	return heads
}

// headDim is head_dim, or hidden_size / num_attention_heads.
func headDim(h hparams) (int, error) {
	if h.has("head_dim") {
		d, _, err := h.intOf("head_dim")
		return d, err
	}
	embd, _, err := h.intOf("hidden_size")
	if err != nil {
		return 0, err
	}
	heads, _, err := h.intOf("num_attention_heads")
	if err != nil {
		return 0, err
	}
	if heads == 0 || embd%heads != 0 {
		return 0, fmt.Errorf("config.json: hidden_size %d is not a multiple of num_attention_heads %d", embd, heads)
	}
	return embd / heads, nil
}

// llamaLikeParams is what convert_hf_to_gguf.py writes for llama and qwen2.
func llamaLikeParams(arch string, h hparams, nVocab int, llama bool) ([]gguf.KV, error) {
	k := &kvs{arch: arch}
	k.intKey("context_length", h, true, "max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length")
	k.intKey("embedding_length", h, true, "hidden_size", "n_embd", "dim")
	k.intKey("block_count", h, true, "num_hidden_layers", "n_layer", "num_layers")
	k.intKey("feed_forward_length", h, true, "intermediate_size", "n_inner", "hidden_dim")
	heads := k.intKey("attention.head_count", h, true, "num_attention_heads", "n_head", "n_heads")
	if kv := k.intKey("attention.head_count_kv", h, false, "num_key_value_heads"); kv > 0 && heads > 0 && heads%kv != 0 {
		k.fail(fmt.Errorf("config.json: num_key_value_heads %d does not divide num_attention_heads %d", kv, heads))
	}
	k.floatKey("rope.freq_base", h, false, "rope_theta")
	k.floatKey("attention.layer_norm_rms_epsilon", h, true, "rms_norm_eps", "norm_eps")
	if k.err != nil {
		return nil, k.err
	}
	if llama {
		k.add("vocab_size", uint32(nVocab))
		hd, err := headDim(h)
		if err != nil {
			return nil, err
		}
		k.add("rope.dimension_count", uint32(hd))
		if h.has("head_dim") {
			k.add("attention.key_length", uint32(hd))
			k.add("attention.value_length", uint32(hd))
		}
	}
	if rs := h.object("rope_scaling"); rs != nil {
		typ := rs.str("rope_type")
		if typ == "" {
			typ = rs.str("type")
		}
		factor, _, ferr := rs.floatOf("factor")
		switch typ {
		case "linear":
			if ferr != nil {
				return nil, fmt.Errorf("config.json: rope_scaling: %w", ferr)
			}
			k.add("rope.scaling.type", "linear")
			k.add("rope.scaling.factor", float32(factor))
		case "yarn":
			if ferr != nil {
				return nil, fmt.Errorf("config.json: rope_scaling: %w", ferr)
			}
			k.add("rope.scaling.type", "yarn")
			k.add("rope.scaling.factor", float32(factor))
			if n, _, err := rs.intOf("original_max_position_embeddings"); err == nil {
				k.add("rope.scaling.original_context_length", uint32(n))
			}
		case "llama3":
			if !llama {
				return nil, fmt.Errorf("config.json: rope_scaling type llama3 is not supported for %s", arch)
			}
			// Written as the rope_freqs tensor (see llamaExtra).
		case "", "default":
		default:
			return nil, fmt.Errorf("config.json: rope_scaling type %q is not supported (linear, yarn, llama3)", typ)
		}
	}
	return k.out, nil
}

var (
	layerRe = regexp.MustCompile(`^model\.layers\.(\d+)\.(.+)$`)
	gpt2Re  = regexp.MustCompile(`^h\.(\d+)\.(.+)$`)
)

var llamaLayerNames = map[string]string{
	"input_layernorm.weight":          "attn_norm.weight",
	"self_attn.q_proj.weight":         "attn_q.weight",
	"self_attn.q_proj.bias":           "attn_q.bias",
	"self_attn.k_proj.weight":         "attn_k.weight",
	"self_attn.k_proj.bias":           "attn_k.bias",
	"self_attn.v_proj.weight":         "attn_v.weight",
	"self_attn.v_proj.bias":           "attn_v.bias",
	"self_attn.o_proj.weight":         "attn_output.weight",
	"self_attn.o_proj.bias":           "attn_output.bias",
	"post_attention_layernorm.weight": "ffn_norm.weight",
	"mlp.gate_proj.weight":            "ffn_gate.weight",
	"mlp.up_proj.weight":              "ffn_up.weight",
	"mlp.down_proj.weight":            "ffn_down.weight",
}

// llamaLikeTensor maps the Llama/Qwen2 layout; permute applies the q/k row
// permutation (llama only).
func llamaLikeTensor(h hparams, name string, shape []int64, permute bool) (string, reshape, error) {
	switch name {
	case "model.embed_tokens.weight":
		return "token_embd.weight", nil, nil
	case "model.norm.weight":
		return "output_norm.weight", nil, nil
	case "lm_head.weight":
		if h.boolOf("tie_word_embeddings") {
			return "", nil, nil // the output is token_embd
		}
		return "output.weight", nil, nil
	}
	m := layerRe.FindStringSubmatch(name)
	if m == nil {
		return "", nil, fmt.Errorf("cannot map tensor %q", name)
	}
	if strings.HasSuffix(m[2], "rotary_emb.inv_freq") {
		return "", nil, nil // a buffer, recomputed at run time
	}
	g, ok := llamaLayerNames[m[2]]
	if !ok {
		return "", nil, fmt.Errorf("cannot map tensor %q", name)
	}
	out := "blk." + m[1] + "." + g
	if !permute {
		return out, nil, nil
	}
	heads, _, err := h.intOf("num_attention_heads")
	if err != nil {
		return "", nil, err
	}
	rows := func(n int) error {
		if n <= 0 || len(shape) == 0 || shape[0]%int64(2*n) != 0 {
			return fmt.Errorf("tensor %q has shape %v: its rows do not split into %d heads of even size", name, shape, n)
		}
		return nil
	}
	switch {
	case strings.HasPrefix(m[2], "self_attn.q_proj."):
		if err := rows(heads); err != nil {
			return "", nil, err
		}
		return out, permuteRoPE(heads), nil
	case strings.HasPrefix(m[2], "self_attn.k_proj."):
		kv := heads
		if h.has("num_key_value_heads") {
			if kv, _, err = h.intOf("num_key_value_heads"); err != nil {
				return "", nil, err
			}
		}
		if err := rows(kv); err != nil {
			return "", nil, err
		}
		return out, permuteRoPE(kv), nil
	}
	return out, nil, nil
}

// permuteRoPE reorders the rows of a q or k projection (or bias) from
// Hugging Face's rotate-half layout, where each head's first half pairs
// with its second half, to the interleaved order ggml's normal RoPE
// rotates (rows 2i and 2i+1 form a pair): within head h, new row 2i+j is
// old row j·d/2+i.
func permuteRoPE(heads int) reshape {
	return func(shape []int64, data []float32) ([]int64, []float32) {
		if data == nil {
			return shape, nil
		}
		rows := shape[0]
		cols := int64(1)
		for _, d := range shape[1:] {
			cols *= d
		}
		hd := rows / int64(heads)
		out := make([]float32, len(data))
		for h := int64(0); h < int64(heads); h++ {
			for i := int64(0); i < hd/2; i++ {
				for j := int64(0); j < 2; j++ {
					dst := (h*hd + 2*i + j) * cols
					src := (h*hd + j*hd/2 + i) * cols
					copy(out[dst:dst+cols], data[src:src+cols])
				}
			}
		}
		return shape, out
	}
}

// llamaExtra generates rope_freqs.weight for rope_scaling type llama3, the
// way convert_hf_to_gguf.py computes it (in float32).
func llamaExtra(h hparams) ([]generated, error) {
	rs := h.object("rope_scaling")
	if rs == nil {
		return nil, nil
	}
	typ := rs.str("rope_type")
	if typ == "" {
		typ = rs.str("type")
	}
	if typ != "llama3" {
		return nil, nil
	}
	num := func(o hparams, key string, def float64) float64 {
		if v, _, err := o.floatOf(key); err == nil {
			return v
		}
		return def
	}
	base := num(h, "rope_theta", 10000)
	dim, err := headDim(h)
	if err != nil {
		return nil, err
	}
	factor := float32(num(rs, "factor", 8))
	lowFF := float32(num(rs, "low_freq_factor", 1))
	highFF := float32(num(rs, "high_freq_factor", 4))
	// convert_hf_to_gguf.py reads original_max_position_embeddings from the
	// top level of config.json (default 8192); Llama 3.x configs put it
	// in rope_scaling (also 8192), where transformers reads it. Top level
	// first, then rope_scaling: the same factors as llama.cpp for every
	// Llama 3 checkpoint, and transformers' for the others.
	oldCtx := float32(num(h, "original_max_position_embeddings", num(rs, "original_max_position_embeddings", 8192)))
	if lowFF == highFF {
		return nil, fmt.Errorf("config.json: rope_scaling low_freq_factor equals high_freq_factor (%v)", lowFF)
	}
	lowWave := oldCtx / lowFF
	highWave := oldCtx / highFF
	out := make([]float32, dim/2)
	for i := range out {
		expo := float32(2*i) / float32(dim)
		freq := 1 / float32(math.Pow(base, float64(expo)))
		wave := float32(2*math.Pi) / freq
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = factor
		default:
			smooth := (oldCtx/wave - lowFF) / (highFF - lowFF)
			out[i] = 1 / ((1-smooth)/factor + smooth)
		}
	}
	return []generated{{name: "rope_freqs.weight", shape: []int64{int64(len(out))}, data: out}}, nil
}

var llamaFamily = &family{
	arch: "llama",
	params: func(h hparams, nVocab int) ([]gguf.KV, error) {
		return llamaLikeParams("llama", h, nVocab, true)
	},
	tensor: func(h hparams, name string, shape []int64) (string, reshape, error) {
		return llamaLikeTensor(h, name, shape, true)
	},
	extra: llamaExtra,
}

var qwen2Family = &family{
	arch: "qwen2",
	params: func(h hparams, nVocab int) ([]gguf.KV, error) {
		return llamaLikeParams("qwen2", h, nVocab, false)
	},
	tensor: func(h hparams, name string, shape []int64) (string, reshape, error) {
		return llamaLikeTensor(h, name, shape, false) // NEOX RoPE: no permutation
	},
}

var gpt2Family = &family{
	arch: "gpt2",
	params: func(h hparams, _ int) ([]gguf.KV, error) {
		k := &kvs{arch: "gpt2"}
		k.intKey("block_count", h, true, "n_layer")
		k.intKey("context_length", h, true, "n_ctx", "n_positions")
		embd := k.intKey("embedding_length", h, true, "n_embd")
		if k.err == nil {
			if h.has("n_inner") {
				k.intKey("feed_forward_length", h, true, "n_inner")
			} else {
				k.add("feed_forward_length", uint32(4*embd))
			}
		}
		k.intKey("attention.head_count", h, true, "n_head")
		k.floatKey("attention.layer_norm_epsilon", h, true, "layer_norm_epsilon")
		return k.out, k.err
	},
	tensor: gpt2Tensor,
}

var gpt2BlockNames = map[string]string{
	"ln_1.weight":        "attn_norm.weight",
	"ln_1.bias":          "attn_norm.bias",
	"attn.c_attn.weight": "attn_qkv.weight",
	"attn.c_attn.bias":   "attn_qkv.bias",
	"attn.c_proj.weight": "attn_output.weight",
	"attn.c_proj.bias":   "attn_output.bias",
	"ln_2.weight":        "ffn_norm.weight",
	"ln_2.bias":          "ffn_norm.bias",
	"mlp.c_fc.weight":    "ffn_up.weight",
	"mlp.c_fc.bias":      "ffn_up.bias",
	"mlp.c_proj.weight":  "ffn_down.weight",
	"mlp.c_proj.bias":    "ffn_down.bias",
}

// gpt2Tensor maps GPT-2 (transformer.h.N...) and distilgpt2 (h.N...)
// names. Conv1D weights are stored [in, out], the transpose of a Linear's.
func gpt2Tensor(_ hparams, name string, shape []int64) (string, reshape, error) {
	n := strings.TrimPrefix(name, "transformer.")
	switch n {
	case "wte.weight":
		return "token_embd.weight", nil, nil
	case "wpe.weight":
		return "position_embd.weight", nil, nil
	case "ln_f.weight":
		return "output_norm.weight", nil, nil
	case "ln_f.bias":
		return "output_norm.bias", nil, nil
	case "lm_head.weight":
		return "", nil, nil // tied to wte
	}
	m := gpt2Re.FindStringSubmatch(n)
	if m == nil {
		return "", nil, fmt.Errorf("cannot map tensor %q", name)
	}
	if m[2] == "attn.bias" || m[2] == "attn.masked_bias" {
		return "", nil, nil // causal-mask buffers
	}
	g, ok := gpt2BlockNames[m[2]]
	if !ok {
		return "", nil, fmt.Errorf("cannot map tensor %q", name)
	}
	var rs reshape
	if strings.HasSuffix(m[2], ".weight") && strings.HasPrefix(g, "attn_qkv") || g == "attn_output.weight" || g == "ffn_up.weight" || g == "ffn_down.weight" {
		if len(shape) != 2 {
			return "", nil, fmt.Errorf("tensor %q: want 2 dimensions, have shape %v", name, shape)
		}
		rs = transpose2D
	}
	return "blk." + m[1] + "." + g, rs, nil
}

func transpose2D(shape []int64, data []float32) ([]int64, []float32) {
	r, c := shape[0], shape[1]
	if data == nil {
		return []int64{c, r}, nil
	}
	out := make([]float32, len(data))
	for i := int64(0); i < r; i++ {
		for j := int64(0); j < c; j++ {
			out[j*r+i] = data[i*c+j]
		}
	}
	return []int64{c, r}, out
}

// blockOf is the block number of a GGUF tensor name, or -1.
func blockOf(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	num, _, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return n
}
