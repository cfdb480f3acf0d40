package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Checkpoint is a Hugging Face model directory: config.json and the
// safetensors files that hold its weights.
type Checkpoint struct {
	Dir     string
	Config  hparams
	RawCfg  []byte
	Files   []*SafeTensors
	tensors map[string]*STensor // every tensor by name, across shards
	names   []string            // tensor names in file order
}

// OpenCheckpoint reads dir/config.json and indexes the weights: a sharded
// checkpoint through model.safetensors.index.json (every tensor it names must
// be in the file it names, and every tensor of those files in the index),
// else model.safetensors, else every *.safetensors file in the directory.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the model config: %w", err)
	}
	cfg, err := parseHparams(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	c := &Checkpoint{Dir: dir, Config: cfg, RawCfg: raw, tensors: map[string]*STensor{}}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()

	index := filepath.Join(dir, "model.safetensors.index.json")
	var weightMap map[string]string
	var parts []string
	if b, err := os.ReadFile(index); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("%s: %w", index, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("%s: no weight_map", index)
		}
		weightMap = idx.WeightMap
		for _, f := range weightMap {
			if f == "" || filepath.Base(f) != f {
				return nil, fmt.Errorf("%s: shard name %q is not a plain file name", index, f)
			}
			if !slices.Contains(parts, f) {
				parts = append(parts, f)
			}
		}
		slices.Sort(parts)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	} else if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		parts = []string{"model.safetensors"}
	} else {
		m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
		for _, p := range m {
			parts = append(parts, filepath.Base(p))
		}
		slices.Sort(parts)
	}
	if len(parts) == 0 {
		if _, err := os.Stat(filepath.Join(dir, "pytorch_model.bin")); err == nil {
			return nil, fmt.Errorf("%s: only PyTorch .bin weights; slm converts safetensors checkpoints only", dir)
		}
		return nil, fmt.Errorf("%s: no safetensors weights (model.safetensors or model.safetensors.index.json)", dir)
	}
	for _, p := range parts {
		st, err := OpenSafeTensors(filepath.Join(dir, p))
		if err != nil {
			return nil, err
		}
		c.Files = append(c.Files, st)
		for i := range st.Tensors {
			t := &st.Tensors[i]
			if prev, dup := c.tensors[t.Name]; dup {
				return nil, fmt.Errorf("tensor %q is in both %s and %s", t.Name, prev.file.Path, st.Path)
			}
			if weightMap != nil {
				want, listed := weightMap[t.Name]
				if !listed {
					return nil, fmt.Errorf("%s: tensor %q is not in %s", st.Path, t.Name, index)
				}
				if want != p {
					return nil, fmt.Errorf("%s: tensor %q is in %s, but the index says %s", index, t.Name, p, want)
				}
			}
			c.tensors[t.Name] = t
			c.names = append(c.names, t.Name)
		}
	}
	for name, f := range weightMap {
		if _, found := c.tensors[name]; !found {
			return nil, fmt.Errorf("%s: tensor %q is missing from %s", index, name, f)
		}
	}
	ok = true
	return c, nil
}

// Close closes the weight files.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.Files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// hparams is config.json with numbers kept exact.
type hparams map[string]any

func parseHparams(raw []byte) (hparams, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var h hparams
	if err := dec.Decode(&h); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("config is not a JSON object")
	}
	// Newer transformers configs hold rope_theta and the scaling in
	// rope_parameters.
	if rp := h.object("rope_parameters"); rp != nil {
		if !h.has("rope_theta") && rp.has("rope_theta") {
			h["rope_theta"] = rp["rope_theta"]
		}
		if !h.has("rope_scaling") {
			if t := rp.str("rope_type"); t != "" && t != "default" {
				h["rope_scaling"] = map[string]any(rp)
			}
		}
	}
	return h, nil
}

// has reports whether key is present and not null.
func (h hparams) has(key string) bool {
	v, ok := h[key]
	return ok && v != nil
}

// intOf reads the first of keys that is present as a non-negative integer.
func (h hparams) intOf(keys ...string) (int, string, error) {
	for _, k := range keys {
		if !h.has(k) {
			continue
		}
		n, ok := h[k].(json.Number)
		if !ok {
			return 0, k, fmt.Errorf("config.json: %s = %v is not a number", k, h[k])
		}
		v, err := n.Int64()
		if err != nil || v < 0 || v > 1<<31-1 {
			return 0, k, fmt.Errorf("config.json: %s = %s is not a non-negative integer", k, n)
		}
		return int(v), k, nil
	}
	return 0, "", errMissing(keys)
}

// floatOf reads the first of keys that is present as a number.
func (h hparams) floatOf(keys ...string) (float64, string, error) {
	for _, k := range keys {
		if !h.has(k) {
			continue
		}
		n, ok := h[k].(json.Number)
		if !ok {
			return 0, k, fmt.Errorf("config.json: %s = %v is not a number", k, h[k])
		}
		v, err := n.Float64()
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, k, fmt.Errorf("config.json: %s = %s is not a finite number", k, n)
		}
		return v, k, nil
	}
	return 0, "", errMissing(keys)
}

// boolOf reads a boolean (false when absent).
func (h hparams) boolOf(key string) bool {
	b, _ := h[key].(bool)
	return b
}

// object reads a nested object (nil when absent or null).
func (h hparams) object(key string) hparams {
	m, _ := h[key].(map[string]any)
	return hparams(m)
}

func (h hparams) str(key string) string {
	s, _ := h[key].(string)
	return s
}

type missingError struct{ keys []string }

func (e *missingError) Error() string {
	if len(e.keys) == 1 {
		return fmt.Sprintf("config.json: missing %s", e.keys[0])
	}
	return fmt.Sprintf("config.json: missing %s (or %s)", e.keys[0], strings.Join(e.keys[1:], ", "))
}

func errMissing(keys []string) error { return &missingError{keys: keys} }

func isMissing(err error) bool {
	var m *missingError
	return errors.As(err, &m)
}
