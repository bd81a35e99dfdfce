package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// hangingHook is a webhook receiver that holds every request until
// released.
type hangingHook struct {
	release chan struct{}
	got     atomic.Int64
}

func (h *hangingHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-h.release:
	case <-r.Context().Done():
		return
	}
	body, _ := io.ReadAll(r.Body)
	h.got.Add(int64(strings.Count(string(body), `"type"`)))
}

// newHangingHook starts a hanging webhook receiver, closed with the test.
func newHangingHook(t *testing.T) (*hangingHook, *httptest.Server) {
	hook := &hangingHook{release: make(chan struct{})}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	return hook, srv
}

// publishSteps publishes n agent.step events numbered in their data.
func publishSteps(t *testing.T, r *runner.Runner, n int) {
	t.Helper()
	for i := range n {
		if err := r.Publish(context.Background(), pipeline.Event{Type: "agent.step", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
}

func countLines(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(raw), "\n")
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not synchronising with it
	}
}

// A hanging webhook holds back only itself: the file output gets every
// event while the webhook's events wait in its queue, /health/events says
// the webhook is slow while it is, and once it answers it gets them all.
func TestAHangingOutputHoldsBackOnlyItself(t *testing.T) {
	hook, srv := newHangingHook(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`events:
  enabled: true
route:
  default: [out, hook]
export:
  out:
    type: file
    path: out.jsonl
  hook:
    type: webhook
    url: %s
    timeout: 10m
dead_letter:
  path: dead.jsonl
`, srv.URL))
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv, SlowAfter: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	const n = 3001
	publishSteps(t, r, n)
	out := filepath.Join(dir, "out.jsonl")
	waitUntil(t, "the file output to get every event", func() bool { return countLines(out) == n })
	waitUntil(t, "the health to call the webhook slow", func() bool {
		h := r.Health()
		return h.Outputs["hook"].Slow && !h.Outputs["out"].Slow && !h.Healthy && h.Outputs["hook"].Queued > 0
	})
	close(hook.release)
	waitUntil(t, "the webhook to get every event", func() bool { return hook.got.Load() == n })
	waitUntil(t, "the webhook to be well again", func() bool { h := r.Health(); return !h.Outputs["hook"].Slow && h.Healthy })
	sum, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Exported["out"] != n || sum.Exported["hook"] != n || sum.DeadLettered != 0 {
		t.Errorf("summary %+v", sum)
	}
}

// With overflow: dead_letter, a slow output's full queue sends what does
// not fit to the dead-letter file, and the other outputs go on.
func TestAFullOutputQueueDeadLetters(t *testing.T) {
	hook, srv := newHangingHook(t)
	defer close(hook.release)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`events:
  enabled: true
  batch_size: 10
route:
  default: [out, hook]
export:
  out:
    type: file
    path: out.jsonl
  hook:
    type: webhook
    url: %s
    timeout: 10m
    queue:
      size: 100
      overflow: dead_letter
dead_letter:
  path: dead.jsonl
`, srv.URL))
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv, DrainTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	const n = 1000
	publishSteps(t, r, n)
	out, dead := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "dead.jsonl")
	waitUntil(t, "the file output to get every event", func() bool { return countLines(out) == n })
	waitUntil(t, "the overflow to be dead-lettered", func() bool { return countLines(dead) >= n-100-10 })
	raw, _ := os.ReadFile(dead)
	if !strings.Contains(string(raw), "queue full") {
		t.Errorf("dead letters do not say why: %.300s", raw)
	}
	// At the drain deadline the held requests are given up: their events
	// and those still queued are dead-lettered too, none lost.
	sum, _ := stop()
	if sum.Exported["out"] != n || sum.Exported["hook"] != 0 || sum.DeadLettered != n || sum.Lost != 0 || countLines(dead) != n {
		t.Errorf("summary %+v, %d dead letters", sum, countLines(dead))
	}
}

// Outputs writing the same encoding share it and write the same bytes.
func TestOutputsShareTheirEncoding(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `events:
  enabled: true
route:
  default: [a, b]
  rules:
    - types: ["only.a"]
      to: [a]
export:
  a: {type: file, path: a.jsonl}
  b: {type: file, path: b.jsonl}
dead_letter:
  path: dead.jsonl
`)
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	for i := range 500 {
		typ := "agent.step"
		if i%5 == 0 {
			typ = "only.a"
		}
		if err := r.Publish(context.Background(), pipeline.Event{Type: typ, Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.jsonl"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.jsonl"))
	var onlyB []string
	for _, l := range strings.Split(strings.TrimSpace(string(a)), "\n") {
		if !strings.Contains(l, `"only.a"`) {
			onlyB = append(onlyB, l)
		}
	}
	if strings.Join(onlyB, "\n") != strings.TrimSpace(string(b)) || len(onlyB) != 400 {
		t.Errorf("b.jsonl is not a's lines without only.a (%d lines)", len(onlyB))
	}
}

// A secret in the environment reaches the webhook, not its ${NAME}.
func TestWebhookHeaderFromTheEnvironment(t *testing.T) {
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
	}))
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.yaml")
	text := fmt.Sprintf("events: {enabled: true}\nroute: {default: [hook]}\nexport:\n  hook:\n    type: webhook\n    url: %s\n    headers: {Authorization: \"Bearer ${HOOK_TOKEN}\"}\ndead_letter: {path: dead.jsonl}\n", srv.URL)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		if k == "HOOK_TOKEN" {
			return "s3cret", true
		}
		return "", false
	}
	cfg, err := config.Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	if err := r.Publish(context.Background(), pipeline.Event{Type: "a.b"}); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-got:
		if h != "Bearer s3cret" {
			t.Errorf("Authorization: %q", h)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the webhook was never called")
	}
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Every stats_interval the runner emits an event.stats event through the
// pipeline like any event, with the counters an operator greps for.
func TestStatsEvents(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `events:
  enabled: true
  stats_interval: 50ms
route:
  default: [out]
export:
  out: {type: file, path: out.jsonl}
dead_letter:
  path: dead.jsonl
`)
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	for range 10 {
		if err := r.Publish(context.Background(), pipeline.Event{Type: "agent.step"}); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out.jsonl")
	var stats map[string]any
	waitUntil(t, "an event.stats event after the 10 events", func() bool {
		raw, _ := os.ReadFile(out)
		for _, l := range strings.Split(string(raw), "\n") {
			if !strings.Contains(l, `"event.stats"`) {
				continue
			}
			var ev struct {
				Data map[string]any `json:"data"`
			}
			if json.Unmarshal([]byte(l), &ev) == nil && ev.Data["accepted"].(float64) >= 10 {
				stats = ev.Data
				return true
			}
		}
		return false
	})
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"interval_s", "accepted_per_s", "queue_depth", "bytes_held", "dropped", "dead_lettered", "error_rate", "outputs"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("event.stats has no %s: %v", k, stats)
		}
	}
	if o, _ := stats["outputs"].(map[string]any)["out"].(map[string]any); o == nil || o["exported"].(float64) < 10 {
		t.Errorf("outputs: %v", stats["outputs"])
	}
}
