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

	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/model"
	_ "github.com/slm-dev/slm/model/all"
)

const testdata = "../testdata"

// refFile is the part of testdata/reference/<name>.json the tests use.
type refFile struct {
	Model struct {
		File       string `json:"file"`
		Arch       string `json:"arch"`
		WeightType string `json:"weight_type"`
		NVocab     int    `json:"n_vocab"`
	} `json:"model"`
	Tolerance struct {
		VsDequant struct {
			MaxAbs float64 `json:"max_abs"`
		} `json:"vs_dequant_f32"`
		VsNative struct {
			MaxAbs float64 `json:"max_abs"`
		} `json:"vs_native"`
	} `json:"tolerance"`
	Prompts []refPrompt `json:"prompts"`
}

// refResult is what llama.cpp computed for one prompt with one set of weights.
type refResult struct {
	Logits     [][]float32    `json:"logits"`      // (n_tokens, n_vocab), synthetic models
	Top        [][][2]float64 `json:"top"`         // per position, top 32 [id, logit], real-tokenizer models
	LastLogits []float32      `json:"last_logits"` // last position, real-tokenizer models
	Greedy     struct {
		Tokens []int32        `json:"tokens"`
		Margin []float64      `json:"margin"`
		Top    [][][2]float64 `json:"top"` // per step, top 8 [id, logit]
	} `json:"greedy"`
}

type refPrompt struct {
	Name   string  `json:"name"`
	Source string  `json:"source"`
	Tokens []int32 `json:"tokens"`
	refResult
	Dequant *refResult `json:"dequant_f32"`
}

func modelFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(testdata, "models", "*.gguf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test models in %s/models (%v)", testdata, err)
	}
	sort.Strings(files)
	return files
}

func baseName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".gguf") }

func loadRef(t testing.TB, name string) *refFile {
	data, err := os.ReadFile(filepath.Join(testdata, "reference", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r refFile
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	return &r
}

func openModel(t testing.TB, path string) (*gguf.File, model.Model) {
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f, m
}

// diff tracks the largest absolute difference of a comparison.
type diff struct {
	max   float64
	where string
}

func (d *diff) add(got float32, want float64, where func() string) {
	e := math.Abs(float64(got) - want)
	if e > d.max || math.IsNaN(e) {
		d.max = e
		if math.IsNaN(e) {
			d.max = math.Inf(1)
		}
		d.where = where()
	}
}

// compare measures our logits (n, vocab) against a reference result: full
// logits where present, else the top-k ids of every position and the full
// last row.
func compare(d *diff, got []float32, nv int, ref *refResult, prompt string) {
	for i, row := range ref.Logits {
		for id, want := range row {
			d.add(got[i*nv+id], float64(want), func() string { return fmt.Sprintf("%s pos %d id %d", prompt, i, id) })
		}
	}
	for i, top := range ref.Top {
		for _, p := range top {
			id := int(p[0])
			d.add(got[i*nv+id], p[1], func() string { return fmt.Sprintf("%s pos %d id %d (top)", prompt, i, id) })
		}
	}
	if len(ref.LastLogits) > 0 {
		last := len(got)/nv - 1
		for id, want := range ref.LastLogits {
			d.add(got[last*nv+id], float64(want), func() string { return fmt.Sprintf("%s last id %d", prompt, id) })
		}
	}
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// greedy decodes token by token after prompt (already in s, with the
// prompt's last logits in last) and compares with ref's continuation while
// every margin so far exceeds 2·tol. At each compared step the logits of
// ref's top ids must also agree within tol. It returns the number of steps
// compared.
func greedy(t *testing.T, m model.Model, s *model.State, last []float32, ref *refResult, tol float64, d *diff, label string) int {
	nv := m.Config().NVocab
	logits := make([]float32, nv)
	copy(logits, last)
	one := make([]int32, 1)
	for step, want := range ref.Greedy.Tokens {
		if ref.Greedy.Margin[step] <= 2*tol {
			return step
		}
		for _, p := range ref.Greedy.Top[step] {
			id := int(p[0])
			d.add(logits[id], p[1], func() string { return fmt.Sprintf("%s greedy step %d id %d", label, step, id) })
		}
		got := argmax(logits)
		if got != want {
			t.Errorf("%s: greedy step %d: token %d, llama.cpp %d (margin %.4g)", label, step, got, want, ref.Greedy.Margin[step])
			return step
		}
		if step == len(ref.Greedy.Tokens)-1 || s.Len() == s.Cap() {
			return step + 1
		}
		one[0] = got
		if err := m.Eval(s, one, logits, false); err != nil {
			t.Fatalf("%s: greedy step %d: %v", label, step, err)
		}
	}
	return len(ref.Greedy.Tokens)
}

// TestReference checks every test model against llama.cpp: all logits of
// each prompt evaluated in one batch, then greedy decoding one token per
// Eval, against the F32-dequantized run (float32 activations, like ours) and
// the native run.
func TestReference(t *testing.T) {
	type row struct {
		name                   string
		dq, dqTol, nat, natTol float64
		greedy                 string
	}
	var (
		mu   sync.Mutex
		rows []row
	)
	t.Cleanup(func() {
		sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
		var b strings.Builder
		fmt.Fprintf(&b, "\n%-26s %12s %8s %12s %8s  %s\n", "model", "vs dequant", "tol", "vs native", "tol", "greedy steps compared (dequant_f32 / native)")
		for _, r := range rows {
			fmt.Fprintf(&b, "%-26s %12.3g %8.2g %12.3g %8.2g  %s\n", r.name, r.dq, r.dqTol, r.nat, r.natTol, r.greedy)
		}
		t.Log(b.String())
	})
	for _, path := range modelFiles(t) {
		name := baseName(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ref := loadRef(t, name)
			_, m := openModel(t, path)
			nv := m.Config().NVocab
			if nv != ref.Model.NVocab {
				t.Fatalf("n_vocab %d, reference %d", nv, ref.Model.NVocab)
			}
			tolDq, tolNat := ref.Tolerance.VsDequant.MaxAbs, ref.Tolerance.VsNative.MaxAbs
			var dq, nat diff
			var gDq, gNat []string
			for _, p := range ref.Prompts {
				s, err := m.NewState(len(p.Tokens) + 40)
				if err != nil {
					t.Fatal(err)
				}
				logits := make([]float32, len(p.Tokens)*nv)
				if err := m.Eval(s, p.Tokens, logits, true); err != nil {
					t.Fatalf("%s: %v", p.Name, err)
				}
				last := logits[(len(p.Tokens)-1)*nv:]
				native := &p.refResult
				target := p.Dequant
				if target == nil { // F32 file: the native run is the float32 run
					target = native
				}
				compare(&dq, logits, nv, target, p.Name)
				compare(&nat, logits, nv, native, p.Name)

				n := greedy(t, m, s, last, target, tolDq, &dq, p.Name+" (dequant_f32)")
				gDq = append(gDq, fmt.Sprintf("%s %d", p.Name, n))
				if p.Dequant != nil {
					s.Truncate(len(p.Tokens))
					n := greedy(t, m, s, last, native, tolNat, &nat, p.Name+" (native)")
					gNat = append(gNat, fmt.Sprintf("%d", n))
				}
			}
			t.Logf("max |Δ| vs dequant_f32 %.3g (tol %.2g) at %s; vs native %.3g (tol %.2g) at %s",
				dq.max, tolDq, dq.where, nat.max, tolNat, nat.where)
			if dq.max > tolDq {
				t.Errorf("vs dequant_f32: max |Δ| %.3g > %.2g at %s", dq.max, tolDq, dq.where)
			}
			if nat.max > tolNat {
				t.Errorf("vs native: max |Δ| %.3g > %.2g at %s", nat.max, tolNat, nat.where)
			}
			g := strings.Join(gDq, ", ")
			if len(gNat) > 0 {
				g += " / " + strings.Join(gNat, ", ")
			}
			mu.Lock()
			rows = append(rows, row{name, dq.max, tolDq, nat.max, tolNat, g})
			mu.Unlock()
		})
	}
}
