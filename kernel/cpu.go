package kernel

// cpuHas reports whether this CPU (and this build) can run a tier's code.
// The per-architecture files set the feature booleans once at init; with
// -tags purego (or noasm) none is set and only generic kernels run.
func cpuHas(t Tier) bool {
	switch t {
	case TierGeneric:
		return true
	case TierAVX2:
		return hasAVX2
	case TierAVX512:
		return hasAVX512
	case TierAVX512VNNI:
		return hasAVX512VNNI
	case TierNEON:
		return hasNEON
	case TierDotProd:
		return hasDotProd
	case TierI8MM:
		return hasI8MM
	}
	return false
}

var hasAVX2, hasAVX512, hasAVX512VNNI, hasNEON, hasDotProd, hasI8MM bool
