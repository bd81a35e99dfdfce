package cli_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/cli"
)

// TestMain lets a test run this package's command line in a child
// process (EVENTPIPE_CLI_MAIN=1): the process-level behaviour of a stop
// can only be seen from outside.
func TestMain(m *testing.M) {
	if os.Getenv("EVENTPIPE_CLI_MAIN") == "1" {
		os.Exit(cli.Main(os.Args[1:], cli.OS()))
	}
	os.Exit(m.Run())
}

// An endless loop in a plugin, even one marked trusted (a deprecated key
// that once turned limits off), does not hold a stop: the module is
// metered, its batch is stopped at its timeout, and the process ends.
func TestStopEndsDespiteAStuckTrustedPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process that spins a core for seconds")
	}
	dir := t.TempDir()
	loop, err := filepath.Abs("../../host/testdata/plugins/loop.wasm")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(`events: {enabled: true, stats_interval: 0}
filter:
  plugins:
    - {path: `+loop+`, trusted: true}
route: {default: [out]}
export:
  out: {type: file, path: out.jsonl}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "run", "-c", cfg, "--input", "-", "--drain-timeout", "1s")
	cmd.Env = append(os.Environ(), "EVENTPIPE_CLI_MAIN=1", "EVENTPIPE_WASM_CACHE="+filepath.Join(dir, "cache"))
	logf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	logText := func() []byte { b, _ := os.ReadFile(logf.Name()); return b }
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if _, err := stdin.Write([]byte(`{"type":"agent.step","data":{}}` + "\n")); err != nil {
		t.Fatal(err)
	}
	// The event reaches the plugin once the pipeline runs; wait for that
	// line in the log, then stop.
	deadline := time.Now().Add(90 * time.Second)
	for !bytes.Contains(logText(), []byte("pipeline running")) {
		if time.Now().After(deadline) {
			t.Fatalf("never running:\n%s", logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The loop is stopped by its fuel (or its timeout), and the batch
	// dead-lettered.
	for !bytes.Contains(logText(), []byte("plugin failed")) {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's loop was never stopped:\n%s", logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("still running 90s after SIGTERM with a 1s drain timeout:\n%s", logText())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("exit: %v\n%s", err, logText())
	}
	if !regexp.MustCompile(`kind=(fuel|timeout)`).Match(logText()) || !bytes.Contains(logText(), []byte("trusted is deprecated")) {
		t.Errorf("the stuck batch was not stopped by its limits, or trusted was not reported:\n%s", logText())
	}
}
