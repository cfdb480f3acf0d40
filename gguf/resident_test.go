package gguf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slm-dev/slm/internal/hugepage"
)

// OpenResident gives the same file as Open, whether it copies the data into
// huge-page memory (where the system has transparent huge pages) or maps
// it; SLM_MMAP=1 and files below the size threshold map.
func TestOpenResident(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, sampleFile(t), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()

	defer func(m int64) { residentMin = m }(residentMin)
	residentMin = 0
	for _, env := range []string{"", "1"} {
		t.Setenv("SLM_MMAP", env)
		f, err := OpenResident(path)
		if err != nil {
			t.Fatal(err)
		}
		if d := sameContent(f, want); d != "" {
			t.Errorf("SLM_MMAP=%q: %s", env, d)
		}
		if wantResident := env == "" && hugepage.Available(); f.Resident() != wantResident {
			t.Errorf("SLM_MMAP=%q: Resident() = %v, want %v", env, f.Resident(), wantResident)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}

	residentMin = 1 << 40
	t.Setenv("SLM_MMAP", "")
	f, err := OpenResident(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Resident() {
		t.Error("a file below the threshold was copied")
	}
	f.Close()

	// A corrupt file is an error either way, and nothing leaks.
	residentMin = 0
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	os.WriteFile(bad, sampleFile(t)[:100], 0o644)
	if _, err := OpenResident(bad); err == nil {
		t.Error("truncated file opened")
	}
	if _, err := OpenResident(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Error("missing file opened")
	}
}
