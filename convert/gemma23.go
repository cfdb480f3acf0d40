package convert

import (
	"fmt"
	"math"
	"strings"

	"github.com/slm-dev/slm/gguf"
)

// Gemma 2 and Gemma 3 (text), as convert_hf_to_gguf.py's Gemma2Model and
// Gemma3Model write them: Gemma's metadata with the head size as
// key_length/value_length, the soft-capping factors (Gemma 2), the sliding
// window, the global layers' rope_theta and linear rope scaling (Gemma 3);
// four 1 + w RMSNorms per block (input_layernorm → attn_norm,
// post_attention_layernorm → post_attention_norm, pre_feedforward_layernorm
// → ffn_norm, post_feedforward_layernorm → post_ffw_norm) and Gemma 3's
// per-head q/k norms (attn_q_norm, attn_k_norm, also 1 + w); no output
// tensor (tied to token_embd). Which layers are local is not written:
// llama.cpp fixes it per architecture (every other layer from layer 0 for
// Gemma 2, five of every six for Gemma 3), so configs that say otherwise
// are refused.

// gemma23Common writes what both write and checks what both assume.
func gemma23Common(k *kvs, h hparams) (hd int) {
	k.intKey("context_length", h, true, "max_position_embeddings")
	k.intKey("embedding_length", h, true, "hidden_size")
	k.intKey("block_count", h, true, "num_hidden_layers")
	k.intKey("feed_forward_length", h, true, "intermediate_size")
	heads := k.headCounts(h, []string{"num_attention_heads"}, []string{"num_key_value_heads"})
	k.floatKey("attention.layer_norm_rms_epsilon", h, true, "rms_norm_eps")
	if k.err != nil {
		return 0
	}
	hd, err := headDim(h)
	if err == nil && (hd == 0 || hd%2 != 0) {
		err = fmt.Errorf("config.json: head_dim %d must be positive and even", hd)
	}
	if err != nil {
		k.fail(err)
		return 0
	}
	k.add("attention.key_length", uint32(hd))
	k.add("attention.value_length", uint32(hd))
	if act := h.str("hidden_activation"); act != "" && act != "gelu_pytorch_tanh" {
		k.fail(fmt.Errorf("config.json: hidden_activation %q is not supported (gelu_pytorch_tanh)", act))
	}
	// llama.cpp scales the queries by 1/√head_dim (1/√(hidden_size/heads)
	// for the 27B models); HF by query_pre_attn_scalar^-½. Refuse a config
	// where the two differ.
	if h.has("query_pre_attn_scalar") {
		s, _, err := h.floatOf("query_pre_attn_scalar")
		if err != nil {
			k.fail(err)
			return 0
		}
		embd, _, _ := h.intOf("hidden_size")
		if s != float64(hd) && (heads <= 0 || s != float64(embd/heads)) {
			k.fail(fmt.Errorf("config.json: query_pre_attn_scalar %v is neither head_dim %d nor hidden_size/num_attention_heads (llama.cpp scales queries by one of those)", s, hd))
		}
	}
	if !h.has("sliding_window") {
		k.fail(fmt.Errorf("config.json: no sliding_window"))
		return 0
	}
	sw := k.intKey("attention.sliding_window", h, true, "sliding_window")
	if sw == 0 {
		k.fail(fmt.Errorf("config.json: sliding_window is 0"))
	}
	return hd
}

// gemma23LayerTypes checks config.json's layer_types (newer transformers)
// against llama.cpp's fixed pattern: layer l is local when l%pattern <
// pattern-1.
func gemma23LayerTypes(h hparams, pattern int) error {
	list, ok := h["layer_types"].([]any)
	if !ok {
		if h.has("layer_types") {
			return fmt.Errorf("config.json: layer_types is not a list")
		}
		return nil
	}
	for l, v := range list {
		want := "full_attention"
		if l%pattern < pattern-1 {
			want = "sliding_attention"
		}
		if s, _ := v.(string); s != want {
			return fmt.Errorf("config.json: layer_types[%d] = %v, but llama.cpp makes that layer %s (a sliding window on layers l%%%d < %d)", l, v, want, pattern, pattern-1)
		}
	}
	return nil
}

func gemma2Params(h hparams, _ int) ([]gguf.KV, error) {
	k := &kvs{arch: "gemma2"}
	gemma23Common(k, h)
	if k.err != nil {
		return nil, k.err
	}
	for _, key := range []string{"attn_logit_softcapping", "final_logit_softcapping"} {
		v, _, err := h.floatOf(key)
		if err != nil {
			return nil, err // convert_hf_to_gguf.py requires both
		}
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("config.json: %s %v must be a positive number", key, v)
		}
		k.add(key, float32(v))
	}
	if v, _, err := h.floatOf("rope_theta"); err == nil && v != 10000 {
		// convert_hf_to_gguf.py writes none (llama.cpp then uses 10000).
		k.add("rope.freq_base", float32(v))
	} else if err != nil && !isMissing(err) {
		return nil, err
	}
	if rs := h.object("rope_scaling"); rs != nil {
		if t := rs.str("rope_type") + rs.str("type"); t != "" && t != "default" {
			return nil, fmt.Errorf("config.json: rope_scaling type %q is not supported for Gemma 2", t)
		}
	}
	if err := gemma23LayerTypes(h, 2); err != nil {
		return nil, err
	}
	return k.out, nil
}

func gemma3Params(h hparams, _ int) ([]gguf.KV, error) {
	k := &kvs{arch: "gemma3"}
	gemma23Common(k, h)
	if k.err != nil {
		return nil, k.err
	}
	// The global layers' rope: rope_theta and rope_scaling, or (newer
	// transformers) rope_parameters.full_attention. The local layers' base,
	// rope_local_base_freq or rope_parameters.sliding_attention.rope_theta,
	// goes to rope.freq_base_swa as convert_hf_to_gguf.py writes it
	// (llama.cpp and slm use 10000 when the key is absent).
	rope, local := h, hparams(nil)
	if rp := h.object("rope_parameters"); rp != nil {
		if full := rp.object("full_attention"); full != nil {
			rope = full
			if sl := rp.object("sliding_attention"); sl != nil && sl.has("rope_theta") {
				local = sl
			}
		} else {
			rope = rp
		}
	}
	localKey := "rope_theta"
	if local == nil {
		local, localKey = h, "rope_local_base_freq"
	}
	if v, ok := local[localKey]; ok && v != nil {
		f, _, err := local.floatOf(localKey)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("config.json: the local layers' rope base %s %v must be a positive number", localKey, v)
		}
		if f != 10000 {
			k.add("rope.freq_base_swa", float32(f))
		}
	}
	theta := 1e6 // Gemma3Model's default for the global layers
	if v, ok := rope["rope_theta"]; ok && v != nil {
		f, _, err := rope.floatOf("rope_theta")
		if err != nil {
			return nil, err
		}
		if !(f > 0) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("config.json: rope_theta %v must be a positive number", f)
		}
		theta = f
	}
	k.add("rope.freq_base", float32(theta))
	if v, ok := h["attn_logit_softcapping"]; ok && v != nil {
		return nil, fmt.Errorf("config.json: attn_logit_softcapping is set (%v); Gemma 3 has none", v)
	}
	if v, ok := h["final_logit_softcapping"]; ok && v != nil {
		// None in Gemma 3's checkpoints; written when set, as
		// convert_hf_to_gguf.py does (a zero is not written either).
		f, _, err := h.floatOf("final_logit_softcapping")
		if err != nil {
			return nil, err
		}
		if f < 0 || math.IsInf(f, 0) {
			return nil, fmt.Errorf("config.json: final_logit_softcapping %v must be a positive number", f)
		}
		if f != 0 {
			k.add("final_logit_softcapping", float32(f))
		}
	}
	if h.has("sliding_window_pattern") {
		p, _, err := h.intOf("sliding_window_pattern")
		if err != nil {
			return nil, err
		}
		if p != 6 {
			return nil, fmt.Errorf("config.json: sliding_window_pattern %d is not supported (llama.cpp's Gemma 3 uses 6)", p)
		}
	}
	if err := gemma23LayerTypes(h, 6); err != nil {
		return nil, err
	}
	rs := h.object("rope_scaling")
	if rope.has("rope_type") || rope.has("type") {
		rs = rope // rope_parameters.full_attention
	}
	if rs != nil {
		t := strings.ToLower(rs.str("rope_type"))
		if t == "" {
			t = strings.ToLower(rs.str("type"))
		}
		switch t {
		case "linear":
			f, _, err := rs.floatOf("factor")
			if err != nil {
				return nil, err
			}
			if !(f > 0) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("config.json: rope_scaling factor %v must be a positive number", f)
			}
			k.add("rope.scaling.type", "linear")
			k.add("rope.scaling.factor", float32(f))
		case "", "default":
		default:
			return nil, fmt.Errorf("config.json: rope_scaling type %q is not supported for Gemma 3 (linear)", t)
		}
	}
	return k.out, nil
}

var gemma23LayerNames = map[string]string{
	"input_layernorm.weight":            "attn_norm.weight",
	"self_attn.q_proj.weight":           "attn_q.weight",
	"self_attn.k_proj.weight":           "attn_k.weight",
	"self_attn.v_proj.weight":           "attn_v.weight",
	"self_attn.o_proj.weight":           "attn_output.weight",
	"post_attention_layernorm.weight":   "post_attention_norm.weight",
	"pre_feedforward_layernorm.weight":  "ffn_norm.weight",
	"post_feedforward_layernorm.weight": "post_ffw_norm.weight",
	"mlp.gate_proj.weight":              "ffn_gate.weight",
	"mlp.up_proj.weight":                "ffn_up.weight",
	"mlp.down_proj.weight":              "ffn_down.weight",
}

// gemma23Tensor maps the names; qkNorm allows Gemma 3's q/k norms. Every
// norm weight becomes 1 + w.
func gemma23Tensor(qkNorm bool) func(h hparams, name string, shape []int64) (string, reshape, error) {
	return func(h hparams, name string, shape []int64) (string, reshape, error) {
		var out string
		switch name {
		case "lm_head.weight":
			return "", nil, nil // tied to token_embd
		case "model.embed_tokens.weight":
			return "token_embd.weight", nil, nil
		case "model.norm.weight":
			out = "output_norm.weight"
		default:
			m := layerRe.FindStringSubmatch(name)
			if m == nil {
				return "", nil, fmt.Errorf("cannot map tensor %q", name)
			}
			if strings.HasSuffix(m[2], "rotary_emb.inv_freq") {
				return "", nil, nil
			}
			g, ok := gemma23LayerNames[m[2]]
			if qkNorm && !ok {
				switch m[2] {
				case "self_attn.q_norm.weight":
					g, ok = "attn_q_norm.weight", true
				case "self_attn.k_norm.weight":
					g, ok = "attn_k_norm.weight", true
				}
				if ok {
					hd, err := headDim(h)
					if err != nil {
						return "", nil, err
					}
					if len(shape) != 1 || shape[0] != int64(hd) {
						return "", nil, fmt.Errorf("tensor %q has shape %v, want [%d] (head_dim)", name, shape, hd)
					}
				}
			}
			if !ok {
				return "", nil, fmt.Errorf("cannot map tensor %q", name)
			}
			out = "blk." + m[1] + "." + g
		}
		if strings.HasSuffix(name, "norm.weight") {
			return out, plusOne, nil
		}
		return out, nil, nil
	}
}

var (
	gemma2Family = &family{arch: "gemma2", params: gemma2Params, tensor: gemma23Tensor(false)}
	gemma3Family = &family{arch: "gemma3", params: gemma3Params, tensor: gemma23Tensor(true)}
)
