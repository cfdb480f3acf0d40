package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slm-dev/slm/bench"
	"github.com/slm-dev/slm/server"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure slm",
	}
	addModelBench(cmd) // slm bench -m FILE …: llama-bench's tests (bench_models.go)
	cmd.AddCommand(newBenchServeCmd())
	return cmd
}

func newBenchServeCmd() *cobra.Command {
	var (
		cfg    = bench.ServeConfig{URL: "http://" + server.DefaultListen}
		keyEnv string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "serve [--url URL] [--dialect D] [-c N] [-n N | --duration D] [--prompt-tokens N] [--max-tokens N]",
		Short: "Load-test a running slm serve (or any compatible server) with concurrent streaming clients",
		Long: "Drive a running server with concurrent streaming clients and report time to first token (TTFT),\n" +
			"inter-token latency (ITL) and end-to-end latency (E2E) at p50/p90/p99, with tokens/s and requests/s.\n" +
			"Dialects: openai (/v1/completions), chat (/v1/chat/completions), ollama (/api/generate), llama (/completion).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.APIKey == "" && keyEnv != "" {
				cfg.APIKey = os.Getenv(keyEnv)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			rep, err := bench.RunServe(ctx, cfg)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.Write(cmd.OutOrStdout())
			if rep.Failed == rep.Requests && rep.Requests > 0 {
				return fmt.Errorf("every request failed")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.URL, "url", cfg.URL, "server base URL")
	f.StringVar(&cfg.APIKey, "api-key", "", "API key (Bearer)")
	f.StringVar(&keyEnv, "api-key-env", "SLM_API_KEY", "environment variable holding the API key when --api-key is not given")
	f.StringVar(&cfg.Dialect, "dialect", "openai", "API to drive: "+strings.Join(bench.Dialects, ", "))
	f.StringVarP(&cfg.Model, "model", "m", "", "model name (default: the server's first; required by openai/chat/ollama servers other than slm)")
	f.IntVarP(&cfg.Concurrency, "concurrency", "c", 4, "concurrent clients")
	f.IntVarP(&cfg.Requests, "requests", "n", 32, "total requests (0: run for --duration)")
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "when --requests is 0: how long to keep starting requests (those in flight then finish)")
	f.IntVar(&cfg.PromptTokens, "prompt-tokens", 64, "approximate prompt length in tokens")
	f.IntVar(&cfg.MaxTokens, "max-tokens", 64, "tokens to generate per request")
	f.BoolVar(&cfg.IgnoreEOS, "ignore-eos", true, "ask the server to generate exactly --max-tokens (openai, chat, llama)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
