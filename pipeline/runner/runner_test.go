package runner_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/internal/golden"
	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

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
	golden.Check(t, "testdata/broken.golden", []byte(errs.Error()+"\n"))
}

// hostRegistry is the native components plus the wasm host's plugins.
func hostRegistry(t *testing.T) (*component.Registry, *host.Host) {
	t.Helper()
	h, err := host.New(host.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	reg := runner.NewRegistry()
	if err := reg.Register(h.Factories()...); err != nil {
		t.Fatal(err)
	}
	return reg, h
}

func writeConfig(t *testing.T, dir, text string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestValidateFindsWhatRunRefuses(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	filter, notWasm := abs("../../sdk/wat/filter.wasm"), abs("../../testdata/events.jsonl")
	base := "route:\n  default: [out]\nexport:\n  out:\n    type: stdout\n"
	for name, tc := range map[string]struct{ yaml, want string }{
		"plugin of the wrong kind": {"route:\n  plugin:\n    path: " + filter + "\nexport:\n  out:\n    type: stdout\n",
			"route.plugin: plugin " + filter + ": is a filter plugin, used here as route"},
		"plugin that is not wasm":  {base + "filter:\n  plugins:\n    - path: " + notWasm + "\n", "filter.plugins[0]: plugin " + notWasm + ": not a valid wasm module"},
		"missing input file":       {base + "ingest:\n  - type: file\n    path: nope.jsonl\n", "ingest[0].path: input file:"},
		"hash_fields without key":  {base + "sanitize:\n  hash_fields: [user]\n", "sanitize.hash_fields: needs a key in the environment variable EVENTPIPE_HASH_KEY"},
		"listen address":           {base + "ingest:\n  - type: http\n    listen: nonsense\n", `ingest[0].listen: want host:port, got "nonsense"`},
		"pool 0":                   {base + "filter:\n  plugins:\n    - path: " + filter + "\n      pool: 0\n", "filter.plugins[0].pool: must be at least 1"},
		"unknown capability":       {base + "filter:\n  plugins:\n    - path: " + filter + "\n      capabilities: [teleport]\n", `filter.plugins[0].capabilities[0]: unknown capability "teleport"`},
		"allowed_paths missing":    {base + "filter:\n  plugins:\n    - path: " + filter + "\n      allowed_paths: [/nonexistent/dir]\n", "filter.plugins[0].allowed_paths:"},
		"unknown output type":      {"route:\n  default: [out]\nexport:\n  out:\n    type: carrier-pigeon\n", `export.out.type: unknown output type "carrier-pigeon"`},
		"unknown retry key":        {"route:\n  default: [out]\nexport:\n  out:\n    type: stdout\n    retry: {tries: 3}\n", `export.out.retry.tries: unknown key "tries"`},
		"disabled sanitize, rules": {base + "sanitize:\n  enabled: false\n  secrets: true\n", "sanitize.secrets: has no effect: sanitize.enabled is false"},
	} {
		t.Run(name, func(t *testing.T) {
			reg, h := hostRegistry(t)
			cfg := writeConfig(t, t.TempDir(), tc.yaml)
			err := runner.Validate(context.Background(), cfg, runner.Options{Registry: reg, Logger: quiet(), Getenv: noEnv})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
			for _, e := range cfg.ErrorsFor("", err) {
				if e.Line == 0 {
					t.Errorf("no position: %v", e)
				}
			}
			// The same file fails New, and nothing either built is left open.
			if _, err := runner.New(context.Background(), cfg, runner.Options{Registry: reg, Logger: quiet(), Getenv: noEnv}); err == nil {
				t.Error("New accepted what Validate refused")
			}
			if n := h.OpenRuntimes(); n != 0 {
				t.Errorf("%d wasm runtimes left open", n)
			}
		})
	}
}

// started runs r until the returned stop is called; it returns once the
// pipeline is running. stop returns what Run returned.
func started(t *testing.T, r *runner.Runner) (stop func() (runner.Summary, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		sum runner.Summary
		err error
	}
	done := make(chan result, 1)
	go func() { s, err := r.Run(ctx); done <- result{s, err} }()
	select {
	case <-r.AdminReady():
	case res := <-done:
		t.Fatalf("run ended at once: %v", res.err)
	}
	return func() (runner.Summary, error) {
		cancel()
		res := <-done
		return res.sum, res.err
	}
}

func TestReloadReleasesEveryPluginAndKeepsCounters(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	reg, h := hostRegistry(t)
	dir := t.TempDir()
	filter, err := filepath.Abs("../../sdk/wat/filter.wasm")
	if err != nil {
		t.Fatal(err)
	}
	text := "filter:\n  plugins:\n    - path: " + filter + "\n      pool: 2\nroute:\n  default: [out]\nexport:\n  out:\n    type: file\n    path: out.jsonl\ndead_letter:\n  path: dead.jsonl\n"
	cfg := writeConfig(t, dir, text)
	r, err := runner.New(context.Background(), cfg, runner.Options{Registry: reg, Logger: quiet(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if n := h.OpenRuntimes(); n != 1 {
		t.Fatalf("%d runtimes after New", n)
	}
	stop := started(t, r)
	publish := func(n int) { publishSteps(t, r, n) }
	publish(5)
	for i := 0; i < 25; i++ {
		if err := r.Reload(context.Background(), writeConfig(t, dir, text)); err != nil {
			t.Fatal(err)
		}
	}
	// A reload that fails leaves the running graph as it was.
	bad := writeConfig(t, dir, strings.Replace(text, filter, filter+".missing", 1))
	if err := r.Reload(context.Background(), bad); err == nil {
		t.Fatal("reload with a missing plugin accepted")
	}
	if n := h.OpenRuntimes(); n != 1 {
		t.Errorf("%d wasm runtimes open after 25 reloads, want 1", n)
	}
	publish(5)
	sum, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	// The same five events before and after the reloads: the reference
	// filter keeps or drops each the same way both times.
	dropped := sum.Dropped["plugin:filter: dropped by plugin"]
	if sum.Accepted != 10 || sum.Exported["out"]+dropped != 10 || sum.Exported["out"]%2 != 0 || sum.Exported["out"] == 0 {
		t.Errorf("counters do not span reloads: %s", sum)
	}
	if n := h.OpenRuntimes(); n != 0 {
		t.Errorf("%d wasm runtimes open after the run", n)
	}
}

func TestShutdownDoesNotWaitForABlockedInput(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe() // a stdin whose writer never writes nor closes
	defer pw.Close()
	cfg := writeConfig(t, dir, "route:\n  default: [out]\nexport:\n  out:\n    type: file\n    path: out.jsonl\ndead_letter:\n  path: dead.jsonl\n")
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv, Stdin: pr, Inputs: []string{"-", fifo}})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	done := make(chan error, 1)
	go func() { _, err := stop(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(time.Minute): // a generous bound; a blocked read would hold Run forever
		t.Fatal("Run did not return after its context ended: a blocked read held it")
	}
}

func TestAComponentThatCannotStartFailsTheRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "ingest:\n  - type: http\n    listen: "+ln.Addr().String()+"\nroute:\n  default: [out]\nexport:\n  out:\n    type: file\n    path: out.jsonl\ndead_letter:\n  path: dead.jsonl\n")
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ingest[0]: start") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("got %v", err)
	}
}

// stuck is a stage that cannot be interrupted: it ignores its context, as
// a wasm plugin without termination checks would.
type stuck struct {
	component.NoLifecycle
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

type stuckConfig struct{}

func (*stuckConfig) Validate() error { return nil }

func (s *stuck) Process(context.Context, *pipeline.Batch) error {
	s.once.Do(func() { close(s.entered) }) // once released, later batches pass through
	<-s.release
	return nil
}

func TestDrainEndsAtItsDeadlineEvenWhenAStageCannotBeInterrupted(t *testing.T) {
	s := &stuck{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(s.release)
	reg := runner.NewRegistry()
	if err := reg.Register(component.NewStageFactory("stuck", func() *stuckConfig { return &stuckConfig{} },
		func(context.Context, component.Settings, *stuckConfig) (component.Stage, error) { return s, nil })); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "sanitize:\n  plugins:\n    - type: stuck\nroute:\n  default: [out]\nexport:\n  out:\n    type: file\n    path: out.jsonl\ndead_letter:\n  path: dead.jsonl\n")
	r, err := runner.New(context.Background(), cfg, runner.Options{Registry: reg, Logger: quiet(), Getenv: noEnv, DrainTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	for i := 0; i < 3; i++ {
		if err := r.Publish(context.Background(), pipeline.Event{Type: "a.b"}); err != nil {
			t.Fatal(err)
		}
	}
	<-s.entered
	sum, err := stop()
	if err == nil || !strings.Contains(sum.String(), "NOT FLUSHED") {
		t.Fatalf("summary %q, err %v", sum, err)
	}
}

func TestReloadAppliesTheNewTypeFilter(t *testing.T) {
	dir := t.TempDir()
	text := func(exclude string) string {
		return "filter:\n  exclude_types: [\"" + exclude + "\"]\nroute:\n  default: [out]\nexport:\n  out:\n    type: file\n    path: out.jsonl\ndead_letter:\n  path: dead.jsonl\n"
	}
	r, err := runner.New(context.Background(), writeConfig(t, dir, text("a.*")), runner.Options{Logger: quiet(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	ev := pipeline.Event{Type: "a.x", Data: []byte(`{}`)}
	_ = r.Publish(context.Background(), ev) // filtered on the fast path: not an error to the source
	if err := r.Reload(context.Background(), writeConfig(t, dir, text("b.*"))); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	sum, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Exported["out"] != 1 || sum.Dropped["filter: type"] != 1 {
		t.Errorf("the reloaded filter did not apply: %s", sum)
	}
}
