package model_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/model"
)

func modelPath(name string) string { return filepath.Join(testdata, "models", name+".gguf") }

func maxDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
		if math.IsNaN(float64(a[i])) != math.IsNaN(float64(b[i])) {
			return math.Inf(1)
		}
	}
	return m
}

func randomTokens(n, vocab int, seed uint64) []int32 {
	r := rand.New(rand.NewPCG(seed, 1))
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(r.IntN(vocab))
	}
	return t
}

func evalAll(t testing.TB, m model.Model, s *model.State, tokens []int32) []float32 {
	t.Helper()
	out := make([]float32, len(tokens)*m.Config().NVocab)
	if err := m.Eval(s, tokens, out, true); err != nil {
		t.Fatal(err)
	}
	return out
}

func newState(t testing.TB, m model.Model, n int) *model.State {
	t.Helper()
	s, err := m.NewState(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// One model of each family and weight kind.
var familyModels = []string{"llama-f32", "llama-q4_k_m", "qwen2-f16", "qwen2-q5_0", "gpt2-f32", "gpt2-q6_k"}

// A prompt evaluated as one batch gives the same logits as the same tokens
// evaluated one Eval at a time.
func TestBatchedEqualsTokenByToken(t *testing.T) {
	for _, name := range familyModels {
		t.Run(name, func(t *testing.T) {
			_, m := openModel(t, modelPath(name))
			nv := m.Config().NVocab
			tokens := randomTokens(40, nv, 1)
			batched := evalAll(t, m, newState(t, m, 64), tokens)

			s := newState(t, m, 64)
			one := make([]float32, nv)
			var worst float64
			for i, tok := range tokens {
				if err := m.Eval(s, []int32{tok}, one, false); err != nil {
					t.Fatal(err)
				}
				worst = max(worst, maxDiff(one, batched[i*nv:(i+1)*nv]))
			}
			t.Logf("max |batched - token by token| = %.3g", worst)
			if worst > 1e-5 {
				t.Errorf("batched and token-by-token logits differ by %.3g", worst)
			}
		})
	}
}

// Eval in several calls, and prompts longer than the batch size (run in
// chunks), give the same logits as one batch.
func TestChunkedEval(t *testing.T) {
	for _, name := range []string{"llama-q4_k", "gpt2-f16"} {
		t.Run(name, func(t *testing.T) {
			_, m := openModel(t, modelPath(name))
			nv := m.Config().NVocab
			tokens := randomTokens(40, nv, 2)
			want := evalAll(t, m, newState(t, m, 64), tokens)

			s := newState(t, m, 64)
			model.SetBatchSize(s, 16)
			if s.BatchSize() != 16 {
				t.Fatalf("batch size %d", s.BatchSize())
			}
			if d := maxDiff(evalAll(t, m, s, tokens), want); d > 1e-6 {
				t.Errorf("all=true in chunks of 16: logits differ by %.3g", d)
			}
			s.Truncate(0)
			last := make([]float32, nv)
			if err := m.Eval(s, tokens, last, false); err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(last, want[39*nv:]); d > 1e-6 {
				t.Errorf("all=false in chunks of 16: logits differ by %.3g", d)
			}
			s.Truncate(0)
			for _, cut := range [][2]int{{0, 10}, {10, 11}, {11, 40}} {
				if err := m.Eval(s, tokens[cut[0]:cut[1]], last, false); err != nil {
					t.Fatal(err)
				}
			}
			if d := maxDiff(last, want[39*nv:]); d > 1e-6 {
				t.Errorf("three Evals: logits differ by %.3g", d)
			}
		})
	}
	t.Run("long", func(t *testing.T) { // beyond MaxBatch, for real
		_, m := openModel(t, modelPath("llama-vocab-spm-f16"))
		nv := m.Config().NVocab
		n := model.MaxBatch + 20
		tokens := randomTokens(n, nv, 3)
		s := newState(t, m, n)
		if s.BatchSize() != model.MaxBatch {
			t.Fatalf("batch size %d, want %d", s.BatchSize(), model.MaxBatch)
		}
		whole := make([]float32, nv)
		if err := m.Eval(s, tokens, whole, false); err != nil {
			t.Fatal(err)
		}
		s.Truncate(n - 30)
		part := make([]float32, nv)
		if err := m.Eval(s, tokens[n-30:], part, false); err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(whole, part); d > 1e-6 {
			t.Errorf("last logits differ by %.3g", d)
		}
	})
}

// Truncate forgets positions: re-evaluating the dropped tokens reproduces
// their logits.
func TestTruncate(t *testing.T) {
	for _, name := range []string{"llama-q8_0", "qwen2-f32", "gpt2-q4_0"} {
		t.Run(name, func(t *testing.T) {
			_, m := openModel(t, modelPath(name))
			nv := m.Config().NVocab
			tokens := randomTokens(40, nv, 3)
			s := newState(t, m, 48)
			want := evalAll(t, m, s, tokens)

			s.Truncate(25)
			if s.Len() != 25 {
				t.Fatalf("Len %d after Truncate(25)", s.Len())
			}
			got := evalAll(t, m, s, tokens[25:])
			if d := maxDiff(got, want[25*nv:]); d > 1e-6 {
				t.Errorf("after Truncate(25): logits differ by %.3g", d)
			}
			// Rollback after a diverging continuation.
			other := randomTokens(8, nv, 4)
			evalAll(t, m, s, other)
			s.Truncate(40)
			next := evalAll(t, m, s, tokens[:3])
			s.Truncate(0)
			ref := evalAll(t, m, s, append(append([]int32{}, tokens...), tokens[:3]...))
			if d := maxDiff(next, ref[40*nv:]); d > 1e-6 {
				t.Errorf("after rollback: logits differ by %.3g", d)
			}
			s.Truncate(1000)
			if s.Len() != 43 {
				t.Errorf("Truncate beyond Len changed Len to %d", s.Len())
			}
			s.Truncate(-1)
			if s.Len() != 0 {
				t.Errorf("Truncate(-1): Len %d", s.Len())
			}
		})
	}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	_, m := openModel(t, modelPath("llama-q4_0"))
	nv := m.Config().NVocab
	s := newState(t, m, 8)
	logits := make([]float32, nv)

	wantErr(t, m.Eval(s, randomTokens(9, nv, 5), logits, false), "overflow", "9", "8")
	if err := m.Eval(s, randomTokens(5, nv, 5), logits, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, m.Eval(s, randomTokens(4, nv, 5), logits, false), "5 positions", "4 new", "8")
	if s.Len() != 5 {
		t.Errorf("a failed Eval changed Len to %d", s.Len())
	}
	wantErr(t, m.Eval(s, []int32{int32(nv)}, logits, false), "320", "vocabulary")
	wantErr(t, m.Eval(s, []int32{-1}, logits, false), "-1")
	wantErr(t, m.Eval(s, []int32{1}, logits[:nv-1], false), "319", "320")
	wantErr(t, m.Eval(s, []int32{1, 2}, logits, true), "640")
	wantErr(t, m.Eval(s, nil, logits, false), "no tokens")
	if err := m.Eval(s, []int32{1, 2, 3}, make([]float32, 3*nv), true); err != nil {
		t.Fatalf("filling the context exactly: %v", err)
	}
	wantErr(t, m.Eval(s, []int32{1}, logits, false), "overflow")

	_, other := openModel(t, modelPath("llama-q4_1"))
	wantErr(t, other.Eval(s, []int32{1}, logits, false), "state")
	wantErr(t, m.Eval(nil, []int32{1}, logits, false), "state")

	_, err := m.NewState(0)
	wantErr(t, err, "0")
	_, err = m.NewState(model.MaxContext + 1)
	wantErr(t, err, "limit")

	_, g := openModel(t, modelPath("gpt2-f32"))
	_, err = g.NewState(97)
	wantErr(t, err, "97", "96")
	if _, err := g.NewState(96); err != nil {
		t.Error(err)
	}
}

// Decoding one token allocates nothing, on the serial and the pooled paths.
func TestDecodeAllocs(t *testing.T) {
	for _, name := range []string{"llama-f32", "llama-q4_k", "qwen2-f16", "gpt2-q8_0", "llama-vocab-spm-f16"} {
		t.Run(name, func(t *testing.T) {
			_, m := openModel(t, modelPath(name))
			nv := m.Config().NVocab
			s := newState(t, m, 64)
			evalAll(t, m, s, randomTokens(20, nv, 6))
			logits := make([]float32, nv)
			tok := []int32{7}
			allocs := testing.AllocsPerRun(20, func() {
				s.Truncate(20)
				if err := m.Eval(s, tok, logits, false); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per decoded token", allocs)
			}
		})
	}
}

// patchFile returns the file's bytes with the first occurrence of the
// length-prefixed string old replaced by new (same length), optionally
// transforming the bytes that follow it.
func patchFile(t *testing.T, path, old, new string, after func(b []byte)) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	needle := binary.LittleEndian.AppendUint64(nil, uint64(len(old)))
	needle = append(needle, old...)
	i := bytes.Index(data, needle)
	if i < 0 {
		t.Fatalf("%q not in %s", old, path)
	}
	copy(data[i+8:], new)
	if after != nil {
		after(data[i+len(needle):])
	}
	return data
}

func loadBytes(t *testing.T, data []byte) error {
	t.Helper()
	f, err := gguf.Parse("patched.gguf", data)
	if err != nil {
		t.Fatal(err)
	}
	_, err = model.Load(f)
	return err
}

func TestLoadErrors(t *testing.T) {
	llama := modelPath("llama-f32")

	// A missing tensor is named.
	err := loadBytes(t, patchFile(t, llama, "blk.1.ffn_up.weight", "blk.1.ffn_up.weighx", nil))
	wantErr(t, err, "missing tensor blk.1.ffn_up.weight")

	// A tensor whose shape disagrees with the config is named: attn_k's dims
	// [256 64] swapped to [64 256] (same size).
	swap := func(b []byte) { // n_dims u32, dims u64...
		d0, d1 := binary.LittleEndian.Uint64(b[4:]), binary.LittleEndian.Uint64(b[12:])
		binary.LittleEndian.PutUint64(b[4:], d1)
		binary.LittleEndian.PutUint64(b[12:], d0)
	}
	err = loadBytes(t, patchFile(t, llama, "blk.0.attn_k.weight", "blk.0.attn_k.weight", swap))
	wantErr(t, err, "blk.0.attn_k.weight", "[64 256]", "[256 64]")

	// gpt2's fused qkv, mis-shaped.
	err = loadBytes(t, patchFile(t, modelPath("gpt2-f32"), "blk.1.attn_qkv.weight", "blk.1.attn_qkv.weight", swap))
	wantErr(t, err, "blk.1.attn_qkv.weight", "shape")

	// qwen2 requires its q/k/v biases.
	err = loadBytes(t, patchFile(t, modelPath("qwen2-f32"), "blk.0.attn_v.bias", "blk.0.attn_v.biaz", nil))
	wantErr(t, err, "missing tensor blk.0.attn_v.bias")

	// A missing hyperparameter is named.
	err = loadBytes(t, patchFile(t, llama, "llama.block_count", "llama.block_counx", nil))
	wantErr(t, err, "llama.block_count")

	// An unknown architecture lists the supported ones.
	arch := func(b []byte) {} // value follows: type u32, len u64, "llama"
	data := patchFile(t, llama, "general.architecture", "general.architecture", arch)
	i := bytes.Index(data, []byte("\x05\x00\x00\x00\x00\x00\x00\x00llama"))
	copy(data[i+8:], "llamb")
	err = loadBytes(t, data)
	wantErr(t, err, `"llamb"`, "gemma, gemma2, gemma3, gpt2, llama, phi3, qwen2")
}

func TestConfig(t *testing.T) {
	_, m := openModel(t, modelPath("llama-q4_k_m"))
	c := m.Config()
	want := model.Config{Arch: "llama", NVocab: 320, NEmbd: 256, NLayer: 2, NHead: 8, NHeadKV: 2, HeadDim: 32,
		NFF: 256, NCtxTrain: 256, NormEps: 1e-5, RopeBase: 10000, RopeDims: 32, RopeOrigCtx: 256}
	if c != want {
		t.Errorf("config\n%+v, want\n%+v", c, want)
	}
	_, g := openModel(t, modelPath("gpt2-vocab-gpt2-q8_0"))
	if c := g.Config(); c.NVocab != 50257 || c.MaxPos != 128 || c.HeadDim != 16 || c.NormEps != 1e-5 {
		t.Errorf("gpt2 config %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	llama := modelPath("llama-f32")
	setU32 := func(v uint32) func([]byte) { // value follows: type u32, value u32
		return func(b []byte) { binary.LittleEndian.PutUint32(b[4:], v) }
	}
	err := loadBytes(t, patchFile(t, llama, "llama.attention.head_count_kv", "llama.attention.head_count_kv", setU32(3)))
	wantErr(t, err, "head_count_kv = 3", "8")
	err = loadBytes(t, patchFile(t, llama, "llama.embedding_length", "llama.embedding_length", setU32(0)))
	wantErr(t, err, "llama.embedding_length")
	err = loadBytes(t, patchFile(t, llama, "llama.rope.dimension_count", "llama.rope.dimension_count", setU32(33)))
	wantErr(t, err, "rope.dimension_count = 33")
	// A config that disagrees with the tensors names the first tensor.
	err = loadBytes(t, patchFile(t, llama, "llama.feed_forward_length", "llama.feed_forward_length", setU32(512)))
	wantErr(t, err, "blk.0.ffn_gate.weight", "[256 256]", "[256 512]")
}

func TestRopeFromConfig(t *testing.T) {
	c := model.Config{RopeDims: 64, RopeBase: 1e6, RopeFactor: 4, RopeScaling: "yarn", RopeOrigCtx: 4096}
	r := c.Rope(true, nil)
	if !r.Neox || r.Dims != 64 || r.Base != 1e6 || r.FreqScale != 0.25 || r.ExtFactor != 1 ||
		r.BetaFast != 32 || r.BetaSlow != 1 || r.AttnFactor != 1 || r.OrigCtx != 4096 {
		t.Errorf("yarn: %+v", r)
	}
	c = model.Config{RopeDims: 128, RopeBase: 5e5, RopeScaling: "llama3"}
	ff := make([]float32, 64)
	r = c.Rope(false, ff)
	if r.Neox || r.FreqScale != 1 || r.ExtFactor != 0 || len(r.FreqFactors) != 64 {
		t.Errorf("llama3: %+v", r)
	}
	c = model.Config{RopeDims: 128, RopeBase: 1e4, RopeScaling: "linear", RopeFactor: 2}
	if r := c.Rope(false, nil); r.FreqScale != 0.5 || r.ExtFactor != 0 {
		t.Errorf("linear: %+v", r)
	}
}
