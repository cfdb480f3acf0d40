package cli

import (
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/chat"
	"github.com/slm-dev/slm/internal/defaultmodel"
	"github.com/slm-dev/slm/server"
)

func newServeCmd() *cobra.Command {
	var (
		listen      string
		files       []string
		dir         string
		apiKey      string
		apiKeyFile  string
		origins     []string
		maxBody     int64
		parallel    int
		queue       int
		nCtx        int
		maxMemory   string
		keepAlive   time.Duration
		gracePeriod time.Duration
		chatTmpl    string
	)
	cmd := &cobra.Command{
		Use:   "serve [--listen HOST:PORT] [-m FILE]... [--models DIR] [--api-key K | --api-key-file F]",
		Short: "Serve models over HTTP: OpenAI, Ollama, llama-server and POST /generate APIs",
		Long: "Serve models over HTTP on one listener: OpenAI (/v1/...), Ollama (/api/...), llama-server\n" +
			"(/completion, /tokenize, /metrics, ...) and POST /generate.\n\n" +
			"Private by default: it listens on " + server.DefaultListen + " and refuses any other address\n" +
			"unless an API key is set. Without -m or --models it serves the embedded model as \"default\".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if apiKey != "" && apiKeyFile != "" {
				return fmt.Errorf("give --api-key or --api-key-file, not both")
			}
			if apiKeyFile != "" {
				b, err := os.ReadFile(apiKeyFile)
				if err != nil {
					return fmt.Errorf("--api-key-file: %w", err)
				}
				apiKey = strings.TrimSpace(string(b))
				if apiKey == "" {
					return fmt.Errorf("--api-key-file %s is empty", apiKeyFile)
				}
			}
			if err := server.CheckListen(listen, apiKey); err != nil {
				return err
			}
			var tmpl *chat.Template
			if chatTmpl != "" {
				t, err := chat.LoadTemplateFile(chatTmpl)
				if err != nil {
					return fmt.Errorf("--chat-template: %w", err)
				}
				tmpl = t
			}
			budget, err := parseBytes(maxMemory)
			if err != nil {
				return fmt.Errorf("--max-memory: %w", err)
			}
			var srcs []server.ModelSource
			for _, f := range files {
				srcs = append(srcs, server.ModelSource{Name: server.ModelName(f), Path: f})
			}
			if len(files) == 0 && dir == "" {
				srcs = append(srcs, server.ModelSource{Name: server.DefaultModelName, Data: defaultmodel.Bytes()})
			}
			models, err := server.NewManager(server.ManagerConfig{
				Sources: srcs, Dir: dir, Parallel: parallel, Queue: queue, NCtx: nCtx,
				MaxMemory: budget, KeepAlive: keepAlive,
			})
			if err != nil {
				return err
			}
			defer models.Close()
			stderr := cmd.ErrOrStderr()
			srv := server.New(server.Config{
				APIKey: apiKey, AllowedOrigins: origins, MaxBodyBytes: maxBody, Version: Version,
				Log: log.New(stderr, "slm serve: ", log.LstdFlags), ChatTemplate: tmpl,
			}, models)

			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			// The name passed CheckListen; make sure what it resolved to is
			// loopback too before serving without a key.
			if tcp, ok := ln.Addr().(*net.TCPAddr); ok && apiKey == "" && !tcp.IP.IsLoopback() {
				ln.Close()
				return server.CheckListen(ln.Addr().String(), "")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			names := []string{}
			for _, mi := range models.List() {
				names = append(names, mi.Name)
			}
			if len(names) == 0 {
				fmt.Fprintf(stderr, "slm serve: warning: no models to serve yet (%s holds no *.gguf file)\n", dir)
			}
			fmt.Fprintf(stderr, "slm serve: listening on http://%s (models: %s)\n", ln.Addr(), strings.Join(names, ", "))
			if err := srv.Serve(ctx, ln, gracePeriod); err != nil {
				return err
			}
			fmt.Fprintln(stderr, "slm serve: stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", server.DefaultListen, "address to listen on (HOST:PORT); anything but loopback needs an API key")
	f.StringArrayVarP(&files, "model", "m", nil, "GGUF model file to serve, addressed by its file name without .gguf (repeatable)")
	f.StringVar(&dir, "models", "", "directory whose *.gguf files are served, each by its file name without .gguf")
	f.StringVar(&apiKey, "api-key", "", "require this key (Authorization: Bearer KEY or x-api-key: KEY) on every route but /health")
	f.StringVar(&apiKeyFile, "api-key-file", "", "read the API key from this file")
	f.StringSliceVar(&origins, "allowed-origins", nil, "browser origins allowed to call the API (CORS), comma-separated; * for any")
	f.Int64Var(&maxBody, "max-body-bytes", server.DefaultMaxBodyBytes, "largest request body accepted")
	f.IntVar(&parallel, "parallel", 4, "sequences generated at once per model, each with its own full context")
	f.IntVar(&queue, "queue", 64, "requests that may wait for a free sequence per model; beyond that, 503")
	f.IntVarP(&nCtx, "ctx", "c", 0, "context size in tokens per sequence (default: the model's, at most 4096)")
	f.StringVar(&maxMemory, "max-memory", "0", "memory budget for loaded models (weights + KV), e.g. 8GiB; least recently used models are unloaded to fit (0: no limit)")
	f.DurationVar(&keepAlive, "keep-alive", server.DefaultKeepAlive, "how long a model stays loaded after its last request (0: unload at once, negative: forever)")
	f.StringVar(&chatTmpl, "chat-template", "", "Jinja chat template file (or a tokenizer_config.json) used for every model instead of its own tokenizer.chat_template")
	f.DurationVar(&gracePeriod, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long in-flight requests may take to finish before they are canceled")
	return cmd
}

// parseBytes reads a size such as "0", "512MiB", "8GB", "1.5g".
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	mult := float64(1)
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 8GiB, 512MB or 0)", s)
	}
	return int64(v * mult), nil
}
