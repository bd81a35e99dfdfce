package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// syncBuffer is a log destination the runner's goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Error text people read — dead-letter reasons, an output's last_error,
// errors in the log — loses the secrets, user data and paths a failing
// server echoes, even with the sanitize stage off.
func TestErrorTextIsScrubbed(t *testing.T) {
	const echo = "bad credentials token=abc123secret for alice@example.com, see /home/bob/app/creds.pem"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, echo, http.StatusBadRequest)
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`events:
  enabled: true
sanitize:
  enabled: false
route:
  default: [hook]
export:
  hook:
    type: webhook
    url: %s
    allow_http: true
    retry: {max_attempts: 1}
dead_letter:
  path: dead.jsonl
`, srv.URL))
	var log syncBuffer
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: slog.New(slog.NewTextHandler(&log, nil)), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	if err := r.Publish(context.Background(), pipeline.Event{Type: "agent.step", Data: []byte(`{"i":1}`)}); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, "dead.jsonl")
	waitUntil(t, "the event to be dead-lettered", func() bool { return countLines(dead) == 1 })
	health := r.Health().Outputs["hook"].LastError
	if _, err := stop(); err != nil {
		t.Fatal(err)
	}
	rec, _ := os.ReadFile(dead)
	for what, text := range map[string]string{"dead-letter record": string(rec), "last_error": health, "log": log.String()} {
		if !strings.Contains(text, "400") {
			t.Errorf("%s does not say what failed: %s", what, text)
		}
		for _, leak := range []string{"abc123secret", "alice@example.com", "/home/bob"} {
			if strings.Contains(text, leak) {
				t.Errorf("%s holds %q: %s", what, leak, text)
			}
		}
	}
}
