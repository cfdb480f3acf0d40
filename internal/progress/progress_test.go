package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestQuietWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", 100, true)
	b.Add(50)
	b.Set(100)
	b.Finish()
	if buf.Len() != 0 {
		t.Fatalf("drew %q on a non-terminal", buf.String())
	}
}

func TestDraws(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf, "model.gguf", 4<<20, true, true)
	now := b.start
	b.now = func() time.Time { return now }
	now = now.Add(time.Second)
	b.Set(1 << 20)
	now = now.Add(50 * time.Millisecond)
	b.Set(2 << 20) // throttled
	now = now.Add(time.Second)
	b.Set(4 << 20)
	b.Finish()
	out := buf.String()
	if n := strings.Count(out, "\r"); n != 3 {
		t.Errorf("%d redraws, want 3: %q", n, out)
	}
	for _, want := range []string{"model.gguf [", " 25%", "1.0 MiB/4.0 MiB", "1.0 MiB/s", "ETA 3s", "100%"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q: %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Error("Finish did not end the line")
	}
}
