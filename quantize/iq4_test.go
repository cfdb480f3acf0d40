package quantize

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
	"github.com/slm-dev/slm/quant"
)

// TestIQ4Logits quantizes the F32 test models to IQ4_NL and IQ4_XS (--pure
// and llama.cpp's mix), loads them and compares their logits with the F32
// model's (llama.cpp's logits in testdata/reference) next to Q4_0's, the
// type with the same bits per weight. There are no llama.cpp IQ4 files or
// reference logits in this repository, so the bytes themselves cannot be
// compared with llama-quantize's; the weight RMSE of --pure files must be
// below Q4_0's and the logit error of Q4_0's size (at most 1.5 times).
// `go test ./quantize -run IQ4Logits -v` prints the table.
func TestIQ4Logits(t *testing.T) {
	type variant struct {
		typ  string
		pure bool
	}
	variants := []variant{{"Q4_0", true}, {"IQ4_NL", true}, {"IQ4_XS", true}, {"IQ4_NL", false}, {"IQ4_XS", false}}
	var b strings.Builder
	b.WriteString("\n| model | type | tensors | weight RMSE | max |Δ logit| vs F32 |\n|---|---|---|---|---|\n")
	for _, base := range []string{"llama", "qwen2"} {
		p := reference(t, base+"-f32").Prompts[1]
		src := openT(t, filepath.Join(models, base+"-f32.gguf"))
		var q40, q40rmse float64
		for _, v := range variants {
			data := quantized(t, base, v.typ, v.pure)
			name := v.typ
			if v.pure {
				name += " --pure"
			}
			m, err := engine.OpenBytes(name, data)
			if err != nil {
				t.Fatalf("%s %s: %v", base, name, err)
			}
			rows, err := m.Logits(p.Tokens)
			m.Close()
			if err != nil {
				t.Fatal(err)
			}
			d := maxDiff(toF64(rows), p.Logits)
			f, err := gguf.Parse(name, data)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[quant.Type]int{}
			for i := range f.Tensors {
				counts[f.Tensors[i].Type]++
			}
			rmse, err := RMSE(src, f)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "| %s | %s | %v | %.4e | %.4f |\n", base, name, counts, rmse, d)
			switch {
			case v.typ == "Q4_0":
				q40, q40rmse = d, rmse
			case v.pure && d > 1.5*q40:
				t.Errorf("%s %s: max |Δ logit| %.4f, Q4_0's %.4f", base, name, d, q40)
			case v.pure && rmse >= q40rmse:
				t.Errorf("%s %s: weight RMSE %.4e not below Q4_0's %.4e", base, name, rmse, q40rmse)
			}
			if want := quant.Type(0); v.pure {
				want = mustType(t, v.typ).Default
				if counts[want] == 0 {
					t.Errorf("%s %s: no %v tensor", base, name, want)
				}
			}
		}
	}
	t.Log(b.String())
}

// TestIQ4Mix checks the tensor types of the IQ4 mixes against
// llama_tensor_get_type: output.weight (or a tied token_embd) Q6_K, attn_v Q5_K when n_gqa >= 4,
// the first eighth of ffn_down Q5_K without an imatrix, the rest the
// default type; IQ4_XS rows that are not whole super-blocks fall back to
// IQ4_NL.
func TestIQ4Mix(t *testing.T) {
	for _, base := range []string{"llama", "qwen2"} {
		src := openT(t, filepath.Join(models, base+"-f32.gguf"))
		hp := readHparams(src)
		for _, typ := range []string{"IQ4_NL", "IQ4_XS"} {
			ft := mustType(t, typ)
			f, err := gguf.Parse(typ, quantized(t, base, typ, false))
			if err != nil {
				t.Fatal(err)
			}
			_, hasOutput := f.Tensor("output.weight")
			for i := range f.Tensors {
				ti := &f.Tensors[i]
				st, _ := src.Tensor(ti.Name)
				if st.Type != quant.F32 || !quantizable(ti.Name, ti.Dims) {
					continue
				}
				want := ft.Default
				switch {
				case ti.Name == "output.weight" || (ti.Name == "token_embd.weight" && !hasOutput):
					want = quant.Q6_K
				case strings.Contains(ti.Name, "attn_v.weight") && hp.nGQA >= 4:
					want = quant.Q5_K
				case strings.Contains(ti.Name, "ffn_down") && layerOf(ti.Name) < hp.nLayer/8:
					want = quant.Q5_K
				}
				if ti.Dims[0]%uint64(want.BlockElems()) != 0 {
					want = map[quant.Type]quant.Type{quant.IQ4_XS: quant.IQ4_NL, quant.Q6_K: quant.Q8_0, quant.Q5_K: quant.Q5_1}[want]
				}
				if ti.Type != want {
					t.Errorf("%s %s: %s is %v, want %v", base, typ, ti.Name, ti.Type, want)
				}
			}
		}
	}
}

// TestIQ4MixImatrix: llama_tensor_get_type for the IQ4 mixes on a
// 16-layer model with GQA 4: attn_v Q5_K; the first 16/8 = 2 ffn_down
// layers Q5_K without an imatrix and the default type with one.
func TestIQ4MixImatrix(t *testing.T) {
	for _, typ := range []string{"IQ4_NL", "IQ4_XS"} {
		ft := mustType(t, typ)
		for _, imat := range []bool{false, true} {
			c := &chooser{ft: ft, hp: hparams{arch: "llama", nLayer: 16, nGQA: 4, nExpert: 1}, hasOutput: true, hasImatrix: imat, nFFN: 16, nAttnV: 16}
			for l := range 4 {
				got, err := c.mixType(fmt.Sprintf("blk.%d.ffn_down.weight", l), 2048, ft.Default)
				if err != nil {
					t.Fatal(err)
				}
				want := ft.Default
				if l < 2 && !imat {
					want = quant.Q5_K
				}
				if got != want {
					t.Errorf("%s imatrix %v: blk.%d.ffn_down is %v, want %v", typ, imat, l, got, want)
				}
				if got, _ := c.mixType(fmt.Sprintf("blk.%d.attn_v.weight", l), 2048, ft.Default); got != quant.Q5_K {
					t.Errorf("%s: attn_v is %v, want Q5_K", typ, got)
				}
				if got, _ := c.mixType(fmt.Sprintf("blk.%d.ffn_up.weight", l), 2048, ft.Default); got != ft.Default {
					t.Errorf("%s: ffn_up is %v", typ, got)
				}
			}
			if got, _ := c.mixType("output.weight", 2048, ft.Default); got != quant.Q6_K {
				t.Errorf("%s: output is %v, want Q6_K", typ, got)
			}
		}
	}
	if nt, ok, err := fallback("x.weight", 96, quant.IQ4_XS); err != nil || !ok || nt != quant.IQ4_NL {
		t.Errorf("IQ4_XS fallback for 96 columns: %v %v %v", nt, ok, err)
	}
}
