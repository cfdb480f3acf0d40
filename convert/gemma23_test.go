package convert

// Gemma 2 and Gemma 3 (text): tiny random Hugging Face checkpoints,
// converted, loaded and compared with float64 forward passes written from
// transformers' modeling_gemma2.py and modeling_gemma3.py (eager attention:
// scores scaled by query_pre_attn_scalar^-½, soft-capped, masked causally
// and by the sliding window kv > q − sliding_window on the sliding layers;
// (1 + w) RMSNorms around attention and MLP; Gemma 3's per-head q/k norms,
// local RoPE base and linear scaling of the global layers; final logit
// soft-capping). The prompts are longer than the tiny sliding windows.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

type gemma23Spec struct {
	v3      bool // Gemma 3 (else Gemma 2)
	dtype   string
	seed    uint64
	nKV     int
	layers  int
	window  int
	scaling float64 // Gemma 3: linear rope_scaling factor of the global layers (0: none)
	types   bool    // write layer_types (newer transformers)
	// ropeParams writes Gemma 3's rope as rope_parameters (transformers 5)
	// instead of rope_theta, rope_local_base_freq and rope_scaling.
	ropeParams bool
	finalCap   float64 // Gemma 3: final_logit_softcapping (0: null, as in every Gemma 3)
	localBase  float64 // Gemma 3: the local layers' rope base (0: 10000)
}

const (
	g23Embd, g23Heads, g23HeadDim, g23FF = 64, 4, 32, 96
	g23Vocab                             = 32000
	g2AttnCap, g2FinalCap                = 3.0, 4.0 // small enough to matter on tiny random weights
)

// gemma23Tokens is longer than the test windows (4 and 5).
var gemma23Tokens = []int32{1, 415, 2936, 9060, 31999, 17, 28705, 5, 901, 12, 30000, 77, 4242, 3}

func newGemma23(s gemma23Spec) *hfModel {
	r := rand.New(rand.NewPCG(s.seed, 23))
	cfg := map[string]any{
		"hidden_size":             g23Embd,
		"intermediate_size":       g23FF,
		"num_attention_heads":     g23Heads,
		"num_key_value_heads":     s.nKV,
		"head_dim":                g23HeadDim,
		"num_hidden_layers":       s.layers,
		"rms_norm_eps":            1e-6,
		"max_position_embeddings": 128,
		"vocab_size":              g23Vocab,
		"hidden_activation":       "gelu_pytorch_tanh",
		"tie_word_embeddings":     true,
		"query_pre_attn_scalar":   g23HeadDim,
		"sliding_window":          s.window,
		"bos_token_id":            2,
		"eos_token_id":            1,
	}
	pattern := 2
	if s.v3 {
		pattern = 6
		cfg["architectures"] = []string{"Gemma3ForCausalLM"}
		cfg["model_type"] = "gemma3_text"
		cfg["rope_theta"] = 1e6
		local := 10000.0
		if s.localBase != 0 {
			local = s.localBase
		}
		cfg["rope_local_base_freq"] = local
		cfg["attn_logit_softcapping"] = nil
		cfg["final_logit_softcapping"] = nil
		if s.finalCap != 0 {
			cfg["final_logit_softcapping"] = s.finalCap
		}
		if s.scaling != 0 {
			cfg["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": s.scaling}
		}
		if s.ropeParams {
			full := map[string]any{"rope_type": "default", "rope_theta": 1e6}
			if s.scaling != 0 {
				full = map[string]any{"rope_type": "linear", "factor": s.scaling, "rope_theta": 1e6}
			}
			cfg["rope_parameters"] = map[string]any{"full_attention": full, "sliding_attention": map[string]any{"rope_type": "default", "rope_theta": local}}
			delete(cfg, "rope_theta")
			delete(cfg, "rope_local_base_freq")
			delete(cfg, "rope_scaling")
		}
	} else {
		cfg["architectures"] = []string{"Gemma2ForCausalLM"}
		cfg["model_type"] = "gemma2"
		cfg["rope_theta"] = 10000.0
		cfg["attn_logit_softcapping"] = g2AttnCap
		cfg["final_logit_softcapping"] = g2FinalCap
	}
	if s.types {
		var lt []string
		for l := range s.layers {
			if l%pattern < pattern-1 {
				lt = append(lt, "sliding_attention")
			} else {
				lt = append(lt, "full_attention")
			}
		}
		cfg["layer_types"] = lt
	}
	t := map[string]SafeTensorData{}
	dt := s.dtype
	q, kv := int64(g23Heads*g23HeadDim), int64(s.nKV*g23HeadDim)
	t["model.embed_tokens.weight"] = randTensor(r, dt, 0.3, g23Vocab, g23Embd)
	t["model.norm.weight"] = randTensor(r, dt, 0.3, g23Embd)
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, n := range []string{"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
			t[p+n+".weight"] = randTensor(r, dt, 0.3, g23Embd)
		}
		if s.v3 {
			t[p+"self_attn.q_norm.weight"] = randTensor(r, dt, 0.3, g23HeadDim)
			t[p+"self_attn.k_norm.weight"] = randTensor(r, dt, 0.3, g23HeadDim)
		}
		t[p+"self_attn.q_proj.weight"] = randTensor(r, dt, 0.4, q, g23Embd)
		t[p+"self_attn.k_proj.weight"] = randTensor(r, dt, 0.4, kv, g23Embd)
		t[p+"self_attn.v_proj.weight"] = randTensor(r, dt, 0.3, kv, g23Embd)
		t[p+"self_attn.o_proj.weight"] = randTensor(r, dt, 0.2, g23Embd, q)
		t[p+"mlp.gate_proj.weight"] = randTensor(r, dt, 0.3, g23FF, g23Embd)
		t[p+"mlp.up_proj.weight"] = randTensor(r, dt, 0.3, g23FF, g23Embd)
		t[p+"mlp.down_proj.weight"] = randTensor(r, dt, 0.2, g23Embd, g23FF)
	}
	return &hfModel{cfg: cfg, tensors: t}
}

// g23Ref are the reference's switches: the formulas as HF has them by
// default; the mutations switch one feature off or move the window.
type g23Ref struct {
	exactGELU   bool // gelu_pytorch_tanh exactly, not through ggml's fp16 table
	noWindow    bool
	windowDelta int
	noAttnCap   bool
	noFinalCap  bool
}

// cfgNum reads a number from config.json's map, def when absent or null.
func (m *hfModel) cfgNum(key string, def float64) float64 {
	if v, ok := m.cfg[key]; !ok || v == nil {
		return def
	}
	return m.num(key)
}

// forwardGemma23 is Gemma2ForCausalLM / Gemma3ForCausalLM on F32 weights,
// one token at a time with a growing cache (eager attention).
func (m *hfModel) forwardGemma23(tokens []int32, o g23Ref) [][]float64 {
	v3 := m.cfg["model_type"] == "gemma3_text"
	d := m.dims()
	nHead, nKV, hd, eps := d.nHead, d.nKV, d.hd, d.eps
	scaling := math.Pow(m.num("query_pre_attn_scalar"), -0.5)
	window := int(m.num("sliding_window")) + o.windowDelta
	attnCap := m.cfgNum("attn_logit_softcapping", 0)
	finalCap := m.cfgNum("final_logit_softcapping", 0)
	if o.noAttnCap {
		attnCap = 0
	}
	if o.noFinalCap {
		finalCap = 0
	}
	var global, local []float64
	pattern := 2 // Gemma 2: sliding on layers with layer_idx % 2 == 0
	if v3 {
		pattern = 6 // (i + 1) % sliding_window_pattern != 0
		if rp, ok := m.cfg["rope_parameters"].(map[string]any); ok {
			full := rp["full_attention"].(map[string]any)
			factor := 1.0
			if full["rope_type"] == "linear" {
				factor = full["factor"].(float64)
			}
			global = ropeInvFreq(full["rope_theta"].(float64), hd, factor)
			local = ropeInvFreq(rp["sliding_attention"].(map[string]any)["rope_theta"].(float64), hd, 1)
		} else {
			factor := 1.0
			if rs, ok := m.cfg["rope_scaling"].(map[string]any); ok {
				factor = rs["factor"].(float64)
			}
			global = ropeInvFreq(m.num("rope_theta"), hd, factor)
			local = ropeInvFreq(m.num("rope_local_base_freq"), hd, 1)
		}
	} else {
		global = ropeInvFreq(m.num("rope_theta"), hd, 1)
		local = global
	}
	sliding := func(l int) bool {
		if lt, ok := m.cfg["layer_types"].([]string); ok {
			return lt[l] == "sliding_attention"
		}
		return l%pattern < pattern-1
	}
	gelu := geluFP16
	if o.exactGELU {
		gelu = geluTanh
	}
	emb := m.w("model.embed_tokens.weight")
	cache := newKVCache(d.nLayer)
	return decoderRef(tokens, d.nLayer, func(tok int32) []float64 { return embedRow(emb, tok, d.embd, math.Sqrt(float64(d.embd))) },
		func(l, p int, pre string, x []float64) {
			q, k, v := m.attnQKV(pre, gemmaNorm(x, m.w(pre+"input_layernorm.weight"), eps))
			inv := global
			if v3 {
				normHeads(q, nHead, hd, m.w(pre+"self_attn.q_norm.weight"), eps, gemmaNorm)
				normHeads(k, nKV, hd, m.w(pre+"self_attn.k_norm.weight"), eps, gemmaNorm)
				if sliding(l) {
					inv = local
				}
			}
			ropeRotary(q, nHead, hd, hd, p, inv, 1)
			ropeRotary(k, nKV, hd, hd, p, inv, 1)
			ks, vs := cache.add(l, k, v)
			lo := 0
			if sliding(l) && !o.noWindow {
				lo = max(0, p-window+1) // kv_idx > q_idx − sliding_window
			}
			a := make([]float64, nHead*hd)
			group := nHead / nKV
			for hh := 0; hh < nHead; hh++ {
				kh := hh / group
				sc := make([]float64, p+1-lo)
				mx := math.Inf(-1)
				for t := lo; t <= p; t++ {
					s := 0.0
					for i := 0; i < hd; i++ {
						s += q[hh*hd+i] * ks[t][kh*hd+i]
					}
					s *= scaling
					if attnCap != 0 {
						s = attnCap * math.Tanh(s/attnCap)
					}
					sc[t-lo] = s
					mx = max(mx, s)
				}
				sum := 0.0
				for i := range sc {
					sc[i] = math.Exp(sc[i] - mx)
					sum += sc[i]
				}
				for t := lo; t <= p; t++ {
					w := sc[t-lo] / sum
					for i := 0; i < hd; i++ {
						a[hh*hd+i] += w * vs[t][kh*hd+i]
					}
				}
			}
			att := linear(m.w(pre+"self_attn.o_proj.weight"), nil, a)
			addTo(x, gemmaNorm(att, m.w(pre+"post_attention_layernorm.weight"), eps))
			h := gemmaNorm(x, m.w(pre+"pre_feedforward_layernorm.weight"), eps)
			addTo(x, gemmaNorm(m.gatedMLP(pre, h, gelu), m.w(pre+"post_feedforward_layernorm.weight"), eps))
		},
		func(x []float64) []float64 {
			logits := linear(emb, nil, gemmaNorm(x, m.w("model.norm.weight"), eps))
			if finalCap != 0 {
				for i := range logits {
					logits[i] = finalCap * math.Tanh(logits[i]/finalCap)
				}
			}
			return logits
		})
}

var gemma23Cases = []struct {
	name string
	spec gemma23Spec
}{
	{"gemma2-f32-gqa", gemma23Spec{dtype: "F32", seed: 1, nKV: 2, layers: 3, window: 4}},
	{"gemma2-f32-mqa-layer-types", gemma23Spec{dtype: "F32", seed: 2, nKV: 1, layers: 2, window: 5, types: true}},
	{"gemma3-f32-gqa", gemma23Spec{v3: true, dtype: "F32", seed: 3, nKV: 2, layers: 7, window: 4}},
	{"gemma3-f32-linear-scaling-layer-types", gemma23Spec{v3: true, dtype: "F32", seed: 4, nKV: 1, layers: 6, window: 5, scaling: 8, types: true}},
	{"gemma3-f32-rope-parameters", gemma23Spec{v3: true, dtype: "F32", seed: 5, nKV: 2, layers: 6, window: 4, scaling: 4, ropeParams: true}},
	{"gemma3-f32-final-softcap", gemma23Spec{v3: true, dtype: "F32", seed: 6, nKV: 2, layers: 6, window: 4, finalCap: 5}},
	{"gemma3-f32-local-base", gemma23Spec{v3: true, dtype: "F32", seed: 7, nKV: 2, layers: 6, window: 4, localBase: 20000}},
	{"gemma3-f32-rope-parameters-local-base", gemma23Spec{v3: true, dtype: "F32", seed: 8, nKV: 1, layers: 6, window: 4, ropeParams: true, localBase: 5e4}},
}

func TestConvertGemma23Logits(t *testing.T) {
	for _, c := range gemma23Cases {
		t.Run(c.name, func(t *testing.T) {
			hfm := newGemma23(c.spec)
			dir := writeDir(t, hfm, "mistral-spm", 1)
			m, path := loadNet(t, dir, Options{Type: quant.F32})
			got := netLogits(t, m, 32, gemma23Tokens)
			// GELU as ggml evaluates it (the engine follows llama.cpp) ...
			// The tolerance allows for a float32 activation and the float64
			// reference's rounding to different fp16 table entries now and
			// then (an fp16 step of one GELU value, carried through the
			// following layers: up to ~1e-3 here, at single positions); the
			// check without MLPs below is the tight one.
			tol := 3e-4
			worst := checkRows(t, "ggml GELU", got, hfm.forwardGemma23(gemma23Tokens, g23Ref{}), tol)
			// ... is within the fp16 table's rounding of the exact GELU.
			checkRows(t, "exact GELU", got, hfm.forwardGemma23(gemma23Tokens, g23Ref{exactGELU: true}), 5e-3)

			// Without the MLPs (down_proj zeroed) the fp16 GELU table, whose
			// rounding boundaries make the sporadic larger differences above,
			// is out of the way: attention, windows, caps, norms and RoPE
			// agree much more tightly.
			quiet := newGemma23(c.spec)
			for l := range c.spec.layers {
				clear(quiet.tensors[fmt.Sprintf("model.layers.%d.mlp.down_proj.weight", l)].Data)
			}
			qm, _ := loadNet(t, writeDir(t, quiet, "mistral-spm", 1), Options{Type: quant.F32})
			checkRows(t, "without MLPs", netLogits(t, qm, 32, gemma23Tokens), quiet.forwardGemma23(gemma23Tokens, g23Ref{}), 1e-6)

			// Mutations: a reference without the window, with the window one
			// position longer or shorter, or without either soft-cap, is far
			// from the engine: each feature changes the logits, and the
			// engine has each one as the reference has it.
			muts := []struct {
				name string
				ref  g23Ref
			}{{"no window", g23Ref{noWindow: true}}, {"window+1", g23Ref{windowDelta: 1}}, {"window-1", g23Ref{windowDelta: -1}}}
			if !c.spec.v3 {
				muts = append(muts, struct {
					name string
					ref  g23Ref
				}{"no attention soft-cap", g23Ref{noAttnCap: true}})
			}
			if !c.spec.v3 || c.spec.finalCap != 0 {
				muts = append(muts, struct {
					name string
					ref  g23Ref
				}{"no final soft-cap", g23Ref{noFinalCap: true}})
			}
			for _, mu := range muts {
				d, scale := diffRows(got, hfm.forwardGemma23(gemma23Tokens, mu.ref))
				t.Logf("reference with %s: max |Δlogit| = %.3g", mu.name, d)
				if d < 100*max(worst, tol*(1+scale)) {
					t.Errorf("reference with %s differs by only %.3g (the engine: %.3g)", mu.name, d, worst)
				}
			}

			f := openFile(t, path)
			arch := "gemma2"
			want := map[string]any{"gemma2.attention.sliding_window": uint32(c.spec.window), "gemma2.attn_logit_softcapping": float32(g2AttnCap),
				"gemma2.final_logit_softcapping": float32(g2FinalCap), "gemma2.attention.key_length": uint32(g23HeadDim)}
			if c.spec.v3 {
				arch = "gemma3"
				want = map[string]any{"gemma3.attention.sliding_window": uint32(c.spec.window), "gemma3.rope.freq_base": float32(1e6),
					"gemma3.attention.key_length": uint32(g23HeadDim), "gemma3.attention.head_count_kv": uint32(c.spec.nKV)}
				if c.spec.finalCap != 0 {
					want["gemma3.final_logit_softcapping"] = float32(c.spec.finalCap)
				}
				if c.spec.scaling != 0 {
					want["gemma3.rope.scaling.type"] = "linear"
					want["gemma3.rope.scaling.factor"] = float32(c.spec.scaling)
				}
			}
			if a := f.Arch(); a != arch {
				t.Errorf("architecture %q, want %q", a, arch)
			}
			checkKeys(t, f, want)
			if _, ok := f.Tensor("output.weight"); ok {
				t.Error("the file has output.weight (llama.cpp ties it to token_embd)")
			}
			// Every norm is stored as 1 + w.
			norms := map[string]string{"blk.1.post_attention_norm.weight": "post_attention_layernorm", "blk.1.ffn_norm.weight": "pre_feedforward_layernorm",
				"blk.1.post_ffw_norm.weight": "post_feedforward_layernorm", "blk.1.attn_norm.weight": "input_layernorm"}
			if c.spec.v3 {
				norms["blk.1.attn_q_norm.weight"] = "self_attn.q_norm"
				norms["blk.1.attn_k_norm.weight"] = "self_attn.k_norm"
			}
			for gn, hn := range norms {
				checkNormPlusOne(t, f, gn, hfm.w("model.layers.1."+hn+".weight").Data)
			}
		})
	}
}

// Quantized and half-precision conversions stay near the reference.
func TestConvertGemma23Quantized(t *testing.T) {
	for _, c := range gemma23Cases[:3:3] {
		if c.name == "gemma2-f32-mqa-layer-types" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			hfm := newGemma23(c.spec)
			dir := writeDir(t, hfm, "mistral-spm", 1)
			want := hfm.forwardGemma23(gemma23Tokens, g23Ref{})
			for _, typ := range []quant.Type{quant.F16, quant.Q8_0} {
				m, _ := loadNet(t, dir, Options{Type: typ})
				checkRows(t, typ.String(), netLogits(t, m, 32, gemma23Tokens), want, map[quant.Type]float64{quant.Q8_0: 0.2, quant.F16: 1e-2}[typ])
			}
		})
	}
}

// A prompt longer than the window evaluated in one pass, token by token,
// in chunks, and together with other sequences in one EvalBatch gives the
// same logits; decoding allocates nothing.
func TestGemma23BatchAndAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		spec gemma23Spec
		typ  quant.Type
	}{
		{"gemma2-f32", gemma23Cases[0].spec, quant.F32},
		{"gemma2-q8_0", gemma23Cases[0].spec, quant.Q8_0},
		{"gemma3-f32", gemma23Cases[2].spec, quant.F32},
		{"gemma3-q4_0", gemma23Cases[3].spec, quant.Q4_0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeDir(t, newGemma23(c.spec), "mistral-spm", 1)
			m, _ := loadNet(t, dir, Options{Type: c.typ})
			nv := m.Config().NVocab
			tokens := gemma23Tokens

			all := netLogits(t, m, 64, tokens)
			s, err := m.NewState(64)
			must(t, err)
			worst := oneByOneDiff(t, m, s, tokens, all)
			// In chunks of 3 (each chunk's queries see the previous ones' keys
			// through the window).
			s, err = m.NewState(64)
			must(t, err)
			for i := 0; i < len(tokens); i += 3 {
				end := min(i+3, len(tokens))
				chunk := make([]float32, (end-i)*nv)
				must(t, m.Eval(s, tokens[i:end], chunk, true))
				for j := range chunk {
					worst = max(worst, math.Abs(float64(chunk[j]-all[i*nv+j])))
				}
			}
			if worst > 1e-5 {
				t.Errorf("token by token or in chunks differs from one pass by %.3g", worst)
			}

			// A long prompt (its attention split over the worker pool in one
			// pass) vs token by token.
			long := make([]int32, 90)
			for i := range long {
				long[i] = int32((i*7919 + 13) % nv)
			}
			allLong := netLogits(t, m, 128, long)
			s, err = m.NewState(128)
			must(t, err)
			if worst := oneByOneDiff(t, m, s, long, allLong); worst > 1e-5 {
				t.Errorf("a 90-token prompt token by token differs from one pass by %.3g", worst)
			}

			s, err = m.NewState(64)
			must(t, err)
			checkBatchAndDecode(t, m, 32, [2]batchSeq{{64, tokens}, {32, tokens[3:9]}}, s, tokens)
		})
	}
}

// Truncated and damaged files give errors, never a panic.
func TestGemma23HostileFiles(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  gemma23Spec
		edits []fileEdit
	}{
		{"gemma2", gemma23Cases[0].spec, []fileEdit{
			{"blk.1.post_ffw_norm.weight", "blk.1.post_ffw_norm.weighx", "missing tensor blk.1.post_ffw_norm.weight"},
			{"blk.0.post_attention_norm.weight", "blk.0.post_attention_norm.weighx", "missing tensor blk.0.post_attention_norm.weight"},
			{"gemma2.attn_logit_softcapping", "gemma2.attn_logit_softcappinx", ""},     // llama.cpp's default 50: loads
			{"gemma2.attention.sliding_window", "gemma2.attention.sliding_windox", ""}, // default 4096: loads
		}},
		{"gemma3", gemma23Cases[2].spec, []fileEdit{
			{"blk.2.attn_q_norm.weight", "blk.2.attn_q_norm.weighx", "missing tensor blk.2.attn_q_norm.weight"},
			{"gemma3.attention.sliding_window", "gemma3.attention.sliding_windox", "gemma3.attention.sliding_window"}, // required, as in llama.cpp
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkHostileFile(t, writeDir(t, newGemma23(c.spec), "mistral-spm", 1), c.edits)
		})
	}
}

func TestConvertGemma23Errors(t *testing.T) {
	g2 := func() *hfModel { return newGemma23(gemma23Spec{dtype: "F32", seed: 30, nKV: 1, layers: 2, window: 4}) }
	g3 := func() *hfModel {
		return newGemma23(gemma23Spec{v3: true, dtype: "F32", seed: 31, nKV: 1, layers: 2, window: 4})
	}
	for _, c := range []struct {
		name string
		m    func() *hfModel
		edit func(m *hfModel)
		want string
	}{
		{"gemma2 no softcap", g2, func(m *hfModel) { delete(m.cfg, "final_logit_softcapping") }, "final_logit_softcapping"},
		{"gemma2 query scalar", g2, func(m *hfModel) { m.cfg["query_pre_attn_scalar"] = 20 }, "query_pre_attn_scalar"},
		{"gemma2 layer types", g2, func(m *hfModel) { m.cfg["layer_types"] = []string{"full_attention", "sliding_attention"} }, "layer_types[0]"},
		{"gemma3 attn softcap", g3, func(m *hfModel) { m.cfg["attn_logit_softcapping"] = 50.0 }, "attn_logit_softcapping"},
		{"gemma3 pattern", g3, func(m *hfModel) { m.cfg["sliding_window_pattern"] = 4 }, "sliding_window_pattern"},
		{"gemma3 rope type", g3, func(m *hfModel) { m.cfg["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4.0} }, "yarn"},
		{"gemma3 no window", g3, func(m *hfModel) { delete(m.cfg, "sliding_window") }, "sliding_window"},
		{"gemma3 vision", g3, func(m *hfModel) { m.cfg["architectures"] = []string{"Gemma3ForConditionalGeneration"} }, "Gemma3ForConditionalGeneration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := c.m()
			c.edit(m)
			checkConvertError(t, m, "mistral-spm", c.want)
		})
	}
}
