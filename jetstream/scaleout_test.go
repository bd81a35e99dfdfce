package jetstream

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// fill stores n events (four types) in the stream of cfg.
func fill(t testing.TB, cfg StoreConfig, n int) {
	t.Helper()
	s := NewStore(settings(t), cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	types := []string{"agent.step", "tool.invoked", "tool.completed", "agent.thought"}
	for k := 0; k < n; k += 500 {
		if _, err := s.Append(context.Background(), events(min(500, n-k), types...)); err != nil {
			t.Fatal(err)
		}
	}
}

// runnerConfig writes a pipeline that reads the stream at url with the
// shared consumer and writes what it gets to out.jsonl in dir.
func runnerConfig(t testing.TB, dir, url, consumer string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "pipeline.yaml")
	text := fmt.Sprintf(`events: {enabled: true}
filter: {exclude_types: ["*.debug"]}
sanitize: {enabled: true}
persist: {url: %q, consumer: %s, ack_wait: 2s}
route: {default: [out]}
export:
  out: {type: file, path: out.jsonl, dedupe: true}
`, url, consumer)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.jsonl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runnerCmd is `eventpipe run` over no input of its own: a finite run
// that works through the stream until nothing is left to deliver.
func runnerCmd(t testing.TB, bin, dir, cfg string, env ...string) *exec.Cmd {
	cmd := exec.Command(bin, "run", "-c", cfg, "--input", filepath.Join(dir, "empty.jsonl"))
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "EVENTPIPE_WASM_CACHE="+filepath.Join(dir, "wasm-cache")), env...)
	log, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	return cmd
}

// Two runners on one durable consumer split the stream between them;
// one is killed, and the other takes over what it had not acknowledged.
func TestScaleOutSharesAndTakesOver(t *testing.T) {
	bin := binary(t)
	srv := natsServer(t)
	cfg := *NewStoreConfig()
	cfg.URL = srv.ClientURL()
	const n = 200000
	fill(t, cfg, n)

	root := t.TempDir()
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b")}
	var cmds []*exec.Cmd
	for _, d := range dirs {
		cmd := runnerCmd(t, bin, d, runnerConfig(t, d, cfg.URL, "eventpipe"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		cmds = append(cmds, cmd)
	}
	// Kill a once both have a share of the work (while a holds events it
	// has pulled and not acknowledged).
	outA, outB := filepath.Join(dirs[0], "out.jsonl"), filepath.Join(dirs[1], "out.jsonl")
	size := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	waitFor(t, "both runners exporting", func() bool { return size(outA) > 100<<10 && size(outB) > 100<<10 })
	if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = cmds[0].Process.Wait()
	if err := cmds[1].Wait(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dirs[1], "run.log"))
		t.Fatalf("runner b: %v\n%s", err, log)
	}
	a, b := outputIDs(t, outA), outputIDs(t, outB)
	both := 0
	for id := range a {
		if b[id] > 0 {
			both++ // exported by a, not acknowledged before it died
		}
	}
	if got := len(a) + len(b) - both; got != n {
		t.Fatalf("%d distinct events exported, want %d", got, n)
	}
	log, err := os.ReadFile(filepath.Join(dirs[1], "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`redelivered (\d+)`).FindSubmatch(log)
	if m == nil {
		t.Fatalf("runner b redelivered nothing: a's unacknowledged events were not taken over\n%s", log)
	}
	t.Logf("a exported %d before it was killed; b %d, of which %d a had exported too; b took over %s", len(a), len(b), both, m[1])
}

// Without a kill, each of two runners takes a fair share.
func TestScaleOutSplitsEvenly(t *testing.T) {
	bin := binary(t)
	srv := natsServer(t)
	cfg := *NewStoreConfig()
	cfg.URL = srv.ClientURL()
	const n = 40000
	fill(t, cfg, n)
	root := t.TempDir()
	shares, _ := runShared(t, bin, root, cfg.URL, "eventpipe", 2)
	total := 0
	for _, s := range shares {
		total += s
	}
	if total != n {
		t.Fatalf("exported %d, want %d", total, n)
	}
	for i, s := range shares {
		if f := float64(s) / n; f < 0.35 || f > 0.65 {
			t.Errorf("runner %d took %.0f%% of the events, want 35–65%%", i, 100*f)
		}
	}
	t.Logf("shares: %v", shares)
}

// runShared runs k runners on one consumer until the stream is done and
// returns how many events each exported, and how long they took (from
// the start of the first to the exit of the last).
func runShared(t testing.TB, bin, root, url, consumer string, k int, env ...string) ([]int, time.Duration) {
	t.Helper()
	cmds := make([]*exec.Cmd, k)
	for i := range cmds {
		d := filepath.Join(root, fmt.Sprint(i))
		cmds[i] = runnerCmd(t, bin, d, runnerConfig(t, d, url, consumer), env...)
	}
	start := time.Now()
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("runner %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	shares := make([]int, k)
	for i := range cmds {
		shares[i] = len(outputIDs(t, filepath.Join(root, fmt.Sprint(i), "out.jsonl")))
	}
	return shares, elapsed
}
