package gguf

import (
	"io"

	"github.com/slm-dev/slm/internal/hugepage"
)

// readHuge reads the file at path into huge-page memory. It returns nil
// data (and no error) for a file smaller than min bytes.
func readHuge(path string, min int64) ([]byte, func() error, error) {
	fh, size, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	if size < min || size == 0 || int64(int(size)) != size {
		return nil, nil, nil
	}
	data, release, err := hugepage.Map(int(size))
	if err != nil {
		return nil, nil, errReadHuge(size, err)
	}
	if _, err := io.ReadFull(fh, data); err != nil {
		release()
		return nil, nil, errReadHuge(size, err)
	}
	return data, release, nil
}
