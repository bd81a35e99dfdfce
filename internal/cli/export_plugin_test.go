package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	"github.com/eventpipe/eventpipe/internal/wasmbuild"
)

func TestRunWithExportPlugin(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "webhook-exporter.wasm")
	if err := wasmbuild.Build("../../sdk/go/examples/webhook-exporter", plugin); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []map[string]any
		_ = json.NewDecoder(r.Body).Decode(&batch)
		mu.Lock()
		got = append(got, batch...)
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := writeFile(t, dir, "pipeline.yaml", `
route:
  default: [hook]
export:
  hook:
    type: plugin
    path: `+plugin+`
    capabilities: [http]
    allowed_hosts: [127.0.0.1]
    config:
      url: `+srv.URL+`/events
dead_letter:
  path: dead.jsonl
`)
	env := map[string]string{"EVENTPIPE_WASM_CACHE": filepath.Join(dir, "cache")}
	r := run(t, env, "", "run", "-c", cfg, "--input", "../../testdata/events.jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	// 14 sample lines: 2 are not events, 1 is a debug event (filtered).
	if len(got) != 11 {
		t.Errorf("the plugin exported %d events, want 11: %s", len(got), r.stderr)
	}
}
