// Package gemma2 is Gemma 2 (GGUF architecture "gemma2": gemma-2-2b, 9b,
// 27b), as llama.cpp's llm_build_gemma2_iswa computes it: Gemma's blocks
// (RMSNorm with the GGUF weights holding 1 + w, √n_embd embedding scale,
// heads of attention.key_length, NeoX RoPE, GELU-gated MLP, output tied to
// the token embedding) with
//
//   - RMSNorms after attention and after the MLP too (post_attention_norm,
//     post_ffw_norm), before each is added to the residual stream;
//   - the queries scaled by 1/√head_dim before q·k (1/√(n_embd/n_head) for
//     the 27B, 46 layers, as llama.cpp decides; query_pre_attn_scalar is
//     not in the file);
//   - attention scores soft-capped, cap·tanh(s/cap) with cap =
//     attn_logit_softcapping (50), before the softmax;
//   - a sliding window of attention.sliding_window (4096) positions on the
//     even layers 0, 2, 4, ... (llama.cpp's swa pattern 2), the odd ones
//     seeing the whole context; the windowed layers rotate with
//     rope.freq_base_swa when the file has one (llama.cpp's
//     rope_freq_base_train_swa), else with rope.freq_base like the others;
//   - final logits soft-capped with final_logit_softcapping (30).
//
// The KV cache keeps every position of every layer (no ring buffer for the
// windowed layers).
package gemma2

import (
	"fmt"
	"math"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

func init() { model.Register("gemma2", Load) }

// Layer is one decoder block. Shapes are GGUF dims [n_in, n_out].
type Layer struct {
	AttnNorm     []float32      `gguf:"blk.%d.attn_norm.weight" shape:"embd"` // 1 + w
	Wq           *kernel.Matrix `gguf:"blk.%d.attn_q.weight" shape:"embd,q"`
	Wk           *kernel.Matrix `gguf:"blk.%d.attn_k.weight" shape:"embd,kv"`
	Wv           *kernel.Matrix `gguf:"blk.%d.attn_v.weight" shape:"embd,kv"`
	Wo           *kernel.Matrix `gguf:"blk.%d.attn_output.weight" shape:"q,embd"`
	PostAttnNorm []float32      `gguf:"blk.%d.post_attention_norm.weight" shape:"embd"` // 1 + w
	FFNNorm      []float32      `gguf:"blk.%d.ffn_norm.weight" shape:"embd"`            // 1 + w
	Gate         *kernel.Matrix `gguf:"blk.%d.ffn_gate.weight" shape:"embd,ff"`
	Up           *kernel.Matrix `gguf:"blk.%d.ffn_up.weight" shape:"embd,ff"`
	Down         *kernel.Matrix `gguf:"blk.%d.ffn_down.weight" shape:"ff,embd"`
	PostFFWNorm  []float32      `gguf:"blk.%d.post_ffw_norm.weight" shape:"embd"` // 1 + w
}

// Model holds the weights.
type Model struct {
	TokEmbd    *kernel.Matrix `gguf:"token_embd.weight" shape:"embd,vocab"`
	Layers     []Layer
	OutputNorm []float32      `gguf:"output_norm.weight" shape:"embd"`           // 1 + w
	Output     *kernel.Matrix `gguf:"output.weight,optional" shape:"embd,vocab"` // tied to TokEmbd when absent (always, in llama.cpp's files)

	cfg        model.Config
	rope       kernel.Rope // global layers (and local ones without rope.freq_base_swa)
	local      kernel.Rope // sliding-window layers: rope.freq_base_swa, else as rope
	embedScale float32     // √n_embd, in float32 as llama.cpp's sqrtf
	qScale     float32     // f_attention_scale
	attnCap    float32     // attn_logit_softcapping
	finalCap   float32     // final_logit_softcapping
	window     int         // attention.sliding_window
}

// Load binds a gemma2 GGUF file.
func Load(f *gguf.File) (model.Model, error) {
	c, err := model.ReadConfig(f, model.RMSNormEps)
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: c}
	if m.window, err = model.ReadUint(f, "gemma2.attention.sliding_window", 4096); err != nil {
		return nil, err
	}
	if m.attnCap, err = model.ReadPositive(f, "gemma2.attn_logit_softcapping", 50); err != nil {
		return nil, err
	}
	if m.finalCap, err = model.ReadPositive(f, "gemma2.final_logit_softcapping", 30); err != nil {
		return nil, err
	}
	if m.window == 0 {
		return nil, fmt.Errorf("gemma2.attention.sliding_window is 0")
	}
	if err := model.Bind(f, &c, m); err != nil {
		return nil, err
	}
	if m.Output == nil {
		m.Output = m.TokEmbd
	}
	m.rope = c.Rope(true, nil)
	m.local = m.rope
	// llama.cpp: the sliding-window layers rotate with
	// rope_freq_base_train_swa, rope.freq_base_swa when the file has it.
	if m.local.Base, err = model.ReadPositive(f, "gemma2.rope.freq_base_swa", m.rope.Base); err != nil {
		return nil, err
	}
	m.embedScale = float32(math.Sqrt(float64(c.NEmbd)))
	m.qScale = model.GemmaQueryScale(&c, c.NLayer == 46) // 46 layers: llama.cpp's LLM_TYPE_27B
	return model.New(c, m), nil
}

// Forward runs one batch of n tokens, from one or several sequences.
func (m *Model) Forward(b *model.Batch, logits []float32) {
	c, n, buf := &m.cfg, b.Len(), &b.Buf
	x, xb := buf.X[:n*c.NEmbd], buf.XB[:n*c.NEmbd]     // (n, embd)
	q, att := buf.Q[:n*c.QDim()], buf.Att[:n*c.QDim()] // (n, n_head·head_dim)
	k, v := buf.K[:n*c.KVDim()], buf.V[:n*c.KVDim()]   // (n, n_head_kv·head_dim)

	model.Embed(x, m.TokEmbd, b.Tokens()) // x = token_embd[tokens] · √n_embd
	kernel.Scale(x, m.embedScale)
	for l := range m.Layers {
		L := &m.Layers[l]
		model.RMSNorm(xb, x, L.AttnNorm, c.NormEps, n)               // xb = rmsnorm(x) ⊙ (1 + w)
		b.LinearQKV(q, k, v, L.Wq, L.Wk, L.Wv, nil, nil, nil, xb, n) // q, k, v = xb W{q,k,v}ᵀ
		rope, opts := &m.rope, model.AttnOpts{Scale: 1, SoftCap: m.attnCap}
		if l%2 == 0 {
			rope, opts.Window = &m.local, m.window // even layers: local attention
		}
		b.Rope(rope, q, c.NHead) // rotate (i, i+d/2) pairs by position
		b.Rope(rope, k, c.NHeadKV)
		kernel.Scale(q, m.qScale)                           // q *= 1/√head_dim, before q·k as llama.cpp
		b.AttentionOpts(l, att, q, k, v, opts)              // att = softmax(cap·tanh(q kᵀ/cap), causal, windowed) v
		b.Linear(xb, L.Wo, nil, att, n)                     // xb = att Woᵀ
		model.RMSNorm(xb, xb, L.PostAttnNorm, c.NormEps, n) // xb = rmsnorm(xb) ⊙ (1 + w)
		kernel.Add(x, xb)                                   // x += attention
		model.RMSNorm(xb, x, L.FFNNorm, c.NormEps, n)       // xb = rmsnorm(x) ⊙ (1 + w)
		b.GeGLUMLP(xb, xb, L.Gate, L.Up, L.Down, n)         // xb = down(gelu(gate xb) ⊙ up xb)
		model.RMSNorm(xb, xb, L.PostFFWNorm, c.NormEps, n)  // xb = rmsnorm(xb) ⊙ (1 + w)
		kernel.Add(x, xb)                                   // x += mlp
	}
	h, nOut := b.OutputRows(x)                         // the rows that need logits
	model.RMSNorm(h, h, m.OutputNorm, c.NormEps, nOut) // h = rmsnorm(h) ⊙ (1 + w)
	b.Output(logits, m.Output, h, nOut)                // logits (nOut, vocab) = h outputᵀ
	b.SoftCapOutput(logits, nOut, m.finalCap)          // logits = cap·tanh(logits/cap)
}
