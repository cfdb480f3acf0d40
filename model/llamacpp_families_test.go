package model_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/slm-dev/slm/kernel"
	"github.com/slm-dev/slm/model"
)

// famRef is testdata/reference/llamacpp-families/<name>.json: what
// llama.cpp (through node-llama-cpp) computes for the tiny model
// testdata/models/llamacpp-families/<name>.gguf — all logits of one
// prompt evaluated in one batch, then a greedy continuation decoded one
// token at a time — and, for quantized files, the same for an F32 copy of
// the dequantized weights (dequant_f32). See the README there.
type famRef struct {
	Model struct {
		File   string `json:"file"`
		NVocab int    `json:"n_vocab"`
	} `json:"model"`
	Prompt struct {
		Tokens []int32 `json:"tokens"`
	} `json:"prompt"`
	refResult
	Dequant *refResult `json:"dequant_f32"`
}

// famTolerance is the largest |Δ| of a logit accepted against llama.cpp's
// float32 computation (F32 files, and the dequant_f32 runs of quantized
// ones), by the family's MLP activation. SiLU families agree to about 1e-5
// (float32 summation order); GELU families evaluate GELU through ggml's
// fp16 table, where a gate value one float32 ulp away from llama.cpp's can
// round to the neighbouring fp16 input and move the logits of that
// position by up to ~1e-3 (3e-3 is the tolerance of the gpt2 references
// for the same reason). In exact mode the median over positions of each
// position's max |Δ| must also stay within famMedianTol: a flip moves the
// positions that attend to it, through the KV cache, by far less than the
// tolerance, but a systematic error moves them all.
var famTolerance = map[string]float64{
	"phi3": 1e-4, "qwen3": 1e-4, // SiLU
	"gemma": 3e-3, "gemma2": 3e-3, "gemma3": 3e-3, // GELU (fp16 table)
}

var famMedianTol = map[string]float64{
	"phi3": 5e-5, "qwen3": 5e-5,
	"gemma": 5e-4, "gemma2": 5e-4, "gemma3": 5e-4,
}

// famNativeGap is the largest |Δ| between llama.cpp's native logits of a
// quantized file and its dequant_f32 logits over the prompt: the effect of
// llama.cpp quantizing the activations.
func famNativeGap(ref *famRef) float64 {
	gap := 0.0
	for i, row := range ref.Logits {
		for j, v := range row {
			gap = math.Max(gap, math.Abs(float64(v-ref.Dequant.Logits[i][j])))
		}
	}
	return gap
}

// TestLlamaCppFamilies checks the families that have no reference of the
// shared set (phi3, gemma, qwen3, gemma2, gemma3) against llama.cpp's
// logits for tiny random models of each, once per mode of the kernels:
//
//   - exact (float32 activations) against llama.cpp's run on the
//     dequantized F32 copy (the file itself for F32 files);
//   - fast (activations quantized as llama.cpp's CPU backend does) against
//     llama.cpp's run on the file itself.
//
// Every logit of every prompt position must agree within the tolerance
// (exact: famTolerance; fast, quantized files: famTolerance + 1.25 × the
// gap between llama.cpp's native and dequant_f32 logits, the rule of the
// shared references, because a quantized activation that lands on a
// rounding boundary on one side and not the other cascades). The greedy
// continuation is decoded one token at a time, always feeding llama.cpp's
// token, so that every step's logits (llama.cpp's top 8 ids) are compared
// within the tolerance too; the argmax must be llama.cpp's token at every
// step whose top-2 margin exceeds twice the tolerance. In exact mode the
// median over positions of the max |Δ| must also stay within famMedianTol.
func TestLlamaCppFamilies(t *testing.T) {
	refs, err := filepath.Glob(filepath.Join(testdata, "reference", "llamacpp-families", "*.json"))
	if err != nil || len(refs) == 0 {
		t.Fatalf("no references in %s/reference/llamacpp-families (%v)", testdata, err)
	}
	sort.Strings(refs)
	for _, mode := range []string{"exact", "fast"} {
		t.Run(mode, func(t *testing.T) {
			exact := mode == "exact"
			prev := kernel.SetExactFloat(exact)
			t.Cleanup(func() { kernel.SetExactFloat(prev) })
			var (
				mu   sync.Mutex
				rows []string
			)
			t.Cleanup(func() {
				sort.Strings(rows)
				t.Logf("\nkernel tier %v, %s mode\n%-21s %10s %8s %10s %10s  %s\n%s", kernel.ActiveTier(), mode,
					"model", "max |Δ|", "tol", "rms", "median pos", "greedy tokens equal / generated", strings.Join(rows, "\n"))
			})
			for _, path := range refs {
				name := strings.TrimSuffix(filepath.Base(path), ".json")
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					data, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					var ref famRef
					if err := json.Unmarshal(data, &ref); err != nil {
						t.Fatalf("%s: %v", path, err)
					}
					family := name[:strings.IndexByte(name, '-')]
					tol, ok := famTolerance[family]
					if !ok {
						t.Fatalf("no tolerance for family %q", family)
					}
					target, label := &ref.refResult, "native"
					switch {
					case ref.Dequant != nil && exact:
						target, label = ref.Dequant, "dequant_f32"
					case ref.Dequant != nil:
						tol += 1.25 * famNativeGap(&ref)
					}
					_, m := openModel(t, filepath.Join(testdata, "models", "llamacpp-families", ref.Model.File))
					nv := m.Config().NVocab
					if nv != ref.Model.NVocab {
						t.Fatalf("n_vocab %d, reference %d", nv, ref.Model.NVocab)
					}
					toks := ref.Prompt.Tokens
					s, err := m.NewState(256) // llama.cpp's n_ctx (it pads any context to a multiple of 256)
					if err != nil {
						t.Fatal(err)
					}
					logits := make([]float32, len(toks)*nv)
					if err := m.Eval(s, toks, logits, true); err != nil {
						t.Fatal(err)
					}
					var d diff
					compare(&d, logits, nv, target, "prompt")
					same, checked := famGreedy(t, m, s, logits[(len(toks)-1)*nv:], target, tol, &d, label)
					t.Logf("vs %s: max |Δ| %.3g (tol %.2g) at %s; rms %.3g; greedy: %d of %d tokens equal, %d with a margin > 2·tol",
						label, d.max, tol, d.where, d.rms(), same, len(target.Greedy.Tokens), checked)
					if d.max > tol {
						t.Errorf("vs %s: max |Δ| %.3g > %.2g at %s", label, d.max, tol, d.where)
					}
					if exact && d.median() > famMedianTol[family] {
						t.Errorf("vs %s: median position max |Δ| %.3g > %.2g", label, d.median(), famMedianTol[family])
					}
					mu.Lock()
					rows = append(rows, fmt.Sprintf("%-21s %10.3g %8.2g %10.3g %10.3g  %2d / %2d (%2d checked) vs %s", name, d.max, tol, d.rms(), d.median(), same, len(target.Greedy.Tokens), checked, label))
					mu.Unlock()
				})
			}
		})
	}
}

// famGreedy decodes ref's greedy continuation after the prompt (already in
// s, its last logits in last), feeding llama.cpp's tokens. At each step the
// logits of ref's top ids must agree within tol (recorded in d), and the
// argmax must be ref's token when the step's margin exceeds 2·tol. It
// returns the number of steps whose argmax is ref's token and the number
// of steps where that was required.
func famGreedy(t *testing.T, m model.Model, s *model.State, last []float32, ref *refResult, tol float64, d *diff, label string) (same, checked int) {
	nv := m.Config().NVocab
	logits := make([]float32, nv)
	copy(logits, last)
	for step, want := range ref.Greedy.Tokens {
		d.mark()
		for _, p := range ref.Greedy.Top[step] {
			id := int(p[0])
			d.add(logits[id], p[1], func() string { return fmt.Sprintf("%s greedy step %d id %d", label, step, id) })
		}
		got := argmax(logits)
		if got == want {
			same++
		}
		if ref.Greedy.Margin[step] > 2*tol {
			checked++
			if got != want {
				t.Errorf("%s: greedy step %d: token %d, llama.cpp %d (margin %.4g)", label, step, got, want, ref.Greedy.Margin[step])
			}
		}
		if step == len(ref.Greedy.Tokens)-1 {
			break
		}
		if err := m.Eval(s, []int32{want}, logits, false); err != nil {
			t.Fatalf("%s: greedy step %d: %v", label, step, err)
		}
	}
	return same, checked
}
