package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadAll exercises the fallback used where files cannot be mapped.
func TestReadAll(t *testing.T) {
	sample := sampleFile(t)
	path := writeTemp(t, "sample.gguf", sample)
	data, release, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, sample) {
		t.Fatal("readAll returned other bytes")
	}
	f, err := Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameContent(f, m); d != "" {
		t.Errorf("read and mapped files differ: %s", d)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
	if err := release(); err != nil {
		t.Error(err)
	}

	empty := writeTemp(t, "empty.gguf", nil)
	if data, _, err := readAll(empty); err != nil || len(data) != 0 {
		t.Errorf("empty file: %d bytes, %v", len(data), err)
	}
	if _, _, err := readAll(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, _, err := readAll(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.gguf")
	dir := t.TempDir()
	empty := writeTemp(t, "empty.gguf", nil)
	bad := writeTemp(t, "bad.gguf", []byte("GGUF\x01\x00\x00\x00"))
	cut := writeTemp(t, "cut.gguf", sampleFile(t)[:300])
	for _, c := range []struct{ path, want string }{
		{missing, "no such file"},
		{dir, "not a regular file"},
		{empty, "not a GGUF file"},
		{bad, "unsupported GGUF version 1"},
		{cut, "truncated"},
	} {
		_, err := Open(c.path)
		if err == nil || !strings.HasPrefix(err.Error(), "gguf "+c.path+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s): %v, want %q", c.path, err, c.want)
		}
	}
}

func TestClose(t *testing.T) {
	sample := sampleFile(t)
	path := writeTemp(t, "close-test.gguf", sample)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mapped := func() bool {
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			return false
		}
		return bytes.Contains(maps, []byte(path))
	}
	checkMaps := runtime.GOOS == "linux" && mapped()
	if runtime.GOOS == "linux" && !checkMaps {
		t.Log("file does not show as mapped; not checking the unmap")
	}
	ti, _ := f.Tensor("last")
	if !bytes.Equal(f.Data(ti), pattern(32, 5)) {
		t.Error("data differ")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.Bytes() != nil {
		t.Error("Bytes still set after Close")
	}
	if checkMaps && mapped() {
		t.Error("file still mapped after Close")
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Metadata outlive the mapping: strings are copies.
	if s, ok := f.String("str"); !ok || s != "héllo\x00world" {
		t.Errorf("str = %q after Close", s)
	}
	if a, ok := f.Strings("a.str"); !ok || strings.Join(a, ",") != "a,,ccc" {
		t.Errorf("a.str = %q after Close", a)
	}
	// Files from Parse have nothing to release.
	p, err := Parse("mem", sample)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
}

// BenchmarkOpen opens (maps and parses) the largest shipped file.
func BenchmarkOpen(b *testing.B) {
	var path string
	var size int64
	for _, p := range testFiles(b) {
		if st, err := os.Stat(p); err == nil && st.Size() > size {
			path, size = p, st.Size()
		}
	}
	f, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	header, nkv, nt := f.DataOffset, len(f.KVs), len(f.Tensors)
	f.Close()
	b.Logf("%s: %d bytes, header %d bytes, %d KVs, %d tensors", filepath.Base(path), size, header, nkv, nt)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	b.ReportMetric(float64(header)*float64(b.N)/b.Elapsed().Seconds()/1e6, "header-MB/s")
}
