package cli

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

// readInput reads a file, or stdin for "-", as raw bytes (not necessarily UTF-8).
func readInput(cmd *cobra.Command, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	return os.ReadFile(path)
}
