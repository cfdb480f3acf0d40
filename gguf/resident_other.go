//go:build !linux

package gguf

func hugePagesAvailable() bool { return false }

func readHuge(string, int64) ([]byte, func() error, error) { return nil, nil, nil }
