package runner_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func noEnv(string) (string, bool) { return "", false }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// validate is what `eventpipe validate` does: the file's own checks and
// every component's, in one pass.
func validate(t *testing.T, path string) config.Errors {
	t.Helper()
	cfg, err := config.Load(path, noEnv)
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		t.Fatal(err)
	}
	if verr := runner.Validate(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv}); verr != nil {
		errs = append(errs, cfg.ErrorsFor("", verr)...)
	}
	if err := errs.Err(); err != nil {
		return err.(config.Errors)
	}
	return nil
}

func TestBrokenConfigReportsEveryErrorWithPosition(t *testing.T) {
	errs := validate(t, "testdata/broken.yaml")
	for _, e := range errs {
		if e.Line == 0 || e.File != "testdata/broken.yaml" {
			t.Errorf("error without position: %v", e)
		}
	}
	golden(t, "testdata/broken.golden", []byte(errs.Error()+"\n"))
}
