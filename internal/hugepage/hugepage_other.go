//go:build !linux

package hugepage

import "errors"

// Available is false: huge pages are used on Linux only.
func Available() bool { return false }

// Map is unavailable here.
func Map(int) ([]byte, func() error, error) {
	return nil, nil, errors.New("hugepage: not supported on this system")
}
