package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuantizeCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "q.gguf")
	code, _, errs := slm(t, "", "quantize", "--pure", filepath.Join(testdata, "models", "llama-f32.gguf"), out, "q4_0", "-t", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got, _ := os.ReadFile(out)
	want, _ := os.ReadFile(filepath.Join(testdata, "models", "llama-q4_0.gguf"))
	if !bytes.Equal(got, want) {
		t.Error("slm quantize --pure Q4_0 differs from llama-quantize's file")
	}
	if !strings.Contains(errs, "Q4_0: 16 of 21 tensors converted") {
		t.Errorf("summary: %q", errs)
	}
	// the mix, with an override and the verbose listing
	code, _, errs = slm(t, "", "quantize", "-v", "--tensor-type", `blk\.0\.attn_q=q8_0`, "--token-embedding-type", "q5_k", filepath.Join(testdata, "models", "llama-f32.gguf"), out, "Q4_K_M")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"blk.0.attn_q.weight                      [256 256]        F32 -> Q8_0", "blk.1.attn_q.weight                      [256 256]        F32 -> Q4_K",
		"token_embd.weight                        [256 320]        F32 -> Q5_K", "output.weight                            [256 320]        F32 -> Q6_K"} {
		if !strings.Contains(errs, want) {
			t.Errorf("verbose listing lacks %q:\n%s", want, errs)
		}
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"quantize", filepath.Join(testdata, "models", "llama-f32.gguf"), out, "Q9_9"}, `unknown quantization type "Q9_9"`},
		{[]string{"quantize", filepath.Join(dir, "missing.gguf"), out, "Q4_0"}, "no such file"},
		{[]string{"quantize", filepath.Join(testdata, "models", "llama-q8_0.gguf"), out, "Q4_0"}, "--allow-requantize"},
		{[]string{"quantize", "--tensor-type", "attn_v", filepath.Join(testdata, "models", "llama-f32.gguf"), out, "Q4_0"}, "PATTERN=TYPE"},
		{[]string{"quantize", "--tensor-type", "attn_v=q7", filepath.Join(testdata, "models", "llama-f32.gguf"), out, "Q4_0"}, "not a type"},
		{[]string{"quantize", "--imatrix", filepath.Join(dir, "none.dat"), filepath.Join(testdata, "models", "llama-f32.gguf"), out, "Q4_0"}, "importance matrix"},
		{[]string{"quantize", filepath.Join(testdata, "models", "llama-f32.gguf"), out}, "accepts between 3 and 4 arg(s)"},
	} {
		code, _, errs := slm(t, "", tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", tc.args[1:], code, errs, tc.want)
		}
	}
	// requantizing works when allowed; a failed run leaves the old output
	before, _ := os.ReadFile(out)
	code, _, errs = slm(t, "", "quantize", "--allow-requantize", filepath.Join(testdata, "models", "llama-q8_0.gguf"), filepath.Join(dir, "r.gguf"), "Q4_0")
	if code != 0 {
		t.Fatalf("requantize: %s", errs)
	}
	after, _ := os.ReadFile(out)
	if !bytes.Equal(before, after) {
		t.Error("a failed quantization changed the existing output")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestImatrixAndPerplexityCommands(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(testdata, "perplexity", "text.txt")
	model := filepath.Join(testdata, "models", "llama-vocab-spm-f16.gguf")
	im := filepath.Join(dir, "im.dat")
	code, _, errs := slm(t, "", "imatrix", "-m", model, "-f", text, "-o", im, "--ctx", "64", "--chunks", "2")
	if code != 0 {
		t.Fatalf("imatrix: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "14 matrices from 2 chunks") {
		t.Errorf("imatrix summary: %q", errs)
	}
	q := filepath.Join(dir, "q.gguf")
	code, _, errs = slm(t, "", "quantize", "--imatrix", im, model, q, "Q4_0")
	if code != 0 || !strings.Contains(errs, "with importance matrix") {
		t.Fatalf("quantize --imatrix: exit %d: %s", code, errs)
	}

	code, out, errs := slm(t, "", "perplexity", "-m", model, "-f", text, "--ctx", "64", "--chunks", "3")
	if code != 0 {
		t.Fatalf("perplexity: exit %d: %s", code, errs)
	}
	if !strings.HasPrefix(out, "[1]3114") || !strings.Contains(out, "[3]3263") || !strings.Contains(out, "Final estimate: PPL = ") {
		t.Errorf("perplexity output %q", out)
	}
	base := filepath.Join(dir, "base.kl")
	if code, _, errs = slm(t, "", "perplexity", "-m", model, "-f", text, "--ctx", "64", "--chunks", "2", "--kl-base", base); code != 0 {
		t.Fatalf("--kl-base: %s", errs)
	}
	code, out, errs = slm(t, "", "perplexity", "-m", q, "--kl-divergence", base)
	if code != 0 {
		t.Fatalf("--kl-divergence: %s", errs)
	}
	for _, want := range []string{"Mean    KLD:", "Same top p :", "Mean PPL(base)"} {
		if !strings.Contains(out, want) {
			t.Errorf("KL report lacks %q:\n%s", want, out)
		}
	}
	code, _, errs = slm(t, "", "perplexity", "-m", model, "-f", text, "--ctx", "512")
	if code == 0 || !strings.Contains(errs, "needs at least 1024") {
		t.Errorf("short text: %d %q", code, errs)
	}
	code, _, errs = slm(t, "", "perplexity", "-m", filepath.Join(testdata, "models", "gpt2-vocab-gpt2-q8_0.gguf"), "--kl-divergence", base)
	if code == 0 || !strings.Contains(errs, "vocabulary") {
		t.Errorf("vocabulary mismatch: %d %q", code, errs)
	}
}

func TestPullCommand(t *testing.T) {
	data := []byte("GGUF fake model bytes for the pull command test")
	sum := sha256.Sum256(data)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/models/org/m-GGUF/tree/main", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]map[string]any{{"type": "file", "path": "m.Q4_K_M.gguf", "size": len(data),
			"lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data)}}})
	})
	mux.HandleFunc("/org/m-GGUF/resolve/main/m.Q4_K_M.gguf", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "m.gguf", time.Time{}, bytes.NewReader(data))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	t.Setenv("SLM_HF_ENDPOINT", srv.URL)
	t.Setenv("SLM_MODELS", dir)
	code, out, errs := slm(t, "", "pull", "org/m-GGUF:q4_k_m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := filepath.Join(dir, "org", "m-GGUF", "m.Q4_K_M.gguf")
	if strings.TrimSpace(out) != want {
		t.Errorf("printed %q, want %q", out, want)
	}
	if b, _ := os.ReadFile(want); !bytes.Equal(b, data) {
		t.Error("content differs")
	}
	code, _, errs = slm(t, "", "pull", "org/m-GGUF:Q2_K")
	if code == 0 || !strings.Contains(errs, "no Q2_K file") {
		t.Errorf("missing quant: %d %q", code, errs)
	}
	srv.Close()
	code, _, errs = slm(t, "", "pull", "--models-dir", t.TempDir(), "org/m-GGUF:Q4_K_M")
	if code == 0 || !strings.Contains(errs, "offline?") {
		t.Errorf("offline: %d %q", code, errs)
	}
}
