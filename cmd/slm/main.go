// Command slm runs small language models on this machine.
package main

import (
	"os"

	"github.com/slm-dev/slm/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
