package perplexity

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// The base file holds a base model's log-probabilities over the scored
// tokens, in llama.cpp's format (llama-perplexity --kl-divergence-base), so
// files from either tool work with the other. Little-endian:
//
//	"_logits_"                       8 bytes
//	n_ctx, n_vocab, n_chunk          int32 each
//	tokens[n_chunk·n_ctx]            int32: the text's tokens (not BOS-replaced)
//	per chunk, per scored position (n_ctx-1-n_ctx/2 of them):
//	  scale, min_log_prob            float32 each
//	  q[2·⌈n_vocab/2⌉]               uint16
//
// A token's log-probability is scale·q + min_log_prob; logits more than 16
// below the maximum are stored as q = 0 (they are ignored by the KL sum).
const baseMagic = "_logits_"

// recordLen is the uint16 count per scored position (llama.cpp's nv).
func recordLen(nVocab int) int { return 2*((nVocab+1)/2) + 4 }

type baseWriter struct {
	w    *bufio.Writer
	rec  []uint16
	buf  []byte
	recs []uint16
}

// SaveBase runs the perplexity measurement like Run and writes the
// log-probabilities of every scored position to w (the --kl-base file).
func SaveBase(m Model, tokens []int32, v Vocab, opt Options, w io.Writer) (*Result, error) {
	b := &baseWriter{w: bufio.NewWriterSize(w, 1<<20), rec: make([]uint16, recordLen(v.NVocab))}
	return run(m, tokens, v, opt, b)
}

func (b *baseWriter) header(nCtx, nVocab int, tokens []int32) error {
	b.w.WriteString(baseMagic)
	binary.Write(b.w, binary.LittleEndian, []int32{int32(nCtx), int32(nVocab), int32(len(tokens) / nCtx)})
	return binary.Write(b.w, binary.LittleEndian, tokens)
}

// record encodes one position's log-probabilities and returns the NLL of
// tok as llama.cpp's file-writing path computes it.
func (b *baseWriter) record(logits []float32, tok int32) float64 {
	maxL, minL := logits[0], logits[0]
	for _, l := range logits[1:] {
		maxL, minL = max(maxL, l), min(minL, l)
	}
	minL = max(minL, maxL-16)
	var sum float64
	for _, l := range logits {
		sum += float64(expf(l - maxL))
	}
	lse := float32(math.Log(sum))
	minLogProb := minL - maxL - lse
	scale := (maxL - minL) / 65535
	r := b.rec
	putF32(r[0:2], scale)
	putF32(r[2:4], minLogProb)
	q := r[4:]
	clear(q)
	if scale != 0 {
		inv := 1 / scale
		for i, l := range logits {
			if l > minL {
				q[i] = uint16(math.RoundToEven(float64(inv * (l - minL))))
			}
		}
	}
	b.recs = append(b.recs, r...)
	return float64(maxL + lse - logits[tok])
}

func (b *baseWriter) flush() error {
	if cap(b.buf) < 2*len(b.recs) {
		b.buf = make([]byte, 2*len(b.recs))
	}
	buf := b.buf[:2*len(b.recs)]
	for i, v := range b.recs {
		binary.LittleEndian.PutUint16(buf[2*i:], v)
	}
	b.recs = b.recs[:0]
	if _, err := b.w.Write(buf); err != nil {
		return err
	}
	return b.w.Flush()
}

func putF32(dst []uint16, f float32) {
	u := math.Float32bits(f)
	dst[0], dst[1] = uint16(u), uint16(u>>16)
}

func getF32(src []uint16) float32 {
	return math.Float32frombits(uint32(src[0]) | uint32(src[1])<<16)
}

// KLResult compares a model with a base file.
type KLResult struct {
	Chunks, Count         int
	PPL, PPLErr           float64 // this model's perplexity
	PPLBase, PPLBaseErr   float64 // the base model's
	LogRatio, LogRatioErr float64 // mean ln(PPL(Q)/PPL(base))
	Cor                   float64 // correlation of the per-token NLLs
	KLD, KLDErr           float64 // mean KL(base ‖ model) per token
	KLDMax, KLDMedian     float64
	KLD99, KLD999         float64 // percentiles
	KLDMin                float64
	SameTop, SameTopErr   float64 // fraction of positions with the same argmax
	DeltaPRMS, DeltaPErr  float64 // RMS of p(token) − p_base(token)
	MaxDeltaP             float64
}

type klSums struct {
	nll, nll2, nllBase, nllBase2, nllNllBase float64
	kld, kld2                                float64
	pDiff, pDiff2, pDiff4                    float64
	maxPDiff                                 float64
	sameTop, count                           int
}

// KLDivergence evaluates m on the tokens stored in the base file r and
// compares its distributions with the stored ones, position by position.
// OnChunk, if set, receives the running statistics after each chunk.
func KLDivergence(m Model, v Vocab, r io.Reader, maxChunks int, onChunk func(chunk int, s *KLResult)) (*KLResult, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != baseMagic {
		return nil, errors.New("not a base log-probability file (written by slm perplexity --kl-base or llama-perplexity --kl-divergence-base)")
	}
	var hdr [3]int32
	if err := binary.Read(br, binary.LittleEndian, &hdr); err != nil {
		return nil, errShort
	}
	nCtx, nVocab, nChunk := int(hdr[0]), int(hdr[1]), int(hdr[2])
	if nCtx < 4 || nCtx > 1<<20 || nChunk < 1 || nChunk > 1<<24 {
		return nil, fmt.Errorf("bad header: n_ctx %d, %d chunks", nCtx, nChunk)
	}
	if nVocab != v.NVocab {
		return nil, fmt.Errorf("the base file has a vocabulary of %d tokens, this model %d: the models must share their vocabulary", nVocab, v.NVocab)
	}
	tokens := make([]int32, nCtx*nChunk)
	if err := binary.Read(br, binary.LittleEndian, tokens); err != nil {
		return nil, errShort
	}
	if maxChunks > 0 {
		nChunk = min(nChunk, maxChunks)
	}
	nv := recordLen(nVocab)
	first := nCtx / 2
	nScored := nCtx - 1 - first
	raw := make([]byte, 2*nv*nScored)
	rec := make([]uint16, nv*nScored)
	var s klSums
	var klds, pdiffs []float64
	res := &KLResult{}
	for i := range nChunk {
		if _, err := io.ReadFull(br, raw); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i+1, errShort)
		}
		for j := range rec {
			rec[j] = binary.LittleEndian.Uint16(raw[2*j:])
		}
		rows, err := chunkLogits(m, tokens, i, v, nCtx)
		if err != nil {
			return nil, err
		}
		next := tokens[i*nCtx+first+1 : (i+1)*nCtx]
		for k, row := range rows {
			kld, pd := s.add(row, rec[k*nv:(k+1)*nv], next[k])
			klds = append(klds, kld)
			pdiffs = append(pdiffs, pd)
		}
		s.fill(res)
		res.Chunks = i + 1
		if onChunk != nil {
			onChunk(i+1, res)
		}
	}
	slices.Sort(klds)
	res.KLDMin, res.KLDMax = klds[0], klds[len(klds)-1]
	res.KLDMedian = percentile(klds, 0.5)
	res.KLD99, res.KLD999 = percentile(klds, 0.99), percentile(klds, 0.999)
	for _, p := range pdiffs {
		res.MaxDeltaP = max(res.MaxDeltaP, math.Abs(p))
	}
	return res, nil
}

// add scores one position as llama.cpp's kl_divergence does and returns its
// KL-divergence and p − p_base of the actual next token.
func (s *klSums) add(logits []float32, rec []uint16, tok int32) (float64, float64) {
	maxL, imax := logits[0], 0
	for i, l := range logits[1:] {
		if l > maxL {
			maxL, imax = l, i+1
		}
	}
	var sum float64
	for _, l := range logits {
		sum += float64(expf(l - maxL))
	}
	lse := float32(math.Log(sum))
	scale, minLogProb := getF32(rec[0:2]), getF32(rec[2:4])
	q := rec[4:]
	nll := maxL + lse - logits[tok]
	nllBase := -(scale*float32(q[tok]) + minLogProb)
	s.nll += float64(nll)
	s.nll2 += float64(nll * nll)
	s.nllBase += float64(nllBase)
	s.nllBase2 += float64(nllBase * nllBase)
	s.nllNllBase += float64(nll * nllBase)
	norm := maxL + lse
	var kld float64
	imaxBase, pMax := -1, float32(0)
	for i, l := range logits {
		pl := scale*float32(q[i]) + minLogProb
		if i == 0 || pl > pMax {
			pMax, imaxBase = pl, i
		}
		if pl > -16 {
			kld += float64(expf(pl) * (pl - l + norm))
		}
	}
	s.kld += kld
	s.kld2 += kld * kld
	s.count++
	if imax == imaxBase {
		s.sameTop++
	}
	pd := float64(expf(-nll) - expf(-nllBase))
	s.pDiff += pd
	s.pDiff2 += pd * pd
	s.pDiff4 += pd * pd * pd * pd
	return kld, pd
}

func meanUnc(sum, sum2 float64, n int) (float64, float64) {
	if n < 1 {
		return 0, 0
	}
	f := sum / float64(n)
	df := sum2/float64(n) - f*f
	if df > 0 && n > 10 {
		return f, math.Sqrt(df / float64(n-1))
	}
	return f, 0
}

func (s *klSums) fill(r *KLResult) {
	n := s.count
	r.Count = n
	lp, lpu := meanUnc(s.nll, s.nll2, n)
	lb, lbu := meanUnc(s.nllBase, s.nllBase2, n)
	r.PPL, r.PPLErr = math.Exp(lp), math.Exp(lp)*lpu
	r.PPLBase, r.PPLBaseErr = math.Exp(lb), math.Exp(lb)*lbu
	var cov float64
	if n >= 10 {
		cov = (s.nllNllBase/float64(n) - (s.nll/float64(n))*(s.nllBase/float64(n))) / float64(n-1)
	}
	if lpu > 0 && lbu > 0 {
		r.Cor = cov / (lpu * lbu)
	}
	r.LogRatio = lp - lb
	r.LogRatioErr = math.Sqrt(max(0, lpu*lpu+lbu*lbu-2*cov))
	r.KLD, r.KLDErr = meanUnc(s.kld, s.kld2, n)
	mse, mseu := meanUnc(s.pDiff2, s.pDiff4, n)
	r.DeltaPRMS = math.Sqrt(mse)
	if r.DeltaPRMS > 0 {
		r.DeltaPErr = 0.5 / r.DeltaPRMS * mseu
	}
	r.SameTop = float64(s.sameTop) / float64(n)
	if n > 1 {
		r.SameTopErr = math.Sqrt(r.SameTop * (1 - r.SameTop) / float64(n-1))
	}
}

// percentile interpolates between sorted values as llama.cpp does.
func percentile(sorted []float64, f float64) float64 {
	if f <= 0 {
		return sorted[0]
	}
	if f >= 1 {
		return sorted[len(sorted)-1]
	}
	p := f * float64(len(sorted)-1)
	i := int(p)
	p -= float64(i)
	return (1-p)*sorted[i] + p*sorted[min(i+1, len(sorted)-1)]
}
