//go:build !purego && !noasm

package kernel

import "github.com/slm-dev/slm/quant"

//go:noescape
func quantQ8Blocks(x *float32, dst *byte, nb int, q81 bool) int

//go:noescape
func actF16Groups(x *float32, dst *byte, groups int)

//go:noescape
func actBF16Groups(x *float32, dst *byte, groups int)

//go:noescape
func quantQ8KBlocks(x *float32, dst *byte, nb int) int

func init() {
	registerAct(quant.Q8_0, TierNEON, actQ8_0NEON)
	registerAct(quant.Q8_1, TierNEON, actQ8_1NEON)
	registerAct(quant.Q8_K, TierNEON, actQ8_KNEON)
	registerAct(quant.F16, TierNEON, actF16NEON)
	registerAct(quant.BF16, TierNEON, actBF16NEON)
}

// actF16NEON is actF16Generic, 8 at a time in assembly.
func actF16NEON(x []float32, dst []byte) {
	dst = dst[:2*len(x)]
	m := len(x) &^ 7
	if m > 0 {
		actF16Groups(&x[0], &dst[0], m/8)
	}
	actF16Generic(x[m:], dst[2*m:])
}

// actBF16NEON is actBF16Generic, 8 at a time in assembly.
func actBF16NEON(x []float32, dst []byte) {
	dst = dst[:2*len(x)]
	m := len(x) &^ 7
	if m > 0 {
		actBF16Groups(&x[0], &dst[0], m/8)
	}
	actBF16Generic(x[m:], dst[2*m:])
}

// actQ8_KNEON is quant.QuantizeQ8_K with whole blocks in assembly; the
// blocks it declines (see quantQ8KBlocks) go to the generic code.
func actQ8_KNEON(x []float32, dst []byte) {
	nb := len(x) / 256
	if len(x)%256 != 0 || len(dst) < nb*292 {
		quant.QuantizeQ8_K(x, dst) // panics
		return
	}
	for i := 0; i < nb; {
		i += quantQ8KBlocks(&x[256*i], &dst[292*i], nb-i)
		if i < nb {
			quant.QuantizeQ8_K(x[256*i:256*i+256], dst[292*i:292*i+292])
			i++
		}
	}
}

func actQ8_0NEON(x []float32, dst []byte) { actQ8NEON(x, dst, 34, false, quant.QuantizeQ8_0) }
func actQ8_1NEON(x []float32, dst []byte) { actQ8NEON(x, dst, 36, true, quant.QuantizeQ8_1) }

// actQ8NEON quantizes whole blocks in assembly; a block with an infinity or
// NaN, and any invalid size (for its panic), goes to the generic quantizer.
func actQ8NEON(x []float32, dst []byte, bs int, q81 bool, generic func([]float32, []byte)) {
	nb := len(x) / 32
	if len(x)%32 != 0 || len(dst) < nb*bs {
		generic(x, dst)
		return
	}
	for i := 0; i < nb; {
		i += quantQ8Blocks(&x[32*i], &dst[bs*i], nb-i, q81)
		if i < nb {
			generic(x[32*i:32*i+32], dst[bs*i:bs*i+bs])
			i++
		}
	}
}
