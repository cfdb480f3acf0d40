package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slm-dev/slm/engine"
	"github.com/slm-dev/slm/gguf"
)

// DefaultKeepAlive is how long a model stays loaded after its last request.
const DefaultKeepAlive = 5 * time.Minute

// DefaultModelName addresses the model embedded in the binary.
const DefaultModelName = "default"

// ModelSource is one model the manager may serve: a GGUF file, GGUF bytes
// in memory (the embedded default model), or a ready Generator (a remote
// endpoint, a router, a test double), which is always "loaded" and never
// evicted.
type ModelSource struct {
	Name string    // how clients address it
	Path string    // GGUF file, or
	Data []byte    // the GGUF bytes in memory, or
	Gen  Generator // a backend that needs no loading
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	Sources   []ModelSource // registered in order; the first is the default
	Dir       string        // every *.gguf inside, by file name without extension
	Parallel  int           // slots per model (sequences decoded at once)
	Sessions  bool          // run each request in a session of its own (Pool) instead of batching them (Batcher)
	Queue     int           // requests that may wait for a slot, per model
	NCtx      int           // context per slot; 0: the model's default
	MaxMemory int64         // bytes for weights + KV of loaded models; 0: no limit
	KeepAlive time.Duration // default keep-alive (DefaultKeepAlive is Ollama's); 0: unload when idle; negative: forever
}

// Manager registers models by name, loads them on first use, unloads them
// after their keep-alive and evicts the least recently used ones to stay
// within the memory budget. Names come only from the registry: a request's
// model name is looked up, never turned into a path.
type Manager struct {
	cfg ManagerConfig

	mu      sync.Mutex
	entries map[string]*entry
	order   []string // registration order; order[0] is the default
}

type entry struct {
	src     ModelSource
	size    int64 // file size
	modTime time.Time

	// Guarded by Manager.mu.
	gen       Generator     // what requests use; nil when not loaded
	model     *engine.Model // for local models: the loaded file
	local     localGen      // for local models: gen
	memory    int64         // weights + KV of all slots, when loaded
	loading   chan struct{} // closed when a load in progress ends
	loadErr   error
	refs      int // requests holding the model
	lastUsed  time.Time
	keepAlive time.Duration
	expiresAt time.Time // zero: never
	timer     *time.Timer
	epoch     int // bumps on every load/unload, to ignore stale timers
}

// Model errors, mapped to 404 / 400 / 503 by the handlers.
var (
	ErrModelNotFound = errors.New("model not found")
	ErrBadModelName  = errors.New("invalid model name")
	ErrNoMemory      = errors.New("not enough memory")

	errNoFile = errors.New("the model is not a GGUF file")
)

// NewManager registers cfg's models. A Dir that cannot be read is an error;
// an empty registry is not (requests then fail with model not found).
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Parallel < 1 {
		cfg.Parallel = 1
	}
	m := &Manager{cfg: cfg, entries: map[string]*entry{}}
	for _, src := range cfg.Sources {
		if err := m.register(src); err != nil {
			return nil, err
		}
	}
	if cfg.Dir != "" {
		if _, err := os.ReadDir(cfg.Dir); err != nil {
			return nil, fmt.Errorf("--models: %w", err)
		}
		m.scanDir()
	}
	return m, nil
}

// ModelName is the name a file is addressed by: its base name without the
// .gguf extension.
func ModelName(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func (m *Manager) register(src ModelSource) error {
	if err := validName(src.Name); err != nil {
		return err
	}
	if _, dup := m.entries[src.Name]; dup {
		return fmt.Errorf("two models are named %q: rename one of the files", src.Name)
	}
	e := &entry{src: src, keepAlive: m.cfg.KeepAlive}
	switch {
	case src.Gen != nil:
		e.gen, e.modTime = src.Gen, time.Now()
	case src.Data != nil:
		e.size = int64(len(src.Data))
		e.modTime = time.Now()
	default:
		fi, err := os.Stat(src.Path)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", src.Path)
		}
		e.size, e.modTime = fi.Size(), fi.ModTime()
	}
	m.entries[src.Name] = e
	m.order = append(m.order, src.Name)
	return nil
}

// scanDir registers GGUF files added to Dir since the last scan. Callers
// hold m.mu (or are the constructor).
func (m *Manager) scanDir() {
	if m.cfg.Dir == "" {
		return
	}
	des, err := os.ReadDir(m.cfg.Dir)
	if err != nil {
		return
	}
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || !strings.EqualFold(filepath.Ext(name), ".gguf") || strings.HasPrefix(name, ".") {
			continue
		}
		if _, ok := m.entries[ModelName(name)]; ok {
			continue
		}
		m.register(ModelSource{Name: ModelName(name), Path: filepath.Join(m.cfg.Dir, name)})
	}
}

// validName rejects names that could be mistaken for paths.
func validName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadModelName)
	case len(name) > 256:
		return fmt.Errorf("%w: longer than 256 bytes", ErrBadModelName)
	case strings.ContainsAny(name, "/\\\x00") || strings.Contains(name, ".."):
		return fmt.Errorf("%w %q: model names are registry names, not paths", ErrBadModelName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w %q: control character", ErrBadModelName, name)
		}
	}
	return nil
}

// Resolve maps a requested name to a registered one. "" is the default
// model; Ollama-style tags ("name:latest") are accepted.
func (m *Manager) Resolve(name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resolveLocked(name)
}

func (m *Manager) resolveLocked(name string) (string, error) {
	if name == "" {
		if len(m.order) == 0 {
			m.scanDir()
		}
		if len(m.order) == 0 {
			return "", fmt.Errorf("%w: no models are registered", ErrModelNotFound)
		}
		return m.order[0], nil
	}
	if err := validName(name); err != nil {
		return "", err
	}
	for _, cand := range []string{name, strings.TrimSuffix(name, ":latest")} {
		if _, ok := m.entries[cand]; ok {
			return cand, nil
		}
	}
	m.scanDir()
	for _, cand := range []string{name, strings.TrimSuffix(name, ":latest")} {
		if _, ok := m.entries[cand]; ok {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrModelNotFound, name)
}

// ModelInfo describes a registered model.
type ModelInfo struct {
	Name      string
	Path      string // "" for the embedded model
	Size      int64
	ModTime   time.Time
	Loaded    bool
	Memory    int64     // when loaded
	ExpiresAt time.Time // when loaded; zero: never
	Busy      int       // requests holding it
	Context   int       // when loaded
}

// List returns the registered models in registration order, then by name.
func (m *Manager) List() []ModelInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scanDir()
	out := make([]ModelInfo, 0, len(m.order))
	for _, name := range m.order {
		out = append(out, m.infoLocked(name))
	}
	return out
}

// Info describes one registered model.
func (m *Manager) Info(name string) (ModelInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name, err := m.resolveLocked(name)
	if err != nil {
		return ModelInfo{}, err
	}
	return m.infoLocked(name), nil
}

func (m *Manager) infoLocked(name string) ModelInfo {
	e := m.entries[name]
	mi := ModelInfo{Name: name, Path: e.src.Path, Size: e.size, ModTime: e.modTime, Busy: e.refs}
	if e.gen != nil {
		mi.Loaded, mi.Memory, mi.ExpiresAt, mi.Context = true, e.memory, e.expiresAt, e.gen.ContextSize()
	}
	return mi
}

// Loaded lists the loaded models, most recently used first.
func (m *Manager) Loaded() []ModelInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ModelInfo
	for _, name := range m.order {
		if m.entries[name].gen != nil {
			out = append(out, m.infoLocked(name))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return m.entries[out[i].Name].lastUsed.After(m.entries[out[j].Name].lastUsed)
	})
	return out
}

// Stats sums the load of every loaded model.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	var gens []statser
	for _, e := range m.entries {
		if st, ok := e.gen.(statser); ok {
			gens = append(gens, st)
		}
	}
	m.mu.Unlock()
	var st Stats
	for _, g := range gens {
		s := g.Stats()
		st.Slots += s.Slots
		st.Busy += s.Busy
		st.Queued += s.Queued
	}
	return st
}

// Lease is a loaded model held for one request. Release it when done.
type Lease struct {
	Name         string
	Gen          Generator
	Model        *engine.Model // the local model behind Gen (metadata for /api/show)
	LoadDuration time.Duration // time spent loading for this request (0 if it was loaded)

	m    *Manager
	e    *entry
	once sync.Once
}

// Acquire returns the named model, loading it (and evicting others) if
// needed.
func (m *Manager) Acquire(ctx context.Context, name string) (*Lease, error) {
	start := time.Now()
	m.mu.Lock()
	name, err := m.resolveLocked(name)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	e := m.entries[name]
	for e.loading != nil { // someone else is loading it
		ch := e.loading
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		m.mu.Lock()
		if e.gen == nil && e.loadErr != nil && e.loading == nil {
			err := e.loadErr
			m.mu.Unlock()
			return nil, err
		}
	}
	loaded := false
	if e.gen == nil {
		e.loading = make(chan struct{})
		m.mu.Unlock()
		model, local, memory, err := m.open(e)
		m.mu.Lock()
		if err == nil {
			err = m.makeRoomLocked(e, memory)
			if err != nil {
				local.Close()
				model.Close()
			}
		}
		close(e.loading)
		e.loading, e.loadErr = nil, err
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		e.gen, e.model, e.local, e.memory = local, model, local, memory
		e.epoch++
		loaded = true
	}
	e.refs++
	e.lastUsed = time.Now()
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.expiresAt = time.Time{}
	l := &Lease{Name: name, Gen: e.gen, Model: e.model, m: m, e: e}
	m.mu.Unlock()
	if loaded {
		l.LoadDuration = time.Since(start)
	}
	return l, nil
}

// localGen serves a loaded local model: a Batcher, or a Pool of sessions.
type localGen interface {
	Generator
	statser
	Close()
}

// open loads e's model and sizes its generator.
func (m *Manager) open(e *entry) (*engine.Model, localGen, int64, error) {
	var model *engine.Model
	var err error
	if e.src.Data != nil {
		model, err = engine.OpenBytes(e.src.Name, e.src.Data)
	} else {
		model, err = engine.Open(e.src.Path)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("loading model %q: %w", e.src.Name, err)
	}
	nCtx := m.cfg.NCtx
	if nCtx <= 0 {
		nCtx = model.ContextSize()
	}
	cfg := model.Config()
	if cfg.MaxPos > 0 && nCtx > cfg.MaxPos {
		nCtx = cfg.MaxPos
	}
	var local localGen
	if m.cfg.Sessions {
		local = NewPool(model, m.cfg.Parallel, m.cfg.Queue, nCtx)
	} else if local, err = NewBatcher(model, m.cfg.Parallel, m.cfg.Queue, nCtx); err != nil {
		model.Close()
		return nil, nil, 0, fmt.Errorf("loading model %q: %w", e.src.Name, err)
	}
	// Weights (mapped) plus each slot's K and V caches in float32.
	kv := int64(2) * int64(cfg.NLayer) * int64(nCtx) * int64(cfg.KVDim()) * 4
	return model, local, e.size + int64(m.cfg.Parallel)*kv, nil
}

// makeRoomLocked evicts idle models, least recently used first, until need
// more bytes fit the budget.
func (m *Manager) makeRoomLocked(e *entry, need int64) error {
	if m.cfg.MaxMemory <= 0 {
		return nil
	}
	if need > m.cfg.MaxMemory {
		return fmt.Errorf("%w: model %q needs %s (weights + KV for %d slots) but --max-memory is %s",
			ErrNoMemory, e.src.Name, fmtBytes(need), m.cfg.Parallel, fmtBytes(m.cfg.MaxMemory))
	}
	for {
		used := int64(0)
		var idle []*entry
		for _, o := range m.entries {
			if o.local != nil && o != e { // only local models count
				used += o.memory
				if o.refs == 0 {
					idle = append(idle, o)
				}
			}
		}
		if used+need <= m.cfg.MaxMemory {
			return nil
		}
		if len(idle) == 0 {
			return fmt.Errorf("%w: model %q needs %s, %s of --max-memory %s is held by models in use",
				ErrNoMemory, e.src.Name, fmtBytes(need), fmtBytes(used), fmtBytes(m.cfg.MaxMemory))
		}
		lru := slices.MinFunc(idle, func(a, b *entry) int { return a.lastUsed.Compare(b.lastUsed) })
		m.unloadLocked(lru)
	}
}

func (m *Manager) unloadLocked(e *entry) {
	if e.local == nil { // not loaded, or not a local model
		return
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.local.Close()
	e.model.Close()
	e.gen, e.model, e.local, e.memory, e.expiresAt = nil, nil, nil, 0, time.Time{}
	e.epoch++
}

// Release ends the request's hold on the model. keepAlive is the request's
// keep-alive (Ollama's keep_alive: 0 unloads as soon as no request holds
// the model, negative keeps it forever); nil means the configured default.
// As in Ollama, the last request to finish sets the model's expiry.
func (l *Lease) Release(keepAlive *time.Duration) {
	l.once.Do(func() {
		m, e := l.m, l.e
		m.mu.Lock()
		defer m.mu.Unlock()
		e.keepAlive = m.cfg.KeepAlive
		if keepAlive != nil {
			e.keepAlive = *keepAlive
		}
		e.refs--
		e.lastUsed = time.Now()
		if e.refs > 0 {
			return
		}
		m.scheduleLocked(e)
	})
}

// scheduleLocked arms e's unload timer from its keep-alive.
func (m *Manager) scheduleLocked(e *entry) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	switch {
	case e.keepAlive == 0:
		m.unloadLocked(e)
	case e.keepAlive < 0:
		e.expiresAt = time.Time{}
	default:
		e.expiresAt = time.Now().Add(e.keepAlive)
		epoch := e.epoch
		e.timer = time.AfterFunc(e.keepAlive, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if e.epoch == epoch && e.refs == 0 {
				m.unloadLocked(e)
			}
		})
	}
}

// SetKeepAlive changes a loaded model's keep-alive without a request (an
// Ollama request with an empty prompt). It loads nothing.
func (m *Manager) SetKeepAlive(name string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[name]
	if !ok {
		return
	}
	e.keepAlive = d
	if e.refs == 0 && e.local != nil {
		m.scheduleLocked(e)
	}
}

// Close unloads every idle model.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.refs == 0 {
			m.unloadLocked(e)
		}
	}
}

// modelError maps the manager's errors to HTTP errors.
func modelError(err error, name string) error {
	switch {
	case errors.Is(err, ErrModelNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("model %q not found: list the available models with GET /v1/models or /api/tags", name)}
	case errors.Is(err, ErrBadModelName):
		return &apiError{Status: http.StatusBadRequest, Param: "model", Message: err.Error()}
	case errors.Is(err, ErrNoMemory):
		return &apiError{Status: http.StatusServiceUnavailable, RetryAfter: 5, Message: err.Error()}
	}
	return err
}

// ggufMeta opens a registered model's metadata without loading it.
func (m *Manager) ggufMeta(name string) (*gguf.File, error) {
	m.mu.Lock()
	e, ok := m.entries[name]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrModelNotFound, name)
	}
	switch {
	case e.src.Gen != nil:
		return nil, errNoFile
	case e.src.Data != nil:
		return gguf.Parse(e.src.Name, e.src.Data)
	}
	return gguf.Open(e.src.Path)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
