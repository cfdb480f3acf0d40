package chat

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ardanlabs/jinja"
)

// TestRealWorldTemplates renders real models' templates through the sandbox
// and directly with the engine: the outputs must be identical (the rewrite
// changes nothing), and none may be refused (Kimi-K3 needs Relaxed: it does
// integer arithmetic with "*").
func TestRealWorldTemplates(t *testing.T) {
	// The engine's module ships 17 real models' templates as test data.
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/ardanlabs/jinja").Output()
	if err != nil {
		t.Skipf("cannot locate the jinja module: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(dir)), "testdata", "templates", "*.jinja"))
	if len(files) == 0 {
		t.Skip("no templates in the jinja module")
	}
	tools := json.RawMessage(`[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`)
	msgs := []Message{
		{Role: "system", Content: "Be brief."},
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", Content: "", ToolCalls: []ToolCall{{ID: "call1", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}}},
		{Role: "tool", Content: `{"temp": 21}`, ToolCallID: "call1", Name: "get_weather"},
		{Role: "assistant", Content: "It is 21."},
		{Role: "user", Content: "Thanks"},
	}
	for _, f := range files {
		src, _ := os.ReadFile(f)
		name := filepath.Base(f)
		tm, err := Compile(string(src))
		if name == "Kimi-K3.jinja" {
			if err == nil {
				t.Errorf("Kimi-K3 compiled in strict mode")
			}
			tm, err = CompileLimits(string(src), Limits{Relaxed: true})
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, withTools := range []bool{false, true} {
			opts := Options{AddGenerationPrompt: true, BOSToken: "<s>", EOSToken: "</s>"}
			if withTools {
				opts.Tools = tools
			}
			got, err := tm.Render(context.Background(), msgs, opts)
			// Plain engine, same data.
			b := &budget{ctx: context.Background(), lim: DefaultLimits, inputLeft: 1 << 30}
			data, _ := b.data(msgs, opts)
			plain, perr := jinja.Compile(string(src))
			var want string
			if perr == nil {
				want, perr = plain.RenderValues(data)
			}
			if (err != nil) != (perr != nil) || got != want {
				t.Errorf("%s tools=%v: sandbox (%d bytes, %v) != plain (%d bytes, %v)", name, withTools, len(got), err, len(want), perr)
				continue
			}
			t.Logf("%s tools=%v: %d bytes, err=%v", name, withTools, len(got), err)
		}
	}
}
