// Package hugepage gives memory backed by 2 MiB transparent huge pages,
// for the model weights that every decoded token streams through: on
// 4 KiB pages each 4 KiB of weights costs a TLB miss (on a virtual machine,
// a nested page walk), which took a third of decode time on this project's
// machine. Linux only; elsewhere, or when the kernel's transparent huge
// pages are off, Available is false and callers use ordinary memory.
package hugepage

import "runtime"

// Size is the huge page size the allocations are aligned to.
const Size = 2 << 20

// Buffer is memory from Map that is unmapped when the Buffer becomes
// unreachable: the owner of slices of Bytes that live as long as some Go
// object (a repacked weight matrix) without an explicit Close. Whoever
// keeps a slice of Bytes must keep the Buffer reachable too.
type Buffer struct {
	Bytes []byte
}

// New returns a Buffer of n zero bytes in huge pages where they are
// available, else (or for n below minBytes) ordinary Go memory.
func New(n, minBytes int) *Buffer {
	if n >= minBytes && n > 0 && Available() {
		if b, release, err := Map(n); err == nil {
			buf := &Buffer{Bytes: b}
			runtime.AddCleanup(buf, func(release func() error) { release() }, release)
			return buf
		}
	}
	return &Buffer{Bytes: make([]byte, n)}
}
