//go:build !purego && !noasm

package kernel

//go:noescape
func siluMulNEON(gate, up *float32, n int)

//go:noescape
func expSumNEON(x *float32, n int, mx float32) float64

//go:noescape
func maxNEON(x *float32, n int) float32

//go:noescape
func scaleNEON(y *float32, n int, a float32)

func init() {
	registerVec(TierNEON, vecFns{
		siluMul: func(gate, up []float32) {
			up = up[:len(gate)]
			siluMulNEON(&gate[0], &up[0], len(gate))
		},
		expSum: func(x []float32, mx float32) float64 { return expSumNEON(&x[0], len(x), mx) },
		max:    func(x []float32) float32 { return maxNEON(&x[0], len(x)) },
		scale:  func(y []float32, a float32) { scaleNEON(&y[0], len(y), a) },
	})
}
