package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
)

// Config is a model's hyperparameters, read from the `<arch>.*` GGUF keys.
type Config struct {
	Arch      string  // general.architecture
	NVocab    int     // tokens (rows of token_embd)
	NEmbd     int     // embedding_length: width of the residual stream
	NLayer    int     // block_count
	NHead     int     // attention.head_count
	NHeadKV   int     // attention.head_count_kv (GQA); NHead when absent
	HeadDim   int     // attention.key_length; NEmbd/NHead when absent
	NFF       int     // feed_forward_length: hidden width of the MLP
	NCtxTrain int     // context_length the model was trained with
	NormEps   float32 // attention.layer_norm_rms_epsilon or attention.layer_norm_epsilon

	RopeBase    float32 // rope.freq_base (10000 when absent)
	RopeDims    int     // rope.dimension_count: rotated dims per head (HeadDim when absent)
	RopeScaling string  // rope.scaling.type: "none", "linear", "yarn", "llama3", ... ("" when absent)
	RopeFactor  float32 // rope.scaling.factor (or rope.scale_linear); 0 = no position scaling
	RopeOrigCtx int     // rope.scaling.original_context_length (YaRN); NCtxTrain when absent
	// RopeAttnFactor is rope.scaling.attn_factor, a magnitude scale of the
	// rotation's cos/sin (Phi-3's LongRoPE files carry one); 0 = absent (1).
	RopeAttnFactor float32

	AttnScale float32 // attention.scale: factor of q·k; 0 means 1/√HeadDim
	MaxPos    int     // hard limit on positions (learned position embeddings); 0 = none
}

// QDim is the width of the concatenated query heads.
func (c *Config) QDim() int { return c.NHead * c.HeadDim }

// KVDim is the width of the concatenated key (or value) heads.
func (c *Config) KVDim() int { return c.NHeadKV * c.HeadDim }

// KQScale is the factor applied to q·k before the softmax.
func (c *Config) KQScale() float32 {
	if c.AttnScale != 0 {
		return c.AttnScale
	}
	return 1 / float32(math.Sqrt(float64(c.HeadDim)))
}

// The norm epsilon keys: ReadConfig requires the one the family uses.
const (
	RMSNormEps   = "attention.layer_norm_rms_epsilon"
	LayerNormEps = "attention.layer_norm_epsilon"
)

// maxDim bounds every size read from a file, so that a hostile file cannot
// make us allocate absurd buffers before the tensor shapes are checked.
const maxDim = 1 << 24

// configReader reads `<arch>.*` keys, keeping the first error.
type configReader struct {
	f    *gguf.File
	arch string
	err  error
}

func (r *configReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// int reads a non-negative integer key; def < 0 makes it required.
func (r *configReader) int(key string, def int) int {
	full := r.arch + "." + key
	v, ok := r.f.Get(full)
	if !ok {
		if def < 0 {
			r.fail("missing metadata key %s", full)
			return 0
		}
		return def
	}
	n, ok := r.f.Uint(full)
	if !ok {
		if _, isArr := v.([]int32); isArr {
			r.fail("%s: per-layer values are not supported", full)
		} else {
			r.fail("%s: want a non-negative integer, have %v (%T)", full, v, v)
		}
		return 0
	}
	if n > maxDim {
		r.fail("%s = %d is too large", full, n)
		return 0
	}
	return int(n)
}

// float reads a float key; def < 0 makes it required.
func (r *configReader) float(key string, def float64) float32 {
	full := r.arch + "." + key
	v, ok := r.f.Get(full)
	if !ok {
		if def < 0 {
			r.fail("missing metadata key %s", full)
			return 0
		}
		return float32(def)
	}
	x, ok := r.f.Float(full)
	if !ok || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		r.fail("%s: want a non-negative number, have %v (%T)", full, v, v)
		return 0
	}
	return float32(x)
}

// ReadConfig reads the hyperparameters of the file's architecture. epsKey is
// the norm epsilon the family needs (RMSNormEps or LayerNormEps). Every
// missing or inconsistent value is an error naming its key.
func ReadConfig(f *gguf.File, epsKey string) (Config, error) {
	c := Config{Arch: f.Arch()}
	if c.Arch == "" {
		return c, fmt.Errorf("missing metadata key general.architecture")
	}
	r := &configReader{f: f, arch: c.Arch}
	c.NEmbd = r.int("embedding_length", -1)
	c.NLayer = r.int("block_count", -1)
	c.NHead = r.int("attention.head_count", -1)
	c.NHeadKV = r.int("attention.head_count_kv", c.NHead)
	c.NFF = r.int("feed_forward_length", -1)
	c.NCtxTrain = r.int("context_length", -1)
	c.NormEps = r.float(epsKey, -1)
	if r.err != nil {
		return c, r.err
	}
	switch {
	case c.NEmbd == 0:
		r.fail("%s.embedding_length is 0", c.Arch)
	case c.NLayer == 0:
		r.fail("%s.block_count is 0", c.Arch)
	case c.NHead == 0:
		r.fail("%s.attention.head_count is 0", c.Arch)
	case c.NHeadKV == 0 || c.NHead%c.NHeadKV != 0:
		r.fail("%s.attention.head_count_kv = %d does not divide head_count = %d", c.Arch, c.NHeadKV, c.NHead)
	case c.NFF == 0:
		r.fail("%s.feed_forward_length is 0", c.Arch)
	case c.NCtxTrain == 0:
		r.fail("%s.context_length is 0", c.Arch)
	case c.NormEps == 0:
		r.fail("%s.%s is 0", c.Arch, epsKey)
	}
	if r.err != nil {
		return c, r.err
	}

	defHead := -1
	if c.NEmbd%c.NHead == 0 {
		defHead = c.NEmbd / c.NHead
	}
	c.HeadDim = r.int("attention.key_length", defHead)
	if r.err == nil && c.HeadDim == 0 {
		r.fail("%s.attention.key_length is 0", c.Arch)
	}
	if v := r.int("attention.value_length", c.HeadDim); r.err == nil && v != c.HeadDim {
		r.fail("%s.attention.value_length = %d differs from key_length = %d (not supported)", c.Arch, v, c.HeadDim)
	}
	c.AttnScale = r.float("attention.scale", 0)

	c.RopeBase = r.float("rope.freq_base", 10000)
	c.RopeDims = r.int("rope.dimension_count", c.HeadDim)
	if r.err == nil && (c.RopeDims%2 != 0 || c.RopeDims > c.HeadDim) {
		r.fail("%s.rope.dimension_count = %d must be even and at most the head size %d", c.Arch, c.RopeDims, c.HeadDim)
	}
	if r.err == nil && c.RopeBase == 0 {
		r.fail("%s.rope.freq_base is 0", c.Arch)
	}
	if s, ok := f.String(c.Arch + ".rope.scaling.type"); ok {
		c.RopeScaling = strings.ToLower(s)
	}
	if _, ok := f.Get(c.Arch + ".rope.scale_linear"); ok {
		c.RopeFactor = r.float("rope.scale_linear", 0)
	} else {
		c.RopeFactor = r.float("rope.scaling.factor", 0)
	}
	c.RopeOrigCtx = r.int("rope.scaling.original_context_length", c.NCtxTrain)
	if _, ok := f.Get(c.Arch + ".rope.scaling.attn_factor"); ok {
		if c.RopeAttnFactor = r.float("rope.scaling.attn_factor", -1); r.err == nil && c.RopeAttnFactor == 0 {
			r.fail("%s.rope.scaling.attn_factor is 0", c.Arch)
		}
	}
	if r.err != nil {
		return c, r.err
	}
	switch c.RopeScaling {
	case "", "none", "linear", "yarn", "llama3":
	default:
		return c, fmt.Errorf("%s.rope.scaling.type %q is not supported (none, linear, yarn, llama3)", c.Arch, c.RopeScaling)
	}

	c.NVocab = r.int("vocab_size", 0)
	if c.NVocab == 0 {
		if toks, ok := f.Strings("tokenizer.ggml.tokens"); ok {
			c.NVocab = len(toks)
		} else if t, ok := f.Tensor("token_embd.weight"); ok && len(t.Dims) == 2 && t.Dims[1] <= maxDim {
			c.NVocab = int(t.Dims[1])
		}
	}
	if r.err == nil && c.NVocab == 0 {
		r.fail("cannot tell the vocabulary size: no %s.vocab_size, tokenizer.ggml.tokens or token_embd.weight", c.Arch)
	}
	return c, r.err
}

// Rope is the rotary embedding the config describes, as llama.cpp sets it
// up: a rope.scaling.factor scales positions by 1/factor whatever the
// scaling type, YaRN also mixes in extrapolation (ext_factor 1, beta_fast
// 32, beta_slow 1), and Llama 3's rope_freqs tensor divides each pair's
// angle (freqFactors, nil when absent). neox picks the pairing (i, i+d/2).
func (c *Config) Rope(neox bool, freqFactors []float32) kernel.Rope {
	r := kernel.Rope{
		Dims:        c.RopeDims,
		Neox:        neox,
		Base:        c.RopeBase,
		FreqScale:   1,
		FreqFactors: freqFactors,
		AttnFactor:  1,
		BetaFast:    32,
		BetaSlow:    1,
		OrigCtx:     c.RopeOrigCtx,
	}
	if c.RopeFactor != 0 {
		r.FreqScale = 1 / c.RopeFactor
	}
	if c.RopeAttnFactor != 0 {
		r.AttnFactor = c.RopeAttnFactor // llama.cpp: yarn_attn_factor *= rope_attn_factor
	}
	if c.RopeScaling == "yarn" {
		r.ExtFactor = 1
	}
	return r
}

// ReadUint reads a non-negative integer key of a family's own (full name);
// def < 0 makes it required. Values above the size bound are errors.
func ReadUint(f *gguf.File, key string, def int) (int, error) {
	v, ok := f.Get(key)
	if !ok {
		if def < 0 {
			return 0, fmt.Errorf("missing metadata key %s", key)
		}
		return def, nil
	}
	n, ok := f.Uint(key)
	if !ok {
		return 0, fmt.Errorf("%s: want a non-negative integer, have %v (%T)", key, v, v)
	}
	if n > maxDim {
		return 0, fmt.Errorf("%s = %d is too large", key, n)
	}
	return int(n), nil
}

// ReadPositive reads a positive finite float key of a family's own (full
// name), def when absent.
func ReadPositive(f *gguf.File, key string, def float32) (float32, error) {
	v, ok := f.Get(key)
	if !ok {
		return def, nil
	}
	x, ok := f.Float(key)
	if !ok || math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 || float32(x) == 0 || math.IsInf(float64(float32(x)), 0) {
		return 0, fmt.Errorf("%s: want a positive number, have %v (%T)", key, v, v)
	}
	return float32(x), nil
}

// GemmaQueryScale is llama.cpp's f_attention_scale for Gemma 2 and 3, the
// factor of the queries before q·k: 1/√head_dim, or 1/√(n_embd/n_head)
// for the 27B models (byEmbd), computed in float32 as llama.cpp.
func GemmaQueryScale(c *Config, byEmbd bool) float32 {
	d := c.HeadDim
	if byEmbd {
		d = c.NEmbd / c.NHead
	}
	return 1 / float32(math.Sqrt(float64(float32(d))))
}
