// Package progress draws a one-line progress bar on a terminal, and
// nothing at all when its output is not a terminal (a pipe, a file, a test
// buffer), so that logs stay clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar is a progress bar. Its methods are safe for concurrent use and cheap
// enough to call per chunk of work: it redraws at most ten times a second.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	total    int64
	done     int64
	bytes    bool // show sizes in MiB and a rate
	start    time.Time
	last     time.Time
	base     int64 // done at start (a resumed download)
	on       bool
	drawn    bool
	now      func() time.Time
	width    int
	finished bool
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// New returns a bar labelled label counting to total (0 if unknown). With
// bytes the counts are shown as sizes with a transfer rate. The bar draws
// only when w is a terminal.
func New(w io.Writer, label string, total int64, bytes bool) *Bar {
	return newBar(w, label, total, bytes, IsTerminal(w))
}

func newBar(w io.Writer, label string, total int64, bytes, on bool) *Bar {
	b := &Bar{w: w, label: label, total: total, bytes: bytes, on: on, now: time.Now, width: 30}
	b.start = b.now()
	return b
}

// SetBase records that n units were already done before this run (a
// resumed download), so the rate counts only new work.
func (b *Bar) SetBase(n int64) {
	b.mu.Lock()
	b.base, b.done = n, n
	b.mu.Unlock()
}

// Set records the amount done so far.
func (b *Bar) Set(done int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	b.maybeDraw(false)
}

// Add records n more units done.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.maybeDraw(false)
}

// Write counts len(p) bytes, so a Bar can sit in an io.MultiWriter or
// io.TeeReader.
func (b *Bar) Write(p []byte) (int, error) {
	b.Add(int64(len(p)))
	return len(p), nil
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	b.maybeDraw(true)
	if b.on && b.drawn {
		fmt.Fprintln(b.w)
	}
}

func (b *Bar) maybeDraw(force bool) {
	if !b.on || b.finished && !force {
		return
	}
	now := b.now()
	if !force && b.drawn && now.Sub(b.last) < 100*time.Millisecond {
		return
	}
	b.last, b.drawn = now, true
	fmt.Fprintf(b.w, "\r%s\x1b[K", b.line(now))
}

// line renders the bar's text.
func (b *Bar) line(now time.Time) string {
	var s strings.Builder
	s.WriteString(b.label)
	elapsed := now.Sub(b.start).Seconds()
	if b.total > 0 {
		frac := min(1, max(0, float64(b.done)/float64(b.total)))
		fill := int(frac * float64(b.width))
		s.WriteString(" [")
		s.WriteString(strings.Repeat("=", fill))
		if fill < b.width {
			s.WriteString(">")
			s.WriteString(strings.Repeat(" ", b.width-fill-1))
		}
		fmt.Fprintf(&s, "] %3.0f%%", frac*100)
	}
	if b.bytes {
		fmt.Fprintf(&s, " %s", Size(b.done))
		if b.total > 0 {
			fmt.Fprintf(&s, "/%s", Size(b.total))
		}
		if elapsed > 0.2 {
			rate := float64(b.done-b.base) / elapsed
			fmt.Fprintf(&s, " %s/s", Size(int64(rate)))
			if b.total > 0 && rate > 0 && b.done < b.total {
				fmt.Fprintf(&s, " ETA %s", (time.Duration(float64(b.total-b.done)/rate) * time.Second).Round(time.Second))
			}
		}
	}
	return s.String()
}

// Size formats a byte count with a binary unit.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// SetTotal changes the total (e.g. once it becomes known).
func (b *Bar) SetTotal(total int64) {
	b.mu.Lock()
	b.total = total
	b.mu.Unlock()
}
