package convert

// Phi-3 and Gemma: tiny random Hugging Face checkpoints, converted, loaded
// and compared with float64 forward passes written from transformers'
// modeling_phi3.py and modeling_gemma.py (on the HF-layout tensors: fused
// qkv split in the reference, gate/up chunked, rotate-half RoPE, Gemma's
// (1 + w) norms and √d embedding scale).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slm-dev/slm/quant"
)

type phi3Spec struct {
	dtype    string
	partial  float64 // partial_rotary_factor (0: absent)
	longRope bool    // 128k-style rope_scaling with long/short factors
	split    bool    // separate q_proj, k_proj, v_proj instead of qkv_proj
	seed     uint64
}

const (
	phi3Embd, phi3Heads, phi3KV, phi3FF, phi3Layers = 64, 4, 2, 96, 2
	phi3Vocab                                       = 32064
	testPhi3Orig, testPhi3Max                       = 64, 512
)

func newPhi3(s phi3Spec) *hfModel {
	r := rand.New(rand.NewPCG(s.seed, 3))
	hd := phi3Embd / phi3Heads
	cfg := map[string]any{
		"architectures":                    []string{"Phi3ForCausalLM"},
		"model_type":                       "phi3",
		"hidden_size":                      phi3Embd,
		"intermediate_size":                phi3FF,
		"num_attention_heads":              phi3Heads,
		"num_key_value_heads":              phi3KV,
		"num_hidden_layers":                phi3Layers,
		"rms_norm_eps":                     1e-5,
		"rope_theta":                       10000.0,
		"max_position_embeddings":          128,
		"original_max_position_embeddings": 128,
		"sliding_window":                   47,
		"vocab_size":                       phi3Vocab,
		"tie_word_embeddings":              false,
		"hidden_act":                       "silu",
	}
	rd := hd
	if s.partial != 0 {
		cfg["partial_rotary_factor"] = s.partial
		rd = int(s.partial * float64(hd))
	}
	if s.longRope {
		long, short := make([]float64, rd/2), make([]float64, rd/2)
		for i := range long {
			long[i] = 1 + 3*r.Float64()*float64(i)/float64(rd/2)
			short[i] = 1 + 0.5*r.Float64()
		}
		cfg["max_position_embeddings"] = testPhi3Max
		cfg["original_max_position_embeddings"] = testPhi3Orig
		cfg["rope_scaling"] = map[string]any{"type": "longrope", "long_factor": long, "short_factor": short}
	}
	t := map[string]SafeTensorData{}
	dt := s.dtype
	t["model.embed_tokens.weight"] = randTensor(r, dt, 0.5, phi3Vocab, phi3Embd)
	t["model.norm.weight"] = nearOne(r, dt, phi3Embd)
	t["lm_head.weight"] = randTensor(r, dt, 0.1, phi3Vocab, phi3Embd)
	for l := 0; l < phi3Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		t[p+"input_layernorm.weight"] = nearOne(r, dt, phi3Embd)
		t[p+"post_attention_layernorm.weight"] = nearOne(r, dt, phi3Embd)
		t[p+"self_attn.qkv_proj.weight"] = randTensor(r, dt, 0.3, int64((phi3Heads+2*phi3KV)*hd), phi3Embd)
		t[p+"self_attn.o_proj.weight"] = randTensor(r, dt, 0.2, phi3Embd, int64(phi3Heads*hd))
		t[p+"mlp.gate_up_proj.weight"] = randTensor(r, dt, 0.2, 2*phi3FF, phi3Embd)
		t[p+"mlp.down_proj.weight"] = randTensor(r, dt, 0.2, phi3Embd, phi3FF)
		if s.split {
			qkv := t[p+"self_attn.qkv_proj.weight"]
			delete(t, p+"self_attn.qkv_proj.weight")
			rows := func(r0, r1 int) SafeTensorData {
				return SafeTensorData{Dtype: dt, Shape: []int64{int64(r1 - r0), phi3Embd}, Data: qkv.Data[r0*phi3Embd : r1*phi3Embd]}
			}
			q, kv := phi3Heads*hd, phi3KV*hd
			t[p+"self_attn.q_proj.weight"] = rows(0, q)
			t[p+"self_attn.k_proj.weight"] = rows(q, q+kv)
			t[p+"self_attn.v_proj.weight"] = rows(q+kv, q+2*kv)
		}
	}
	return &hfModel{cfg: cfg, tensors: t}
}

// ropeRotary applies rotate-half RoPE to the first rd dims of each head
// (partial rotary), with cos/sin scaled by mscale.
func ropeRotary(x []float64, heads, hd, rd, pos int, invFreq []float64, mscale float64) {
	for h := 0; h < heads; h++ {
		v := x[h*hd : (h+1)*hd]
		for i := 0; i < rd/2; i++ {
			a := float64(pos) * invFreq[i]
			c, s := math.Cos(a)*mscale, math.Sin(a)*mscale
			x1, x2 := v[i], v[i+rd/2]
			v[i] = x1*c - x2*s
			v[i+rd/2] = x2*c + x1*s
		}
	}
}

func floats(v any) []float64 { return v.([]float64) }

// forwardPhi3 is Phi3ForCausalLM (modeling_phi3.py). long picks LongRoPE's
// long factors (transformers picks them by sequence length, llama.cpp by
// context size: the test chooses).
func (m *hfModel) forwardPhi3(tokens []int32, long bool) [][]float64 {
	d := m.dims()
	ff := int(m.num("intermediate_size"))
	hd := d.hd
	rd := hd
	if _, ok := m.cfg["partial_rotary_factor"]; ok {
		rd = int(m.num("partial_rotary_factor") * float64(hd))
	}
	base := m.num("rope_theta")
	ext := make([]float64, rd/2)
	for i := range ext {
		ext[i] = 1
	}
	mscale := 1.0
	if rs, ok := m.cfg["rope_scaling"].(map[string]any); ok {
		ext = floats(rs["short_factor"])
		if long {
			ext = floats(rs["long_factor"])
		}
		orig := m.num("original_max_position_embeddings")
		if factor := m.num("max_position_embeddings") / orig; factor > 1 {
			mscale = math.Sqrt(1 + math.Log(factor)/math.Log(orig))
		}
	}
	inv := make([]float64, rd/2)
	for i := range inv {
		inv[i] = 1 / (ext[i] * math.Pow(base, float64(2*i)/float64(rd)))
	}
	emb := m.w("model.embed_tokens.weight")
	cache := newKVCache(d.nLayer)
	return decoderRef(tokens, d.nLayer, func(tok int32) []float64 { return embedRow(emb, tok, d.embd, 1) },
		func(l, p int, pre string, x []float64) {
			h := rmsNorm(x, m.w(pre+"input_layernorm.weight"), d.eps)
			var qkv []float64
			if m.has(pre + "self_attn.qkv_proj.weight") {
				qkv = linear(m.w(pre+"self_attn.qkv_proj.weight"), nil, h)
			} else { // q, k, v projections of their own
				for _, n := range []string{"q_proj", "k_proj", "v_proj"} {
					qkv = append(qkv, linear(m.w(pre+"self_attn."+n+".weight"), nil, h)...)
				}
			}
			qp, kp := d.nHead*hd, d.nKV*hd
			q := append([]float64(nil), qkv[:qp]...)
			k := append([]float64(nil), qkv[qp:qp+kp]...)
			v := append([]float64(nil), qkv[qp+kp:]...)
			ropeRotary(q, d.nHead, hd, rd, p, inv, mscale)
			ropeRotary(k, d.nKV, hd, rd, p, inv, mscale)
			ks, vs := cache.add(l, k, v)
			a := attend(q, ks, vs, d.nHead, d.nKV, hd)
			addTo(x, linear(m.w(pre+"self_attn.o_proj.weight"), nil, a))
			h = rmsNorm(x, m.w(pre+"post_attention_layernorm.weight"), d.eps)
			gu := linear(m.w(pre+"mlp.gate_up_proj.weight"), nil, h)
			gate, up := gu[:ff], gu[ff:] // chunk(2, dim=-1)
			for i := range up {
				up[i] *= silu(gate[i])
			}
			addTo(x, linear(m.w(pre+"mlp.down_proj.weight"), nil, up))
		},
		func(x []float64) []float64 {
			return linear(m.w("lm_head.weight"), nil, rmsNorm(x, m.w("model.norm.weight"), d.eps))
		})
}

type gemmaSpec struct {
	dtype string
	seed  uint64
	nKV   int
}

const (
	gemmaEmbd, gemmaHeads, gemmaHeadDim, gemmaFF, gemmaLayers = 64, 4, 32, 96, 2
	gemmaVocab                                                = 32000
)

func newGemma(s gemmaSpec) *hfModel {
	r := rand.New(rand.NewPCG(s.seed, 4))
	cfg := map[string]any{
		"architectures":           []string{"GemmaForCausalLM"},
		"model_type":              "gemma",
		"hidden_size":             gemmaEmbd,
		"intermediate_size":       gemmaFF,
		"num_attention_heads":     gemmaHeads,
		"num_key_value_heads":     s.nKV,
		"head_dim":                gemmaHeadDim,
		"num_hidden_layers":       gemmaLayers,
		"rms_norm_eps":            1e-6,
		"rope_theta":              10000.0,
		"max_position_embeddings": 128,
		"vocab_size":              gemmaVocab,
		"hidden_act":              "gelu_pytorch_tanh",
		"hidden_activation":       "gelu_pytorch_tanh",
		"tie_word_embeddings":     true,
		"bos_token_id":            1,
		"eos_token_id":            2,
	}
	t := map[string]SafeTensorData{}
	dt := s.dtype
	q, kv := int64(gemmaHeads*gemmaHeadDim), int64(s.nKV*gemmaHeadDim)
	t["model.embed_tokens.weight"] = randTensor(r, dt, 0.1, gemmaVocab, gemmaEmbd)
	t["model.norm.weight"] = randTensor(r, dt, 0.3, gemmaEmbd) // Gemma stores w of (1 + w)
	for l := 0; l < gemmaLayers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		t[p+"input_layernorm.weight"] = randTensor(r, dt, 0.3, gemmaEmbd)
		t[p+"post_attention_layernorm.weight"] = randTensor(r, dt, 0.3, gemmaEmbd)
		t[p+"self_attn.q_proj.weight"] = randTensor(r, dt, 0.3, q, gemmaEmbd)
		t[p+"self_attn.k_proj.weight"] = randTensor(r, dt, 0.3, kv, gemmaEmbd)
		t[p+"self_attn.v_proj.weight"] = randTensor(r, dt, 0.2, kv, gemmaEmbd)
		t[p+"self_attn.o_proj.weight"] = randTensor(r, dt, 0.2, gemmaEmbd, q)
		t[p+"mlp.gate_proj.weight"] = randTensor(r, dt, 0.3, gemmaFF, gemmaEmbd)
		t[p+"mlp.up_proj.weight"] = randTensor(r, dt, 0.3, gemmaFF, gemmaEmbd)
		t[p+"mlp.down_proj.weight"] = randTensor(r, dt, 0.2, gemmaEmbd, gemmaFF)
	}
	return &hfModel{cfg: cfg, tensors: t}
}

// gemmaNorm is GemmaRMSNorm: x/rms(x) · (1 + w).
func gemmaNorm(x []float64, w SafeTensorData, eps float64) []float64 {
	return rmsScaled(x, eps, func(i int) float64 { return 1 + float64(w.Data[i]) })
}

// geluTanh is gelu_pytorch_tanh.
func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// forwardGemma is GemmaForCausalLM (modeling_gemma.py) on F32 weights. With
// ggmlGELU the GELU is evaluated as ggml's CPU backend does (fp16 table, see
// geluFP16), which the engine follows; without, exactly.
func (m *hfModel) forwardGemma(tokens []int32, ggmlGELU bool) [][]float64 {
	d := m.dims()
	gelu := geluTanh
	if ggmlGELU {
		gelu = geluFP16
	}
	// Rotate-half RoPE over whole heads, attention scaled by head_dim^-½,
	// (1 + w) norms, √hidden_size embedding scale, tied lm_head.
	return m.forwardLlamaLike(tokens, llamaRef{inv: ropeInvFreq(m.num("rope_theta"), d.hd, 1), norm: gemmaNorm, embScale: math.Sqrt(float64(d.embd)), act: gelu})
}

var (
	phi3Tokens  = []int32{1, 415, 2936, 9060, 31999, 17, 28705, 5, 32063, 32000}
	gemmaTokens = []int32{1, 415, 2936, 9060, 31999, 17, 28705, 5}
)

func TestConvertPhi3Logits(t *testing.T) {
	for _, c := range []struct {
		name string
		spec phi3Spec
	}{
		{"f32", phi3Spec{dtype: "F32", seed: 1}},
		{"bf16-partial-rotary", phi3Spec{dtype: "BF16", partial: 0.5, seed: 2}},
		{"f16-longrope", phi3Spec{dtype: "F16", longRope: true, seed: 3}},
		{"f32-separate-qkv", phi3Spec{dtype: "F32", split: true, seed: 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hfm := newPhi3(c.spec)
			dir := writeDir(t, hfm, "mistral-spm", 1)
			m, path := loadNet(t, dir, Options{Type: quant.F32})
			// A context within the original training context: short factors.
			checkRows(t, "short context", netLogits(t, m, 32, phi3Tokens), hfm.forwardPhi3(phi3Tokens, false), 1e-4)
			if c.spec.longRope {
				// A context beyond it: long factors, as llama.cpp picks them.
				checkRows(t, "long context", netLogits(t, m, 128, phi3Tokens), hfm.forwardPhi3(phi3Tokens, true), 1e-4)
			}
			f := openFile(t, path)
			if _, ok := f.Tensor("rope_factors_long.weight"); ok != c.spec.longRope {
				t.Errorf("rope_factors_long.weight present = %v, want %v", ok, c.spec.longRope)
			}
			qkv := "blk.0.attn_qkv.weight"
			if c.spec.split {
				qkv = "blk.0.attn_k.weight"
			}
			for _, name := range []string{qkv, "blk.1.ffn_up.weight", "output.weight"} {
				if _, ok := f.Tensor(name); !ok {
					t.Errorf("no %s", name)
				}
			}
		})
	}
}

func TestConvertGemmaLogits(t *testing.T) {
	for _, c := range []struct {
		name string
		spec gemmaSpec
	}{
		{"f32-mqa", gemmaSpec{dtype: "F32", seed: 5, nKV: 1}},
		{"f32-gqa", gemmaSpec{dtype: "F32", seed: 6, nKV: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hfm := newGemma(c.spec)
			dir := writeDir(t, hfm, "mistral-spm", 1)
			m, path := loadNet(t, dir, Options{Type: quant.F32})
			got := netLogits(t, m, 32, gemmaTokens)
			// GELU as ggml evaluates it (the engine follows llama.cpp) ...
			checkRows(t, "ggml GELU", got, hfm.forwardGemma(gemmaTokens, true), 1e-4)
			// ... is within the fp16 table's rounding of the exact GELU.
			checkRows(t, "exact GELU", got, hfm.forwardGemma(gemmaTokens, false), 5e-3)

			f := openFile(t, path)
			if _, ok := f.Tensor("output.weight"); ok {
				t.Error("a gemma file has output.weight (llama.cpp ties it to token_embd)")
			}
			checkKeys(t, f, map[string]any{"gemma.attention.key_length": uint32(gemmaHeadDim), "gemma.attention.head_count_kv": uint32(c.spec.nKV), "gemma.context_length": uint32(128)})
			// Norms are stored as 1 + w.
			checkNormPlusOne(t, f, "blk.1.ffn_norm.weight", hfm.w("model.layers.1.post_attention_layernorm.weight").Data)
		})
	}
}

// The norm + 1 of a BF16 checkpoint is rounded to BF16, as PyTorch computes
// it in convert_hf_to_gguf.py.
func TestConvertGemmaBF16Norm(t *testing.T) {
	hfm := newGemma(gemmaSpec{dtype: "BF16", seed: 7, nKV: 1})
	dir := writeDir(t, hfm, "mistral-spm", 1)
	_, path := loadNet(t, dir, Options{Type: quant.BF16})
	f := openFile(t, path)
	ti, _ := f.Tensor("output_norm.weight")
	if ti.Type != quant.F32 {
		t.Fatalf("output_norm.weight is %v, want F32", ti.Type)
	}
	w := make([]float32, gemmaEmbd)
	must(t, quant.Dequantize(ti.Type, f.Data(ti), w))
	src := hfm.w("model.norm.weight").Data
	for i := range w {
		if want := quant.BF16ToF32(quant.F32ToBF16(src[i] + 1)); w[i] != want {
			t.Fatalf("output_norm[%d] = %v, want bf16(1 + %v) = %v", i, w[i], src[i], want)
		}
	}
}

// Quantized conversions load and stay near the reference.
func TestConvertPhi3GemmaQ8(t *testing.T) {
	phi := newPhi3(phi3Spec{dtype: "F32", seed: 8})
	gem := newGemma(gemmaSpec{dtype: "F32", seed: 9, nKV: 1})
	for _, c := range []struct {
		name   string
		m      *hfModel
		tokens []int32
		want   func() [][]float64
	}{
		{"phi3", phi, phi3Tokens, func() [][]float64 { return phi.forwardPhi3(phi3Tokens, false) }},
		{"gemma", gem, gemmaTokens, func() [][]float64 { return gem.forwardGemma(gemmaTokens, true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeDir(t, c.m, "mistral-spm", 1)
			want := c.want()
			for _, typ := range []quant.Type{quant.Q8_0, quant.F16} {
				m, path := loadNet(t, dir, Options{Type: typ})
				checkRows(t, typ.String(), netLogits(t, m, 32, c.tokens), want, map[quant.Type]float64{quant.Q8_0: 0.1, quant.F16: 1e-2}[typ])
				checkTensorTypes(t, path, typ, false)
			}
		})
	}
}

// A prompt evaluated in one pass, token by token, and together with other
// sequences in one EvalBatch gives the same logits; decoding allocates
// nothing.
func TestPhi3GemmaBatchAndAllocs(t *testing.T) {
	phi := writeDir(t, newPhi3(phi3Spec{dtype: "F32", longRope: true, seed: 10}), "mistral-spm", 1)
	gem := writeDir(t, newGemma(gemmaSpec{dtype: "F32", seed: 11, nKV: 1}), "mistral-spm", 1)
	for _, c := range []struct {
		name string
		dir  string
		typ  quant.Type
	}{{"phi3-longrope-f32", phi, quant.F32}, {"phi3-longrope-q8_0", phi, quant.Q8_0}, {"gemma-f32", gem, quant.F32}, {"gemma-q4_0", gem, quant.Q4_0}} {
		t.Run(c.name, func(t *testing.T) {
			m, _ := loadNet(t, c.dir, Options{Type: c.typ})
			tokens := phi3Tokens[:8]

			// One pass vs token by token, in a short and a long context.
			for _, nCtx := range []int{32, 128} {
				all := netLogits(t, m, nCtx, tokens)
				s, err := m.NewState(nCtx)
				must(t, err)
				if worst := oneByOneDiff(t, m, s, tokens, all); worst > 1e-5 {
					t.Errorf("context %d: token by token differs from one pass by %.3g", nCtx, worst)
				}
			}

			// EvalBatch of a short-context and a long-context sequence (a pass
			// that mixes LongRoPE's factors) vs each alone; decoding allocates
			// nothing, alone and batched (mixed contexts).
			s, err := m.NewState(128)
			must(t, err)
			checkBatchAndDecode(t, m, 16, [2]batchSeq{{32, tokens}, {128, tokens[:5]}}, s, tokens)
		})
	}
}

// Truncated and damaged files give errors, never a panic.
func TestPhi3GemmaHostileFiles(t *testing.T) {
	phi := writeDir(t, newPhi3(phi3Spec{dtype: "F32", longRope: true, seed: 12}), "mistral-spm", 1)
	gem := writeDir(t, newGemma(gemmaSpec{dtype: "F32", seed: 13, nKV: 1}), "mistral-spm", 1)
	for _, c := range []struct {
		name, dir string
		edits     []fileEdit
	}{
		{"phi3", phi, []fileEdit{
			{"blk.1.attn_qkv.weight", "blk.1.attn_qkv.weighx", "blk.1.attn_qkv.weight"},
			{"blk.0.ffn_up.weight", "blk.0.ffn_up.weighx", "missing tensor blk.0.ffn_up.weight"},
			{"phi3.feed_forward_length", "phi3.feed_forward_lengtx", "phi3.feed_forward_length"},
			{"rope_factors_long.weight", "rope_factors_long.weighx", ""}, // optional: loads
		}},
		{"gemma", gem, []fileEdit{
			{"blk.0.ffn_gate.weight", "blk.0.ffn_gate.weighx", "missing tensor blk.0.ffn_gate.weight"},
			{"gemma.attention.key_length", "gemma.attention.key_lengtx", "value_length"}, // the head size falls back to embd/heads
		}},
	} {
		t.Run(c.name, func(t *testing.T) { checkHostileFile(t, c.dir, c.edits) })
	}
}

func TestConvertPhi3GemmaErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		m    func() *hfModel
		edit func(m *hfModel)
		want string
	}{
		{"phi3 rope type", func() *hfModel { return newPhi3(phi3Spec{dtype: "F32", longRope: true, seed: 14}) }, func(m *hfModel) {
			m.cfg["rope_scaling"].(map[string]any)["type"] = "dynamic"
		}, "dynamic"},
		{"phi3 factor count", func() *hfModel { return newPhi3(phi3Spec{dtype: "F32", longRope: true, seed: 15}) }, func(m *hfModel) {
			rs := m.cfg["rope_scaling"].(map[string]any)
			rs["long_factor"] = floats(rs["long_factor"])[1:]
		}, "long_factor"},
		{"gemma activation", func() *hfModel { return newGemma(gemmaSpec{dtype: "F32", seed: 16, nKV: 1}) }, func(m *hfModel) {
			m.cfg["hidden_activation"] = "relu"
		}, "hidden_activation"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := c.m()
			c.edit(m)
			checkConvertError(t, m, "mistral-spm", c.want)
		})
	}
}
