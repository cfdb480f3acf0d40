package pull

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hub is a fake Hugging Face: a listing and resolve/main URLs that
// redirect to a CDN path serving byte ranges, with switches to break
// downloads in the ways networks do.
type hub struct {
	t     *testing.T
	repo  string
	files map[string][]byte // what the listing describes

	mu       sync.Mutex
	serve    map[string][]byte // what is actually served (a corrupt copy, say)
	cutAfter int               // send only this many bytes, then drop the connection (0: off)
	ranges   []string          // Range headers seen on downloads
	noList   bool
}

func newHub(t *testing.T) (*hub, *httptest.Server) {
	h := &hub{t: t, repo: "acme/tiny-GGUF", files: map[string][]byte{}, serve: map[string][]byte{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func (h *hub) add(name string, data []byte) {
	h.files[name] = data
	h.serve[name] = data
}

func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case r.URL.Path == "/api/models/"+h.repo+"/tree/main":
		if h.noList {
			http.Error(w, "no api", http.StatusInternalServerError)
			return
		}
		var list []map[string]any
		list = append(list, map[string]any{"type": "directory", "path": "docs", "oid": "x", "size": 0})
		for name, data := range h.files {
			e := map[string]any{"type": "file", "path": name, "size": len(data)}
			if strings.HasSuffix(name, ".gguf") {
				sum := sha256.Sum256(data)
				e["oid"] = "0123456789abcdef0123456789abcdef01234567"
				e["lfs"] = map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data), "pointerSize": 134}
			} else {
				s := sha1.New()
				fmt.Fprintf(s, "blob %d\x00", len(data))
				s.Write(data)
				e["oid"] = hex.EncodeToString(s.Sum(nil))
			}
			list = append(list, e)
		}
		json.NewEncoder(w).Encode(list)
	case strings.HasPrefix(r.URL.Path, "/"+h.repo+"/resolve/main/"):
		name := strings.TrimPrefix(r.URL.Path, "/"+h.repo+"/resolve/main/")
		data, ok := h.files[name]
		if !ok {
			http.Error(w, "Entry not found", http.StatusNotFound)
			return
		}
		sum := sha256.Sum256(data)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
		w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
		http.Redirect(w, r, "/cdn/"+name, http.StatusFound)
	case strings.HasPrefix(r.URL.Path, "/cdn/"):
		name := strings.TrimPrefix(r.URL.Path, "/cdn/")
		data := h.serve[name]
		h.ranges = append(h.ranges, r.Header.Get("Range"))
		if h.cutAfter > 0 {
			n := h.cutAfter
			h.cutAfter = 0
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:n])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection mid-file
		}
		http.ServeContent(w, r, name, time.Time{}, strings.NewReader(string(data)))
	default:
		http.NotFound(w, r)
	}
}

func model(n int) []byte {
	b := make([]byte, n)
	copy(b, "GGUF")
	for i := 4; i < n; i++ {
		b[i] = byte(i * 7 / 3)
	}
	return b
}

func opts(t *testing.T, srv *httptest.Server) Options {
	return Options{Endpoint: srv.URL, ModelsDir: t.TempDir()}
}

func TestPullQuantTag(t *testing.T) {
	h, srv := newHub(t)
	h.add("tiny-Q4_K_M.gguf", model(1000))
	h.add("tiny-Q4_K.gguf", model(900))
	h.add("tiny-Q8_0.gguf", model(1200))
	h.add("README.md", []byte("hello"))
	opt := opts(t, srv)
	for _, tc := range []struct{ ref, want string }{
		{"acme/tiny-GGUF:q8_0", "tiny-Q8_0.gguf"},
		{"acme/tiny-GGUF:Q4_K", "tiny-Q4_K.gguf"},
		{"acme/tiny-GGUF", "tiny-Q4_K_M.gguf"}, // the default choice
		{"acme/tiny-GGUF:tiny-Q4_K.gguf", "tiny-Q4_K.gguf"},
		{"acme/tiny-GGUF:README.md", "README.md"}, // a plain git file: sha1 checked
	} {
		ref, err := ParseRef(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Pull(context.Background(), ref, opt)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if want := filepath.Join(opt.ModelsDir, "acme", "tiny-GGUF", tc.want); got != want {
			t.Errorf("%s: got %s, want %s", tc.ref, got, want)
		}
		b, _ := os.ReadFile(got)
		if string(b) != string(h.files[tc.want]) {
			t.Errorf("%s: wrong content", tc.ref)
		}
	}
	local, _ := Local(opt.ModelsDir)
	if len(local) != 3 {
		t.Errorf("local models %v", local)
	}
	// pulled again: nothing is downloaded
	h.ranges = nil
	ref, _ := ParseRef("acme/tiny-GGUF:Q8_0")
	if _, err := Pull(context.Background(), ref, opt); err != nil || len(h.ranges) != 0 {
		t.Errorf("second pull: %v, %d downloads", err, len(h.ranges))
	}
}

func TestResumeAfterInterruption(t *testing.T) {
	h, srv := newHub(t)
	data := model(100_000)
	h.add("m-Q4_0.gguf", data)
	opt := opts(t, srv)
	var notes []string
	opt.Log = func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
	ref, _ := ParseRef("acme/tiny-GGUF:Q4_0")
	dest := Dest(opt.ModelsDir, ref.Repo, "m-Q4_0.gguf")

	h.cutAfter = 30_000
	_, err := Pull(context.Background(), ref, opt)
	if err == nil || !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Fatalf("interrupted download: %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an incomplete download was put in place")
	}
	st, err := os.Stat(dest + ".part")
	if err != nil || st.Size() != 30_000 {
		t.Fatalf(".part after the interruption: %v %v", st, err)
	}
	var bar fakeBar
	opt.Progress = &bar
	got, err := Pull(context.Background(), ref, opt)
	if err != nil {
		t.Fatal(err)
	}
	if last := h.ranges[len(h.ranges)-1]; last != "bytes=30000-" {
		t.Errorf("resume asked for range %q", last)
	}
	b, _ := os.ReadFile(got)
	if string(b) != string(data) {
		t.Error("resumed file differs")
	}
	if _, err := os.Stat(dest + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Error(".part left behind")
	}
	if bar.total != 100_000 || bar.already != 30_000 || bar.added != 70_000 || !bar.done {
		t.Errorf("progress %+v", bar)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "resuming") {
		t.Errorf("notes %q", notes)
	}
}

type fakeBar struct {
	total, already, added int64
	done                  bool
}

func (b *fakeBar) Start(_ string, total, already int64) { b.total, b.already = total, already }
func (b *fakeBar) Add(n int64)                          { b.added += n }
func (b *fakeBar) Finish()                              { b.done = true }

func TestCorruptByte(t *testing.T) {
	h, srv := newHub(t)
	data := model(50_000)
	h.add("m-Q8_0.gguf", data)
	bad := append([]byte(nil), data...)
	bad[12345] ^= 0x40
	h.serve["m-Q8_0.gguf"] = bad
	opt := opts(t, srv)
	ref, _ := ParseRef("acme/tiny-GGUF:m-Q8_0.gguf")
	_, err := Pull(context.Background(), ref, opt)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("corrupt download: %v", err)
	}
	dest := Dest(opt.ModelsDir, ref.Repo, "m-Q8_0.gguf")
	for _, p := range []string{dest, dest + ".part"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a checksum failure", p)
		}
	}
	// the server is fixed: the next pull works
	h.serve["m-Q8_0.gguf"] = data
	if _, err := Pull(context.Background(), ref, opt); err != nil {
		t.Fatal(err)
	}
	// a corrupt .part that a resume completes is caught too
	os.Remove(dest)
	os.WriteFile(dest+".part", bad[:20_000], 0o644)
	if _, err := Pull(context.Background(), ref, opt); !errors.Is(err, ErrChecksum) {
		t.Fatalf("resumed corrupt .part: %v", err)
	}
}

func TestHeadersWithoutListing(t *testing.T) {
	h, srv := newHub(t)
	data := model(5000)
	h.add("x.gguf", data)
	h.noList = true
	bad := append([]byte(nil), data...)
	bad[3000]++
	h.serve["x.gguf"] = bad
	opt := opts(t, srv)
	ref, _ := ParseRef("acme/tiny-GGUF:x.gguf")
	if _, err := Pull(context.Background(), ref, opt); !errors.Is(err, ErrChecksum) {
		t.Fatalf("X-Linked-Etag not checked: %v", err)
	}
	h.serve["x.gguf"] = data
	if _, err := Pull(context.Background(), ref, opt); err != nil {
		t.Fatal(err)
	}
}

func TestNotFound(t *testing.T) {
	h, srv := newHub(t)
	h.add("tiny-Q4_0.gguf", model(100))
	opt := opts(t, srv)
	for ref, want := range map[string]string{
		"acme/missing":                 "repository acme/missing: not found",
		"acme/tiny-GGUF:Q6_K":          "has no Q6_K file: not found (its GGUF files: tiny-Q4_0.gguf)",
		"acme/tiny-GGUF:nothere.gguf":  "has no file nothere.gguf",
		"acme/tiny-GGUF:dir/../x.gguf": "bad file name",
	} {
		r, err := ParseRef(ref)
		if err == nil {
			_, err = Pull(context.Background(), r, opt)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", ref, err, want)
		}
	}
	if _, err := ParseRef("not-a-repo"); err == nil {
		t.Error("a name without owner was accepted")
	}
}

func TestOffline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	ref, _ := ParseRef("acme/tiny-GGUF:Q4_0")
	_, err = Pull(context.Background(), ref, Options{Endpoint: "http://" + addr, ModelsDir: t.TempDir()})
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "offline?") {
		t.Fatalf("offline: %v", err)
	}
}

func TestHasTag(t *testing.T) {
	for name, tags := range map[string]string{
		"model-Q4_K_M.gguf":                "q4_k_m",
		"model.Q4_K.gguf":                  "Q4_K",
		"Model-Q8_0-00001-of-00002.gguf":   "Q8_0",
		"qwen2.5-0.5b-instruct-fp16.gguf":  "fp16",
		"tinyllama-1.1b-chat.Q5_K_S.gguf":  "Q5_K_S",
		"tinyllama-1.1b-chat.Q5_K_S.gguf ": "",
	} {
		if tags != "" && !hasTag(name, tags) {
			t.Errorf("%s lacks %s", name, tags)
		}
	}
	for name, tag := range map[string]string{"model-Q4_K_M.gguf": "Q4_K", "model-IQ4_XS.gguf": "Q4_XS", "model-Q4_0.gguf": "Q4"} {
		if hasTag(name, tag) {
			t.Errorf("%s matched %s", name, tag)
		}
	}
}
