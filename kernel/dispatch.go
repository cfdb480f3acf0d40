package kernel

import (
	"fmt"
	"sort"

	"github.com/slm-dev/slm/quant"
)

// Tier is an instruction-set level a kernel is written for. Every kernel has
// a TierGeneric version in plain Go: the specification the faster tiers are
// tested against (build with -tags purego to use nothing else).
type Tier int

// Tiers, lowest first. A CPU supports a prefix-closed subset per architecture.
const (
	TierGeneric    Tier = iota
	TierAVX2            // amd64: AVX2 + FMA + F16C
	TierAVX512          // amd64: AVX-512 F/BW/VL
	TierAVX512VNNI      // amd64: AVX-512 VNNI
	TierNEON            // arm64: ASIMD
	TierDotProd         // arm64: SDOT/UDOT
	TierI8MM            // arm64: SMMLA
)

var tierNames = [...]string{"generic", "avx2", "avx512", "avx512vnni", "neon", "dotprod", "i8mm"}

func (t Tier) String() string {
	if int(t) < len(tierNames) {
		return tierNames[t]
	}
	return fmt.Sprintf("tier(%d)", int(t))
}

// VecDot is the dot product of one weight row and one activation row, both
// encoded: w holds n elements of the weight type, x n elements of the
// activation type that the weight type pairs with (see registerDot).
type VecDot func(n int, w, x []byte) float32

// ActQuantizer encodes n = len(x) activations into dst in an activation
// type (Q8_0, Q8_1, Q8_K, F16, …).
type ActQuantizer func(x []float32, dst []byte)

type impl[F any] struct {
	tier Tier
	fn   F
}

type dotEntry struct {
	act   quant.Type // the activation encoding the weight type is dotted with
	impls []impl[VecDot]
}

var (
	dots       = map[quant.Type]*dotEntry{}
	actQuants  = map[quant.Type][]impl[ActQuantizer]{}
	forcedTier = Tier(-1) // tests force a tier; -1 means the best supported
)

// registerDot adds an implementation of the weight type w's dot product for
// a tier. All implementations of w must agree on act. Called from init.
func registerDot(w, act quant.Type, tier Tier, fn VecDot) {
	e := dots[w]
	if e == nil {
		e = &dotEntry{act: act}
		dots[w] = e
	}
	if e.act != act {
		panic(fmt.Sprintf("kernel: %v dots registered with activations %v and %v", w, e.act, act))
	}
	e.impls = append(e.impls, impl[VecDot]{tier, fn})
	sort.Slice(e.impls, func(a, b int) bool { return e.impls[a].tier < e.impls[b].tier })
}

// registerAct adds an activation quantizer for the activation type act.
func registerAct(act quant.Type, tier Tier, fn ActQuantizer) {
	s := append(actQuants[act], impl[ActQuantizer]{tier, fn})
	sort.Slice(s, func(a, b int) bool { return s[a].tier < s[b].tier })
	actQuants[act] = s
}

// pick chooses the highest tier the CPU supports (or exactly the forced one
// when it has an implementation), else generic.
func pick[F any](impls []impl[F]) (F, Tier) {
	var best impl[F]
	found := false
	for _, im := range impls {
		ok := im.tier == TierGeneric || cpuHas(im.tier)
		if forcedTier >= 0 {
			ok = ok && im.tier <= forcedTier
		}
		if ok {
			best, found = im, true
		}
	}
	if !found {
		var zero F
		return zero, TierGeneric
	}
	return best.fn, best.tier
}

// DotFor returns the weight type's activation type and its best dot product,
// or ok false when the weight type has no integer/typed dot path.
func DotFor(w quant.Type) (act quant.Type, fn VecDot, tier Tier, ok bool) {
	e := dots[w]
	if e == nil {
		return 0, nil, TierGeneric, false
	}
	fn, tier = pick(e.impls)
	return e.act, fn, tier, fn != nil
}

// ActFor returns the best quantizer into the activation type act.
func ActFor(act quant.Type) (ActQuantizer, Tier, bool) {
	fn, tier := pick(actQuants[act])
	return fn, tier, fn != nil
}

// Implementations lists every registered tier of the weight type's dot
// product, for tests that check each tier against the generic one.
func Implementations(w quant.Type) []Tier {
	e := dots[w]
	if e == nil {
		return nil
	}
	out := make([]Tier, 0, len(e.impls))
	for _, im := range e.impls {
		out = append(out, im.tier)
	}
	return out
}
