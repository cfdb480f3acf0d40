package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/sample"
)

func newRunCmd() *cobra.Command {
	var (
		modelPath  string
		prompt     string
		promptFile string
		nPredict   int
		nCtx       int
		stops      []string
		ignoreEOS  bool
		verbose    bool
		sp         = sample.DefaultParams()
		seed       int64
	)
	cmd := &cobra.Command{
		Use:   "run [-m FILE] [-p PROMPT] [-n N] [--temp T] [--seed S]",
		Short: "Generate text from a prompt, streaming tokens to stdout",
		Long: "Generate text from a prompt, streaming tokens to stdout.\n" +
			"Without -m, slm uses the small model embedded in the binary.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if promptFile != "" {
				b, err := readInput(cmd, promptFile)
				if err != nil {
					return err
				}
				prompt = string(b)
			}
			m, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()
			ids, err := m.Tokenize(prompt, true, false)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				return fmt.Errorf("the prompt is empty and the model adds no BOS token: give a prompt with -p")
			}
			if nCtx <= 0 {
				nCtx = m.ContextSize()
			}
			if nPredict > 0 && len(ids)+nPredict > nCtx {
				nPredict = nCtx - len(ids) // generate what fits, as llama-cli does
				if nPredict <= 0 {
					return fmt.Errorf("the prompt has %d tokens and the context holds %d: use --ctx to enlarge it", len(ids), nCtx)
				}
			}
			sess, err := m.NewSession(nCtx)
			if err != nil {
				return err
			}
			sp.Seed = seed
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			out := bufio.NewWriter(cmd.OutOrStdout())
			res, err := sess.Generate(ctx, ids, engine.Options{
				MaxTokens: nPredict,
				Sampling:  sp,
				Stop:      stops,
				IgnoreEOS: ignoreEOS,
			}, func(t engine.Token) error {
				if _, err := out.Write(t.Text); err != nil {
					return err
				}
				return out.Flush()
			})
			out.WriteString("\n")
			out.Flush()
			if err != nil && err != context.Canceled {
				return err
			}
			if verbose {
				gen := len(res.Tokens)
				fmt.Fprintf(cmd.ErrOrStderr(), "prompt: %d tokens in %v (%.1f t/s); generated: %d tokens in %v (%.1f t/s); stop: %s\n",
					res.PromptTokens, res.PromptDuration, rate(res.PromptTokens, res.PromptDuration.Seconds()),
					gen, res.GenDuration, rate(gen, res.GenDuration.Seconds()), res.Reason)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "GGUF model file (default: the embedded model)")
	f.StringVarP(&prompt, "prompt", "p", "", "prompt text")
	f.StringVarP(&promptFile, "file", "f", "", "read the prompt from a file (- for stdin)")
	f.IntVarP(&nPredict, "n-predict", "n", 128, "tokens to generate (0: until end of text or a full context)")
	f.IntVarP(&nCtx, "ctx", "c", 0, "context size in tokens (default: the model's, at most 4096)")
	f.Float32Var(&sp.Temperature, "temp", sp.Temperature, "temperature (0: greedy)")
	f.IntVar(&sp.TopK, "top-k", sp.TopK, "keep the k most likely tokens (0: off)")
	f.Float32Var(&sp.TopP, "top-p", sp.TopP, "nucleus sampling threshold (1: off)")
	f.Float32Var(&sp.MinP, "min-p", sp.MinP, "drop tokens below this fraction of the top probability (0: off)")
	f.Float32Var(&sp.RepeatPenalty, "repeat-penalty", sp.RepeatPenalty, "penalize repeated tokens (1: off)")
	f.IntVar(&sp.RepeatLastN, "repeat-last-n", sp.RepeatLastN, "how many recent tokens the penalties look at")
	f.Float32Var(&sp.PresencePenalty, "presence-penalty", sp.PresencePenalty, "presence penalty (0: off)")
	f.Float32Var(&sp.FrequencyPenalty, "frequency-penalty", sp.FrequencyPenalty, "frequency penalty (0: off)")
	f.Int64Var(&seed, "seed", -1, "random seed (-1: random)")
	f.StringArrayVar(&stops, "stop", nil, "stop at this string (repeatable)")
	f.BoolVar(&ignoreEOS, "ignore-eos", false, "keep generating past the end-of-text token")
	f.BoolVarP(&verbose, "verbose", "v", false, "print timings to stderr")
	return cmd
}

func rate(n int, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) / seconds
}
