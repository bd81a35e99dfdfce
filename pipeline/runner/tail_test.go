package runner_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// The live tail shows the events as they were exported, with the same
// sequence numbers, and not those an output refused (dead-lettered).
func TestTailShowsWhatWasExported(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused", http.StatusBadRequest) // permanent: dead-lettered at once
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`events:
  enabled: true
admin:
  listen: 127.0.0.1:0
route:
  rules:
    - types: ["bad.*"]
      to: [out, hook]
  default: [out]
export:
  out:
    type: file
    path: out.jsonl
  hook:
    type: webhook
    url: %s
dead_letter:
  path: dead.jsonl
`, hook.URL))
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	resp, err := http.Get("http://" + r.AdminAddr().String() + "/tail")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The tail counts as listening once a first event reaches it; send
	// warm-up events until one does.
	deadline := time.After(60 * time.Second)
	for warm := false; !warm; {
		if err := r.Publish(context.Background(), pipeline.Event{Type: "warm.up"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-lines:
			warm = true
		case <-time.After(50 * time.Millisecond): // polling for the subscription to be in place
		case <-deadline:
			t.Fatal("the tail never showed an event")
		}
	}
	for i := range 6 {
		typ := "good.event"
		if i%2 == 1 {
			typ = "bad.event"
		}
		if err := r.Publish(context.Background(), pipeline.Event{Type: typ, Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Publish(context.Background(), pipeline.Event{Type: "end.marker"}); err != nil {
		t.Fatal(err)
	}
	var tailed []pipeline.Event
	for done := false; !done; {
		select {
		case l := <-lines:
			ev, err := pipeline.Decode([]byte(l), pipeline.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == "warm.up" {
				continue
			}
			tailed = append(tailed, ev)
			done = ev.Type == "end.marker"
		case <-deadline:
			t.Fatalf("the tail showed %d events", len(tailed))
		}
	}
	resp.Body.Close() // so that the admin server stops at once
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	exported := map[string]uint64{}
	for _, l := range readJSONLines(t, filepath.Join(dir, "out.jsonl")) {
		ev, _ := pipeline.Decode([]byte(l), pipeline.DecodeOptions{})
		exported[ev.ID] = ev.Sequence
	}
	if len(tailed) != 4 { // three good events and the marker
		t.Fatalf("tail showed %d events, want 4: %+v", len(tailed), tailed)
	}
	for _, ev := range tailed {
		if strings.HasPrefix(ev.Type, "bad.") {
			t.Errorf("tail showed a dead-lettered event: %+v", ev)
		}
		if seq, ok := exported[ev.ID]; !ok || seq != ev.Sequence {
			t.Errorf("tail showed %s with sequence %d; exported with %d (found %v)", ev.ID, ev.Sequence, seq, ok)
		}
	}
}

func readJSONLines(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(raw)), "\n")
}
