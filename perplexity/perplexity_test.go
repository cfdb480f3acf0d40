package perplexity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/engine"
)

type reference struct {
	Results map[string]struct {
		Model   string    `json:"model"`
		Text    string    `json:"text"`
		NCtx    int       `json:"n_ctx"`
		Running []float64 `json:"running_ppl_after_each_chunk"`
		Final   float64   `json:"final_ppl"`
		Stderr  float64   `json:"final_ppl_stderr"`
	} `json:"results"`
}

const dir = "../testdata/perplexity"

func readRef(t *testing.T) reference {
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Results) == 0 {
		t.Fatal("no results in reference.json")
	}
	return ref
}

// Text reads a text file as llama.cpp's -f does (one trailing newline
// dropped) and tokenizes it with BOS as the vocabulary asks.
func textTokens(t *testing.T, m *engine.Model, path string) []int32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := m.Tokenize(TrimText(string(b)), true, false)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func vocabOf(m *engine.Model) Vocab {
	tok := m.Tokenizer()
	return Vocab{NVocab: m.Config().NVocab, BOS: tok.BOS(), AddBOS: tok.AddBOS()}
}

func TestMatchesLlamaCpp(t *testing.T) {
	for name, r := range readRef(t).Results {
		t.Run(name, func(t *testing.T) {
			m, err := engine.Open(filepath.Join(dir, r.Model))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.SetKVF16(true)
			toks := textTokens(t, m, filepath.Join(dir, r.Text))
			// llama-perplexity ran with its default F16 KV cache: the engine
			// with that cache must reproduce every running value to 4
			// significant digits, and with its float32 cache to 3.
			res, err := Run(m, toks, vocabOf(m), Options{NCtx: r.NCtx})
			if err != nil {
				t.Fatal(err)
			}
			m32, err := engine.Open(filepath.Join(dir, r.Model))
			if err != nil {
				t.Fatal(err)
			}
			defer m32.Close()
			eng, err := Run(m32, toks, vocabOf(m), Options{NCtx: r.NCtx})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Running) != len(r.Running) {
				t.Fatalf("%d chunks, llama.cpp %d (%d tokens)", len(res.Running), len(r.Running), len(toks))
			}
			for i, want := range r.Running {
				if got := res.Running[i]; math.Abs(got-want) > 5e-5*want {
					t.Errorf("[%d] %.4f, llama.cpp %.4f", i+1, got, want)
				}
				if got := eng.Running[i]; math.Abs(got-want) > 5e-4*want {
					t.Errorf("f32 KV [%d] %.4f, llama.cpp %.4f", i+1, got, want)
				}
			}
			if math.Abs(res.PPL-r.Final) > 5e-5*r.Final {
				t.Errorf("final %.4f, llama.cpp %.4f", res.PPL, r.Final)
			}
			if math.Abs(res.Stderr-r.Stderr) > 1e-3*r.Stderr {
				t.Errorf("stderr %.5f, llama.cpp %.5f", res.Stderr, r.Stderr)
			}
			t.Logf("llama.cpp %s final %.4f ± %.5f", fmtRunning(r.Running), r.Final, r.Stderr)
			t.Logf("f16 KV    %s final %.4f ± %.5f", fmtRunning(res.Running), res.PPL, res.Stderr)
			t.Logf("f32 KV    %s final %.4f ± %.5f", fmtRunning(eng.Running), eng.PPL, eng.Stderr)
		})
	}
}

func fmtRunning(v []float64) string {
	var b strings.Builder
	for i, x := range v {
		fmt.Fprintf(&b, "[%d]%.4f,", i+1, x)
	}
	return b.String()
}

// TestKLBase: saving a base file reports the same perplexity, the model
// against its own base has KL 0 and full top-1 agreement, and a quantized
// sibling against the F32 base has a small positive KL.
func TestKLBase(t *testing.T) {
	base, err := engine.Open("../testdata/models/llama-f32.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	v := vocabOf(base)
	// the synthetic model's tokenizer is tiny: score token ids instead
	toks := make([]int32, 200)
	for i := range toks {
		toks[i] = int32(3 + (i*37+i*i*11)%(v.NVocab-3))
	}
	toks[0] = v.BOS
	opt := Options{NCtx: 32}
	plain, err := Run(base, toks, v, opt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	saved, err := SaveBase(base, toks, v, opt, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(saved.PPL-plain.PPL) > 1e-5*plain.PPL {
		t.Errorf("PPL while saving %v, plain %v", saved.PPL, plain.PPL)
	}
	nScored := 32 - 1 - 16
	if want := 8 + 12 + 4*6*32 + 6*nScored*2*recordLen(v.NVocab); buf.Len() != want {
		t.Errorf("base file of %d bytes, want %d", buf.Len(), want)
	}
	self, err := KLDivergence(base, v, bytes.NewReader(buf.Bytes()), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if self.KLD > 1e-6 || self.SameTop != 1 || self.Count != 6*nScored {
		t.Errorf("self comparison: KLD %g, same top %g, %d tokens", self.KLD, self.SameTop, self.Count)
	}
	if math.Abs(self.PPLBase-self.PPL) > 1e-3*self.PPL {
		t.Errorf("self comparison: PPL %v vs base %v", self.PPL, self.PPLBase)
	}
	q, err := engine.Open("../testdata/models/llama-q4_0.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var chunks int
	kl, err := KLDivergence(q, v, bytes.NewReader(buf.Bytes()), 0, func(int, *KLResult) { chunks++ })
	if err != nil {
		t.Fatal(err)
	}
	if chunks != 6 || kl.KLD <= self.KLD || kl.KLD > 0.5 || kl.SameTop < 0.2 || kl.SameTop >= 1 {
		t.Errorf("q4_0 vs f32: KLD %g ± %g, same top %g, %d chunks", kl.KLD, kl.KLDErr, kl.SameTop, chunks)
	}
	t.Logf("q4_0 vs f32: KLD %.6f ± %.6f, max %.6f, same top %.2f%%, PPL %.4f vs %.4f", kl.KLD, kl.KLDErr, kl.KLDMax, 100*kl.SameTop, kl.PPL, kl.PPLBase)
	// errors
	if _, err := KLDivergence(q, v, strings.NewReader("nonsense"), 0, nil); err == nil {
		t.Error("a non-base file was accepted")
	}
	if _, err := KLDivergence(q, v, bytes.NewReader(buf.Bytes()[:buf.Len()-10]), 0, nil); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated base file: %v", err)
	}
	if _, err := KLDivergence(q, Vocab{NVocab: v.NVocab + 1}, bytes.NewReader(buf.Bytes()), 0, nil); err == nil {
		t.Error("a vocabulary mismatch was accepted")
	}
	if _, err := Run(base, toks[:63], v, opt); err == nil || !strings.Contains(err.Error(), "at least 64") {
		t.Errorf("short text: %v", err)
	}
}
