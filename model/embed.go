package model

import (
	"fmt"

	"github.com/slm-dev/slm/kernel"
)

// Output is the last step of a family's forward pass: out (nOut, vocab) =
// h outputᵀ, h being the normed rows Batch.OutputRows picked. In a pass of
// EvalHidden it copies h itself (nOut, NEmbd) to out instead: the final
// hidden states that embeddings pool.
func (b *Batch) Output(out []float32, output *kernel.Matrix, h []float32, nOut int) {
	if b.hidden {
		copy(out, h[:nOut*b.cfg.NEmbd])
		return
	}
	b.Linear(out, output, nil, h, nOut)
}

// SoftCapOutput caps the nOut rows of logits Output wrote, as Gemma 2's
// final logit soft-capping does after the output projection (SoftCap with
// factor c); in a pass of EvalHidden, which returns hidden states, it does
// nothing.
func (b *Batch) SoftCapOutput(logits []float32, nOut int, c float32) {
	if b.hidden {
		return
	}
	SoftCap(logits[:nOut*b.cfg.NVocab], c)
}

// EvalHidden is EvalBatch returning, instead of logits, the final hidden
// states (after the output norm, before the output projection): hidden
// receives, in the order of seqs, the rows each Seq asks for (Seq.Logits:
// none, its last token's, or one per token), NEmbd values each. The logits
// of the same pass are those rows times the output matrix. On error no
// state changes.
func (m *Net) EvalHidden(b *Batch, seqs []Seq, hidden []float32) error {
	if b == nil || b.net != m {
		return fmt.Errorf("model: the batch was not made by this model's NewBatch")
	}
	if err := b.plan(seqs); err != nil {
		return err
	}
	if want := b.nOut * m.cfg.NEmbd; len(hidden) != want {
		b.seqs = nil
		return fmt.Errorf("model: hidden has %d values, want %d (%d rows × %d embedding)", len(hidden), want, b.nOut, m.cfg.NEmbd)
	}
	b.hidden = true
	m.forward(b, hidden)
	b.hidden = false
	return nil
}

// Hidden is the EvalHidden of a Model; every Model this package makes has it.
type Hidden interface {
	EvalHidden(b *Batch, seqs []Seq, hidden []float32) error
}
