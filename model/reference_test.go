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
	"github.com/slm-dev/slm/kernel"
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
			RMS    float64 `json:"rms"`
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

// diff tracks the largest absolute difference of a comparison, the sum of
// squares for the rms, and the largest difference of each position (a
// prompt position or a greedy step; see mark).
type diff struct {
	max   float64
	where string
	sq    float64
	n     int
	pos   []float64 // per position: max |Δ|
}

// mark starts a new position.
func (d *diff) mark() { d.pos = append(d.pos, 0) }

func (d *diff) rms() float64 {
	if d.n == 0 {
		return 0
	}
	return math.Sqrt(d.sq / float64(d.n))
}

// median is the median over positions of each position's max |Δ|: the
// typical agreement, which a rounding flip at one position does not move.
func (d *diff) median() float64 {
	if len(d.pos) == 0 {
		return 0
	}
	p := append([]float64(nil), d.pos...)
	sort.Float64s(p)
	return p[len(p)/2]
}

func (d *diff) add(got float32, want float64, where func() string) {
	e := math.Abs(float64(got) - want)
	d.sq += e * e
	d.n++
	if len(d.pos) > 0 && !(e <= d.pos[len(d.pos)-1]) {
		d.pos[len(d.pos)-1] = e
	}
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
		d.mark()
		for id, want := range row {
			d.add(got[i*nv+id], float64(want), func() string { return fmt.Sprintf("%s pos %d id %d", prompt, i, id) })
		}
	}
	for i, top := range ref.Top {
		if len(ref.Logits) == 0 {
			d.mark()
		}
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
		d.mark()
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

// TestReference checks every test model against llama.cpp, once per mode of
// the kernels (each on the tier SLM_KERNEL_TIER selects, default the best):
//
//   - exact: kernel.SetExactFloat(true), float32 activations against the
//     F32-dequantized run (dequant_f32), within tolerance.vs_dequant_f32;
//   - fast (the default path): activations quantized as llama.cpp's CPU
//     backend does, against its native logits, within tolerance.vs_native
//     (max_abs and rms).
//
// Each evaluates all logits of each prompt in one batch, then decodes greedily
// one token per Eval against the matching reference's continuation.
func TestReference(t *testing.T) {
	for _, mode := range []string{"exact", "fast"} {
		t.Run(mode, func(t *testing.T) {
			// Cleanup, not defer: the parallel subtests run after this
			// function returns, and before its cleanups.
			prev := kernel.SetExactFloat(mode == "exact")
			t.Cleanup(func() { kernel.SetExactFloat(prev) })
			testReference(t, mode == "exact")
		})
	}
}

func testReference(t *testing.T, exact bool) {
	type row struct {
		name          string
		max, tol, rms float64
		rmsTol        float64
		typical       float64
		greedy        string
	}
	var (
		mu   sync.Mutex
		rows []row
	)
	t.Cleanup(func() {
		sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
		target := "native"
		if exact {
			target = "dequant_f32"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\nkernel tier %v, %s mode vs llama.cpp %s\n", kernel.ActiveTier(), map[bool]string{true: "exact float", false: "fast"}[exact], target)
		fmt.Fprintf(&b, "%-26s %10s %8s %10s %8s %12s  %s\n", "model", "max |Δ|", "tol", "rms", "rms tol", "median pos", "greedy steps compared")
		for _, r := range rows {
			fmt.Fprintf(&b, "%-26s %10.3g %8.2g %10.3g %8.2g %12.3g  %s\n", r.name, r.max, r.tol, r.rms, r.rmsTol, r.typical, r.greedy)
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
			tol, rmsTol := ref.Tolerance.VsNative.MaxAbs, ref.Tolerance.VsNative.RMS
			if exact {
				tol, rmsTol = ref.Tolerance.VsDequant.MaxAbs, 0
			}
			var d diff
			var gs []string
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
				target := &p.refResult
				label := p.Name + " (native)"
				if exact && p.Dequant != nil {
					target, label = p.Dequant, p.Name+" (dequant_f32)"
				}
				compare(&d, logits, nv, target, p.Name)
				n := greedy(t, m, s, last, target, tol, &d, label)
				gs = append(gs, fmt.Sprintf("%s %d", p.Name, n))
			}
			rms := d.rms()
			t.Logf("max |Δ| %.3g (tol %.2g) at %s; rms %.3g; median position max %.3g", d.max, tol, d.where, rms, d.median())
			if d.max > tol {
				t.Errorf("max |Δ| %.3g > %.2g at %s", d.max, tol, d.where)
			}
			if rmsTol > 0 && rms > rmsTol {
				t.Errorf("rms Δ %.3g > %.2g", rms, rmsTol)
			}
			mu.Lock()
			rows = append(rows, row{name, d.max, tol, rms, rmsTol, d.median(), strings.Join(gs, ", ")})
			mu.Unlock()
		})
	}
}
