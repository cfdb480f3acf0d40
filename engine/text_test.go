package engine

import (
	"strings"
	"testing"
)

func TestTextStream(t *testing.T) {
	tests := []struct {
		name    string
		stops   []string
		pieces  []string
		emitted []string // what each push releases
		final   string
		stopAt  int // index of the push that reports the stop, -1 for none
	}{
		{"plain", nil, []string{"Hel", "lo", " world"}, []string{"Hel", "lo", " world"}, "Hello world", -1},
		{"utf8 split across tokens", nil, []string{"caf", "\xc3", "\xa9!"}, []string{"caf", "", "é!"}, "café!", -1},
		{"4-byte rune in 3 tokens", nil, []string{"\xf0\x9f", "\x98", "\x80x"}, []string{"", "", "😀x"}, "😀x", -1},
		{"stop inside one token", []string{"END"}, []string{"abcENDdef"}, []string{"abc"}, "abc", 0},
		{"stop across tokens", []string{"###"}, []string{"one #", "#", "# two"}, []string{"one ", "", ""}, "one ", 2},
		{"false alarm released", []string{"###"}, []string{"a #", "#b"}, []string{"a ", "##b"}, "a ##b", -1},
		{"earliest of two stops", []string{"yz", "b"}, []string{"abcxyz"}, []string{"a"}, "a", 0},
		{"stop at the very start", []string{"x"}, []string{"x1"}, []string{""}, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s textStream
			s.reset(tc.stops)
			got := []string{}
			stopAt := -1
			for i, p := range tc.pieces {
				out, stopped := s.push([]byte(p))
				got = append(got, string(out))
				if stopped && stopAt < 0 {
					stopAt = i
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.emitted, "|") {
				t.Errorf("emitted %q, want %q", got, tc.emitted)
			}
			if stopAt != tc.stopAt {
				t.Errorf("stop reported at push %d, want %d", stopAt, tc.stopAt)
			}
			all := strings.Join(got, "") + string(s.flush())
			if all != tc.final || s.String() != tc.final {
				t.Errorf("text %q / %q, want %q", all, s.String(), tc.final)
			}
		})
	}
}

func TestTextStreamReleasesHeldBytesOnFlush(t *testing.T) {
	var s textStream
	s.reset([]string{"STOP"})
	out, _ := s.push([]byte("abc ST"))
	if string(out) != "abc " {
		t.Fatalf("push released %q", out)
	}
	if rest := s.flush(); string(rest) != "ST" {
		t.Fatalf("flush released %q, want the held-back %q", rest, "ST")
	}
}

func TestTextStreamInvalidUTF8IsNotHeldForever(t *testing.T) {
	var s textStream
	s.reset(nil)
	// A lone continuation byte can never complete: release it at once.
	out, _ := s.push([]byte("a\x80"))
	if string(out) != "a\x80" {
		t.Fatalf("released %q", out)
	}
}
