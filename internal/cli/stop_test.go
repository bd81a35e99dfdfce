package cli_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

// An endless loop in a trusted plugin (no termination checks) cannot be
// interrupted; the stop still ends the process once the drain timeout
// has passed.
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
	if err := os.WriteFile(cfg, []byte(`events: {enabled: true}
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
	deadline := time.Now().Add(60 * time.Second)
	for !bytes.Contains(logText(), []byte("pipeline running")) {
		if time.Now().After(deadline) {
			t.Fatalf("never running:\n%s", logText())
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
	if !errors.As(err, &ee) || ee.ExitCode() != cli.ExitRuntime {
		t.Fatalf("exit: %v, want code %d\n%s", err, cli.ExitRuntime, logText())
	}
	// The runner gives up on the stuck batch at the drain deadline; the
	// process-level watchdog is the backstop when something else hangs.
	if !bytes.Contains(logText(), []byte("context deadline exceeded")) && !bytes.Contains(logText(), []byte("did not finish within the drain timeout")) {
		t.Errorf("no reason given:\n%s", logText())
	}
}
