package cli_test

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

func loadRunner(path string) (*runner.Runner, error) {
	cfg, err := config.Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	return runner.New(context.Background(), cfg, runner.Options{Stdin: os.Stdin, Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}
