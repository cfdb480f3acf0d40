package kernel

import "math"

// RMSNorm writes x / sqrt(mean(x²) + eps) * w into dst (all of length
// len(x); dst may be x). As in ggml, the squares are float32 products summed
// in float64, the scale is float32, and the weight multiplies the scaled
// value (two roundings). A nil w means no weight.
func RMSNorm(dst, x, w []float32, eps float32) {
	dst = dst[:len(x)]
	var sum float64
	for _, v := range x {
		sum += float64(v * v)
	}
	mean := float32(sum / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	if w == nil {
		for i, v := range x {
			dst[i] = v * scale
		}
		return
	}
	w = w[:len(x)]
	for i, v := range x {
		dst[i] = float32(v*scale) * w[i]
	}
}

// LayerNorm writes (x - mean(x)) / sqrt(var(x) + eps) * w + b into dst (dst
// may be x). Means and variance are summed in float64 as in ggml; w and b
// may be nil.
func LayerNorm(dst, x, w, b []float32, eps float32) {
	dst = dst[:len(x)]
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := float32(sum / float64(len(x)))
	var sum2 float64
	for i, v := range x {
		d := v - mean
		dst[i] = d
		sum2 += float64(d * d)
	}
	variance := float32(sum2 / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(variance+eps)))
	for i := range dst {
		dst[i] *= scale
	}
	if w != nil {
		Mul(dst, w)
	}
	if b != nil {
		Add(dst, b)
	}
}
