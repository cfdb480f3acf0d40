//go:build !purego && !noasm

package kernel

import "golang.org/x/sys/cpu"

// The arm64 tiers: NEON (ASIMD, in every ARMv8-A core), dotprod (SDOT,
// ARMv8.2 optional, ARMv8.4 mandatory) and i8mm (SMMLA, ARMv8.6).
func init() {
	hasNEON = cpu.ARM64.HasASIMD
	hasDotProd = hasNEON && cpu.ARM64.HasASIMDDP
	hasI8MM = hasDotProd && cpu.ARM64.HasI8MM
}
