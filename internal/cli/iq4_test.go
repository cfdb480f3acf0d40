package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestQuantizeIQ4EndToEnd: `slm quantize` of the F32 test models to IQ4_NL
// and IQ4_XS (mix and --pure, with a tensor override), `slm inspect` shows
// the types, `slm run` generates text from the files.
func TestQuantizeIQ4EndToEnd(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		base, typ string
		extra     []string
		want      []string // inspect lines
	}{
		{"llama", "IQ4_NL", nil, []string{"IQ4_NL", "Q6_K"}},
		{"qwen2", "iq4_xs", nil, []string{"IQ4_XS", "Q6_K"}},
		{"llama", "IQ4_XS", []string{"--pure"}, []string{"IQ4_XS"}},
		{"qwen2", "Q4_K_M", []string{"--tensor-type", "ffn_up=iq4_nl"}, []string{"IQ4_NL", "Q4_K"}},
	} {
		out := filepath.Join(dir, c.base+"-"+c.typ+".gguf")
		args := append([]string{"quantize"}, c.extra...)
		args = append(args, filepath.Join(testdata, "models", c.base+"-f32.gguf"), out, c.typ, "-t", "2")
		if code, _, errs := slm(t, "", args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		code, info, errs := slm(t, "", "inspect", out, "--no-tensors")
		if code != 0 {
			t.Fatalf("inspect %s: exit %d: %s", out, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(info, "  "+w+" ") {
				t.Errorf("inspect %s: no %s tensors in\n%s", out, w, info)
			}
		}
		code, text, errs := slm(t, "", "run", "-m", out, "-p", "Once upon a time", "-n", "12", "--temp", "0")
		if code != 0 {
			t.Fatalf("run %s: exit %d: %s", out, code, errs)
		}
		if text == "" {
			t.Errorf("run %s printed nothing", out)
		}
	}
	if code, _, errs := slm(t, "", "quantize", "--tensor-type", "ffn_up=iq4_zz", filepath.Join(testdata, "models", "llama-f32.gguf"), filepath.Join(dir, "x.gguf"), "Q4_0"); code == 0 || !strings.Contains(errs, "IQ4_NL") {
		t.Errorf("bad override type: exit %d, %q", code, errs)
	}
}
