package kernel

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/slm-dev/slm/quant"
)

// DotRows is a multi-row dot product: dst[i] = the dot of the weight row at
// w[i*stride:] (n elements) with the encoded activation row x, for every
// i < len(dst). Kernels that hold one activation block in registers against
// several weight rows register one with registerDotRows; otherwise the
// weight type's VecDot runs row by row.
type DotRows func(n int, w []byte, stride int, x []byte, dst []float32)

type rowsEntry struct{ impls []impl[DotRows] }

var dotRows = map[quant.Type]*rowsEntry{}

// DotRows2 is DotRows for two activation rows at once: dst0[i] and dst1[i]
// are weight row i dotted with x0 and x1, so that the weights are loaded
// once for both (the prefill GEMM). len(dst1) >= len(dst0).
type DotRows2 func(n int, w []byte, stride int, x0, x1 []byte, dst0, dst1 []float32)

var dotRows2 = map[quant.Type][]impl[DotRows2]{}

// registerDotRows2 adds a two-activation multi-row kernel for w at a tier;
// its results must equal the same tier's VecDot.
func registerDotRows2(w quant.Type, tier Tier, fn DotRows2) {
	s := append(dotRows2[w], impl[DotRows2]{tier, fn})
	sortImpls(s)
	dotRows2[w] = s
}

// registerDotRows adds a multi-row implementation of the weight type w's dot
// product for a tier; w's activation type is the one its registerDot calls
// give. Its results must equal the VecDot of the same tier row by row.
func registerDotRows(w quant.Type, tier Tier, fn DotRows) {
	e := dotRows[w]
	if e == nil {
		e = &rowsEntry{}
		dotRows[w] = e
	}
	e.impls = append(e.impls, impl[DotRows]{tier, fn})
	sortImpls(e.impls)
}

func sortImpls[F any](s []impl[F]) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].tier < s[j-1].tier; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// A route is everything a product with one weight type needs on the fast
// path, resolved for the current tier.
type route struct {
	ok      bool
	act     quant.Type
	actElem int // activation block elements and bytes
	actSize int
	quant   ActQuantizer
	dot     VecDot
	rows    DotRows  // nil: loop dot
	rows2   DotRows2 // nil: rows per activation
	tier    Tier     // the dot's tier
}

// actBytes is the encoded size of one activation row of cols elements.
func (r *route) actBytes(cols int) int { return cols / r.actElem * r.actSize }

var routes atomic.Pointer[[64]route]

func routeFor(t quant.Type) *route {
	tab := routes.Load()
	if tab == nil {
		tab = buildRoutes()
	}
	if int(t) >= len(tab) {
		return &route{}
	}
	return &tab[t]
}

func buildRoutes() *[64]route {
	var tab [64]route
	for w := range dots {
		if int(w) >= len(tab) {
			continue
		}
		act, dot, tier, ok := DotFor(w)
		if !ok {
			continue
		}
		q, _, ok := ActFor(act)
		if !ok {
			continue
		}
		r := route{ok: true, act: act, actElem: act.BlockElems(), actSize: act.BlockBytes(), quant: q, dot: dot, tier: tier}
		if e := dotRows[w]; e != nil {
			// Only a multi-row kernel of the same tier as the dot: their
			// results are defined to be identical.
			for _, im := range e.impls {
				if im.tier == tier {
					r.rows = im.fn
				}
			}
		}
		for _, im := range dotRows2[w] {
			if im.tier == tier {
				r.rows2 = im.fn
			}
		}
		tab[w] = r
	}
	routes.Store(&tab)
	return &tab
}

// setForcedTier makes every kernel use at most tier t (t < 0: the best the
// CPU supports) and returns the previous setting. For tests and benchmarks;
// not safe while products run.
func setForcedTier(t Tier) Tier {
	mu.Lock()
	defer mu.Unlock()
	prev := forcedTier
	forcedTier = t
	routes.Store(nil)
	return prev
}

// ActiveTier is the highest tier of the kernels in use: the best tier with
// a registered kernel that this CPU (and build) supports, capped by
// SLM_KERNEL_TIER.
func ActiveTier() Tier {
	best := TierGeneric
	use := func(t Tier) {
		if t > best && cpuHas(t) && (forcedTier < 0 || t <= forcedTier) {
			best = t
		}
	}
	for _, e := range dots {
		for _, im := range e.impls {
			use(im.tier)
		}
	}
	for _, impls := range actQuants {
		for _, im := range impls {
			use(im.tier)
		}
	}
	return best
}

// ParseTier maps a tier name (generic, avx2, avx512, avx512vnni, neon,
// dotprod, i8mm) to its Tier.
func ParseTier(s string) (Tier, error) {
	for i, n := range tierNames {
		if strings.EqualFold(s, n) {
			return Tier(i), nil
		}
	}
	return 0, fmt.Errorf("kernel: unknown tier %q (want one of %s)", s, strings.Join(tierNames[:], ", "))
}

// SLM_KERNEL_TIER=generic|avx2|avx512|avx512vnni|neon|dotprod|i8mm caps the
// kernel tier for the whole process (tests run every tier this way); a tier
// the CPU lacks falls back to the best supported one below it.
func init() {
	s := os.Getenv("SLM_KERNEL_TIER")
	if s == "" {
		return
	}
	t, err := ParseTier(s)
	if err != nil {
		panic("SLM_KERNEL_TIER: " + err.Error())
	}
	forcedTier = t
}

var exactFloat atomic.Bool

// SetExactFloat selects the float activation path for every product: each
// weight row dequantized exactly and dotted with the float32 activations,
// which is what llama.cpp computes for an F32 copy of the weights (its
// dequant_f32 reference). The default (off) quantizes the activations once
// per product and runs the integer/typed dot kernels, as llama.cpp's native
// CPU path does. Returns the previous setting.
func SetExactFloat(on bool) bool { return exactFloat.Swap(on) }

// bytesOf views float32s as their little-endian encoding (the F32
// activation type) without copying.
func bytesOf(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

// asF32 views little-endian F32 bytes (4-aligned) as float32s.
func asF32(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}
