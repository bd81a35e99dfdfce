package jetstream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// With persistence on, a hanging webhook holds back only itself too: the
// store keeps several batches with the outputs at once, so a file output
// gets the events stored after the webhook's batch; every batch is
// acknowledged once both have it, so nothing is lost.
func TestPersistedPipelineAHangingOutputHoldsBackOnlyItself(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	var got atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		body, _ := io.ReadAll(r.Body)
		got.Add(int64(strings.Count(string(body), `"type"`)))
	}))
	defer hook.Close()
	defer open() // before Close, which waits for the held requests
	dir := t.TempDir()
	text := fmt.Sprintf(`events: {enabled: true, batch_size: 100}
persist: {data_dir: data, batch_size: 100}
route: {default: [out, hook]}
export:
  out: {type: file, path: out.jsonl}
  hook: {type: webhook, url: %q, timeout: 10m}
dead_letter: {path: dead.jsonl}
`, hook.URL)
	cfgPath := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg := runner.NewRegistry()
	if err := reg.Register(Factories()...); err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(context.Background(), cfg, runner.Options{Registry: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := r.Run(ctx); done <- err }()
	<-r.AdminReady()
	const n = 1000 // ten batches: within the store's bound of batches in flight
	for i := range n {
		waitFor(t, "the event to be stored", func() bool {
			return r.Publish(context.Background(), pipeline.Event{Type: "agent.step", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}) == nil
		})
	}
	out := filepath.Join(dir, "out.jsonl")
	defer cancel()
	waitFor(t, "the file output to get every event while the webhook hangs", func() bool {
		raw, _ := os.ReadFile(out)
		lines := strings.Count(string(raw), "\n")
		if lines != n {
			t.Logf("file %d lines; health %+v", lines, r.Health().Outputs)
		}
		return lines == n
	})
	open()
	waitFor(t, "the webhook to get every event", func() bool { return got.Load() == n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
