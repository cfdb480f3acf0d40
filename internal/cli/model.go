package cli

import (
	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/internal/defaultmodel"
)

// openModel opens path, or the embedded default model when path is empty.
func openModel(path string) (*engine.Model, error) {
	if path == "" {
		return engine.OpenBytes(defaultmodel.Name, defaultmodel.Bytes())
	}
	return engine.Open(path)
}
