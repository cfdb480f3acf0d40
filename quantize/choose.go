package quantize

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
)

// This file decides, tensor by tensor, what llama-quantize would write:
// whether a tensor is quantized at all (quantizable), which type a mix
// gives it (chooser.mixType: llama_tensor_get_type), and what happens when
// its rows do not fit the type's blocks (fallback).

// Override is one --tensor-type PATTERN=TYPE: tensors whose name the
// regular expression matches anywhere (std::regex_search in llama.cpp) get
// Type. When several match, the last one wins.
type Override struct {
	Pattern *regexp.Regexp
	Type    quant.Type
}

// ParseOverride parses "PATTERN=TYPE", e.g. "attn_v=q8_0" or
// `blk\.1\.ffn_down=Q6_K`.
func ParseOverride(s string) (Override, error) {
	i := strings.LastIndexByte(s, '=')
	if i <= 0 || i == len(s)-1 {
		return Override{}, fmt.Errorf("bad --tensor-type %q: want PATTERN=TYPE, e.g. attn_v=q8_0", s)
	}
	re, err := regexp.Compile(s[:i])
	if err != nil {
		return Override{}, fmt.Errorf("bad --tensor-type pattern %q: %v", s[:i], err)
	}
	t, ok := quant.ParseType(s[i+1:])
	if !ok || !quant.CanQuantize(t) {
		return Override{}, fmt.Errorf("bad --tensor-type %q: %q is not a type slm can write (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS)", s, s[i+1:])
	}
	return Override{Pattern: re, Type: t}, nil
}

// order returns the tensors in the order llama.cpp's model loader keeps its
// weights map (llama_model_loader::weight_name_comparer), which is also the
// order of the quantized file: tensors outside the blocks first, then block
// by block, each group sorted by name.
func order(ts []gguf.TensorInfo) []*gguf.TensorInfo {
	out := make([]*gguf.TensorInfo, len(ts))
	for i := range ts {
		out[i] = &ts[i]
	}
	slices.SortStableFunc(out, func(a, b *gguf.TensorInfo) int {
		if c := cmp.Compare(layerOf(a.Name), layerOf(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// layerOf is sscanf(name, "blk.%d.", &layer) with layer = -1 by default.
func layerOf(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	end := 0
	if end < len(rest) && (rest[end] == '-' || rest[end] == '+') {
		end++
	}
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return -1
	}
	return n
}

// nDims is ggml_n_dims: the rank without trailing dimensions of size 1.
func nDims(dims []uint64) int {
	for i := len(dims) - 1; i >= 1; i-- {
		if dims[i] > 1 {
			return i + 1
		}
	}
	return 1
}

// quantizable is llama-quantize's test of whether a tensor is quantized at
// all: 2-D and 3-D weights, except norms, expert routers, positional and
// token-type embeddings, and a few small special tensors.
func quantizable(name string, dims []uint64) bool {
	if !strings.HasSuffix(name, "weight") || nDims(dims) < 2 {
		return false
	}
	for _, s := range []string{
		"_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight", "attn_rel_b.weight",
		"time_mix_first.weight", "time_mix_w1.weight", "time_mix_w2.weight",
		"time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
	} {
		if strings.Contains(name, s) {
			return false
		}
	}
	return name != "position_embd.weight" && name != "token_types.weight"
}

// hparams are the few model facts llama_tensor_get_type looks at.
type hparams struct {
	arch    string
	nLayer  int
	nGQA    int  // n_head / n_head_kv
	nExpert int  // at least 1
	is70B   bool // llama.cpp's LLM_TYPE_70B: an 80-layer llama with GQA
}

func readHparams(f *gguf.File) hparams {
	arch := f.Arch()
	get := func(key string) int {
		if n, ok := f.Uint(arch + "." + key); ok {
			return int(n)
		}
		if a, ok := f.Int32s(arch + "." + key); ok && len(a) > 0 {
			return int(a[0]) // per-layer arrays: llama.cpp's n_gqa() looks at layer 0
		}
		return 0
	}
	h := hparams{arch: arch, nLayer: get("block_count"), nExpert: max(1, get("expert_count"))}
	nHead, nHeadKV := get("attention.head_count"), get("attention.head_count_kv")
	if nHeadKV == 0 {
		nHeadKV = nHead
	}
	if nHeadKV > 0 {
		h.nGQA = nHead / nHeadKV
	}
	h.is70B = arch == "llama" && h.nLayer == 80 && nHead != nHeadKV
	return h
}

// chooser is llama.cpp's quantize_state_impl: the counters that make a mix
// depend on a tensor's position among its kind.
type chooser struct {
	ft         FileType
	hp         hparams
	hasOutput  bool // the model has its own output.weight (not tied)
	hasImatrix bool

	nAttnV, iAttnV int
	nFFN           int
	iFFNDown       int
	iFFNGate       int
	iFFNUp         int
}

func newChooser(f *gguf.File, ft FileType, hasImatrix bool) *chooser {
	c := &chooser{ft: ft, hp: readHparams(f), hasImatrix: hasImatrix}
	for i := range f.Tensors {
		name := f.Tensors[i].Name
		switch {
		case strings.Contains(name, "attn_v.weight") || strings.Contains(name, "attn_qkv.weight") || strings.Contains(name, "attn_kv_b.weight"):
			c.nAttnV++
		case name == "output.weight":
			c.hasOutput = true
		}
	}
	c.nFFN = c.hp.nLayer
	return c
}

func useMoreBits(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }

// layerInfo is llama.cpp's layer_info: the running counter, except for
// mixture-of-experts models, whose layer is read from the name.
func (c *chooser) layerInfo(counter, n int, name string) (int, int, error) {
	if c.hp.nExpert > 1 {
		l := layerOf(name)
		if l < 0 || l >= n {
			return 0, 0, fmt.Errorf("cannot determine the layer of tensor %s (block_count %d)", name, n)
		}
		return l, n, nil
	}
	return counter, n, nil
}

// mixType is llama_tensor_get_type for the file types slm supports: the
// type a tensor gets in a mix, before any fallback.
func (c *chooser) mixType(name string, ne0 uint64, t quant.Type) (quant.Type, error) {
	ft, hp := c.ft.ID, c.hp
	falcon := hp.arch == "falcon"
	switch {
	case name == "output.weight" || (!c.hasOutput && name == "token_embd.weight"):
		// The output matrix (or the embedding that doubles as it) matters
		// most: Q6_K unless the file is Q8_0 (or the rows do not fit).
		if falcon || ne0%quant.QKK != 0 {
			t = quant.Q8_0
		} else if t != quant.Q8_0 {
			t = quant.Q6_K
		}
	case name == "token_embd.weight":
		// only the IQ1/IQ2/IQ3 file types change it
	case strings.Contains(name, "attn_v.weight"):
		switch {
		case ft == ftypeQ2_K:
			t = quant.Q3_K
			if hp.nGQA >= 4 {
				t = quant.Q4_K
			}
		case ft == ftypeQ3_K_M:
			t = quant.Q4_K
			if c.iAttnV < 2 {
				t = quant.Q5_K
			}
		case ft == ftypeQ3_K_L:
			t = quant.Q5_K
		case (ft == ftypeIQ4_NL || ft == ftypeIQ4_XS) && hp.nGQA >= 4:
			t = quant.Q5_K
		case (ft == ftypeQ4_K_M || ft == ftypeQ5_K_M) && useMoreBits(c.iAttnV, c.nAttnV):
			t = quant.Q6_K
		case ft == ftypeQ4_K_S && c.iAttnV < 4:
			t = quant.Q5_K
		}
		if hp.is70B && (t == quant.Q3_K || t == quant.Q4_K) {
			t = quant.Q5_K
		}
		if hp.nExpert == 8 {
			t = quant.Q8_0
		}
		c.iAttnV++
	case strings.Contains(name, "attn_k.weight"):
		if hp.nExpert == 8 {
			t = quant.Q8_0
		}
	case strings.Contains(name, "attn_q.weight"):
		// only IQ3 file types change it
	case strings.Contains(name, "ffn_down"):
		i, n, err := c.layerInfo(c.iFFNDown, c.nFFN, name)
		if err != nil {
			return 0, err
		}
		switch {
		case ft == ftypeQ2_K:
			t = quant.Q3_K
		case ft == ftypeQ3_K_M:
			switch {
			case i < n/16:
				t = quant.Q5_K
			case !falcon || useMoreBits(i, n):
				t = quant.Q4_K
			default:
				t = quant.Q3_K
			}
		case ft == ftypeQ3_K_L:
			t = quant.Q5_K
			if falcon {
				t = quant.Q4_K
			}
		case ft == ftypeQ4_K_M:
			if falcon {
				switch {
				case i < n/16:
					t = quant.Q6_K
				case useMoreBits(i, n):
					t = quant.Q5_K
				default:
					t = quant.Q4_K
				}
			} else if useMoreBits(i, n) {
				t = quant.Q6_K
			}
		case (ft == ftypeIQ4_NL || ft == ftypeIQ4_XS) && !c.hasImatrix && i < n/8:
			t = quant.Q5_K
		case ft == ftypeQ5_K_M && useMoreBits(i, n):
			t = quant.Q6_K
		case ft == ftypeQ4_K_S && !falcon && i < n/8:
			t = quant.Q5_K
		case (ft == ftypeQ4_0 || ft == ftypeQ5_0) && c.hasImatrix && i < n/8:
			// llama.cpp guards the first ffn_down layers of imatrix Q4_0/Q5_0
			t = quant.Q4_1
			if ft == ftypeQ5_0 {
				t = quant.Q5_1
			}
		}
		c.iFFNDown++
	case strings.Contains(name, "attn_output.weight"):
		if !falcon {
			if hp.nExpert == 8 {
				switch ft {
				case ftypeQ2_K, ftypeQ3_K_S, ftypeQ3_K_M, ftypeQ4_K_S, ftypeQ4_K_M, ftypeIQ4_NL, ftypeIQ4_XS:
					t = quant.Q5_K
				}
			} else {
				switch ft {
				case ftypeQ2_K:
					t = quant.Q3_K
				case ftypeQ3_K_M:
					t = quant.Q4_K
				case ftypeQ3_K_L:
					t = quant.Q5_K
				}
			}
		} else if ft == ftypeQ3_K_L {
			t = quant.Q4_K
		}
	case strings.Contains(name, "attn_qkv.weight"):
		switch ft {
		case ftypeQ3_K_M, ftypeQ3_K_L:
			t = quant.Q4_K
		case ftypeQ4_K_M:
			t = quant.Q5_K
		case ftypeQ5_K_M:
			t = quant.Q6_K
		}
	case strings.Contains(name, "ffn_gate"):
		c.iFFNGate++ // only IQ3_XS changes it
	case strings.Contains(name, "ffn_up"):
		c.iFFNUp++
	}
	return t, nil
}

// fallback is llama.cpp's answer to rows that are not a whole number of the
// chosen type's blocks (convert_incompatible_tensor): a 32-block type of
// similar size, or F16 when even that does not fit. ok is false when t
// fits (IQ4_XS falls back to IQ4_NL). One deviation: for Q2_K and Q3_K,
// llama.cpp c392e5094 falls back to IQ4_NL; slm uses Q4_0, as later
// llama.cpp does.
func fallback(name string, ne0 uint64, t quant.Type) (quant.Type, bool, error) {
	if ne0%uint64(t.BlockElems()) == 0 {
		return t, false, nil
	}
	var nt quant.Type
	switch t {
	case quant.Q2_K, quant.Q3_K:
		nt = quant.Q4_0
	case quant.Q4_K:
		nt = quant.Q5_0
	case quant.Q5_K:
		nt = quant.Q5_1
	case quant.Q6_K:
		nt = quant.Q8_0
	case quant.IQ4_XS:
		nt = quant.IQ4_NL
	default:
		return 0, false, fmt.Errorf("tensor %s: its rows of %d values are not a multiple of %s's block size %d, and llama.cpp defines no fallback for %s", name, ne0, t, t.BlockElems(), t)
	}
	if ne0%uint64(nt.BlockElems()) != 0 {
		nt = quant.F16
	}
	return nt, true, nil
}
