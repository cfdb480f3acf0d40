package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/gguf"
)

func newInspectCmd() *cobra.Command {
	var (
		asJSON    bool
		noTensors bool
	)
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a GGUF file's metadata, architecture, tensor types and sizes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := gguf.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			if asJSON {
				return inspectJSON(cmd.OutOrStdout(), f, !noTensors)
			}
			inspectText(cmd.OutOrStdout(), f, !noTensors)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&noTensors, "no-tensors", false, "leave out the per-tensor table")
	return cmd
}

// summary is what inspect reports about a file as a whole.
type summary struct {
	File         string         `json:"file"`
	Version      uint32         `json:"gguf_version"`
	Architecture string         `json:"architecture"`
	Name         string         `json:"name,omitempty"`
	Tensors      int            `json:"n_tensors"`
	Params       uint64         `json:"n_params"`
	DataBytes    uint64         `json:"data_bytes"`
	TypeCounts   map[string]int `json:"tensor_type_counts"`
}

func summarize(f *gguf.File) summary {
	s := summary{File: f.Name, Version: f.Version, Architecture: f.Arch(), Tensors: len(f.Tensors), TypeCounts: map[string]int{}}
	s.Name, _ = f.String("general.name")
	for i := range f.Tensors {
		t := &f.Tensors[i]
		s.Params += t.Elems()
		s.DataBytes += t.Size
		s.TypeCounts[t.Type.String()]++
	}
	return s
}

func inspectText(w io.Writer, f *gguf.File, tensors bool) {
	s := summarize(f)
	fmt.Fprintf(w, "file:         %s\n", s.File)
	fmt.Fprintf(w, "gguf version: %d\n", s.Version)
	fmt.Fprintf(w, "architecture: %s\n", orDash(s.Architecture))
	if s.Name != "" {
		fmt.Fprintf(w, "name:         %s\n", s.Name)
	}
	fmt.Fprintf(w, "parameters:   %s (%d)\n", humanCount(s.Params), s.Params)
	fmt.Fprintf(w, "tensor data:  %s in %d tensors\n", humanBytes(s.DataBytes), s.Tensors)
	types := make([]string, 0, len(s.TypeCounts))
	for t := range s.TypeCounts {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(w, "  %-6s %d tensors\n", t, s.TypeCounts[t])
	}
	fmt.Fprintf(w, "\nmetadata (%d keys):\n", len(f.KVs))
	for _, kv := range f.KVs {
		fmt.Fprintf(w, "  %-45s %s\n", kv.Key, describeValue(kv.Value))
	}
	if !tensors {
		return
	}
	fmt.Fprintf(w, "\ntensors:\n")
	for i := range f.Tensors {
		t := &f.Tensors[i]
		fmt.Fprintf(w, "  %-40s %-5s %-22s %s\n", t.Name, t.Type, dimsString(t.Dims), humanBytes(t.Size))
	}
}

func inspectJSON(w io.Writer, f *gguf.File, tensors bool) error {
	type tensor struct {
		Name   string   `json:"name"`
		Type   string   `json:"type"`
		Dims   []uint64 `json:"dims"`
		Bytes  uint64   `json:"bytes"`
		Offset uint64   `json:"offset"`
	}
	out := struct {
		summary
		Metadata map[string]any `json:"metadata"`
		Tensors  []tensor       `json:"tensors,omitempty"`
	}{summary: summarize(f), Metadata: map[string]any{}}
	for _, kv := range f.KVs {
		out.Metadata[kv.Key] = jsonSafe(kv.Value)
	}
	if tensors {
		for i := range f.Tensors {
			t := &f.Tensors[i]
			out.Tensors = append(out.Tensors, tensor{Name: t.Name, Type: t.Type.String(), Dims: t.Dims, Bytes: t.Size, Offset: t.Offset})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// jsonSafe replaces float values JSON cannot hold (NaN, ±Inf) with strings.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float32:
		return safeFloat(float64(x))
	case float64:
		return safeFloat(x)
	case []float32:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = safeFloat(float64(f))
		}
		return out
	case []float64:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = safeFloat(f)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	}
	return v
}

func safeFloat(f float64) any {
	if f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
		return fmt.Sprint(f)
	}
	return f
}

// describeValue prints a metadata value, shortening long arrays and strings.
func describeValue(v any) string {
	const maxItems, maxChars = 8, 120
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", clip(x, maxChars))
	case []string:
		items := make([]string, 0, maxItems)
		for i := 0; i < len(x) && i < maxItems; i++ {
			items = append(items, fmt.Sprintf("%q", clip(x[i], 30)))
		}
		return arrayString(len(x), items)
	}
	s := fmt.Sprint(v)
	if strings.HasPrefix(s, "[") {
		fields := strings.Fields(strings.Trim(s, "[]"))
		n := len(fields)
		return arrayString(n, fields[:min(n, maxItems)])
	}
	return clip(s, maxChars)
}

func arrayString(n int, items []string) string {
	s := "[" + strings.Join(items, ", ")
	if n > len(items) {
		s += fmt.Sprintf(", … (%d items)", n)
	}
	return s + "]"
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func dimsString(d []uint64) string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, " × ") + "]"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
