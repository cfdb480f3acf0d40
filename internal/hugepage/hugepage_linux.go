package hugepage

import (
	"bytes"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Available reports whether transparent huge pages can back an
// madvise(MADV_HUGEPAGE) region: THP mode "always" or "madvise".
var Available = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && (bytes.Contains(b, []byte("[always]")) || bytes.Contains(b, []byte("[madvise]")))
})

// Map returns n zero bytes of anonymous memory, 2 MiB-aligned and marked
// MADV_HUGEPAGE, and the function that unmaps it.
func Map(n int) ([]byte, func() error, error) {
	size := (n + Size - 1) &^ (Size - 1)
	mem, err := unix.Mmap(-1, 0, size+Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	off := -int(uintptr(unsafe.Pointer(&mem[0]))) & (Size - 1)
	if err := unix.Madvise(mem[off:off+size], unix.MADV_HUGEPAGE); err != nil {
		unix.Munmap(mem)
		return nil, nil, err
	}
	return mem[off : off+n : off+n], func() error { return unix.Munmap(mem) }, nil
}
