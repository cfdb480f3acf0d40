package convert

import (
	"fmt"
	"math"
	"strings"

	"github.com/slm-dev/slm/gguf"
)

// Phi-3 and Gemma, as convert_hf_to_gguf.py's Phi3MiniModel and GemmaModel
// write them.

// phi3RopeDims is the rotated width of a head: partial_rotary_factor of
// hidden_size / num_attention_heads.
func phi3RopeDims(h hparams) (int, error) {
	embd, _, err := h.intOf("hidden_size", "n_embd")
	if err != nil {
		return 0, err
	}
	heads, _, err := h.intOf("num_attention_heads", "n_head")
	if err != nil {
		return 0, err
	}
	if heads == 0 {
		return 0, fmt.Errorf("config.json: num_attention_heads is 0")
	}
	pct := 1.0
	if v, _, err := h.floatOf("partial_rotary_factor"); err == nil {
		pct = v
	} else if !isMissing(err) {
		return 0, err
	}
	return int(pct*float64(embd)) / heads, nil
}

// phi3LongRope returns the LongRoPE settings of rope_scaling: ok is false
// when the config has no long_factor (the 4k-context models).
func phi3LongRope(h hparams) (typ string, long, short []float32, ok bool, err error) {
	rs := h.object("rope_scaling")
	if rs == nil || !rs.has("long_factor") {
		return "", nil, nil, false, nil
	}
	typ = strings.ToLower(rs.str("rope_type"))
	if typ == "" {
		typ = strings.ToLower(rs.str("type"))
	}
	floats := func(key string) ([]float32, error) {
		list, ok := rs[key].([]any)
		if !ok {
			return nil, fmt.Errorf("config.json: rope_scaling.%s is not a list of numbers", key)
		}
		out := make([]float32, len(list))
		for i, v := range list {
			n, ok := v.(interface{ Float64() (float64, error) })
			if !ok {
				return nil, fmt.Errorf("config.json: rope_scaling.%s[%d] = %v is not a number", key, i, v)
			}
			f, err := n.Float64()
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
				return nil, fmt.Errorf("config.json: rope_scaling.%s[%d] = %v is not a positive number", key, i, v)
			}
			out[i] = float32(f)
		}
		return out, nil
	}
	if long, err = floats("long_factor"); err != nil {
		return "", nil, nil, false, err
	}
	if short, err = floats("short_factor"); err != nil {
		return "", nil, nil, false, err
	}
	return typ, long, short, true, nil
}

// phi3OrigCtx is original_max_position_embeddings (top level, else in
// rope_scaling); missing is an error only when required.
func phi3OrigCtx(h hparams) (int, error) {
	n, _, err := h.intOf("original_max_position_embeddings")
	if isMissing(err) {
		if rs := h.object("rope_scaling"); rs != nil {
			n, _, err = rs.intOf("original_max_position_embeddings")
		}
	}
	return n, err
}

func phi3Params(h hparams, _ int) ([]gguf.KV, error) {
	k := &kvs{arch: "phi3"}
	ctx := k.intKey("context_length", h, true, "n_positions", "max_position_embeddings")
	orig, err := phi3OrigCtx(h)
	switch {
	case err == nil:
		k.add("rope.scaling.original_context_length", uint32(orig))
	case !isMissing(err):
		k.fail(err)
	}
	k.intKey("embedding_length", h, true, "hidden_size", "n_embd")
	k.intKey("feed_forward_length", h, true, "intermediate_size")
	k.intKey("block_count", h, true, "num_hidden_layers", "n_layer")
	k.headCounts(h, []string{"num_attention_heads", "n_head"}, []string{"num_key_value_heads", "n_head_kv"})
	k.floatKey("attention.layer_norm_rms_epsilon", h, true, "rms_norm_eps")
	if k.err != nil {
		return nil, k.err
	}
	dims, err := phi3RopeDims(h)
	if err != nil {
		return nil, err
	}
	k.add("rope.dimension_count", uint32(dims))
	if h.has("rope_theta") {
		k.floatKey("rope.freq_base", h, true, "rope_theta")
	} else {
		k.add("rope.freq_base", float32(10000))
	}
	sw := 0
	if h.has("sliding_window") {
		if sw, _, err = h.intOf("sliding_window"); err != nil {
			return nil, err
		}
	}
	k.add("attention.sliding_window", uint32(sw))

	typ, long, short, ok, err := phi3LongRope(h)
	if err != nil {
		return nil, err
	}
	if ok {
		if orig <= 0 {
			return nil, fmt.Errorf("config.json: LongRoPE scaling needs original_max_position_embeddings")
		}
		scale := float64(ctx) / float64(orig)
		attn := 1.0
		switch typ {
		case "su", "longrope":
			if scale > 1 {
				attn = math.Sqrt(1 + math.Log(scale)/math.Log(float64(orig)))
			}
		case "yarn":
			if scale > 1 {
				attn = 0.1*math.Log(scale) + 1
			}
		case "":
			return nil, fmt.Errorf("config.json: rope_scaling has no type")
		default:
			return nil, fmt.Errorf("config.json: rope_scaling type %q is not supported for Phi-3 (longrope, su, yarn)", typ)
		}
		if len(long) != len(short) || 2*len(long) != dims {
			return nil, fmt.Errorf("config.json: rope_scaling long_factor and short_factor must have %d values each (have %d and %d)", dims/2, len(long), len(short))
		}
		k.add("rope.scaling.attn_factor", float32(attn))
	}
	return k.out, k.err
}

// phi3Extra writes LongRoPE's frequency factors as rope_factors_long and
// rope_factors_short.
func phi3Extra(h hparams) ([]generated, error) {
	_, long, short, ok, err := phi3LongRope(h)
	if err != nil || !ok {
		return nil, err
	}
	return []generated{
		{name: "rope_factors_long.weight", shape: []int64{int64(len(long))}, data: long},
		{name: "rope_factors_short.weight", shape: []int64{int64(len(short))}, data: short},
	}, nil
}

var phi3LayerNames = map[string]string{
	"input_layernorm.weight":          "attn_norm.weight",
	"post_attention_layernorm.weight": "ffn_norm.weight",
	"self_attn.qkv_proj.weight":       "attn_qkv.weight",
	"self_attn.q_proj.weight":         "attn_q.weight",
	"self_attn.k_proj.weight":         "attn_k.weight",
	"self_attn.v_proj.weight":         "attn_v.weight",
	"self_attn.o_proj.weight":         "attn_output.weight",
	"mlp.gate_up_proj.weight":         "ffn_up.weight", // gate rows, then up rows
	"mlp.down_proj.weight":            "ffn_down.weight",
}

func phi3Tensor(h hparams, name string, _ []int64) (string, reshape, error) {
	switch name {
	case "model.embed_tokens.weight":
		return "token_embd.weight", nil, nil
	case "model.norm.weight":
		return "output_norm.weight", nil, nil
	case "lm_head.weight":
		if h.boolOf("tie_word_embeddings") {
			return "", nil, nil
		}
		return "output.weight", nil, nil
	}
	m := layerRe.FindStringSubmatch(name)
	if m == nil {
		return "", nil, fmt.Errorf("cannot map tensor %q", name)
	}
	if strings.HasSuffix(m[2], "rotary_emb.inv_freq") {
		return "", nil, nil
	}
	g, ok := phi3LayerNames[m[2]]
	if !ok {
		return "", nil, fmt.Errorf("cannot map tensor %q", name)
	}
	return "blk." + m[1] + "." + g, nil, nil
}

var phi3Family = &family{arch: "phi3", params: phi3Params, tensor: phi3Tensor, extra: phi3Extra}

func gemmaParams(h hparams, _ int) ([]gguf.KV, error) {
	k := &kvs{arch: "gemma"}
	k.intKey("context_length", h, true, "max_position_embeddings")
	k.intKey("embedding_length", h, true, "hidden_size")
	k.intKey("block_count", h, true, "num_hidden_layers")
	k.intKey("feed_forward_length", h, true, "intermediate_size")
	k.headCounts(h, []string{"num_attention_heads"}, []string{"num_key_value_heads"})
	k.floatKey("attention.layer_norm_rms_epsilon", h, true, "rms_norm_eps")
	if k.err != nil {
		return nil, k.err
	}
	hd, err := headDim(h)
	if err != nil {
		return nil, err
	}
	k.add("attention.key_length", uint32(hd))
	k.add("attention.value_length", uint32(hd))
	// convert_hf_to_gguf.py writes no rope.freq_base for Gemma (llama.cpp
	// then uses 10000, every Gemma's rope_theta); write one that differs.
	if v, _, err := h.floatOf("rope_theta"); err == nil && v != 10000 {
		k.add("rope.freq_base", float32(v))
	} else if err != nil && !isMissing(err) {
		return nil, err
	}
	if act := h.str("hidden_activation"); act != "" && act != "gelu_pytorch_tanh" && act != "gelu" {
		return nil, fmt.Errorf("config.json: hidden_activation %q is not supported for Gemma (gelu_pytorch_tanh)", act)
	}
	if rs := h.object("rope_scaling"); rs != nil {
		if t := rs.str("rope_type") + rs.str("type"); t != "" && t != "default" {
			return nil, fmt.Errorf("config.json: rope_scaling type %q is not supported for Gemma", t)
		}
	}
	return k.out, nil
}

// gemmaTensor maps Gemma's Llama-like names; the norm weights become
// 1 + w (Gemma's RMSNorm multiplies by 1 + weight); the output is always
// the token embedding.
func gemmaTensor(h hparams, name string, shape []int64) (string, reshape, error) {
	if name == "lm_head.weight" {
		return "", nil, nil
	}
	out, _, err := llamaLikeTensor(h, name, shape, false)
	if err != nil || out == "" {
		return out, nil, err
	}
	if strings.HasSuffix(name, "norm.weight") {
		return out, plusOne, nil
	}
	return out, nil, nil
}

func plusOne(shape []int64, data []float32) ([]int64, []float32) {
	if data == nil {
		return shape, nil
	}
	out := make([]float32, len(data))
	for i, v := range data {
		out[i] = v + 1
	}
	return shape, out
}

var gemmaFamily = &family{arch: "gemma", params: gemmaParams, tensor: gemmaTensor}
