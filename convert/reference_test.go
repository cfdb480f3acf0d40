package convert

// A float64 forward pass over the Hugging Face checkpoint itself, written
// from the transformers modeling code's semantics (rotate-half RoPE on the
// unpermuted q/k weights, Conv1D weights stored [in, out], tied heads), so
// that comparing it with the converted GGUF under the engine checks the
// names, transposes, permutation and metadata of the conversion.

import (
	"fmt"
	"math"

	"github.com/slm-dev/slm/quant"
)

// geluFP16 is GPT-2's tanh GELU the way ggml's CPU backend evaluates it
// (and so the engine, to match llama.cpp): on the input rounded to fp16,
// with the result rounded to fp16; 0 below -10 and x above 10.
func geluFP16(x float64) float64 {
	switch {
	case x <= -10:
		return 0
	case x >= 10:
		return x
	}
	v := float64(quant.F16ToF32(quant.F32ToF16(float32(x))))
	g := 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
	return float64(quant.F16ToF32(quant.F32ToF16(float32(g))))
}

// hfModel is a checkpoint held in memory: PyTorch-order tensors.
type hfModel struct {
	cfg     map[string]any
	tensors map[string]SafeTensorData
}

func (m *hfModel) w(name string) SafeTensorData {
	t, ok := m.tensors[name]
	if !ok {
		panic("reference: no tensor " + name)
	}
	return t
}

func (m *hfModel) has(name string) bool { _, ok := m.tensors[name]; return ok }

func (m *hfModel) num(key string) float64 {
	switch v := m.cfg[key].(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	panic(fmt.Sprintf("reference: config %s = %v", key, m.cfg[key]))
}

// linear computes W x (+ b) for a Linear weight [out, in].
func linear(w SafeTensorData, b *SafeTensorData, x []float64) []float64 {
	out, in := int(w.Shape[0]), int(w.Shape[1])
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		s := 0.0
		for i := 0; i < in; i++ {
			s += float64(w.Data[o*in+i]) * x[i]
		}
		if b != nil {
			s += float64(b.Data[o])
		}
		y[o] = s
	}
	return y
}

// conv1d computes x W + b for a GPT-2 Conv1D weight [in, out].
func conv1d(w, b SafeTensorData, x []float64) []float64 {
	in, out := int(w.Shape[0]), int(w.Shape[1])
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		s := float64(b.Data[o])
		for i := 0; i < in; i++ {
			s += x[i] * float64(w.Data[i*out+o])
		}
		y[o] = s
	}
	return y
}

// rmsScaled is x/rms(x) · scale(i): the RMSNorms' common part.
func rmsScaled(x []float64, eps float64, scale func(i int) float64) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v * r * scale(i)
	}
	return y
}

// rmsNorm is LlamaRMSNorm: x/rms(x) · w.
func rmsNorm(x []float64, w SafeTensorData, eps float64) []float64 {
	return rmsScaled(x, eps, func(i int) float64 { return float64(w.Data[i]) })
}

func layerNorm(x []float64, w, b SafeTensorData, eps float64) []float64 {
	mean := 0.0
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	vr := 0.0
	for _, v := range x {
		vr += (v - mean) * (v - mean)
	}
	r := 1 / math.Sqrt(vr/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = (v-mean)*r*float64(w.Data[i]) + float64(b.Data[i])
	}
	return y
}

// attend runs causal attention for position p over keys/values 0..p.
// q is [nHead*hd], ks/vs hold [nKV*hd] per position.
func attend(q []float64, ks, vs [][]float64, nHead, nKV, hd int) []float64 {
	out := make([]float64, nHead*hd)
	group := nHead / nKV
	for h := 0; h < nHead; h++ {
		kh := h / group
		scores := make([]float64, len(ks))
		mx := math.Inf(-1)
		for t := range ks {
			s := 0.0
			for i := 0; i < hd; i++ {
				s += q[h*hd+i] * ks[t][kh*hd+i]
			}
			s /= math.Sqrt(float64(hd))
			scores[t] = s
			mx = max(mx, s)
		}
		sum := 0.0
		for t := range scores {
			scores[t] = math.Exp(scores[t] - mx)
			sum += scores[t]
		}
		for t := range scores {
			p := scores[t] / sum
			for i := 0; i < hd; i++ {
				out[h*hd+i] += p * vs[t][kh*hd+i]
			}
		}
	}
	return out
}

// ropeHF applies transformers' rotate-half RoPE to each head of x at pos.
func ropeHF(x []float64, heads, hd int, pos int, invFreq []float64) {
	for h := 0; h < heads; h++ {
		v := x[h*hd : (h+1)*hd]
		for i := 0; i < hd/2; i++ {
			a := float64(pos) * invFreq[i]
			c, s := math.Cos(a), math.Sin(a)
			x1, x2 := v[i], v[i+hd/2]
			v[i] = x1*c - x2*s
			v[i+hd/2] = x2*c + x1*s
		}
	}
}

// llamaInvFreq is transformers' inverse frequencies, with the llama3
// rope_scaling adjustment when the config asks for it.
func (m *hfModel) llamaInvFreq(hd int) []float64 {
	base := 10000.0
	if _, ok := m.cfg["rope_theta"]; ok {
		base = m.num("rope_theta")
	}
	inv := ropeInvFreq(base, hd, 1)
	rs, _ := m.cfg["rope_scaling"].(map[string]any)
	if rs == nil || rs["rope_type"] != "llama3" {
		return inv
	}
	factor := rs["factor"].(float64)
	low := rs["low_freq_factor"].(float64)
	high := rs["high_freq_factor"].(float64)
	old := float64(rs["original_max_position_embeddings"].(int))
	lowWave, highWave := old/low, old/high
	for i, f := range inv {
		wave := 2 * math.Pi / f
		switch {
		case wave < highWave:
		case wave > lowWave:
			inv[i] = f / factor
		default:
			smooth := (old/wave - low) / (high - low)
			inv[i] = (1-smooth)*f/factor + smooth*f
		}
	}
	return inv
}

// embedRow is token tok's row of the embeddings emb (embd columns), times
// scale.
func embedRow(emb SafeTensorData, tok int32, embd int, scale float64) []float64 {
	x := make([]float64, embd)
	for i := range x {
		x[i] = float64(emb.Data[int(tok)*embd+i]) * scale
	}
	return x
}

// addTo adds y to x: a residual connection.
func addTo(x, y []float64) {
	for i := range x {
		x[i] += y[i]
	}
}

// silu is x·sigmoid(x).
func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

// gatedMLP is down_proj(act(gate_proj(h)) · up_proj(h)) of the layer whose
// tensor names start with pre.
func (m *hfModel) gatedMLP(pre string, h []float64, act func(float64) float64) []float64 {
	g := linear(m.w(pre+"mlp.gate_proj.weight"), nil, h)
	u := linear(m.w(pre+"mlp.up_proj.weight"), nil, h)
	for i := range g {
		g[i] = act(g[i]) * u[i]
	}
	return linear(m.w(pre+"mlp.down_proj.weight"), nil, g)
}

// ropeInvFreq is RoPE's inverse frequencies 1/base^(2i/dims), i < dims/2,
// divided by factor (linear scaling; 1: none).
func ropeInvFreq(base float64, dims int, factor float64) []float64 {
	inv := make([]float64, dims/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(base, float64(2*i)/float64(dims)) / factor
	}
	return inv
}

// opt is the tensor name, or nil where the checkpoint has none (an
// optional bias).
func (m *hfModel) opt(name string) *SafeTensorData {
	if t, ok := m.tensors[name]; ok {
		return &t
	}
	return nil
}

// lmHead is lm_head.weight, or the embeddings where they are tied.
func (m *hfModel) lmHead() SafeTensorData {
	if m.has("lm_head.weight") {
		return m.w("lm_head.weight")
	}
	return m.w("model.embed_tokens.weight")
}

// refDims are the sizes the decoder references read from config.json;
// the head size is head_dim, or hidden_size / num_attention_heads.
type refDims struct {
	embd, nHead, nKV, nLayer, hd int
	eps                          float64
}

func (m *hfModel) dims() refDims {
	d := refDims{
		embd:   int(m.num("hidden_size")),
		nHead:  int(m.num("num_attention_heads")),
		nKV:    int(m.num("num_key_value_heads")),
		nLayer: int(m.num("num_hidden_layers")),
		eps:    m.num("rms_norm_eps"),
	}
	d.hd = d.embd / d.nHead
	if _, ok := m.cfg["head_dim"]; ok {
		d.hd = int(m.num("head_dim"))
	}
	return d
}

// kvCache holds each layer's keys and values of the positions so far.
type kvCache struct{ ks, vs [][][]float64 }

func newKVCache(nLayer int) *kvCache {
	return &kvCache{make([][][]float64, nLayer), make([][][]float64, nLayer)}
}

// add appends a position's k and v to layer l's and returns all of them.
func (c *kvCache) add(l int, k, v []float64) (ks, vs [][]float64) {
	c.ks[l] = append(c.ks[l], k)
	c.vs[l] = append(c.vs[l], v)
	return c.ks[l], c.vs[l]
}

// decoderRef runs a decoder one position at a time: the residual stream x
// starts as embed(tok), layer(l, p, pre, x) adds layer l's attention and
// MLP at position p (pre: the layer's tensor name prefix), and logits(x)
// is the position's output row.
func decoderRef(tokens []int32, nLayer int, embed func(tok int32) []float64, layer func(l, p int, pre string, x []float64), logits func(x []float64) []float64) [][]float64 {
	var out [][]float64
	for p, tok := range tokens {
		x := embed(tok)
		for l := 0; l < nLayer; l++ {
			layer(l, p, fmt.Sprintf("model.layers.%d.", l), x)
		}
		out = append(out, logits(x))
	}
	return out
}

// attnQKV is the q, k and v projections of h (with their biases where the
// checkpoint has them) of the layer whose tensor names start with pre.
func (m *hfModel) attnQKV(pre string, h []float64) (q, k, v []float64) {
	q = linear(m.w(pre+"self_attn.q_proj.weight"), m.opt(pre+"self_attn.q_proj.bias"), h)
	k = linear(m.w(pre+"self_attn.k_proj.weight"), m.opt(pre+"self_attn.k_proj.bias"), h)
	v = linear(m.w(pre+"self_attn.v_proj.weight"), m.opt(pre+"self_attn.v_proj.bias"), h)
	return q, k, v
}

// normHeads applies norm with weights w to each of the heads of hd values
// in x: the per-head q/k norms.
func normHeads(x []float64, heads, hd int, w SafeTensorData, eps float64, norm func([]float64, SafeTensorData, float64) []float64) {
	for h := 0; h < heads; h++ {
		copy(x[h*hd:(h+1)*hd], norm(x[h*hd:(h+1)*hd], w, eps))
	}
}

// llamaRef is what the llama-like references (llama, qwen2, qwen3, gemma)
// differ in.
type llamaRef struct {
	inv      []float64                                                  // RoPE's inverse frequencies
	norm     func(x []float64, w SafeTensorData, eps float64) []float64 // rmsNorm, gemmaNorm
	embScale float64                                                    // the embeddings' scale
	act      func(float64) float64                                      // the gated MLP's activation
	// qkNorm, when set, normalizes q and k before RoPE (qwen3).
	qkNorm func(pre string, q, k []float64)
}

// forwardLlamaLike is a pre-norm decoder with rotate-half RoPE over all of
// each head, causal grouped-query attention scaled by head_dim^-½ and a
// gated MLP, its lm_head tied or not.
func (m *hfModel) forwardLlamaLike(tokens []int32, r llamaRef) [][]float64 {
	d := m.dims()
	emb, head := m.w("model.embed_tokens.weight"), m.lmHead()
	cache := newKVCache(d.nLayer)
	return decoderRef(tokens, d.nLayer, func(tok int32) []float64 { return embedRow(emb, tok, d.embd, r.embScale) },
		func(l, p int, pre string, x []float64) {
			q, k, v := m.attnQKV(pre, r.norm(x, m.w(pre+"input_layernorm.weight"), d.eps))
			if r.qkNorm != nil {
				r.qkNorm(pre, q, k)
			}
			ropeHF(q, d.nHead, d.hd, p, r.inv)
			ropeHF(k, d.nKV, d.hd, p, r.inv)
			ks, vs := cache.add(l, k, v)
			a := attend(q, ks, vs, d.nHead, d.nKV, d.hd)
			addTo(x, linear(m.w(pre+"self_attn.o_proj.weight"), m.opt(pre+"self_attn.o_proj.bias"), a))
			addTo(x, m.gatedMLP(pre, r.norm(x, m.w(pre+"post_attention_layernorm.weight"), d.eps), r.act))
		},
		func(x []float64) []float64 { return linear(head, nil, r.norm(x, m.w("model.norm.weight"), d.eps)) })
}

// forwardLlama is LlamaForCausalLM / Qwen2ForCausalLM.
func (m *hfModel) forwardLlama(tokens []int32) [][]float64 {
	return m.forwardLlamaLike(tokens, llamaRef{inv: m.llamaInvFreq(m.dims().hd), norm: rmsNorm, embScale: 1, act: silu})
}

// forwardGPT2 is GPT2LMHeadModel; prefix is "transformer." or "".
func (m *hfModel) forwardGPT2(tokens []int32, prefix string) [][]float64 {
	embd := int(m.num("n_embd"))
	nHead := int(m.num("n_head"))
	nLayer := int(m.num("n_layer"))
	eps := m.num("layer_norm_epsilon")
	hd := embd / nHead
	wte, wpe := m.w(prefix+"wte.weight"), m.w(prefix+"wpe.weight")
	ks := make([][][]float64, nLayer)
	vs := make([][][]float64, nLayer)
	var out [][]float64
	for p, tok := range tokens {
		x := make([]float64, embd)
		for i := range x {
			x[i] = float64(wte.Data[int(tok)*embd+i]) + float64(wpe.Data[p*embd+i])
		}
		for l := 0; l < nLayer; l++ {
			pre := fmt.Sprintf("%sh.%d.", prefix, l)
			h := layerNorm(x, m.w(pre+"ln_1.weight"), m.w(pre+"ln_1.bias"), eps)
			qkv := conv1d(m.w(pre+"attn.c_attn.weight"), m.w(pre+"attn.c_attn.bias"), h)
			q, k, v := qkv[:embd], qkv[embd:2*embd], qkv[2*embd:]
			ks[l] = append(ks[l], k)
			vs[l] = append(vs[l], v)
			a := attend(q, ks[l], vs[l], nHead, nHead, hd)
			o := conv1d(m.w(pre+"attn.c_proj.weight"), m.w(pre+"attn.c_proj.bias"), a)
			for i := range x {
				x[i] += o[i]
			}
			h = layerNorm(x, m.w(pre+"ln_2.weight"), m.w(pre+"ln_2.bias"), eps)
			f := conv1d(m.w(pre+"mlp.c_fc.weight"), m.w(pre+"mlp.c_fc.bias"), h)
			for i, v := range f {
				f[i] = geluFP16(v)
			}
			d := conv1d(m.w(pre+"mlp.c_proj.weight"), m.w(pre+"mlp.c_proj.bias"), f)
			for i := range x {
				x[i] += d[i]
			}
		}
		out = append(out, linear(wte, nil, layerNorm(x, m.w(prefix+"ln_f.weight"), m.w(prefix+"ln_f.bias"), eps)))
	}
	return out
}
