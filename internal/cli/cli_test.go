package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/cli"
	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/export"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runIO(t, cli.IO{}, env, stdin, args...)
}

func runIO(t *testing.T, io cli.IO, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	io.Stdin, io.Stdout, io.Stderr = strings.NewReader(stdin), &out, &errb
	io.Env = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := cli.Main(args, io)
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// fileConfig is a pipeline writing every event to out.jsonl in dir.
func fileConfig(t *testing.T, dir, extra string) string {
	return writeFile(t, dir, "pipeline.yaml", `
events:
  buffer_size: 1000
  batch_size: 64
sanitize:
  enabled: true
route:
  default: [out]
export:
  out:
    type: file
    path: out.jsonl
dead_letter:
  path: dead.jsonl
`+extra)
}

func TestUsageAndExitCodes(t *testing.T) {
	if r := run(t, nil, "", "--help"); r.code != 0 || !strings.Contains(r.stdout, "eventpipe run") {
		t.Errorf("--help: %+v", r)
	}
	if r := run(t, nil, ""); r.code != 2 {
		t.Errorf("no args: %d", r.code)
	}
	if r := run(t, nil, "", "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, "unknown command") {
		t.Errorf("unknown: %+v", r)
	}
	// Every verb's help has its usage line and examples, on stdout.
	for _, verb := range []string{"run", "validate", "test", "schema", "emit", "tail", "migrate", "dlq", "replay", "trace", "bench", "version", "completion", "help"} {
		r := run(t, nil, "", verb, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:\n  eventpipe "+verb) || !strings.Contains(r.stdout, "Examples:\n  eventpipe ") {
			t.Errorf("%s --help: %+v", verb, r)
		}
	}
	if r := run(t, nil, "", "dlq", "replay", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Examples:\n  eventpipe dlq replay") {
		t.Errorf("dlq replay --help: %+v", r)
	}
	if r := run(t, nil, "", "dlq"); r.code != 2 || !strings.Contains(r.stderr, "eventpipe dlq replay") {
		t.Errorf("dlq without a verb: %+v", r)
	}
	if r := run(t, nil, "", "run", "--help"); !strings.Contains(r.stdout, "LLMSPELL_EVENTS_") || !strings.Contains(r.stdout, "EXPORT_WEBHOOK") {
		t.Errorf("run --help does not list the environment overrides:\n%s", r.stdout)
	}
	if r := run(t, nil, "", "run", "--bogus"); r.code != 2 {
		t.Errorf("bad flag: %d", r.code)
	}
	if r := run(t, nil, "", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "eventpipe ") || !strings.Contains(r.stdout, "commit ") || !strings.Contains(r.stdout, "built ") {
		t.Errorf("version: %+v", r)
	}
}

func TestValidateReportsAllErrorsWithPositions(t *testing.T) {
	r := run(t, nil, "", "validate", "-c", "../../pipeline/runner/testdata/broken.yaml")
	if r.code != 2 {
		t.Fatalf("exit %d", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	pos := regexp.MustCompile(`^\.\./\.\./pipeline/runner/testdata/broken\.yaml:\d+:\d+: `)
	for _, l := range lines {
		if !pos.MatchString(l) {
			t.Errorf("line without file:line:col: %q", l)
		}
	}
	if len(lines) < 10 {
		t.Errorf("only %d errors reported:\n%s", len(lines), r.stderr)
	}
	if r := run(t, nil, "", "validate", "-c", "../../pipeline.yaml"); r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Errorf("default pipeline: %+v", r)
	}
	// A positional file is validated too, not ./pipeline.yaml.
	if r := run(t, nil, "", "validate", "../../pipeline/runner/testdata/broken.yaml"); r.code != 2 || !strings.Contains(r.stderr, "broken.yaml:3:16") {
		t.Errorf("positional file: %+v", r)
	}
	if r := run(t, nil, "", "validate", "../../pipeline.yaml"); r.code != 0 || !strings.Contains(r.stdout, "../../pipeline.yaml: ok") {
		t.Errorf("positional default pipeline: %+v", r)
	}
	if r := run(t, nil, "", "validate", "-c", "../../pipeline.yaml", "other.yaml"); r.code != 2 || !strings.Contains(r.stderr, "two pipeline files") {
		t.Errorf("-c and a different positional file: %+v", r)
	}
	// Output settings are validated by their kind, with positions.
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", "route:\n  default: [hook]\nexport:\n  hook:\n    type: webhook\n    url: http://example.com/x\n    colour: red\n")
	r = run(t, nil, "", "validate", "-c", p)
	if r.code != 2 || !strings.Contains(r.stderr, "p.yaml:7:5: export.hook.colour: unknown key") {
		t.Errorf("kind settings: %+v", r)
	}
	p = writeFile(t, dir, "q.yaml", "route:\n  default: [hook]\nexport:\n  hook:\n    type: webhook\n    url: http://example.com/x\n")
	if r := run(t, nil, "", "validate", "-c", p); r.code != 2 || !strings.Contains(r.stderr, "plain http") {
		t.Errorf("http policy: %+v", r)
	}
	p = writeFile(t, dir, "r.yaml", "filter:\n  plugins:\n    - path: nope.wasm\n")
	if r := run(t, nil, "", "validate", "-c", p); r.code != 2 || !strings.Contains(r.stderr, "r.yaml:3:") || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing plugin: %+v", r)
	}
}

func TestRunDefaultPipelineOverSamples(t *testing.T) {
	dir := t.TempDir()
	// The default pipeline, with its outputs in a temporary directory.
	src, _ := os.ReadFile("../../pipeline.yaml")
	cfg := writeFile(t, dir, "pipeline.yaml", string(src))
	r := run(t, nil, "", "run", "-c", cfg, "--input", "../../testdata/events.jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	out := r.stdout
	for _, secret := range []string{"hunter2", "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX", "AKIAIOSFODNN7EXAMPLE", "/home/alice", "correct horse", "alice@example.com", "eyJhbGciOiJIUzI1NiJ9",
		// Private by default: user data, Basic credentials, climbing paths.
		"Alice Smith", "555 0100", "203.0.113.7", "Mozilla", "4111 1111", "078-05-1120", "alice.smith@example.org", "YWxpY2U6czNjcmV0", "../../etc/passwd"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q reached stdout", secret)
		}
	}
	if !strings.Contains(out, `"customer":{"plan":"pro"}`) {
		t.Errorf("the support ticket lost more than its user data:\n%s", out)
	}
	if strings.Contains(out, "agent.debug") || strings.Contains(out, "agent.heartbeat") {
		t.Error("filtered events exported")
	}
	if n := strings.Count(out, "\n"); n != 10 {
		t.Errorf("%d events on stdout, want 10:\n%s", n, out)
	}
	// Bad lines are in the dead-letter file with their line numbers.
	dead := readLines(t, filepath.Join(dir, "out", "deadletter.jsonl"))
	if len(dead) != 2 {
		t.Fatalf("dead letters: %v", dead)
	}
	var rec export.DeadLetterRecord
	_ = json.Unmarshal([]byte(dead[0]), &rec)
	if rec.Offset != "line 8" || rec.Stage != "ingest" || rec.Raw != "this line is not JSON" || !strings.HasSuffix(rec.Source, "events.jsonl") {
		t.Errorf("dead letter %+v", rec)
	}
	_ = json.Unmarshal([]byte(dead[1]), &rec)
	if rec.Offset != "line 10" || !strings.Contains(rec.Reason, "dotted") {
		t.Errorf("dead letter %+v", rec)
	}
	audit := readLines(t, filepath.Join(dir, "out", "audit.jsonl"))
	if len(audit) != 3 {
		t.Errorf("audit has %d events, want 3 (security, error, failed)", len(audit))
	}
	if !strings.Contains(r.stderr, "eventpipe: accepted 10,") || !strings.Contains(r.stderr, "dead-lettered 2") {
		t.Errorf("summary: %s", r.stderr)
	}
}

func TestLLMSpellEnabledFalseExportsNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(t, dir, "")
	in := writeFile(t, dir, "in.jsonl", "{\"type\":\"a.b\"}\n{\"type\":\"c.d\"}\n")
	r := run(t, map[string]string{"LLMSPELL_EVENTS_ENABLED": "false"}, "", "run", "-c", cfg, "--input", in)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if lines := readLines(t, filepath.Join(dir, "out.jsonl")); len(lines) != 0 {
		t.Errorf("exported %v", lines)
	}
	if !strings.Contains(r.stderr, "events disabled=2") {
		t.Errorf("summary does not count them: %s", r.stderr)
	}
	// And enabled, the same run exports both.
	r = run(t, map[string]string{"LLMSPELL_EVENTS_ENABLED": "true"}, "", "run", "-c", cfg, "--input", in)
	if lines := readLines(t, filepath.Join(dir, "out.jsonl")); r.code != 0 || len(lines) != 2 {
		t.Errorf("enabled run exported %d: %s", len(lines), r.stderr)
	}
	if r := run(t, map[string]string{"LLMSPELL_EVENTS_BUFFER_SIZE": "many"}, "", "run", "-c", cfg, "--input", in); r.code != 2 || !strings.Contains(r.stderr, "LLMSPELL_EVENTS_BUFFER_SIZE") {
		t.Errorf("bad env: %+v", r)
	}
}

func TestStdinInput(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(t, dir, "")
	r := run(t, nil, "{\"type\":\"a.b\"}\n{\"type\":\"a.c\"}\n{\"type\":\"a.d\"}\n", "run", "-c", cfg, "--input", "-")
	if r.code != 0 || len(readLines(t, filepath.Join(dir, "out.jsonl"))) != 3 {
		t.Errorf("%+v", r)
	}
}

// slowExporter blocks until released, so the buffer fills behind it.
type slowExporter struct {
	mu       sync.Mutex
	seqs     []uint64
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
	lastWait time.Duration
}

type slowConfig struct{}

func (c *slowConfig) Validate() error { return nil }

func (s *slowExporter) Start(context.Context) error    { return nil }
func (s *slowExporter) Shutdown(context.Context) error { return nil }
func (s *slowExporter) Export(ctx context.Context, evs []pipeline.Event) error {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		s.seqs = append(s.seqs, e.Sequence)
	}
	return nil
}

func TestSIGTERMWithFullBufferLosesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "pipeline.yaml", `
events:
  buffer_size: 500
  batch_size: 50
sanitize:
  enabled: false
route:
  default: [slow]
export:
  slow:
    type: slow
dead_letter:
  path: dead.jsonl
ingest:
  - type: fill
`)
	slow := &slowExporter{entered: make(chan struct{}), release: make(chan struct{})}
	fill := &fillSource{n: 20000, limit: 500, full: make(chan struct{}), stopped: make(chan struct{})}
	sigs := make(chan os.Signal, 1)
	io := cli.IO{Signals: sigs, OnRunner: func(r *runner.Runner) { fill.bus = r.Bus() }, Registry: func() *component.Registry {
		reg := runner.NewRegistry()
		if err := reg.Register(
			component.NewOutputFactory("slow", func() *slowConfig { return &slowConfig{} },
				func(context.Context, component.Settings, *slowConfig) (component.Output, error) { return slow, nil }),
			component.NewSourceFactory("fill", func() *slowConfig { return &slowConfig{} },
				func(context.Context, component.Settings, *slowConfig) (component.Source, error) { return fill, nil }),
		); err != nil {
			t.Fatal(err)
		}
		return reg
	}}
	done := make(chan result, 1)
	go func() { done <- runIO(t, io, nil, "", "run", "-c", cfg) }()
	// The exporter holds one batch; ingest fills the buffer behind it and
	// then blocks in Publish. Stop once the buffer is full: nothing
	// accepted may be lost.
	<-slow.entered
	<-fill.full
	sigs <- syscall.SIGTERM
	<-fill.stopped // ingest saw the stop while waiting for room
	close(slow.release)
	r := <-done
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	m := regexp.MustCompile(`accepted (\d+), exported (\d+)`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no summary: %s", r.stderr)
	}
	accepted, _ := strconv.Atoi(m[1])
	exported, _ := strconv.Atoi(m[2])
	if accepted != exported || accepted != len(slow.seqs) {
		t.Fatalf("accepted %d, exported %d, exporter saw %d", accepted, exported, len(slow.seqs))
	}
	if accepted < 500 || accepted == 20000 {
		t.Errorf("accepted %d: the stop did not happen with a full buffer mid-run", accepted)
	}
	for i, s := range slow.seqs {
		if s != uint64(i+1) {
			t.Fatalf("sequence %d at position %d: events lost or reordered", s, i)
		}
	}
}

// fillSource publishes n events and closes full once the bus's buffer
// holds limit events (checked after each accepted event, by the bus's own
// counter): from then on its Publish waits for room, until the stop
// refuses it.
func (f *fillSource) Start(context.Context) error    { return nil }
func (f *fillSource) Shutdown(context.Context) error { return nil }

type fillSource struct {
	n, limit int
	bus      *pipeline.Bus
	full     chan struct{}
	stopped  chan struct{} // closed when a Publish was refused by the stop
	once     sync.Once
}

func (s *fillSource) Finite() bool { return true }

func (s *fillSource) Run(ctx context.Context, p pipeline.Publisher) error {
	for i := 0; i < s.n; i++ {
		if err := p.Publish(ctx, pipeline.Event{Type: "load.event", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			close(s.stopped)
			return nil
		}
		if s.bus.Stats().QueueDepth >= s.limit {
			s.once.Do(func() { close(s.full) })
		}
	}
	return nil
}

// flakyHook fails its first `failures` requests (an outage), then recovers.
type flakyHook struct {
	mu       sync.Mutex
	failures int
	received map[uint64]int
}

func (h *flakyHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failures > 0 {
		h.failures--
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var batch []pipeline.Event
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	for _, e := range batch {
		h.received[e.Sequence]++
	}
}

func TestWebhookOutageThenRecovery(t *testing.T) {
	// 20 failed requests: with two attempts per batch, the first ten
	// batches are dead-lettered, then the receiver is back.
	hook := &flakyHook{failures: 20, received: map[uint64]int{}}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "pipeline.yaml", fmt.Sprintf(`
events:
  batch_size: 20
  batch_linger: 0s
sanitize:
  enabled: false
route:
  default: [hook]
export:
  hook:
    type: webhook
    url: %s/ingest
    retry:
      max_attempts: 2
      initial_interval: 1ms
      max_interval: 2ms
dead_letter:
  path: dead.jsonl
`, srv.URL))
	var in strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&in, "{\"type\":\"hook.event\",\"data\":{\"i\":%d}}\n", i)
	}
	input := writeFile(t, dir, "in.jsonl", in.String())
	r := run(t, nil, "", "run", "-c", cfg, "--input", input)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	dead := map[uint64]bool{}
	for _, l := range readLines(t, filepath.Join(dir, "dead.jsonl")) {
		var rec export.DeadLetterRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		var ev pipeline.Event
		_ = json.Unmarshal(rec.Event, &ev)
		if rec.Stage != "export" || rec.Output != "hook" || !strings.Contains(rec.Reason, "503") {
			t.Errorf("dead letter %+v", rec)
		}
		dead[ev.Sequence] = true
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(dead) == 0 || len(hook.received) == 0 {
		t.Fatalf("dead %d, received %d: the outage or the recovery did not happen", len(dead), len(hook.received))
	}
	for seq := uint64(1); seq <= 400; seq++ {
		n := hook.received[seq]
		switch {
		case n > 1:
			t.Errorf("event %d delivered %d times", seq, n)
		case n == 1 && dead[seq]:
			t.Errorf("event %d both delivered and dead-lettered", seq)
		case n == 0 && !dead[seq]:
			t.Errorf("event %d lost", seq)
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	r := run(t, nil, "", "migrate", "../../pipeline/config/testdata/migrate/audit.toml")
	if r.code != 0 || !strings.Contains(r.stdout, "siem.example.com") {
		t.Fatalf("%+v", r)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "p.yaml")
	if r := run(t, nil, "", "migrate", "-o", out, "../../pipeline/config/testdata/migrate/monitoring.toml"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if r := run(t, nil, "", "validate", "-c", out); r.code != 0 {
		t.Errorf("migrated file does not validate: %+v", r)
	}
	bad := writeFile(t, dir, "bad.toml", "[events]\nenabled = \"sure\"\n")
	if r := run(t, nil, "", "migrate", bad); r.code != 2 {
		t.Errorf("bad toml: %+v", r)
	}
}

func TestDLQReplay(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(t, dir, "")
	in := writeFile(t, dir, "in.jsonl", "{\"type\":\"a.b\"}\nbroken\n")
	if r := run(t, nil, "", "run", "-c", cfg, "--input", in); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// Simulate an export failure's record, then replay.
	d, _ := export.OpenDeadLetter(filepath.Join(dir, "dead.jsonl"), 0)
	ev := pipeline.Event{Type: "replayed.event", Data: json.RawMessage(`{"x":1}`)}
	_ = d.Write(export.EventRecord(&ev, "export", "out", "was down"))
	_ = d.Close()
	r := run(t, nil, "", "dlq", "replay", "-c", cfg)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	out := readLines(t, filepath.Join(dir, "out.jsonl"))
	if len(out) != 2 || !strings.Contains(out[1], "replayed.event") {
		t.Errorf("out %v", out)
	}
	// The raw line is still not an event: dead-lettered again, in a fresh file.
	again := readLines(t, filepath.Join(dir, "dead.jsonl"))
	if len(again) != 1 || !strings.Contains(again[0], "broken") {
		t.Errorf("dead letters after replay: %v", again)
	}
	kept, _ := filepath.Glob(filepath.Join(dir, "dead.jsonl.replayed-*"))
	if len(kept) != 1 {
		t.Errorf("replayed file not kept: %v", kept)
	}
}

func TestAdminEmitTailHealthMetrics(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(t, dir, "admin:\n  listen: 127.0.0.1:0\n")
	c, err := loadRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Run(ctx); done <- err }()
	<-c.AdminReady()
	base := "http://" + c.AdminAddr().String()

	// tail, then emit through the CLI, and see the event in the tail.
	tailCtx, stopTail := context.WithCancel(context.Background())
	resp, err := http.NewRequestWithContext(tailCtx, http.MethodGet, base+"/tail?pattern=cli.*", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := http.DefaultClient.Do(resp)
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "", "emit", "--to", base, "cli.hello", `{"password":"p","msg":"hi"}`)
	if r.code != 0 {
		t.Fatalf("emit: %+v", r)
	}
	line, err := bufio.NewReader(tr.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"type":"cli.hello"`) || strings.Contains(line, "password") {
		t.Errorf("tail got %q %v", line, err)
	}
	stopTail()
	tr.Body.Close()
	if r := run(t, nil, "", "emit", "--to", base, "notdotted"); r.code != 2 {
		t.Errorf("bad type: %+v", r)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/health/events")
	var h runner.Health
	_ = json.Unmarshal([]byte(body), &h)
	if code != 200 || !h.Enabled || h.State != "running" || h.Outputs["out"].Exported != 1 {
		t.Errorf("health %d %s", code, body)
	}
	if code, body := get("/health"); code != 200 || !strings.Contains(body, "alive") {
		t.Errorf("/health %d %s", code, body)
	}
	if code, body := get("/ready"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Errorf("/ready %d %s", code, body)
	}
	code, body = get("/metrics")
	if code != 200 || !strings.Contains(body, `eventpipe_exported_events_total{output="out"} 1`) || !strings.Contains(body, "eventpipe_queue_depth") {
		t.Errorf("metrics %d:\n%s", code, body)
	}
	token := ""
	send := func(method, path, body string, h map[string]string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	post := func(method, path, body string) int {
		return send(method, path, body, map[string]string{"Authorization": "Bearer " + token})
	}
	// The control endpoints need the token the run wrote next to its
	// configuration; a web page cannot use them.
	if code := send("POST", "/events/disable", "", nil); code != 401 || !c.Bus().Enabled() {
		t.Errorf("disable without the token: %d", code)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ".eventpipe", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	token = strings.TrimSpace(string(raw))
	if code := send("POST", "/events/disable", "x", map[string]string{"Authorization": "Bearer " + token, "Content-Type": "text/plain",
		"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); code != 403 || !c.Bus().Enabled() {
		t.Errorf("a cross-origin POST: %d", code)
	}
	if post("POST", "/events/disable", "") != 200 || c.Bus().Enabled() {
		t.Error("disable")
	}
	if post("PUT", "/events/enabled", `{"enabled":true}`) != 200 || !c.Bus().Enabled() {
		t.Error("enable via PUT")
	}
	if post("PUT", "/events/enabled", `{}`) != 400 {
		t.Error("bad PUT accepted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReloadKeepsRunningOnBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(t, dir, "admin:\n  listen: 127.0.0.1:0\n")
	sigs := make(chan os.Signal, 1)
	var stderr syncBuffer
	var stdout bytes.Buffer
	io := cli.IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Signals: sigs,
		Env: func(string) (string, bool) { return "", false }}
	done := make(chan int, 1)
	go func() { done <- cli.Main([]string{"run", "-c", cfg}, io) }()
	waitFor(t, &stderr, "pipeline running")
	// A broken file is refused; the old configuration keeps running.
	_ = os.WriteFile(cfg, []byte("events: [\n"), 0o600)
	sigs <- syscall.SIGHUP
	waitFor(t, &stderr, "reload refused")
	// A good one is taken: now events go to a second file.
	_ = os.WriteFile(cfg, []byte("route:\n  default: [out2]\nexport:\n  out2:\n    type: file\n    path: out2.jsonl\ndead_letter:\n  path: dead.jsonl\nadmin:\n  listen: 127.0.0.1:0\n"), 0o600)
	sigs <- syscall.SIGHUP
	waitFor(t, &stderr, "configuration reloaded")
	sigs <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "out2.jsonl")); err != nil {
		t.Errorf("new output not started: %v", err)
	}
}

// A reload to a hostile plugin is refused with its reason, and the
// process keeps running on the old configuration: a module that loops
// while it loads (stopped by load_timeout, or its load fuel), and a
// 13-byte module declaring 2^32-1 data segments (refused before the
// decoder would allocate for them). A good configuration is then taken.
func TestReloadRefusesHostilePlugins(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(t, dir, "admin:\n  listen: 127.0.0.1:0\n")
	loop, err := filepath.Abs("../../host/testdata/plugins/loopinit.wasm")
	if err != nil {
		t.Fatal(err)
	}
	bomb := filepath.Join(dir, "bomb.wasm")
	if err := os.WriteFile(bomb, []byte("\x00asm\x01\x00\x00\x00\x0b\x05\xff\xff\xff\xff\x0f"), 0o600); err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	var stderr syncBuffer
	io := cli.IO{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr, Signals: sigs,
		Env: func(string) (string, bool) { return "", false }}
	done := make(chan int, 1)
	go func() { done <- cli.Main([]string{"run", "-c", cfg}, io) }()
	waitFor(t, &stderr, "pipeline running")
	withPlugin := func(path string) string {
		return "filter:\n  plugins:\n    - path: " + path + "\n      load_timeout: 300ms\n" +
			"route:\n  default: [out]\nexport:\n  out:\n    type: file\n    path: out.jsonl\ndead_letter:\n  path: dead.jsonl\nadmin:\n  listen: 127.0.0.1:0\n"
	}
	for _, tc := range []struct{ path, why string }{
		{loop, "loopinit.wasm: "}, // did not finish loading within 300ms, or ran out of its load fuel
		{bomb, "declares 4294967295 items"},
	} {
		_ = os.WriteFile(cfg, []byte(withPlugin(tc.path)), 0o600)
		sigs <- syscall.SIGHUP
		waitFor(t, &stderr, tc.why)
		waitFor(t, &stderr, "reload refused")
	}
	_ = os.WriteFile(cfg, []byte(withPlugin(filepath.Join(loop, "../walk.wasm"))), 0o600)
	sigs <- syscall.SIGHUP
	waitFor(t, &stderr, "configuration reloaded")
	sigs <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if n := strings.Count(stderr.String(), "reload refused"); n != 2 {
		t.Errorf("%d reloads refused, want 2:\n%s", n, stderr.String())
	}
}

type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitFor waits until the log contains want, woken by each write.
func waitFor(t *testing.T, s *syncBuffer, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		if want == "" || strings.Contains(s.b.String(), want) {
			s.mu.Unlock()
			return
		}
		ch := make(chan struct{})
		s.changed = ch
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("log never said %q:\n%s", want, s.String())
		}
	}
}

// A dead-letter replay never destroys a record: two replays in a row keep
// two archives; a replay while a pipeline writes the file refuses; one
// that cannot start puts the records back; one with nothing to do does
// nothing; a record over max_event_size is dead-lettered again, not an
// abort, whatever the length of its line.
func TestDLQReplayNeverDestroysARecord(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(t, dir, "")
	deadPath := filepath.Join(dir, "dead.jsonl")
	write := func(evs ...pipeline.Event) {
		d, err := export.OpenDeadLetter(deadPath, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			if err := d.Write(export.EventRecord(&evs[i], "export", "out", "was down")); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	archives := func() []string {
		m, _ := filepath.Glob(deadPath + ".replayed-*")
		return m
	}
	// Nothing to do: no archive, exit 0.
	if r := run(t, nil, "", "dlq", "replay", "-c", cfg); r.code != 0 || len(archives()) != 0 || !strings.Contains(r.stderr, "nothing to replay") {
		t.Fatalf("empty: %+v %v", r, archives())
	}
	// Two replays at once: two archives, each with its record.
	write(pipeline.Event{Type: "first.one"})
	if r := run(t, nil, "", "dlq", "replay", "-c", cfg); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	write(pipeline.Event{Type: "second.one"})
	if r := run(t, nil, "", "dlq", "replay", "-c", cfg); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if a := archives(); len(a) != 2 {
		t.Fatalf("archives %v, want 2", a)
	}
	// A pipeline holding the file open: the replay refuses and moves nothing.
	write(pipeline.Event{Type: "third.one"})
	holder, err := export.OpenDeadLetter(deadPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, nil, "", "dlq", "replay", "-c", cfg); r.code == 0 || !strings.Contains(r.stderr, "running pipeline") {
		t.Errorf("replay beside a writer: %+v", r)
	}
	holder.Close()
	if lines := readLines(t, deadPath); len(lines) != 1 || len(archives()) != 2 {
		t.Fatalf("after the refusal: %v, archives %v", lines, archives())
	}
	// A replay that cannot start (an output it cannot open) puts the
	// records back.
	blocked := fileConfig(t, dir, "")
	raw, _ := os.ReadFile(blocked)
	os.WriteFile(blocked, []byte(strings.Replace(string(raw), "path: out.jsonl", "path: /proc/no/such/dir/out.jsonl", 1)), 0o600)
	if r := run(t, nil, "", "dlq", "replay", "-c", blocked); r.code == 0 || !strings.Contains(r.stderr, "back in") {
		t.Errorf("replay that cannot start: %+v", r)
	}
	if lines := readLines(t, deadPath); len(lines) != 1 || !strings.Contains(lines[0], "third.one") || len(archives()) != 2 {
		t.Fatalf("records not put back: %v, archives %v", lines, archives())
	}
	os.WriteFile(blocked, raw, 0o600)
	// A record whose line is long and whose event is over the maximum
	// size: dead-lettered again with the reason; the others replayed.
	big := pipeline.Event{Type: "big.one", Data: json.RawMessage(`"` + strings.Repeat("x", 5<<20) + `"`)}
	write(big, pipeline.Event{Type: "small.one"})
	if r := run(t, nil, "", "dlq", "replay", "-c", cfg); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	out := strings.Join(readLines(t, filepath.Join(dir, "out.jsonl")), "\n")
	for _, typ := range []string{"first.one", "second.one", "third.one", "small.one"} {
		if !strings.Contains(out, typ) {
			t.Errorf("%s not replayed", typ)
		}
	}
	again := readLines(t, deadPath)
	if len(again) != 1 || !strings.Contains(again[0], "over the limit") {
		t.Errorf("dead letters after replay: %d lines", len(again))
	}
}

// run serves the admin API on 127.0.0.1:8080 when the pipeline says
// nothing, as the original design's health check expects; if that address
// is taken the run goes on without it; admin.listen: off turns it off.
func TestRunServesTheAdminByDefault(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(t, dir, "")
	in := writeFile(t, dir, "in.jsonl", "{\"type\":\"a.b\"}\n")
	// Whether or not something else holds 8080 now, the run must succeed,
	// having either served the admin API there (its token file written) or
	// said that the default address is taken.
	r := run(t, nil, "", "run", "-c", cfg, "--input", in)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	_, tokenErr := os.Stat(filepath.Join(dir, ".eventpipe", "admin.token"))
	if tokenErr != nil && !strings.Contains(r.stderr, "default address is taken") {
		t.Errorf("the admin API was neither served nor said to be off: %s", r.stderr)
	}
	os.RemoveAll(filepath.Join(dir, ".eventpipe"))
	off := writeFile(t, dir, "off.yaml", "admin:\n  listen: \"off\"\nroute:\n  default: [out]\nexport:\n  out: {type: file, path: out2.jsonl}\n")
	r = run(t, nil, "", "run", "-c", off, "--input", in)
	if _, err := os.Stat(filepath.Join(dir, ".eventpipe", "admin.token")); r.code != 0 || err == nil || strings.Contains(r.stderr, "default address is taken") {
		t.Errorf("admin off: exit %d, token file %v: %s", r.code, err, r.stderr)
	}
}
