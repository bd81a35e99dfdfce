package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/cli"
	"github.com/eventpipe/eventpipe/pipeline"
)

// TestPersistReplayTrace: a run with persistence stores its events; replay
// reads them back (all, by type, to stdout, through another pipeline) with
// their ids and the replayed tag; trace orders one correlation causally.
func TestPersistReplayTrace(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	lines := []string{
		`{"id":"a1","type":"agent.started","correlation_id":"c1","data":{}}`,
		`{"id":"t1","type":"tool.invoked","correlation_id":"c1","causation_id":"a1","data":{}}`,
		`{"id":"t2","type":"tool.completed","correlation_id":"c1","causation_id":"t1","data":{}}`,
		`{"id":"x1","type":"agent.started","correlation_id":"c2","data":{}}`,
		`{"id":"a2","type":"agent.completed","correlation_id":"c1","causation_id":"a1","data":{}}`,
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "p.yaml")
	write := func(path, out string) {
		if err := os.WriteFile(path, []byte(`
events: {enabled: true}
persist: {data_dir: data}
route: {default: [out]}
export:
  out: {type: file, path: `+out+`}
`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cfg, "out.jsonl")
	if r := run(t, nil, "", "run", "-c", cfg, "--input", in); r.code != 0 || !strings.Contains(r.stderr, "stored 5") {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	r := run(t, nil, "", "replay", "-c", cfg, "--stdout")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 5 || strings.Count(r.stdout, `"replayed"`) != 5 || !strings.Contains(r.stdout, `"id":"t2"`) {
		t.Fatalf("replay --stdout: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, nil, "", "replay", "-c", cfg, "--stdout", "--type", "agent.*", "--correlation", "c1")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("replay --type --correlation: %d\n%s", r.code, r.stdout)
	}
	other := filepath.Join(dir, "other.yaml")
	write(other, "replayed.jsonl")
	if r = run(t, nil, "", "replay", "-c", cfg, "--through", other, "--type", "tool.**"); r.code != 0 {
		t.Fatalf("replay --through: %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "replayed.jsonl"))
	if err != nil || strings.Count(string(b), "\n") != 2 || strings.Count(string(b), `"replayed"`) != 2 {
		t.Fatalf("replayed through another pipeline: %v\n%s", err, b)
	}
	r = run(t, nil, "", "trace", "-c", cfg, "--tree", "c1")
	want := "agent.started  a1\n  tool.invoked  t1\n    tool.completed  t2\n  agent.completed  a2\n" // siblings by time
	var got strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Split(l, "  ")
		got.WriteString(strings.Join(f[:len(f)-1], "  ") + "\n")
	}
	if r.code != 0 || got.String() != want {
		t.Fatalf("trace --tree: %d\n%s\nwant\n%s", r.code, got.String(), want)
	}
	// The export file reads back too.
	if r = run(t, nil, "", "trace", "--file", filepath.Join(dir, "out.jsonl"), "c2"); r.code != 0 || !strings.Contains(r.stdout, `"id":"x1"`) {
		t.Fatalf("trace --file: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestCausalOrder(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	evs := []pipeline.Event{
		{ID: "c", CausationID: "b", Time: at(1)}, // earlier than its cause: still after it
		{ID: "b", CausationID: "a", Time: at(3)},
		{ID: "a", Time: at(2)},
		{ID: "o", CausationID: "missing", Time: at(0)}, // unknown cause: a root
		{ID: "x", CausationID: "y", Time: at(5)},       // a cycle
		{ID: "y", CausationID: "x", Time: at(6)},
	}
	var got []string
	for _, n := range cli.CausalOrder(evs) {
		got = append(got, strings.Repeat(">", n.Depth)+n.Event.ID)
	}
	if s := strings.Join(got, " "); s != "o a >b >>c x >y" {
		t.Errorf("order %s", s)
	}
}
