package convert

import (
	"fmt"

	"github.com/slm-dev/slm/gguf"
)

// Qwen3 (dense), as convert_hf_to_gguf.py's Qwen3Model writes it: Qwen2's
// metadata plus attention.key_length and value_length (config.json's
// head_dim, 128 in every Qwen3, whatever hidden_size / num_attention_heads
// is), Qwen2's tensor names (NeoX RoPE: q and k are not permuted) and the
// per-head norms of q and k as attn_q_norm and attn_k_norm (F32).

func qwen3Params(h hparams, nVocab int) ([]gguf.KV, error) {
	kv, err := llamaLikeParams("qwen3", h, nVocab, false)
	if err != nil {
		return nil, err
	}
	if h.has("head_dim") {
		hd, _, err := h.intOf("head_dim")
		if err != nil {
			return nil, err
		}
		if hd == 0 || hd%2 != 0 {
			return nil, fmt.Errorf("config.json: head_dim %d must be positive and even", hd)
		}
		kv = append(kv,
			gguf.KV{Key: "qwen3.attention.key_length", Value: uint32(hd)},
			gguf.KV{Key: "qwen3.attention.value_length", Value: uint32(hd)})
	} else if _, err := headDim(h); err != nil {
		return nil, err
	}
	return kv, nil
}

var qwen3NormNames = map[string]string{
	"self_attn.q_norm.weight": "attn_q_norm.weight",
	"self_attn.k_norm.weight": "attn_k_norm.weight",
}

func qwen3Tensor(h hparams, name string, shape []int64) (string, reshape, error) {
	if m := layerRe.FindStringSubmatch(name); m != nil {
		if g, ok := qwen3NormNames[m[2]]; ok {
			hd, err := headDim(h)
			if err != nil {
				return "", nil, err
			}
			if len(shape) != 1 || shape[0] != int64(hd) {
				return "", nil, fmt.Errorf("tensor %q has shape %v, want [%d] (head_dim)", name, shape, hd)
			}
			return "blk." + m[1] + "." + g, nil, nil
		}
	}
	return llamaLikeTensor(h, name, shape, false) // NeoX RoPE: no permutation
}

var qwen3Family = &family{arch: "qwen3", params: qwen3Params, tensor: qwen3Tensor}
