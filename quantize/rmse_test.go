package quantize

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slm-dev/slm/gguf"
)

// TestRMSETable measures the quantization error (RMSE of the dequantized
// weights against the F32 originals, over the quantized tensors) of slm's
// output and of llama.cpp's sibling files, and requires slm's to be no
// worse. `go test ./quantize -run RMSE -v` prints the table.
func TestRMSETable(t *testing.T) {
	rows := []struct{ typ, sib string }{
		{"F16", "f16"}, {"BF16", ""}, {"Q8_0", "q8_0"}, {"Q6_K", "q6_k"}, {"Q5_K", "q5_k"}, {"Q5_1", "q5_1"},
		{"Q5_0", "q5_0"}, {"Q4_K", "q4_k"}, {"Q4_1", "q4_1"}, {"Q4_0", "q4_0"}, {"Q3_K", "q3_k"}, {"Q2_K", "q2_k"},
		{"Q4_K_M", "q4_k_m"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| type | llama slm | llama llama.cpp | qwen2 slm | qwen2 llama.cpp | gpt2 slm | gpt2 llama.cpp |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		// the K types and the legacy ones are --pure, as their siblings;
		// Q4_K_M is the mix; F16/BF16 convert every 2-D weight.
		pure := r.typ != "Q4_K_M"
		fmt.Fprintf(&b, "| %s%s |", r.typ, map[bool]string{true: " (--pure)", false: ""}[pure && r.sib != "f16" && r.sib != ""])
		for _, base := range bases {
			src := openT(t, filepath.Join(models, base+"-f32.gguf"))
			data := quantized(t, base, r.typ, pure)
			ours, err := gguf.Parse("slm", data)
			if err != nil {
				t.Fatal(err)
			}
			e1, err := RMSE(src, ours)
			if err != nil {
				t.Fatal(err)
			}
			theirs := "—"
			if r.sib != "" {
				path := filepath.Join(models, base+"-"+r.sib+".gguf")
				if _, err := os.Stat(path); err == nil {
					e2, err := RMSE(src, openT(t, path))
					if err != nil {
						t.Fatal(err)
					}
					theirs = fmt.Sprintf("%.6e", e2)
					if e1 > e2 {
						t.Errorf("%s %s: RMSE %.6e worse than llama.cpp's %.6e", base, r.typ, e1, e2)
					}
				}
			}
			fmt.Fprintf(&b, " %.6e | %s |", e1, theirs)
		}
		b.WriteString("\n")
	}
	t.Log(b.String())
}
