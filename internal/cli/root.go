// Package cli wires slm's subcommands: flags in, engine calls, text out.
// One file per subcommand.
package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/slm-dev/slm/internal/cli.Version=…".
var Version = "dev"

// Main runs slm with args and returns the process exit code. Errors are
// printed as one line on stderr, never as a stack trace.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "slm: internal error: %v\n", r)
			code = 2
		}
	}()
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "slm: %v\n", err)
		return 1
	}
	return 0
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "slm",
		Short:         "Run small language models on this machine",
		Long:          "slm runs small language models from GGUF files on the CPU: private, offline, one binary.",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(), newInspectCmd(), newTokenizeCmd(), newDetokenizeCmd(), newLogitsCmd())
	root.AddCommand(newServeCmd(), newBenchCmd())
	root.AddCommand(newConvertCmd())
	root.AddCommand(newSynthCmd())
	root.AddCommand(newQuantizeCmd(), newImatrixCmd(), newPullCmd(), newPerplexityCmd())
	return root
}
