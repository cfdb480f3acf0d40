package hugepage

import (
	"runtime"
	"testing"
	"unsafe"
)

func TestMap(t *testing.T) {
	if !Available() {
		if _, _, err := Map(1); err == nil && runtime.GOOS != "linux" {
			t.Error("Map works where Available is false")
		}
		t.Skip("no transparent huge pages here")
	}
	for _, n := range []int{1, Size - 1, Size, 3*Size + 5} {
		b, release, err := Map(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != n || cap(b) != n {
			t.Errorf("Map(%d): len %d cap %d", n, len(b), cap(b))
		}
		if p := uintptr(unsafe.Pointer(&b[0])); p%Size != 0 {
			t.Errorf("Map(%d) at %#x, not 2 MiB-aligned", n, p)
		}
		for i := range b {
			if b[i] != 0 {
				t.Fatalf("Map(%d): byte %d is %d", n, i, b[i])
			}
		}
		b[0], b[n-1] = 1, 2
		if err := release(); err != nil {
			t.Error(err)
		}
	}
}

// New falls back to Go memory below the threshold, and its buffers are
// usable and zeroed either way.
func TestNew(t *testing.T) {
	for _, c := range []struct{ n, min int }{{100, 1 << 30}, {100, 0}, {Size + 1, 0}, {0, 0}} {
		b := New(c.n, c.min)
		if len(b.Bytes) != c.n {
			t.Fatalf("New(%d, %d): %d bytes", c.n, c.min, len(b.Bytes))
		}
		for i := range b.Bytes {
			if b.Bytes[i] != 0 {
				t.Fatal("not zeroed")
			}
			b.Bytes[i] = byte(i)
		}
	}
	runtime.GC() // the cleanups unmap; nothing may fault afterwards
	runtime.GC()
}
