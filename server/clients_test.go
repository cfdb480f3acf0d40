package server_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNodeClients builds the slm binary, starts `slm serve` on a real
// listener and runs testdata/clients/check.mjs: the official openai and
// ollama npm packages, used as applications use them, against it. .ci/run
// installs the packages (npm ci); a developer without node_modules gets them
// installed here.
func TestNodeClients(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the npm client checks")
	}
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		t.Skip("node and npm are not installed: the official openai/ollama npm clients were NOT exercised (install Node.js 20+ to run them)")
	}
	clients, err := filepath.Abs("testdata/clients")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(clients, "node_modules", "openai", "package.json")); err != nil {
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = clients
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", clients, err, out)
		}
	}

	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot build slm")
	}
	bin := filepath.Join(t.TempDir(), "slm")
	build := exec.Command(gobin, "build", "-o", bin, "../cmd/slm")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	const key, model = "npm-check-key", "llama-vocab-spm-f16"
	srv := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--api-key", key,
		"-m", filepath.Join("..", "testdata", "models", model+".gguf"), "--parallel", "2")
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		exited <- srv.Wait()
	}()
	defer func() {
		if srv.ProcessState == nil {
			srv.Process.Kill()
		}
	}()
	var url string
	re := regexp.MustCompile(`listening on (http://\S+)`)
	timeout := time.After(20 * time.Second)
	for url == "" {
		select {
		case ln := <-lines:
			if m := re.FindStringSubmatch(ln); m != nil {
				url = m[1]
			}
		case err := <-exited:
			t.Fatalf("slm serve exited: %v", err)
		case <-timeout:
			t.Fatal("slm serve did not start")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	check := exec.CommandContext(ctx, node, "check.mjs")
	check.Dir = clients
	check.Env = append(os.Environ(), "SLM_URL="+url, "SLM_KEY="+key, "SLM_MODEL="+model)
	out, err := check.CombinedOutput()
	if err != nil {
		t.Errorf("npm client checks failed: %v\n%s", err, out)
	} else {
		t.Logf("npm client checks:\n%s", strings.TrimSpace(string(out)))
	}

	// SIGTERM: graceful shutdown, exit 0.
	srv.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("slm serve exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("slm serve did not stop on SIGTERM")
	}
}
