//go:build unix

package kernel

import (
	"testing"

	"golang.org/x/sys/unix"
)

// guarded returns a slice of n bytes that ends exactly where an inaccessible
// page begins, so that a kernel reading or writing one byte past it faults.
func guarded(t testing.TB, n int) []byte {
	page := unix.Getpagesize()
	size := (n + page - 1) / page * page
	mem, err := unix.Mmap(-1, 0, size+page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mprotect(mem[size:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return mem[size-n : size : size]
}
