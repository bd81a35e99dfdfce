package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/internal/wasmbuild"
)

// buildSanitizePlugin builds the built-in sanitize plugin as `make plugins` does.
func buildSanitizePlugin(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "sanitize.wasm")
	if err := wasmbuild.Build("../../plugins/sanitize", out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunWithWasmPlugins(t *testing.T) {
	dir := t.TempDir()
	sanitize := buildSanitizePlugin(t, dir)
	ref, _ := filepath.Abs("../../sdk/wat/filter.wasm")
	cfg := writeFile(t, dir, "pipeline.yaml", `
filter:
  plugins:
    - path: `+ref+`
sanitize:
  enabled: false
  plugins:
    - path: `+sanitize+`
      config:
        deny_fields: [password, email, authorization]
route:
  default: [out]
export:
  out:
    type: file
    path: out.jsonl
dead_letter:
  path: dead.jsonl
`)
	if r := run(t, map[string]string{"EVENTPIPE_WASM_CACHE": filepath.Join(dir, "cache")}, "", "validate", "-c", cfg); r.code != 0 {
		t.Fatalf("validate: %+v", r)
	}
	r := run(t, map[string]string{"EVENTPIPE_WASM_CACHE": filepath.Join(dir, "cache")}, "", "run", "-c", cfg, "--input", "../../testdata/events.jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	out := strings.Join(readLines(t, filepath.Join(dir, "out.jsonl")), "\n")
	for _, secret := range []string{"hunter2", "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX", "AKIAIOSFODNN7EXAMPLE", "alice@example.com", "correct horse"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q passed the wasm sanitize plugin", secret)
		}
	}
	// The reference filter drops events whose data hashes to 0 mod 7: the
	// summary counts them under the plugin, and they are not in the output.
	if !strings.Contains(r.stderr, "plugin:filter: dropped by plugin=") {
		t.Errorf("drops by the plugin are not in the summary: %s", r.stderr)
	}
	if n := strings.Count(out, "\n") + 1; n >= 10 { // 10 pass the native filter and sanitize

		t.Errorf("%d events exported: the wasm filter dropped nothing", n)
	}
	// A plugin used as the wrong kind is refused before anything runs.
	bad := writeFile(t, dir, "bad.yaml", "route:\n  plugin:\n    path: "+ref+"\n")
	if r := run(t, map[string]string{"EVENTPIPE_WASM_CACHE": filepath.Join(dir, "cache")}, "", "run", "-c", bad); r.code != 2 || !strings.Contains(r.stderr, "is a filter plugin, used here as route") {
		t.Errorf("wrong kind: %+v", r)
	}
}
