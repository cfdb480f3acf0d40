package gguf

import (
	"bytes"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

const hugePage = 2 << 20

// hugePagesAvailable reports whether transparent huge pages can back an
// madvise(MADV_HUGEPAGE) region ("always" or "madvise" mode).
func hugePagesAvailable() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && (bytes.Contains(b, []byte("[always]")) || bytes.Contains(b, []byte("[madvise]")))
}

// readHuge reads the file at path into a 2 MiB-aligned anonymous mapping
// marked MADV_HUGEPAGE. It returns nil data (and no error) for a file
// smaller than min bytes.
func readHuge(path string, min int64) ([]byte, func() error, error) {
	fh, size, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	if size < min || size == 0 || int64(int(size)) != size {
		return nil, nil, nil
	}
	n := (int(size) + hugePage - 1) &^ (hugePage - 1)
	mem, err := unix.Mmap(-1, 0, n+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, errReadHuge(size, err)
	}
	off := -int(uintptr(unsafe.Pointer(&mem[0]))) & (hugePage - 1)
	region := mem[off : off+n]
	if err := unix.Madvise(region, unix.MADV_HUGEPAGE); err != nil {
		unix.Munmap(mem)
		return nil, nil, errReadHuge(size, err)
	}
	data := region[:size:size]
	if _, err := io.ReadFull(fh, data); err != nil {
		unix.Munmap(mem)
		return nil, nil, errReadHuge(size, err)
	}
	return data, func() error { return unix.Munmap(mem) }, nil
}
