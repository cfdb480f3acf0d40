package cli

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeRefusesPublicBindWithoutKey(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		code, _, errs := slm(t, "", "serve", "--listen", addr)
		if code == 0 || !strings.Contains(errs, "without an API key") || !strings.Contains(errs, "--api-key") {
			t.Errorf("--listen %s: exit %d, stderr %q", addr, code, errs)
		}
	}
	empty := filepath.Join(t.TempDir(), "key")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if code, _, errs := slm(t, "", "serve", "--listen", "0.0.0.0:0", "--api-key-file", empty); code == 0 || !strings.Contains(errs, "empty") {
		t.Errorf("empty key file: exit %d, %q", code, errs)
	}
	if code, _, errs := slm(t, "", "serve", "--max-memory", "lots"); code == 0 || !strings.Contains(errs, "max-memory") {
		t.Errorf("bad --max-memory: exit %d, %q", code, errs)
	}
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "512MiB": 512 << 20, "8GB": 8e9, "1.5g": 3 << 29, "100": 100, "2 KiB": 2048} {
		if got, err := parseBytes(s); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
}

// TestServeEndToEnd starts `slm serve` on a real listener with the embedded
// model, with a key, makes requests, then stops it with SIGINT: exit 0.
func TestServeEndToEnd(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte("k3y\n"), 0o600)
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"serve", "--listen", "127.0.0.1:0", "--api-key-file", keyFile, "--parallel", "2"},
			strings.NewReader(""), io.Discard, &stderr)
	}()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	call := func(method, path, body, key string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := call("GET", "/health", "", ""); code != 200 {
		t.Errorf("/health: %d", code)
	}
	if code, _ := call("GET", "/v1/models", "", "wrong"); code != 401 {
		t.Errorf("wrong key: %d", code)
	}
	code, body := call("GET", "/v1/models", "", "k3y")
	if code != 200 || !strings.Contains(body, `"id":"default"`) {
		t.Errorf("/v1/models: %d %s", code, body)
	}
	code, body = call("POST", "/generate", `{"prompt":"Once upon a time","max_tokens":8}`, "k3y")
	if code != 200 || !strings.HasPrefix(body, `[{"generated_text":"Once upon a time`) {
		t.Errorf("/generate: %d %s", code, body)
	}

	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGINT: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Errorf("stderr: %s", stderr.String())
	}
}
