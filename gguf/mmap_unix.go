//go:build unix

package gguf

import "golang.org/x/sys/unix"

// mapFile maps path read-only. Empty files and files that cannot be mapped
// fall back to a plain read.
func mapFile(path string) ([]byte, func() error, error) {
	fh, size, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	if size == 0 || int64(int(size)) != size {
		return readAll(path)
	}
	data, err := unix.Mmap(int(fh.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return readAll(path)
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
