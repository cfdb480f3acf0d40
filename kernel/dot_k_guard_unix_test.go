//go:build unix

package kernel

import (
	"os"

	"golang.org/x/sys/unix"
)

// guardedCopy copies b into fresh pages next to an inaccessible page: right
// before it (end true) or right after it, so that reading or writing past
// the slice's end (or before its start) faults. free unmaps the copy.
func guardedCopy(b []byte, end bool) (c []byte, free func()) {
	if len(b) == 0 {
		return b[:0:0], func() {}
	}
	page := os.Getpagesize()
	data := (len(b) + page - 1) / page * page
	m, err := unix.Mmap(-1, 0, data+page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		panic(err)
	}
	var guard []byte
	if end {
		guard = m[data:]
		c = m[data-len(b) : data : data]
	} else {
		guard = m[:page]
		c = m[page : page+len(b) : page+len(b)]
	}
	if err := unix.Mprotect(guard, unix.PROT_NONE); err != nil {
		panic(err)
	}
	copy(c, b)
	return c, func() { unix.Munmap(m) }
}
