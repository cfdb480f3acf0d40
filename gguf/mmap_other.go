//go:build !unix

package gguf

// mapFile reads the whole file where memory mapping is not available.
func mapFile(path string) ([]byte, func() error, error) { return readAll(path) }
