package kernel

import "math"

// The exponential behind SiLU and softmax, defined here in float32 steps so
// that SIMD kernels can compute exactly the same bits eight or sixteen lanes
// at a time (math.Exp in float64 is correctly rounded but cannot be
// vectorised bit for bit, and was a tenth of prefill time).
//
// expf(x) = 2ⁿ · e^r with n = round(x·log₂e) and r = x − n·ln 2 (|r| ≤ ln2/2):
// n·ln 2 is subtracted in two parts, the first with few mantissa bits so that
// n·expC1 and x − n·expC1 are exact (Cody and Waite); e^r is 1 + r + r²·p(r)
// with p a degree-5 polynomial fitted to (e^r − 1 − r)/r² (the Cephes expf
// coefficients); 2ⁿ is applied as 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), two exact scalings
// that keep each factor a normal float32 for n from −150 to 128, so results
// near overflow and in the subnormal range need no special path. Every
// product and sum is rounded to float32 on its own (no fused multiply-add):
// within 2 ulp of e^x for normal results (TestExpfAccuracy).
const (
	expLog2e = float32(1.44269504088896341)
	expC1    = float32(0.693359375)       // ln 2 to 9 bits
	expC2    = float32(-2.12194440e-4)    // ln 2 − expC1
	expHi    = float32(88.72283935546875) // above: +Inf (e^x overflows float32)
	expLo    = float32(-104)              // below: 0 (e^x underflows float32)
	expP0    = float32(5.0000001201e-1)
	expP1    = float32(1.6666665459e-1)
	expP2    = float32(4.1665795894e-2)
	expP3    = float32(8.3334519073e-3)
	expP4    = float32(1.3981999507e-3)
	expP5    = float32(1.9875691500e-4)
)

// expf is e^x in float32: the specification of every SIMD exponential.
// NaN gives NaN, +Inf gives +Inf, -Inf gives 0.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > expHi:
		return float32(math.Inf(1))
	case x < expLo:
		return 0
	}
	n := float32(math.RoundToEven(float64(float32(x * expLog2e))))
	r := x - float32(n*expC1)
	r -= float32(n * expC2)
	p := float32(expP5*r) + expP4
	p = float32(p*r) + expP3
	p = float32(p*r) + expP2
	p = float32(p*r) + expP1
	p = float32(p*r) + expP0
	y := float32(p*float32(r*r)) + r
	y += 1
	k := int32(n)
	k1 := k >> 1
	y *= math.Float32frombits(uint32(k1+127) << 23)
	y *= math.Float32frombits(uint32(k-k1+127) << 23)
	return y
}

// SiLU replaces each x by x·σ(x) = x / (1 + e^-x).
func SiLU(x []float32) {
	for i, v := range x {
		x[i] = v / (1 + expf(-v))
	}
}

// SiLUMul is the gated unit of a SwiGLU MLP: gate[i] = silu(gate[i]) * up[i],
// rounded after the SiLU as ggml does (two separate ops).
func SiLUMul(gate, up []float32) {
	up = up[:len(gate)]
	m := 0
	if k := vecKernels(); k.siluMul != nil {
		m = len(gate) &^ 7
		if m > 0 {
			k.siluMul(gate[:m], up[:m])
		}
	}
	siluMulGeneric(gate[m:], up[m:])
}

func siluMulGeneric(gate, up []float32) {
	up = up[:len(gate)]
	for i, v := range gate {
		s := v / (1 + expf(-v))
		gate[i] = s * up[i]
	}
}

// Softmax replaces x by exp(x - max) / sum and applies 1/sum as one float32
// factor, as ggml does. The sum is kept in float64 and, like ggml's SIMD
// softmax, takes each group of eight exponentials as one float32 sum
// (expSumGeneric gives the order). Entries of -Inf become 0; a NaN anywhere
// makes every entry NaN.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	k := vecKernels()
	m := 0
	if k.expSum != nil {
		m = len(x) &^ 7
	}
	mx := float32(math.Inf(-1))
	if m > 0 {
		mx = k.max(x[:m])
	}
	for _, v := range x[m:] {
		if v > mx {
			mx = v
		}
	}
	var sum float64
	if m > 0 {
		sum = k.expSum(x[:m], mx)
	}
	sum = expSumGeneric(x[m:], mx, sum)
	scale(k, x, float32(1/sum))
}

// maxGeneric is the largest of x (-Inf for none), NaNs passed over. The SIMD
// versions may return a NaN instead, or the other zero of a ±0 tie: neither
// changes what Softmax computes from it (a NaN makes the sum NaN either way;
// x - (+0) and x - (-0) have the same exponential).
func maxGeneric(x []float32) float32 {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		if v > mx {
			mx = v
		}
	}
	return mx
}

// Scale multiplies y by a: y[i] *= a.
func Scale(y []float32, a float32) { scale(vecKernels(), y, a) }

func scale(k vecFns, y []float32, a float32) {
	m := 0
	if k.scale != nil {
		m = len(y) &^ 7
		if m > 0 {
			k.scale(y[:m], a)
		}
	}
	for i := m; i < len(y); i++ {
		y[i] *= a
	}
}

// expSumGeneric replaces x[i] by expf(x[i] - mx) and returns sum plus their
// total: each whole group of eight as the float32 tree
// ((e0+e4)+(e2+e6)) + ((e1+e5)+(e3+e7)) added in float64, then the rest one
// by one in float64.
func expSumGeneric(x []float32, mx float32, sum float64) float64 {
	i := 0
	for ; i+8 <= len(x); i += 8 {
		e := x[i : i+8 : i+8]
		for j := range e {
			e[j] = expf(e[j] - mx)
		}
		s := float32(float32(e[0]+e[4])+float32(e[2]+e[6])) + float32(float32(e[1]+e[5])+float32(e[3]+e[7]))
		sum += float64(s)
	}
	for ; i < len(x); i++ {
		e := expf(x[i] - mx)
		x[i] = e
		sum += float64(e)
	}
	return sum
}

// vecFns are the SIMD versions of the elementwise kernels above for one
// tier; each takes whole groups of eight (len%8 == 0) and equals the generic
// code bit for bit.
type vecFns struct {
	siluMul func(gate, up []float32)
	expSum  func(x []float32, mx float32) float64 // expSumGeneric with sum 0
	max     func(x []float32) float32             // maxGeneric, see there for NaN and ±0
	scale   func(y []float32, a float32)          // y[i] *= a
}

var vecImpls []impl[vecFns]

// registerVec adds a tier's elementwise kernels (from init).
func registerVec(tier Tier, fns vecFns) {
	vecImpls = append(vecImpls, impl[vecFns]{tier, fns})
	sortImpls(vecImpls)
}

// vecKernels returns the best tier's elementwise kernels; the zero vecFns
// (nil functions) means generic.
func vecKernels() vecFns {
	k, _ := pick(vecImpls)
	return k
}
