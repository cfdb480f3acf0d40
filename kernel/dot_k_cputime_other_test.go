//go:build !linux

package kernel

import "time"

// threadCPUTime is unavailable here.
func threadCPUTime() time.Duration { return -1 }
