// Package server is slm's HTTP front end: one listener that speaks the
// OpenAI, Ollama and llama-server dialects and the Hugging Face style
// POST /generate, private by default.
//
// The server knows nothing about how text is produced: every request reaches
// a backend through the Generator interface (generator.go), obtained from the
// model Manager (models.go). Handlers are split by dialect: openai.go,
// ollama.go, llamaserver.go and generate.go; this file holds the core: the
// listener policy, middleware (panic recovery, Host check, CORS, API key,
// body limit), JSON decoding and the error shapes of each dialect.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slm-dev/slm/chat"
)

// DefaultListen is where `slm serve` listens unless told otherwise: loopback
// only, on a port of slm's own (Ollama has 11434, llama-server 8080).
const DefaultListen = "127.0.0.1:8089"

// DefaultMaxBodyBytes bounds a request body unless configured otherwise.
const DefaultMaxBodyBytes = 4 << 20

// Config is the server's policy.
type Config struct {
	// APIKey, when set, is required on every route but /health (as
	// "Authorization: Bearer KEY" or "x-api-key: KEY").
	APIKey string
	// AllowedOrigins lists the browser origins allowed to call the API
	// (CORS); "*" allows any. Empty means no cross-origin access.
	AllowedOrigins []string
	// MaxBodyBytes bounds request bodies (0: DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Version is reported by /api/version and /props.
	Version string
	// Log receives one line per failed request and per recovered panic
	// (nil: discard).
	Log *log.Logger
	// ChatTemplate, when set (slm serve --chat-template FILE), replaces
	// every model's own chat template.
	ChatTemplate *chat.Template
}

// Server serves the HTTP API over a Manager's models.
type Server struct {
	cfg     Config
	models  *Manager
	metrics *metrics
	mux     *http.ServeMux
	started time.Time

	profiles profileCache // chat format and constraint vocabulary per model

	// loopback is set by Serve when the listener is on a loopback address;
	// the Host check (DNS-rebinding defence) applies then.
	mu       sync.Mutex
	loopback bool
}

// New returns a server over models.
func New(cfg Config, models *Manager) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	s := &Server{cfg: cfg, models: models, metrics: newMetrics(), mux: http.NewServeMux(), started: time.Now()}
	s.routeGenerate()
	s.routeOpenAI()
	s.routeOllama()
	s.routeLlamaServer()
	s.routeEmbed()
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "slm is running\n")
	})
	return s
}

// SetLoopback turns the Host-header check on or off; Serve sets it from the
// listener's address. Tests that use Handler directly call it.
func (s *Server) SetLoopback(on bool) {
	s.mu.Lock()
	s.loopback = on
	s.mu.Unlock()
}

// CheckListen enforces "private by default": a listener on anything but a
// loopback address needs an API key.
func CheckListen(addr, apiKey string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %v (want HOST:PORT, e.g. %s)", addr, err, DefaultListen)
	}
	if IsLoopbackHost(host) || apiKey != "" {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return fmt.Errorf("refusing to listen on %s (%s) without an API key: anyone on the network could use the server; set --api-key or --api-key-file, or listen on 127.0.0.1", addr, shown)
}

// IsLoopbackHost reports whether host (a name or an address, no port) can
// only be reached from this machine.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// Serve answers requests on ln until ctx is canceled, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish for up to
// grace, cancels the rest and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		s.SetLoopback(tcp.IP.IsLoopback())
	}
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	defer cancelReqs()
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          s.cfg.Log,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// The grace period is over: cancel the generations still running
		// and close their connections.
		cancelReqs()
		hs.Close()
	}
	<-errc
	return nil
}

// Handler is the whole API with its middleware.
func (s *Server) Handler() http.Handler {
	return s.recoverPanics(s.checkHost(s.cors(s.auth(s.limitBody(http.HandlerFunc(s.route))))))
}

// route dispatches to the mux, answering unknown paths (404) and wrong
// methods (405) in the dialect's error shape rather than as plain text.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, dialectOf(r.URL.Path), errorf(http.StatusMethodNotAllowed, "%s %s is not supported: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	writeError(w, dialectOf(r.URL.Path), errorf(http.StatusNotFound, "no route %s %s", r.Method, r.URL.Path))
}

// dialect picks the error shape for a path.
type dialect int

const (
	dialectHF     dialect = iota // POST /generate and anything unknown
	dialectOpenAI                // /v1/...
	dialectOllama                // /api/...
	dialectLlama                 // llama-server: /completion, /tokenize, ...
)

func dialectOf(path string) dialect {
	switch {
	case strings.HasPrefix(path, "/v1/"):
		return dialectOpenAI
	case strings.HasPrefix(path, "/api/"):
		return dialectOllama
	case path == "/generate":
		return dialectHF
	default:
		return dialectLlama
	}
}

// apiError is an error with an HTTP status, rendered in each dialect's shape.
type apiError struct {
	Status     int
	Message    string
	Code       string // OpenAI's "code" (e.g. "model_not_found"), optional
	Param      string // OpenAI's "param", optional
	RetryAfter int    // seconds, for 503
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// errType is the OpenAI / llama-server error type for a status.
func errType(status int, d dialect) string {
	switch {
	case status == http.StatusUnauthorized:
		if d == dialectOpenAI {
			return "invalid_request_error" // OpenAI's type for a bad key (code invalid_api_key)
		}
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		if d == dialectOpenAI {
			return "invalid_request_error"
		}
		return "not_found_error"
	case status == http.StatusServiceUnavailable:
		return "unavailable_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

// writeError renders e in dialect d.
func writeError(w http.ResponseWriter, d dialect, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	var body any
	switch d {
	case dialectOpenAI:
		o := map[string]any{"message": e.Message, "type": errType(e.Status, d), "param": nil, "code": nil}
		if e.Param != "" {
			o["param"] = e.Param
		}
		if e.Code != "" {
			o["code"] = e.Code
		}
		body = map[string]any{"error": o}
	case dialectOllama:
		body = map[string]any{"error": e.Message}
	case dialectLlama:
		body = map[string]any{"error": map[string]any{"code": e.Status, "message": e.Message, "type": errType(e.Status, d)}}
	default: // Hugging Face text-generation-inference style
		body = map[string]any{"error": e.Message, "error_type": hfErrType(e.Status)}
	}
	writeJSON(w, e.Status, body)
}

func hfErrType(status int) string {
	switch {
	case status == http.StatusServiceUnavailable:
		return "overloaded"
	case status >= 500:
		return "generation"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "authentication"
	default:
		return "validation"
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// handler is a route that may fail with an error rendered in its dialect.
type handler func(w http.ResponseWriter, r *http.Request) error

// handle registers h for pattern; errors are written in h's dialect, a
// canceled request (client gone) is logged and nothing is written.
func (s *Server) handle(pattern string, h handler) {
	route := pattern
	if i := strings.IndexByte(route, ' '); i >= 0 {
		route = route[i+1:]
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		err := h(sw, r)
		if err != nil {
			var ae *apiError
			switch {
			case errors.As(err, &ae):
			case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
				ae = &apiError{Status: 499, Message: "request canceled"}
			default:
				ae = errorf(http.StatusInternalServerError, "%v", err)
			}
			if ae.Status >= 500 || ae.Status == 499 {
				s.cfg.Log.Printf("%s %s: %d %s", r.Method, r.URL.Path, ae.Status, ae.Message)
			}
			if !sw.wrote && ae.Status != 499 {
				writeError(sw, dialectOf(r.URL.Path), ae)
			} else if ae.Status == 499 && !sw.wrote {
				sw.status = 499
			}
		}
		s.metrics.request(route, sw.code(), time.Since(start))
	})
}

// statusWriter remembers whether and what was written.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// recoverPanics turns a panic in a handler into a 500 in the route's
// dialect; the server keeps serving.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil || v == http.ErrAbortHandler {
				if v != nil {
					panic(v)
				}
				return
			}
			s.cfg.Log.Printf("panic serving %s %s: %v\n%s", r.Method, r.URL.Path, v, debug.Stack())
			s.metrics.panic()
			if !sw.wrote {
				writeError(sw, dialectOf(r.URL.Path), errorf(http.StatusInternalServerError, "internal error: %v", v))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// checkHost is the DNS-rebinding defence: on a loopback listener, a request
// whose Host is not a loopback name came through a hostile DNS name.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		loop := s.loopback
		s.mu.Unlock()
		if loop {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if !IsLoopbackHost(host) {
				writeError(w, dialectOf(r.URL.Path), errorf(http.StatusForbidden,
					"host %q is not allowed: this server listens on loopback and only answers requests addressed to localhost", r.Host))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cors answers browsers. With no allowed origins, a request that carries a
// foreign Origin is refused outright (403): without that, a web page could
// still make "simple" cross-origin POSTs that run generations blind.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || sameOrigin(origin, r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		if !s.originAllowed(origin) {
			writeError(w, dialectOf(r.URL.Path), errorf(http.StatusForbidden,
				"origin %q is not allowed (list it with --allowed-origins)", origin))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key, OpenAI-Organization, OpenAI-Project, X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-OS, X-Stainless-Arch, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Retry-Count, X-Stainless-Timeout")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

func sameOrigin(origin, host string) bool {
	_, rest, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(rest, host)
}

// auth requires the API key, when one is set, everywhere but /health.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.APIKey == "" {
		return next
	}
	// Compare digests so that neither the key's bytes nor its length leak
	// through timing.
	want := sha256.Sum256([]byte(s.cfg.APIKey))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		key := r.Header.Get("X-Api-Key")
		if a := r.Header.Get("Authorization"); a != "" {
			if scheme, k, ok := strings.Cut(a, " "); ok && strings.EqualFold(scheme, "Bearer") {
				key = strings.TrimSpace(k)
			}
		}
		if key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slm"`)
			writeError(w, dialectOf(r.URL.Path), &apiError{Status: http.StatusUnauthorized, Code: "invalid_api_key",
				Message: "missing API key: send it as \"Authorization: Bearer KEY\" or \"x-api-key: KEY\""})
			return
		}
		got := sha256.Sum256([]byte(key))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slm"`)
			writeError(w, dialectOf(r.URL.Path), &apiError{Status: http.StatusUnauthorized, Code: "invalid_api_key",
				Message: "invalid API key"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, dialectOf(r.URL.Path), errorf(http.StatusRequestEntityTooLarge,
				"request body of %d bytes exceeds the limit of %d bytes (--max-body-bytes)", r.ContentLength, s.cfg.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// decodeJSON reads the request body into v. strict rejects unknown fields
// (OpenAI and /generate do; Ollama and llama-server ignore them). Errors name
// the field and the types involved.
func decodeJSON(r *http.Request, v any, strict bool) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "request body exceeds the limit of %d bytes (--max-body-bytes)", mbe.Limit)
		}
		return errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return errorf(http.StatusBadRequest, "the request body is empty: expected a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "invalid JSON: unexpected data after the top-level object")
	}
	return nil
}

func jsonError(err error) *apiError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		// The path names embedded structs by their Go type; drop those.
		field := te.Field
		for _, embedded := range []string{"oaiCommon.", "ollamaCommon.", "hfParams."} {
			field = strings.ReplaceAll(field, embedded, "")
		}
		if field == "" {
			return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf("invalid JSON: expected %s, got %s", jsonTypeName(te.Type.Kind().String()), te.Value)}
		}
		return &apiError{Status: http.StatusBadRequest, Param: field,
			Message: fmt.Sprintf("invalid type for %q: expected %s, got %s", field, jsonTypeName(te.Type.Kind().String()), te.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "invalid JSON: the body ends in the middle of a value")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apiError{Status: http.StatusBadRequest, Param: f, Message: fmt.Sprintf("unrecognized request argument supplied: %s", f)}
	default:
		var fe *fieldError
		if errors.As(err, &fe) {
			return &apiError{Status: http.StatusBadRequest, Message: fe.Error()}
		}
		return errorf(http.StatusBadRequest, "invalid JSON: %v", err)
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	default:
		return kind
	}
}

// fieldError is a value of the right JSON type but the wrong shape.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }
