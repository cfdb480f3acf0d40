package synth_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
	"github.com/slm-dev/slm/sample"
	"github.com/slm-dev/slm/synth"
)

const models = "../testdata/models"

// tiny shrinks a shape to test size, keeping its kind: architecture, GQA or
// not, biases, tied output, rope scaling.
func tiny(t testing.TB, like string) synth.Shape {
	t.Helper()
	s, err := synth.Lookup(like)
	if err != nil {
		t.Fatal(err)
	}
	gqa := s.NHeadKV != s.NHead
	s.NEmbd, s.NFF, s.NLayer, s.NCtx = 256, 256, 1, 64
	s.NHead, s.NHeadKV = 4, 4
	if gqa {
		s.NHeadKV = 2
	}
	return s
}

// allTypes are the --type values synth accepts.
var allTypes = []string{"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k",
	"q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m"}

func write(t testing.TB, opt synth.Options) (string, *synth.Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.gguf")
	res, err := synth.WriteFile(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return path, res
}

// TestEveryShapeAndTypeRuns writes shrunken models of every family and
// every type, loads them with the engine and checks that its logits are
// finite and that it generates.
func TestEveryShapeAndTypeRuns(t *testing.T) {
	// Every type on one model of each architecture, two types on the rest.
	everyType := []string{"tinyllama-1.1b", "qwen2.5-0.5b", "gpt2"}
	for _, like := range synth.Likes() {
		types := []string{"q8_0", "q4_k_m"}
		if slices.Contains(everyType, like) {
			types = allTypes
		}
		for _, typ := range types {
			t.Run(like+"/"+typ, func(t *testing.T) {
				path, res := write(t, synth.Options{Shape: tiny(t, like), Type: typ, Vocab: 300, Seed: 7})
				if st, err := os.Stat(path); err != nil || uint64(st.Size()) != res.FileBytes {
					t.Fatalf("file size %v (err %v), result says %d", st.Size(), err, res.FileBytes)
				}
				m, err := engine.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				rows, err := m.Logits([]int32{1, 2, 3, 299})
				if err != nil {
					t.Fatal(err)
				}
				for i, row := range rows {
					if len(row) != 300 {
						t.Fatalf("row %d has %d logits, want 300", i, len(row))
					}
					var spread float64
					for _, x := range row {
						if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
							t.Fatalf("position %d: logit %v", i, x)
						}
						spread = max(spread, math.Abs(float64(x-row[0])))
					}
					if spread == 0 {
						t.Fatalf("position %d: every logit is %v", i, row[0])
					}
				}
				ids, err := m.Tokenize(" hello world", false, false)
				if err != nil {
					t.Fatal(err)
				}
				p := sample.DefaultParams()
				p.Temperature = 0
				r, err := m.Generate(context.Background(), ids, engine.Options{MaxTokens: 4, Sampling: p, IgnoreEOS: true}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Tokens) != 4 {
					t.Fatalf("generated %d tokens, want 4", len(r.Tokens))
				}
			})
		}
	}
}

// TestMatchesLlamaCpp writes models of the shapes of the test data (made
// by llama.cpp's tools: llama-quantize for every quantized file) and checks
// that the tensors — names, order, shapes and types — and the model's
// metadata are the ones llama.cpp wrote.
func TestMatchesLlamaCpp(t *testing.T) {
	bases := []struct {
		base, like string
		vocab      int
		shape      func(*synth.Shape)
	}{
		{"llama", "tinyllama-1.1b", 320, func(s *synth.Shape) { s.NEmbd, s.NLayer, s.NHead, s.NHeadKV, s.NFF, s.NCtx = 256, 2, 8, 2, 256, 256 }},
		{"qwen2", "qwen2.5-0.5b", 384, func(s *synth.Shape) { s.NEmbd, s.NLayer, s.NHead, s.NHeadKV, s.NFF, s.NCtx = 256, 2, 4, 2, 256, 256 }},
		{"gpt2", "gpt2", 320, func(s *synth.Shape) { s.NEmbd, s.NLayer, s.NHead, s.NHeadKV, s.NFF, s.NCtx = 256, 2, 4, 4, 256, 96 }},
	}
	variants := []struct {
		name string
		pure bool
	}{
		{"q8_0", true}, {"q4_0", true}, {"q4_1", true}, {"q5_0", true}, {"q5_1", true},
		{"q2_k", true}, {"q3_k", true}, {"q4_k", true}, {"q5_k", true}, {"q6_k", true},
		{"q4_k_m", false}, {"f16", false},
	}
	for _, b := range bases {
		for _, v := range variants {
			t.Run(b.base+"-"+v.name, func(t *testing.T) {
				ref, err := gguf.Open(filepath.Join(models, b.base+"-"+v.name+".gguf"))
				if err != nil {
					t.Fatal(err)
				}
				defer ref.Close()
				shape, err := synth.Lookup(b.like)
				if err != nil {
					t.Fatal(err)
				}
				b.shape(&shape)
				shape.NormEps = 0
				if eps, ok := ref.Float(b.base + ".attention.layer_norm_epsilon"); ok {
					shape.NormEps = eps
				} else if eps, ok := ref.Float(b.base + ".attention.layer_norm_rms_epsilon"); ok {
					shape.NormEps = eps
				}
				if theta, ok := ref.Float(b.base + ".rope.freq_base"); ok {
					shape.RopeTheta = theta
				}
				var buf bytes.Buffer
				if _, err := synth.Write(&buf, synth.Options{Shape: shape, Type: v.name, Pure: v.pure, Vocab: b.vocab}); err != nil {
					t.Fatal(err)
				}
				got, err := gguf.Parse("synth", buf.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				want := describeTensors(ref.Tensors)
				have := describeTensors(got.Tensors)
				if v.name == "f16" { // written by the test-data generator, in its own order
					slices.Sort(want)
					slices.Sort(have)
				}
				if !slices.Equal(have, want) {
					t.Errorf("tensors differ from llama.cpp's file:\n got %s\nwant %s", strings.Join(have, "\n     "), strings.Join(want, "\n     "))
				}
				for _, kv := range ref.KVs {
					k := kv.Key
					if !strings.HasPrefix(k, b.base+".") && k != "general.architecture" && k != "general.quantization_version" &&
						(k != "general.file_type" || v.name == "f16") {
						continue
					}
					if k == b.base+".vocab_size" && b.base != "llama" {
						continue // written by the test-data generator, not by convert_hf_to_gguf.py
					}
					gv, ok := got.Get(k)
					if !ok {
						t.Errorf("metadata %s is missing (llama.cpp's file has %v)", k, kv.Value)
						continue
					}
					if fmt.Sprint(gv) != fmt.Sprint(kv.Value) {
						t.Errorf("metadata %s = %v (%T), llama.cpp's file has %v (%T)", k, gv, gv, kv.Value, kv.Value)
					}
				}
			})
		}
	}
}

func describeTensors(ts []gguf.TensorInfo) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s %v %s", t.Name, t.Dims, t.Type))
	}
	return out
}

// TestRealShapes checks the full-size plans: parameter counts of the real
// models and the file sizes of the benchmark files (vocabulary
// 50257), which llama.cpp's tools made.
func TestRealShapes(t *testing.T) {
	cases := []struct {
		like   string
		vocab  int
		typ    string
		params float64 // millions
		mib    float64 // tensor data
	}{
		{"smollm2-135m", 0, "f16", 134.5, 0},
		{"smollm2-360m", 0, "f16", 361.8, 0},
		{"qwen2.5-0.5b", 0, "f16", 494.0, 0},
		{"llama-3.2-1b", 0, "f16", 1235.8, 0},
		{"tinyllama-1.1b", 0, "f16", 1100.0, 0},
		{"gpt2", 0, "f16", 124.4 + 38.6, 0}, // + the output copy of token_embd
		{"distilgpt2", 0, "f16", 81.9 + 38.6, 0},
		{"phi-3-mini", 0, "f16", 3821.0, 0},
		{"gemma-2b", 0, "f16", 2506.2, 0},
		{"gemma-2-2b", 0, "f16", 2614.3, 0},  // model card: 2.6B
		{"gemma-3-1b", 0, "f16", 999.9, 0},   // 1.0B
		{"gemma-3-270m", 0, "f16", 268.1, 0}, // 268M
		// The files (file size less ~1.7 MiB of vocabulary).
		{"smollm2-135m", 50257, "f16", 0, 258},
		{"smollm2-135m", 50257, "q8_0", 0, 137},
		{"smollm2-135m", 50257, "q4_0", 0, 86.3},
		{"smollm2-135m", 50257, "q4_k_m", 0, 99.4},
		{"llama-3.2-1b", 50257, "q8_0", 0, 1090},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%d-%s", c.like, c.vocab, c.typ), func(t *testing.T) {
			s, err := synth.Lookup(c.like)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := synth.Plan(synth.Options{Shape: s, Type: c.typ, Vocab: c.vocab})
			if err != nil {
				t.Fatal(err)
			}
			var params, bytes uint64
			for _, tn := range ts {
				params += tn.Elems()
				n, err := tn.Type.RowBytes(int(tn.Elems()))
				if err != nil {
					t.Fatal(err)
				}
				bytes += uint64(n)
			}
			if c.params != 0 && math.Abs(float64(params)/1e6-c.params) > 0.01*c.params {
				t.Errorf("%.1fM parameters, want about %.1fM", float64(params)/1e6, c.params)
			}
			if mib := float64(bytes) / (1 << 20); c.mib != 0 && math.Abs(mib-c.mib) > 0.01*c.mib {
				t.Errorf("%.1f MiB of tensor data, want about %.1f", mib, c.mib)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	opt := synth.Options{Shape: tiny(t, "qwen2.5-0.5b"), Type: "q4_k_m", Vocab: 400, Seed: 3, Threads: 1}
	var a, b, c bytes.Buffer
	if _, err := synth.Write(&a, opt); err != nil {
		t.Fatal(err)
	}
	opt.Threads = 3
	if _, err := synth.Write(&b, opt); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the file depends on the number of threads")
	}
	opt.Seed = 4
	if _, err := synth.Write(&c, opt); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("the seed does not change the file")
	}
}

// TestWeights checks the values: normal weights of std 0.02, norms 1, the
// Llama 3 rope factors.
func TestWeights(t *testing.T) {
	path, _ := write(t, synth.Options{Shape: tiny(t, "llama-3.2-1b"), Type: "f32", Vocab: 300, Seed: 1})
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	values := func(name string) []float32 {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		x := make([]float32, ti.Elems())
		if err := quant.Dequantize(ti.Type, f.Data(ti), x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	w := values("blk.0.ffn_up.weight")
	var sum, sq float64
	for _, x := range w {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	mean := sum / float64(len(w))
	std := math.Sqrt(sq/float64(len(w)) - mean*mean)
	if math.Abs(mean) > 0.001 || math.Abs(std-synth.Std) > 0.001 {
		t.Errorf("ffn_up: mean %g, std %g; want 0 and %g", mean, std, synth.Std)
	}
	for _, x := range values("blk.0.ffn_norm.weight") {
		if x != 1 {
			t.Fatalf("attn_norm value %g, want 1", x)
		}
	}
	// Llama 3.2: head size 64, θ 500000, factor 32, low 1, high 4, 8192:
	// the first pairs are not scaled, the last ones by 32.
	rf := values("rope_freqs.weight")
	if len(rf) != 32 || rf[0] != 1 || rf[31] != 32 {
		t.Errorf("rope_freqs = %v", rf)
	}
	for i := 1; i < len(rf); i++ {
		if rf[i] < rf[i-1] {
			t.Errorf("rope_freqs not increasing: %v", rf)
			break
		}
	}
}

func TestVocab(t *testing.T) {
	v, err := synth.NewVocab(50257, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 50257 || len(v.Types) != 50257 || len(v.Merges) != 50000 || v.EOT != 50256 || v.Tokens[50256] != synth.EOT {
		t.Fatalf("%d tokens, %d types, %d merges, EOT %d", len(v.Tokens), len(v.Types), len(v.Merges), v.EOT)
	}
	// GPT-2's byte order: "!" first, the space ("Ġ") at 220, byte 0 ("Ā") at 188.
	if v.Tokens[0] != "!" || v.Tokens[220] != "Ġ" || v.Tokens[188] != "Ā" || v.Tokens[255] != "Ń" {
		t.Errorf("byte tokens: 0 %q, 188 %q, 220 %q, 255 %q", v.Tokens[0], v.Tokens[188], v.Tokens[220], v.Tokens[255])
	}
	ids := map[string]int{}
	for i, tok := range v.Tokens {
		if _, dup := ids[tok]; dup {
			t.Fatalf("token %q twice", tok)
		}
		ids[tok] = i
	}
	for k, m := range v.Merges {
		l, r, ok := strings.Cut(m, " ")
		if !ok {
			t.Fatalf("merge %d %q has no space", k, m)
		}
		if _, ok := ids[l]; !ok {
			t.Fatalf("merge %d %q: %q is not a token", k, m, l)
		}
		if _, ok := ids[r]; !ok {
			t.Fatalf("merge %d %q: %q is not a token", k, m, r)
		}
		if ids[l+r] != 256+k {
			t.Fatalf("merge %d %q makes token %d, want %d", k, m, ids[l+r], 256+k)
		}
	}
}

// TestTokenizerRoundTrip checks that the engine tokenizes text with the
// synthetic vocabulary, using merges, and decodes it back.
func TestTokenizerRoundTrip(t *testing.T) {
	path, _ := write(t, synth.Options{Shape: tiny(t, "gpt2"), Type: "q8_0", Vocab: 5000, Seed: 1})
	m, err := engine.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	text := "the quick brown fox jumps over the lazy dog, 123 times!\n\tÄ\x00"
	ids, err := m.Tokenize(text, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) >= len(text) {
		t.Errorf("%d tokens for %d bytes: no merge applied", len(ids), len(text))
	}
	if back := m.Detokenize(ids); back != text {
		t.Errorf("round trip: %q", back)
	}
}

func TestBadOptions(t *testing.T) {
	good := synth.Options{Shape: tiny(t, "smollm2-135m"), Type: "q8_0", Vocab: 300}
	cases := []struct {
		name string
		edit func(*synth.Options)
		want string
	}{
		{"type", func(o *synth.Options) { o.Type = "q7_0" }, "unknown quantization type"},
		{"vocab", func(o *synth.Options) { o.Vocab = 100 }, "vocabulary size 100"},
		{"heads", func(o *synth.Options) { o.Shape.NHead = 5 }, "not a multiple of n_head"},
		{"kv heads", func(o *synth.Options) { o.Shape.NHeadKV = 3 }, "not a multiple of n_head_kv"},
		{"layers", func(o *synth.Options) { o.Shape.NLayer = 0 }, "must be positive"},
		{"block", func(o *synth.Options) { o.Shape.NEmbd, o.Shape.NHead, o.Shape.NHeadKV = 200, 4, 2 }, "multiples of 32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good
			c.edit(&o)
			path := filepath.Join(t.TempDir(), "m.gguf")
			_, err := synth.WriteFile(path, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("a file was left behind")
			}
		})
	}
	if _, err := synth.Lookup("gpt5"); err == nil || !strings.Contains(err.Error(), "smollm2-135m") {
		t.Errorf("Lookup(gpt5): %v", err)
	}
	for _, alias := range []string{"qwen25-05b", "Llama-3.2-1B", "llama32-1b"} {
		if _, err := synth.Lookup(alias); err != nil {
			t.Errorf("Lookup(%s): %v", alias, err)
		}
	}
}
