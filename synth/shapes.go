package synth

import (
	"fmt"
	"sort"
	"strings"
)

// Shape is the architecture of a known model: everything a GGUF file of
// that model says about its size, as its Hugging Face config.json gives it.
type Shape struct {
	Like    string // the --like name
	Name    string // general.name of the files written
	Arch    string // general.architecture: llama, qwen2, qwen3, gpt2, phi3, gemma, gemma2 or gemma3
	NEmbd   int    // hidden_size / n_embd
	NLayer  int    // num_hidden_layers / n_layer
	NHead   int    // num_attention_heads
	NHeadKV int    // num_key_value_heads (GQA); NHead without GQA
	NFF     int    // intermediate_size / n_inner
	NVocab  int    // vocab_size
	NCtx    int    // max_position_embeddings / n_positions

	HeadSize      int // head_dim when it is not n_embd / n_head (Gemma: 256, Qwen3: 128); 0 = n_embd / n_head
	OrigCtx       int // original_max_position_embeddings (phi3)
	SlidingWindow int // sliding_window (phi3, where llama.cpp ignores it; gemma2, gemma3)

	AttnSoftcap  float64 // attn_logit_softcapping (gemma2)
	FinalSoftcap float64 // final_logit_softcapping (gemma2)

	RopeTheta float64 // rope_theta (llama, qwen2, qwen3)
	NormEps   float64 // rms_norm_eps or layer_norm_epsilon
	Tied      bool    // tie_word_embeddings: no output.weight of its own
	QKVBias   bool    // biases on q, k and v (qwen2)

	// Llama3Rope is Llama 3.1/3.2's rope_scaling (rope_type "llama3"),
	// which convert_hf_to_gguf.py turns into a rope_freqs.weight tensor.
	Llama3Rope *Llama3Rope

	Pre string // tokenizer.ggml.pre of the synthetic byte-level BPE vocabulary
}

// Llama3Rope is the rope_scaling block of a Llama 3.1/3.2 config.json.
type Llama3Rope struct {
	Factor, LowFreqFactor, HighFreqFactor float64
	OrigCtx                               int // original_max_position_embeddings
}

// HeadDim is the width of one attention head.
func (s *Shape) HeadDim() int {
	if s.HeadSize != 0 {
		return s.HeadSize
	}
	return s.NEmbd / s.NHead
}

// Shapes are the models --like knows, from their config.json files:
//
//	like            arch   n_embd n_layer n_head n_kv  n_ff   vocab   ctx     rope θ   eps   tied  notes
//	smollm2-135m    llama    576    30      9     3    1536   49152    8192   1e5      1e-5  yes
//	smollm2-360m    llama    960    32     15     5    2560   49152    8192   1e5      1e-5  yes
//	qwen2.5-0.5b    qwen2    896    24     14     2    4864  151936   32768   1e6      1e-6  yes   q/k/v biases
//	llama-3.2-1b    llama   2048    16     32     8    8192  128256  131072   5e5      1e-5  yes   llama3 rope scaling (factor 32, low 1, high 4, orig 8192)
//	tinyllama-1.1b  llama   2048    22     32     4    5632   32000    2048   1e4      1e-5  no
//	gpt2            gpt2     768    12     12    12    3072   50257    1024   -        1e-5  (*)   learned positions, LayerNorm, fused qkv, GELU
//	distilgpt2      gpt2     768     6     12    12    3072   50257    1024   -        1e-5  (*)
//	phi-3-mini      phi3    3072    32     32    32    8192   32064    4096   1e4      1e-5  no    fused qkv and gate/up (Phi-3-mini-4k)
//	gemma-2b        gemma   2048    18      8     1   16384  256000    8192   1e4      1e-6  yes   heads of 256, GELU-gated MLP
//	qwen3-0.6b      qwen3   1024    28     16     8    3072  151936   40960   1e6      1e-6  yes   heads of 128, per-head q/k RMSNorm
//	qwen3-1.7b      qwen3   2048    28     16     8    6144  151936   40960   1e6      1e-6  yes   heads of 128, per-head q/k RMSNorm
//	qwen3-4b        qwen3   2560    36     32     8    9728  151936   40960   1e6      1e-6  yes   heads of 128, per-head q/k RMSNorm
//	gemma-2-2b      gemma2  2304    26      8     4    9216  256000    8192   1e4      1e-6  yes   heads of 256, soft-caps 50/30, window 4096 on even layers, post-norms
//	gemma-3-270m    gemma3   640    18      4     1    2048  262144   32768   1e6      1e-6  yes   heads of 256, q/k norms, window 512 on 5 of 6 layers (local θ 1e4), post-norms
//	gemma-3-1b      gemma3  1152    26      4     1    6912  262144   32768   1e6      1e-6  yes   heads of 256, q/k norms, window 512 on 5 of 6 layers (local θ 1e4), post-norms
//
// (*) GPT-2 ties its output to the token embedding, but convert_hf_to_gguf.py
// writes the tied matrix twice (token_embd.weight and output.weight), so the
// gpt2 files have an output.weight like the converted ones.
//
// Every head is 64 wide, except Phi-3's (96), Qwen3's (128) and the
// Gemmas' (256). The real vocabularies differ (SentencePiece for TinyLlama, Phi-3
// and Gemma, tiktoken-style BPE for the others); synth always writes a
// synthetic byte-level BPE vocabulary of the requested size.
var Shapes = []Shape{
	{Like: "smollm2-135m", Name: "SmolLM2 135M", Arch: "llama", NEmbd: 576, NLayer: 30, NHead: 9, NHeadKV: 3, NFF: 1536,
		NVocab: 49152, NCtx: 8192, RopeTheta: 100000, NormEps: 1e-5, Tied: true, Pre: "smollm"},
	{Like: "smollm2-360m", Name: "SmolLM2 360M", Arch: "llama", NEmbd: 960, NLayer: 32, NHead: 15, NHeadKV: 5, NFF: 2560,
		NVocab: 49152, NCtx: 8192, RopeTheta: 100000, NormEps: 1e-5, Tied: true, Pre: "smollm"},
	{Like: "qwen2.5-0.5b", Name: "Qwen2.5 0.5B", Arch: "qwen2", NEmbd: 896, NLayer: 24, NHead: 14, NHeadKV: 2, NFF: 4864,
		NVocab: 151936, NCtx: 32768, RopeTheta: 1000000, NormEps: 1e-6, Tied: true, QKVBias: true, Pre: "qwen2"},
	{Like: "llama-3.2-1b", Name: "Llama 3.2 1B", Arch: "llama", NEmbd: 2048, NLayer: 16, NHead: 32, NHeadKV: 8, NFF: 8192,
		NVocab: 128256, NCtx: 131072, RopeTheta: 500000, NormEps: 1e-5, Tied: true, Pre: "llama-bpe",
		Llama3Rope: &Llama3Rope{Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OrigCtx: 8192}},
	{Like: "tinyllama-1.1b", Name: "TinyLlama 1.1B", Arch: "llama", NEmbd: 2048, NLayer: 22, NHead: 32, NHeadKV: 4, NFF: 5632,
		NVocab: 32000, NCtx: 2048, RopeTheta: 10000, NormEps: 1e-5, Pre: "gpt-2"},
	{Like: "gpt2", Name: "GPT-2", Arch: "gpt2", NEmbd: 768, NLayer: 12, NHead: 12, NHeadKV: 12, NFF: 3072,
		NVocab: 50257, NCtx: 1024, NormEps: 1e-5, Pre: "gpt-2"},
	{Like: "distilgpt2", Name: "DistilGPT2", Arch: "gpt2", NEmbd: 768, NLayer: 6, NHead: 12, NHeadKV: 12, NFF: 3072,
		NVocab: 50257, NCtx: 1024, NormEps: 1e-5, Pre: "gpt-2"},
	{Like: "phi-3-mini", Name: "Phi 3 Mini 4k Instruct", Arch: "phi3", NEmbd: 3072, NLayer: 32, NHead: 32, NHeadKV: 32, NFF: 8192,
		NVocab: 32064, NCtx: 4096, OrigCtx: 4096, SlidingWindow: 2047, RopeTheta: 10000, NormEps: 1e-5, Pre: "gpt-2"},
	{Like: "gemma-2b", Name: "Gemma 2b", Arch: "gemma", NEmbd: 2048, NLayer: 18, NHead: 8, NHeadKV: 1, HeadSize: 256, NFF: 16384,
		NVocab: 256000, NCtx: 8192, RopeTheta: 10000, NormEps: 1e-6, Tied: true, Pre: "gpt-2"},
	{Like: "qwen3-0.6b", Name: "Qwen3 0.6B", Arch: "qwen3", NEmbd: 1024, NLayer: 28, NHead: 16, NHeadKV: 8, HeadSize: 128, NFF: 3072,
		NVocab: 151936, NCtx: 40960, RopeTheta: 1000000, NormEps: 1e-6, Tied: true, Pre: "qwen2"},
	{Like: "qwen3-1.7b", Name: "Qwen3 1.7B", Arch: "qwen3", NEmbd: 2048, NLayer: 28, NHead: 16, NHeadKV: 8, HeadSize: 128, NFF: 6144,
		NVocab: 151936, NCtx: 40960, RopeTheta: 1000000, NormEps: 1e-6, Tied: true, Pre: "qwen2"},
	{Like: "qwen3-4b", Name: "Qwen3 4B", Arch: "qwen3", NEmbd: 2560, NLayer: 36, NHead: 32, NHeadKV: 8, HeadSize: 128, NFF: 9728,
		NVocab: 151936, NCtx: 40960, RopeTheta: 1000000, NormEps: 1e-6, Tied: true, Pre: "qwen2"},
	{Like: "gemma-2-2b", Name: "Gemma 2 2b", Arch: "gemma2", NEmbd: 2304, NLayer: 26, NHead: 8, NHeadKV: 4, HeadSize: 256, NFF: 9216,
		NVocab: 256000, NCtx: 8192, RopeTheta: 10000, NormEps: 1e-6, Tied: true, SlidingWindow: 4096, AttnSoftcap: 50, FinalSoftcap: 30, Pre: "gpt-2"},
	{Like: "gemma-3-270m", Name: "Gemma 3 270m", Arch: "gemma3", NEmbd: 640, NLayer: 18, NHead: 4, NHeadKV: 1, HeadSize: 256, NFF: 2048,
		NVocab: 262144, NCtx: 32768, RopeTheta: 1000000, NormEps: 1e-6, Tied: true, SlidingWindow: 512, Pre: "gpt-2"},
	{Like: "gemma-3-1b", Name: "Gemma 3 1b", Arch: "gemma3", NEmbd: 1152, NLayer: 26, NHead: 4, NHeadKV: 1, HeadSize: 256, NFF: 6912,
		NVocab: 262144, NCtx: 32768, RopeTheta: 1000000, NormEps: 1e-6, Tied: true, SlidingWindow: 512, Pre: "gpt-2"},
}

// Lookup finds a shape by its --like name (case-insensitive; "qwen25-05b"
// and "llama32-1b" style spellings without dots are accepted too).
func Lookup(like string) (Shape, error) {
	key := normalize(like)
	for _, s := range Shapes {
		if normalize(s.Like) == key {
			return s, nil
		}
	}
	return Shape{}, fmt.Errorf("unknown model shape %q (want one of %s)", like, strings.Join(Likes(), ", "))
}

func normalize(s string) string {
	return strings.NewReplacer(".", "", "_", "", "-", "").Replace(strings.ToLower(strings.TrimSpace(s)))
}

// Likes lists the --like names, sorted.
func Likes() []string {
	var names []string
	for _, s := range Shapes {
		names = append(names, s.Like)
	}
	sort.Strings(names)
	return names
}

// check rejects shapes that no model loader would accept.
func (s *Shape) check() error {
	switch {
	case s.Arch != "llama" && s.Arch != "qwen2" && s.Arch != "qwen3" && s.Arch != "gpt2" && s.Arch != "phi3" && s.Arch != "gemma" && s.Arch != "gemma2" && s.Arch != "gemma3":
		return fmt.Errorf("architecture %q: want llama, qwen2, qwen3, gpt2, phi3, gemma, gemma2 or gemma3", s.Arch)
	case s.NEmbd <= 0 || s.NLayer <= 0 || s.NHead <= 0 || s.NHeadKV <= 0 || s.NFF <= 0 || s.NCtx <= 0:
		return fmt.Errorf("every dimension must be positive (n_embd %d, n_layer %d, n_head %d, n_head_kv %d, n_ff %d, ctx %d)",
			s.NEmbd, s.NLayer, s.NHead, s.NHeadKV, s.NFF, s.NCtx)
	case s.HeadSize < 0 || s.HeadSize != 0 && !strings.HasPrefix(s.Arch, "gemma") && s.Arch != "qwen3":
		return fmt.Errorf("a head size of its own (%d) is only for the gemmas and qwen3", s.HeadSize)
	case (s.Arch == "gemma2" || s.Arch == "gemma3") && s.SlidingWindow <= 0:
		return fmt.Errorf("%s needs a sliding window", s.Arch)
	case s.Arch == "gemma2" && (s.AttnSoftcap <= 0 || s.FinalSoftcap <= 0):
		return fmt.Errorf("gemma2 needs positive soft-capping factors")
	case s.HeadSize == 0 && s.NEmbd%s.NHead != 0:
		return fmt.Errorf("n_embd %d is not a multiple of n_head %d", s.NEmbd, s.NHead)
	case s.NHead%s.NHeadKV != 0:
		return fmt.Errorf("n_head %d is not a multiple of n_head_kv %d", s.NHead, s.NHeadKV)
	case s.HeadDim()%2 != 0:
		return fmt.Errorf("the head size %d must be even (rotary embeddings rotate pairs)", s.HeadDim())
	case s.Arch == "gpt2" && s.NHeadKV != s.NHead:
		return fmt.Errorf("gpt2 has no grouped-query attention: n_head_kv must equal n_head")
	case s.NEmbd%32 != 0 || s.NFF%32 != 0:
		return fmt.Errorf("n_embd %d and n_ff %d must be multiples of 32 (the block size of the quantized types)", s.NEmbd, s.NFF)
	}
	return nil
}
