package kernel

import "math"

// Rope describes a rotary position embedding as ggml's rope_ext applies it.
//
// For pair i of a head (i < Dims/2) at position p the angle is
//
//	θᵢ = p · base^(-2i/Dims) / freqFactorᵢ, scaled by FreqScale,
//
// where base^(-2i/Dims) is built, like ggml, by multiplying a float32 theta
// by theta_scale = base^(-2/Dims) once per pair. With YaRN (ExtFactor != 0)
// the interpolated and extrapolated angles are mixed by a ramp over the pair
// index and cos/sin are scaled by AttnFactor·(1 + 0.1·ln(1/FreqScale)).
type Rope struct {
	Dims        int       // rotated dimensions at the start of each head (n_rot); even
	Neox        bool      // pairs (i, i+Dims/2) (GPT-NeoX, Qwen) instead of (2i, 2i+1) (LLaMA)
	Base        float32   // theta base (rope.freq_base)
	FreqScale   float32   // position scale: 1/factor for linear and YaRN scaling; 0 means 1
	FreqFactors []float32 // optional per-pair divisors of θ (Llama 3 rope_freqs), Dims/2 values
	ExtFactor   float32   // YaRN extrapolation mix: 1 with YaRN, 0 otherwise
	AttnFactor  float32   // magnitude scale of cos/sin; 0 means 1
	BetaFast    float32   // YaRN ramp bounds, in rotations (32 and 1 by default)
	BetaSlow    float32
	OrigCtx     int // context length the model was trained with (YaRN corrections)
}

// yarnCorrDim is the pair index whose wavelength fits nRot rotations into
// nCtx positions (ggml_rope_yarn_corr_dim).
func yarnCorrDim(nDims, nCtx int, nRot, base float32) float32 {
	return float32(nDims) * logf(float32(nCtx)/(nRot*2*math.Pi)) / (2 * logf(base))
}

func logf(x float32) float32 { return float32(math.Log(float64(x))) }

// Angles writes the rotation for position pos into cs[0:Dims]:
// cs[2i] = cos θᵢ and cs[2i+1] = sin θᵢ (times the magnitude scale).
func (r *Rope) Angles(cs []float32, pos int) {
	cs = cs[:r.Dims]
	thetaScale := float32(math.Pow(float64(r.Base), float64(float32(-2)/float32(r.Dims))))
	freqScale := r.FreqScale
	if freqScale == 0 {
		freqScale = 1
	}
	mscale := r.AttnFactor
	if mscale == 0 {
		mscale = 1
	}
	var low, high float32
	if r.ExtFactor != 0 {
		low = float32(math.Floor(float64(yarnCorrDim(r.Dims, r.OrigCtx, r.BetaFast, r.Base))))
		high = float32(math.Ceil(float64(yarnCorrDim(r.Dims, r.OrigCtx, r.BetaSlow, r.Base))))
		low = max(0, low)
		high = min(float32(r.Dims-1), high)
		mscale *= 1 + 0.1*logf(1/freqScale)
	}
	theta := float32(pos)
	for i := 0; i < r.Dims/2; i++ {
		extrap := theta
		if r.FreqFactors != nil {
			extrap = theta / r.FreqFactors[i]
		}
		t := freqScale * extrap
		if r.ExtFactor != 0 {
			y := (float32(i) - low) / max(0.001, high-low)
			mix := (1 - min(1, max(0, y))) * r.ExtFactor
			t = t*(1-mix) + extrap*mix
		}
		cs[2*i] = float32(math.Cos(float64(t))) * mscale
		cs[2*i+1] = float32(math.Sin(float64(t))) * mscale
		theta *= thetaScale
	}
}

// Apply rotates every head of x (consecutive heads of headDim values) by the
// angles cs from Angles. Dimensions past Dims are left unchanged.
func (r *Rope) Apply(x []float32, headDim int, cs []float32) {
	cs = cs[:r.Dims]
	half := r.Dims / 2
	for h := 0; h+headDim <= len(x); h += headDim {
		v := x[h : h+r.Dims]
		if r.Neox {
			for i := 0; i < half; i++ {
				c, s := cs[2*i], cs[2*i+1]
				x0, x1 := v[i], v[i+half]
				v[i] = float32(x0*c) - float32(x1*s)
				v[i+half] = float32(x0*s) + float32(x1*c)
			}
			continue
		}
		for i := 0; i < r.Dims; i += 2 {
			c, s := cs[i], cs[i+1]
			x0, x1 := v[i], v[i+1]
			v[i] = float32(x0*c) - float32(x1*s)
			v[i+1] = float32(x0*s) + float32(x1*c)
		}
	}
}
