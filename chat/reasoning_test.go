package chat

import (
	"math/rand/v2"
	"testing"
)

func TestSplitReasoning(t *testing.T) {
	cases := []struct {
		in    string
		start bool
		r, c  string
	}{
		{"<think>\nhmm\n</think>\n\nHello", false, "hmm", "Hello"},
		{"Hello <think>x</think>", false, "", "Hello <think>x</think>"},
		{"\n<think>a</think>b", false, "a", "b"},
		{"<think>unfinished", false, "unfinished", ""},
		{"plan\n</think>\n\nanswer", true, "plan", "answer"},
		{"<think>\n\n</think>\n\nno thoughts", false, "", "no thoughts"},
		{"<thin", false, "", "<thin"},
		{"", false, "", ""},
		{"a < b </thi c</think>d", true, "a < b </thi c", "d"},
	}
	for _, tc := range cases {
		r, c := SplitReasoning(tc.in, tc.start)
		if r != tc.r || c != tc.c {
			t.Errorf("%q: got (%q, %q) want (%q, %q)", tc.in, r, c, tc.r, tc.c)
		}
		// Streaming in random pieces gives the same result.
		rng := rand.New(rand.NewPCG(1, uint64(len(tc.in))))
		for trial := 0; trial < 50; trial++ {
			s := NewReasoningSplitter(tc.start)
			var rr, cc string
			for rest := tc.in; len(rest) > 0; {
				n := 1 + rng.IntN(len(rest))
				a, b := s.Push(rest[:n])
				rr, cc = rr+a, cc+b
				rest = rest[n:]
			}
			a, b := s.Flush()
			rr, cc = rr+a, cc+b
			if rr != tc.r || cc != tc.c {
				t.Fatalf("%q streamed: got (%q, %q) want (%q, %q)", tc.in, rr, cc, tc.r, tc.c)
			}
		}
	}
}

func TestDetectAndStops(t *testing.T) {
	for _, tm := range loadRef(t) {
		want := map[string]Family{"qwen3": FamilyChatML, "llama3": FamilyLlama3, "llama3-legacy-template": FamilyLlama3, "gemma3": FamilyGemma, "phi-3": FamilyPhi3}[tm.Family]
		if got := Detect(tm.Template); got != want {
			t.Errorf("%s: %q want %q", tm.Family, got, want)
		}
		if len(StopStrings(want)) == 0 || len(EndOfTurnTokens(want)) == 0 {
			t.Errorf("%s: no stops", tm.Family)
		}
	}
	if Detect(FallbackTemplate) != FamilyChatML {
		t.Error("fallback is not chatml")
	}
}

func TestPromptHelpers(t *testing.T) {
	if !PromptEndsInReasoning("<|im_start|>assistant\n<think>\n") || PromptEndsInReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n") || PromptEndsInReasoning("hi") {
		t.Error("PromptEndsInReasoning")
	}
	var qwen string
	for _, tm := range loadRef(t) {
		if tm.Family == "qwen3" {
			qwen = tm.Template
		}
	}
	if !SupportsThinkingSwitch(qwen) || SupportsThinkingSwitch(FallbackTemplate) {
		t.Error("SupportsThinkingSwitch")
	}
	tm, err := ForModel("")
	if err != nil || tm.Source() != FallbackTemplate {
		t.Fatal("ForModel fallback", err)
	}
}
