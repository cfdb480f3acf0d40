// Package pull downloads GGUF models from a Hugging Face repository (or any
// server with the same layout) into the local models directory:
//
//	GET {endpoint}/api/models/{repo}/tree/main   the file listing (sizes, LFS sha256)
//	GET {endpoint}/{repo}/resolve/main/{file}    the file itself (redirects followed)
//
// Downloads go to "<file>.part" and resume from where they stopped with an
// HTTP Range request; the size and the sha256 (from the listing, or the
// X-Linked-Size / X-Linked-Etag headers) are checked before the file is
// renamed into place, so a model file is either complete and verified or
// absent.
package pull

import (
	"cmp"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultEndpoint is Hugging Face's hub.
const DefaultEndpoint = "https://huggingface.co"

// Options configure a download.
type Options struct {
	Endpoint  string       // base URL; DefaultEndpoint when empty
	ModelsDir string       // where models are stored (required)
	Token     string       // bearer token for gated or private repositories
	Client    *http.Client // http.DefaultClient when nil
	// Progress, when set, is told the file name and size before the
	// transfer, the bytes already present (resume), and each chunk read.
	Progress Progress
	// Log receives one-line notes (resuming, already present); may be nil.
	Log func(format string, args ...any)
}

// Progress follows a transfer.
type Progress interface {
	Start(name string, total, already int64)
	Add(n int64)
	Finish()
}

// Ref is a parsed REPO[:FILE or QUANT].
type Ref struct {
	Repo  string // owner/name
	File  string // a file path in the repository, or ""
	Quant string // a quantization tag such as Q4_K_M, or ""
}

// ParseRef parses "owner/name", "owner/name:file.gguf" or
// "owner/name:Q4_K_M" (also accepting a full huggingface.co URL prefix).
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	for _, p := range []string{"https://huggingface.co/", "http://huggingface.co/", "hf.co/", "huggingface.co/"} {
		s = strings.TrimPrefix(s, p)
	}
	repo, sel, _ := strings.Cut(s, ":")
	parts := strings.Split(repo, "/")
	if len(parts) != 2 || !validName(parts[0]) || !validName(parts[1]) {
		return Ref{}, fmt.Errorf("bad repository %q: want OWNER/NAME[:FILE or QUANT], e.g. TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF:Q4_K_M", s)
	}
	r := Ref{Repo: repo}
	switch {
	case sel == "":
	case strings.ContainsAny(sel, "./"): // quantization tags have no dots
		if !validPath(sel) {
			return Ref{}, fmt.Errorf("bad file name %q", sel)
		}
		r.File = sel
	default:
		if !validName(sel) {
			return Ref{}, fmt.Errorf("bad quantization tag %q", sel)
		}
		r.Quant = sel
	}
	return r, nil
}

func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func validPath(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if !validName(part) {
			return false
		}
	}
	return true
}

// RemoteFile is one entry of the repository listing.
type RemoteFile struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	OID  string `json:"oid"` // git blob sha1
	LFS  *struct {
		OID  string `json:"oid"` // sha256 of the content
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// SHA256 is the file's sha256 when the listing gives it (LFS files).
func (f *RemoteFile) SHA256() string {
	if f.LFS != nil {
		return strings.ToLower(f.LFS.OID)
	}
	return ""
}

// ContentSize is the file's size.
func (f *RemoteFile) ContentSize() int64 {
	if f.LFS != nil && f.LFS.Size > 0 {
		return f.LFS.Size
	}
	return f.Size
}

// Error kinds, for errors.Is.
var (
	ErrOffline  = errors.New("cannot reach the server")
	ErrNotFound = errors.New("not found")
	ErrChecksum = errors.New("checksum mismatch")
)

type client struct {
	opt  Options
	base string
}

func newClient(opt Options) (*client, error) {
	base := strings.TrimRight(cmp.Or(opt.Endpoint, DefaultEndpoint), "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bad endpoint %q: want a URL such as %s", base, DefaultEndpoint)
	}
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	if opt.Log == nil {
		opt.Log = func(string, ...any) {}
	}
	return &client{opt: opt, base: base}, nil
}

func (c *client) get(ctx context.Context, u string, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "slm")
	if c.opt.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opt.Token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// Hugging Face puts X-Linked-Size and X-Linked-Etag (the LFS sha256) on
	// the resolve URL's redirect, not on the CDN's answer: keep them.
	cl := *c.opt.Client
	var linked http.Header
	cl.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if r.Response != nil {
			for _, k := range []string{"X-Linked-Size", "X-Linked-Etag"} {
				if v := r.Response.Header.Get(k); v != "" {
					if linked == nil {
						linked = http.Header{}
					}
					linked.Set(k, v)
				}
			}
		}
		if c.opt.Client.CheckRedirect != nil {
			return c.opt.Client.CheckRedirect(r, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, c.netError(err)
	}
	for k, v := range linked {
		if resp.Header.Get(k) == "" {
			resp.Header[k] = v
		}
	}
	return resp, nil
}

// netError turns transport failures into a clear offline message.
func (c *client) netError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ne) {
		return fmt.Errorf("%w %s (offline?): %v", ErrOffline, c.base, err)
	}
	return err
}

func statusError(resp *http.Response, what string) error {
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%s: %w (HTTP 404)", what, ErrNotFound)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s: access denied (HTTP %d): the repository may be private or gated; accept its terms on the website and set HF_TOKEN", what, resp.StatusCode)
	}
	return fmt.Errorf("%s: HTTP %s", what, resp.Status)
}

// List fetches the repository's file listing.
func (c *client) list(ctx context.Context, repo string) ([]RemoteFile, error) {
	u := c.base + "/api/models/" + repo + "/tree/main?recursive=true"
	resp, err := c.get(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, "repository "+repo)
	}
	var files []RemoteFile
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&files); err != nil {
		return nil, fmt.Errorf("repository %s: bad file listing: %v", repo, err)
	}
	return files, nil
}

// List returns the repository's files.
func List(ctx context.Context, repo string, opt Options) ([]RemoteFile, error) {
	c, err := newClient(opt)
	if err != nil {
		return nil, err
	}
	return c.list(ctx, repo)
}

// pick chooses the file a Ref means among the listing's GGUF files.
func pick(r Ref, files []RemoteFile) (*RemoteFile, error) {
	var ggufs []*RemoteFile
	for i := range files {
		f := &files[i]
		if f.Type == "file" && strings.HasSuffix(strings.ToLower(f.Path), ".gguf") {
			ggufs = append(ggufs, f)
		}
	}
	names := func(fs []*RemoteFile) string {
		var s []string
		for _, f := range fs {
			s = append(s, f.Path)
		}
		return strings.Join(s, ", ")
	}
	if r.File != "" {
		for i := range files {
			if files[i].Path == r.File && files[i].Type == "file" {
				return &files[i], nil
			}
		}
		if len(ggufs) > 0 {
			return nil, fmt.Errorf("%s has no file %s: %w (its GGUF files: %s)", r.Repo, r.File, ErrNotFound, names(ggufs))
		}
		return nil, fmt.Errorf("%s has no file %s: %w", r.Repo, r.File, ErrNotFound)
	}
	if len(ggufs) == 0 {
		return nil, fmt.Errorf("%s holds no .gguf file (slm runs GGUF models; convert a checkpoint with slm convert)", r.Repo)
	}
	var match []*RemoteFile
	if r.Quant != "" {
		for _, f := range ggufs {
			if hasTag(path.Base(f.Path), r.Quant) {
				match = append(match, f)
			}
		}
		if len(match) == 0 {
			return nil, fmt.Errorf("%s has no %s file: %w (its GGUF files: %s)", r.Repo, strings.ToUpper(r.Quant), ErrNotFound, names(ggufs))
		}
	} else {
		match = ggufs
		if len(ggufs) > 1 { // like llama.cpp -hf and Ollama: Q4_K_M by default
			for _, f := range ggufs {
				if hasTag(path.Base(f.Path), "Q4_K_M") {
					match = []*RemoteFile{f}
					break
				}
			}
		}
	}
	if len(match) > 1 {
		return nil, fmt.Errorf("%s: %d files match, name one with %s:FILE: %s", r.Repo, len(match), r.Repo, names(match))
	}
	return match[0], nil
}

// hasTag reports whether a file name carries the quantization tag, as a
// whole word: "model-Q4_K_M.gguf" has Q4_K_M but not Q4_K.
func hasTag(name, tag string) bool {
	ln, lt := strings.ToLower(name), strings.ToLower(tag)
	for i := 0; ; {
		j := strings.Index(ln[i:], lt)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || strings.ContainsRune("-._", rune(ln[j-1]))
		end := j + len(lt)
		after := end < len(ln) && strings.ContainsRune("-.", rune(ln[end]))
		if before && after {
			return true
		}
		i = j + 1
	}
}

// Dest is where a repository file is stored: MODELS/owner/name/file.
func Dest(modelsDir, repo, file string) string {
	return filepath.Join(modelsDir, filepath.FromSlash(repo), filepath.FromSlash(file))
}

// Pull downloads the file ref names into opt.ModelsDir and returns its
// path. A complete file already there (same size) is not downloaded again.
func Pull(ctx context.Context, ref Ref, opt Options) (string, error) {
	if opt.ModelsDir == "" {
		return "", errors.New("no models directory")
	}
	c, err := newClient(opt)
	if err != nil {
		return "", err
	}
	var want RemoteFile
	files, err := c.list(ctx, ref.Repo)
	switch {
	case err == nil:
		f, err := pick(ref, files)
		if err != nil {
			return "", err
		}
		want = *f
	case ref.File != "" && !errors.Is(err, ErrOffline) && !errors.Is(err, ErrNotFound):
		// a mirror without the listing API: the file headers still give
		// size and hash
		c.opt.Log("no file listing (%v); relying on the download's headers", err)
		want = RemoteFile{Type: "file", Path: ref.File, Size: -1}
	default:
		return "", err
	}
	dest := Dest(opt.ModelsDir, ref.Repo, want.Path)
	if st, err := os.Stat(dest); err == nil && want.Size >= 0 && st.Size() == want.ContentSize() {
		c.opt.Log("%s is already here", dest)
		return dest, nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", err
	}
	if err := c.download(ctx, ref.Repo, &want, dest); err != nil {
		return "", err
	}
	return dest, nil
}

// download fetches want into dest+".part" (resuming it) and renames it
// into place once size and hash check out.
func (c *client) download(ctx context.Context, repo string, want *RemoteFile, dest string) error {
	part := dest + ".part"
	u := c.base + "/" + repo + "/resolve/main/" + escapePath(want.Path)
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	size := int64(-1)
	if want.Size >= 0 {
		size = want.ContentSize()
	}
	if size >= 0 && have > size {
		have = 0 // longer than the file: start again
	}
	var hdr map[string]string
	if have > 0 {
		hdr = map[string]string{"Range": fmt.Sprintf("bytes=%d-", have)}
	}
	resp, err := c.get(ctx, u, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		have = 0 // the server ignored the range: start again
	case http.StatusPartialContent:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return fmt.Errorf("%s: the server answered the resume request with range %q", want.Path, resp.Header.Get("Content-Range"))
		}
		if size < 0 && total >= 0 {
			size = total
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// the .part is already complete (or the file shrank); verify below
		if _, total, ok := contentRange(resp.Header.Get("Content-Range")); ok && total == have {
			size = have
			resp.Body.Close()
			return c.finish(f, part, dest, want, size, have)
		}
		have = 0
		resp.Body.Close()
		if resp, err = c.get(ctx, u, nil); err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return statusError(resp, want.Path)
		}
	default:
		return statusError(resp, repo+"/"+want.Path)
	}
	// What the headers say about the file (the listing wins when present).
	if ls := resp.Header.Get("X-Linked-Size"); ls != "" && size < 0 {
		if n, err := strconv.ParseInt(ls, 10, 64); err == nil {
			size = n
		}
	}
	if size < 0 && resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 {
		size = resp.ContentLength
	}
	if want.SHA256() == "" {
		if e := strings.Trim(strings.TrimPrefix(resp.Header.Get("X-Linked-Etag"), "W/"), `"`); isHex(e, 64) {
			want.LFS = &struct {
				OID  string `json:"oid"`
				Size int64  `json:"size"`
			}{OID: e, Size: size}
		}
	}
	if err := f.Truncate(have); err != nil {
		return err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	if have > 0 {
		c.opt.Log("resuming %s at %d of %d bytes", want.Path, have, size)
	}
	if c.opt.Progress != nil {
		c.opt.Progress.Start(want.Path, size, have)
		defer c.opt.Progress.Finish()
	}
	var w io.Writer = f
	if c.opt.Progress != nil {
		w = io.MultiWriter(f, progressWriter{c.opt.Progress})
	}
	n, copyErr := io.Copy(w, resp.Body)
	have += n
	if copyErr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("download of %s stopped at %d of %d bytes (%v); run the same command again to resume", want.Path, have, size, ctx.Err())
		}
		return fmt.Errorf("download of %s broke off at %d of %d bytes (%v); run the same command again to resume", want.Path, have, size, c.netError(copyErr))
	}
	return c.finish(f, part, dest, want, size, have)
}

// finish checks the .part file's size and hash and renames it to dest. A
// .part that fails the check is removed: its bytes are wrong, so resuming
// it would never succeed.
func (c *client) finish(f *os.File, part, dest string, want *RemoteFile, size, have int64) error {
	if size >= 0 && have != size {
		return fmt.Errorf("download of %s ended at %d of %d bytes; run the same command again to resume", want.Path, have, size)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	var h hash.Hash
	var wantSum, kind string
	switch {
	case want.SHA256() != "":
		h, wantSum, kind = sha256.New(), want.SHA256(), "sha256"
	case isHex(want.OID, 40) && want.LFS == nil:
		// a plain git file: its oid is the sha1 of "blob <size>\0" + content
		h, wantSum, kind = sha1.New(), strings.ToLower(want.OID), "git blob sha1"
		fmt.Fprintf(h, "blob %d\x00", have)
	}
	if h != nil {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != wantSum {
			f.Close()
			os.Remove(part)
			return fmt.Errorf("%s: %w: %s %s, expected %s; the corrupt download was removed, run the command again", want.Path, ErrChecksum, kind, got, wantSum)
		}
	} else {
		c.opt.Log("no checksum known for %s: checked its size only", want.Path)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(part, dest); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(dest)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

type progressWriter struct{ p Progress }

func (w progressWriter) Write(b []byte) (int, error) { w.p.Add(int64(len(b))); return len(b), nil }

// contentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", giving -1)
// or "bytes */TOTAL" (START -1).
func contentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		n, err := strconv.ParseInt(tot, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total = n
	}
	if rng == "*" {
		return -1, total, true
	}
	a, _, found := strings.Cut(rng, "-")
	n, err := strconv.ParseInt(a, 10, 64)
	if !found || err != nil {
		return 0, 0, false
	}
	return n, total, true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// Local lists the GGUF files under modelsDir (complete ones, not .part),
// as paths relative to it.
func Local(modelsDir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(modelsDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if p == modelsDir && errors.Is(err, os.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(strings.ToLower(p), ".gguf") {
			rel, _ := filepath.Rel(modelsDir, p)
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}
