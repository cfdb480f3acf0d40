//go:build !unix

package kernel

import "testing"

// guarded returns n bytes with cap n (no fault on over-reads here).
func guarded(t testing.TB, n int) []byte { return make([]byte, n) }
