package jetstream

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fill stores n events (four types) in the stream of cfg.
func fill(t testing.TB, cfg StoreConfig, n int) {
	t.Helper()
	if err := fillErr(t, cfg, n); err != nil {
		t.Fatal(err)
	}
}

// fillErr is fill for a goroutine other than the test's.
func fillErr(t testing.TB, cfg StoreConfig, n int) error {
	s := NewStore(settings(t), cfg)
	if err := s.Start(context.Background()); err != nil {
		return err
	}
	defer s.Shutdown(context.Background())
	types := []string{"agent.step", "tool.invoked", "tool.completed", "agent.thought"}
	for k := 0; k < n; k += 500 {
		if _, err := s.Append(context.Background(), events(min(500, n-k), types...)); err != nil {
			return err
		}
	}
	return nil
}

// runnerConfig writes a pipeline that reads the stream at url with the
// shared consumer and writes what it gets to out.jsonl in dir.
func runnerConfig(t testing.TB, dir, url, consumer string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "pipeline.yaml")
	text := fmt.Sprintf(`events: {enabled: true, stats_interval: 0}
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

// serveRunner starts `eventpipe run` reading the stream at url with the
// shared consumer, with an HTTP source of its own so that it keeps
// running (a finite run would end once the stream is empty), and waits
// until its pipeline runs: events stored after that are split between
// the runners already pulling.
func serveRunner(t *testing.T, bin, dir, url string) *exec.Cmd {
	return serveRunnerTo(t, bin, dir, url, "out: {type: file, path: out.jsonl, dedupe: true}")
}

// serveRunnerTo is serveRunner with its own output (YAML of export).
func serveRunnerTo(t *testing.T, bin, dir, url, output string) *exec.Cmd {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "pipeline.yaml")
	text := fmt.Sprintf(`events: {enabled: true, stats_interval: 0}
ingest: [{type: http, listen: %q}]
sanitize: {enabled: true}
persist: {url: %q, ack_wait: 2s}
route: {default: [out]}
export:
  %s
`, freeAddr(t), url, output)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "EVENTPIPE_WASM_CACHE="+filepath.Join(dir, "wasm-cache"))
	log, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	waitFor(t, "the runner's pipeline", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "run.log"))
		return bytes.Contains(b, []byte("pipeline running"))
	})
	return cmd
}

// stop ends a runner with SIGTERM and returns its log.
func stop(t *testing.T, cmd *exec.Cmd, dir string) []byte {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = cmd.Process.Wait()
	b, _ := os.ReadFile(filepath.Join(dir, "run.log"))
	return b
}

// A runner that dies holding events it has not acknowledged: another
// runner on the same consumer exports them after ack_wait. Runner a's
// output hangs, so it holds every batch it pulled until it is killed.
func TestScaleOutTakesOverAfterAKill(t *testing.T) {
	bin := binary(t)
	srv := natsServer(t)
	cfg := *NewStoreConfig()
	cfg.URL = srv.ClientURL()
	var mu sync.Mutex
	hung := 0
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hung++
		mu.Unlock()
		<-release // never answers while the test runs
	}))
	defer hook.Close()
	defer close(release)
	root := t.TempDir()
	dirA, dirB := filepath.Join(root, "a"), filepath.Join(root, "b")
	a := serveRunnerTo(t, bin, dirA, cfg.URL, fmt.Sprintf("out: {type: webhook, url: %q, timeout: 10m, retry: {max_attempts: 1}}", hook.URL))
	const n = 20000
	fill(t, cfg, n)
	waitFor(t, "runner a holding a batch", func() bool { mu.Lock(); defer mu.Unlock(); return hung > 0 })
	b := serveRunner(t, bin, dirB, cfg.URL)
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = a.Process.Wait()
	outB := filepath.Join(dirB, "out.jsonl")
	waitFor(t, "every event exported by b", func() bool { return len(outputIDs(t, outB)) == n })
	log := stop(t, b, dirB)
	m := regexp.MustCompile(`redelivered (\d+)`).FindSubmatch(log)
	if m == nil {
		t.Fatalf("runner b redelivered nothing: a's unacknowledged events were not taken over\n%s", log)
	}
	checkOnce(t, outputIDs(t, outB))
	t.Logf("a held batches and was killed; b exported all %d, %s of them delivered again", n, m[1])
}

// Without a kill, each of two runners takes a fair share.
func TestScaleOutSplitsEvenly(t *testing.T) {
	bin := binary(t)
	srv := natsServer(t)
	cfg := *NewStoreConfig()
	cfg.URL = srv.ClientURL()
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b")}
	cmds := []*exec.Cmd{serveRunner(t, bin, dirs[0], cfg.URL), serveRunner(t, bin, dirs[1], cfg.URL)}
	const n = 100000
	fill(t, cfg, n)
	var shares []int
	waitFor(t, "every event exported", func() bool {
		shares = shares[:0]
		total := 0
		for _, d := range dirs {
			k := len(outputIDs(t, filepath.Join(d, "out.jsonl")))
			shares = append(shares, k)
			total += k
		}
		return total >= n
	})
	for i, c := range cmds {
		stop(t, c, dirs[i])
	}
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
