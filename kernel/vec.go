package kernel

// Dot is the inner product of x and y[:len(x)], summed in float32 with eight
// independent accumulators (the lanes of one AVX register in ggml's SIMD dot).
func Dot(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i <= len(x)-8; i += 8 {
		a := x[i : i+8 : i+8]
		b := y[i : i+8 : i+8]
		s0 += a[0] * b[0]
		s1 += a[1] * b[1]
		s2 += a[2] * b[2]
		s3 += a[3] * b[3]
		s4 += a[4] * b[4]
		s5 += a[5] * b[5]
		s6 += a[6] * b[6]
		s7 += a[7] * b[7]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// Axpy adds a*x to y: y[i] += a*x[i] for i < len(y).
func Axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	i := 0
	for ; i <= len(y)-4; i += 4 {
		ys := y[i : i+4 : i+4]
		xs := x[i : i+4 : i+4]
		ys[0] += a * xs[0]
		ys[1] += a * xs[1]
		ys[2] += a * xs[2]
		ys[3] += a * xs[3]
	}
	for ; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// Add adds x to y elementwise: y[i] += x[i] for i < len(y).
func Add(y, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += x[i]
	}
}

// Mul multiplies y by x elementwise: y[i] *= x[i] for i < len(y).
func Mul(y, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] *= x[i]
	}
}
