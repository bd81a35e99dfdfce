package jetstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real eventpipe binary and kill it with SIGKILL in
// the middle of ingest: every event a source acknowledged must reach the
// output after a restart.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and kills the eventpipe binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "eventpipe-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "eventpipe")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/eventpipe").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startRun(t *testing.T, dir, cfg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), "run", "-c", cfg)
	cmd.Dir = dir
	log, err := os.OpenFile(filepath.Join(dir, "run.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "EVENTPIPE_WASM_CACHE="+filepath.Join(dir, "wasm-cache"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

// outputIDs counts the ids in a JSON-lines output file.
func outputIDs(t testing.TB, path string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return ids
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.ID != "" {
			ids[e.ID]++
		}
	}
	return ids
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKill9DuringHTTPIngestLosesNoAcknowledgedEvent(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
events:
  enabled: true
  stats_interval: 0 # the test counts every event exported
ingest:
  - type: http
    listen: %s
    publish_timeout: 20s
persist:
  data_dir: data
route:
  default: [out]
export:
  out:
    type: file
    path: out.jsonl
    dedupe: true
`, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/events"
	cmd := startRun(t, dir, cfg)
	waitFor(t, "the HTTP source", func() bool {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	// A client posts batches of 50 events with their own ids and notes
	// which were acknowledged; the runner is killed mid-stream.
	acked := map[string]bool{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 30 * time.Second}
		for b := 0; ; b++ {
			var body bytes.Buffer
			var ids []string
			for i := range 50 {
				id := fmt.Sprintf("ev-%d-%d", b, i)
				ids = append(ids, id)
				fmt.Fprintf(&body, `{"id":%q,"type":"agent.step","data":{"batch":%d,"i":%d,"pad":"%s"}}`+"\n", id, b, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
			}
			resp, err := client.Post(url, "application/x-ndjson", &body)
			if err != nil {
				return // killed
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
			}
		}
	}()
	waitFor(t, "20000 acknowledged events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 20000
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = cmd.Process.Wait()
	<-done
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	before := outputIDs(t, filepath.Join(dir, "out.jsonl"))

	// Restart: the stored events not yet exported are exported now.
	cmd = startRun(t, dir, cfg)
	var got map[string]int
	waitFor(t, "every acknowledged event in the output", func() bool {
		got = outputIDs(t, filepath.Join(dir, "out.jsonl"))
		for id := range acked {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = cmd.Process.Wait()
	dups := checkOnce(t, got)
	t.Logf("acknowledged %d; exported before the kill %d; after the restart %d distinct, %d duplicates", want, len(before), len(got), dups)
}

// checkOnce fails for every event the output holds more than once: the
// store delivers again what it had not seen acknowledged, and the file
// output's dedupe finds those already written. It returns the duplicates.
func checkOnce(t *testing.T, got map[string]int) int {
	t.Helper()
	dups := 0
	for id, n := range got {
		if n > 1 {
			dups += n - 1
			t.Errorf("event %s exported %d times", id, n)
		}
	}
	return dups
}

// A followed file is read from its checkpoint after a kill: every line
// written reaches the output, once.
func TestKill9WhileFollowingAFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(`
events:
  enabled: true
  stats_interval: 0 # the test counts every event exported
ingest:
  - type: file
    path: app.log
    follow: true
    poll_interval: 50ms
persist:
  data_dir: data
route:
  default: [out]
export:
  out:
    type: file
    path: out.jsonl
    dedupe: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	written := 0 // only the writing goroutine touches it until it stopped
	write := func(n int) {
		w := bufio.NewWriter(log)
		for range n {
			fmt.Fprintf(w, `{"id":"line-%d","type":"agent.step","data":{"n":%d}}`+"\n", written, written)
			written++
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write(5000)
	cmd := startRun(t, dir, cfg)
	out := filepath.Join(dir, "out.jsonl")
	waitFor(t, "the first events exported", func() bool { return len(outputIDs(t, out)) > 0 })
	// Keep writing while the runner works, and kill it mid-stream.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for written < 60000 {
			select {
			case <-stop:
				return
			default:
				write(100)
			}
		}
	}()
	waitFor(t, "20000 events exported", func() bool { return len(outputIDs(t, out)) >= 20000 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = cmd.Process.Wait()
	close(stop)
	<-stopped
	before := len(outputIDs(t, out))
	write(2000) // written while no runner is up

	cmd = startRun(t, dir, cfg)
	var got map[string]int
	waitFor(t, "every line in the output", func() bool {
		got = outputIDs(t, out)
		return len(got) == written
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = cmd.Process.Wait()
	got = outputIDs(t, out)
	for i := range written {
		if got[fmt.Sprintf("line-%d", i)] == 0 {
			t.Errorf("line %d never exported", i)
		}
	}
	dups := checkOnce(t, got)
	t.Logf("written %d; exported before the kill %d; after the restart %d distinct, %d duplicates", written, before, len(got), dups)
}
