//go:build !purego && !noasm

package kernel

//go:noescape
func siluMulAVX2(gate, up *float32, n int)

//go:noescape
func expSumAVX2(x *float32, n int, mx float32) float64

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func scaleAVX2(y *float32, n int, a float32)

func init() {
	registerVec(TierAVX2, vecFns{
		siluMul: func(gate, up []float32) {
			up = up[:len(gate)]
			siluMulAVX2(&gate[0], &up[0], len(gate))
		},
		expSum: func(x []float32, mx float32) float64 { return expSumAVX2(&x[0], len(x), mx) },
		max:    func(x []float32) float32 { return maxAVX2(&x[0], len(x)) },
		scale:  func(y []float32, a float32) { scaleAVX2(&y[0], len(y), a) },
	})
}
