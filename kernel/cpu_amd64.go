//go:build !purego && !noasm

package kernel

import "golang.org/x/sys/cpu"

// The amd64 tiers. AVX2 kernels also use FMA (vfmadd) and F16C (vcvtph2ps);
// the AVX-512 tiers need F, BW and VL (byte/word ops on 256- and 512-bit
// registers), VNNI adds vpdpbusd. x/sys/cpu honours GODEBUG, so
// GODEBUG=cpu.all=off (or cpu.avx2=off) turns these tiers off too.
func init() {
	hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
	hasAVX512VNNI = hasAVX512 && cpu.X86.HasAVX512VNNI
}
