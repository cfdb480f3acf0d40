package cli

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/slm-dev/slm/internal/progress"
	"github.com/slm-dev/slm/pull"
	"github.com/spf13/cobra"
)

// modelsDir is --models-dir, else $SLM_MODELS, else ~/.slm/models.
func modelsDir(flag string) (string, error) {
	if d := cmp.Or(flag, os.Getenv("SLM_MODELS")); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no models directory: set --models-dir or SLM_MODELS (%v)", err)
	}
	return filepath.Join(home, ".slm", "models"), nil
}

func newPullCmd() *cobra.Command {
	var dir, endpoint string
	cmd := &cobra.Command{
		Use:   "pull REPO[:FILE or QUANT]",
		Short: "Download a GGUF model from a Hugging Face repository into the models directory",
		Long: `Download a GGUF file from a Hugging Face repository (…/resolve/main/FILE).
REPO:FILE names the file; REPO:QUANT (e.g. Q4_K_M) picks the .gguf whose name
carries that tag; REPO alone takes the only .gguf, or the Q4_K_M one.
Downloads resume where they stopped (run the command again), and size and
sha256 are checked before the file appears. The path is printed on stdout.
HF_TOKEN is sent for gated or private repositories.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := pull.ParseRef(args[0])
			if err != nil {
				return err
			}
			d, err := modelsDir(dir)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			opt := pull.Options{
				Endpoint:  cmp.Or(endpoint, os.Getenv("SLM_HF_ENDPOINT"), os.Getenv("HF_ENDPOINT")),
				ModelsDir: d,
				Token:     os.Getenv("HF_TOKEN"),
				Progress:  &pullBar{w: stderr},
				Log:       func(f string, a ...any) { fmt.Fprintf(stderr, "slm pull: "+f+"\n", a...) },
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			path, err := pull.Pull(ctx, ref, opt)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "models-dir", "", "models directory (default $SLM_MODELS or ~/.slm/models)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "hub base URL (default $SLM_HF_ENDPOINT or https://huggingface.co)")
	return cmd
}

// pullBar shows a download on a progress bar.
type pullBar struct {
	w   io.Writer
	bar *progress.Bar
}

func (p *pullBar) Start(name string, total, already int64) {
	p.bar = progress.New(p.w, filepath.Base(name), total, true)
	p.bar.SetBase(already)
}
func (p *pullBar) Add(n int64) { p.bar.Add(n) }
func (p *pullBar) Finish()     { p.bar.Finish() }
