package host_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/pipeline"
)

func newHost(t testing.TB) *host.Host {
	t.Helper()
	h, err := host.New(host.Options{CacheDir: cacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func cacheDir(t testing.TB) string {
	d := os.Getenv("EVENTPIPE_TEST_WASM_CACHE")
	if d == "" {
		d = t.TempDir()
	}
	return d
}

func load(t testing.TB, h *host.Host, spec host.Spec) *host.Plugin {
	t.Helper()
	if spec.Kind == "" {
		spec.Kind = host.KindFilter
	}
	p, err := h.Load(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func testEvents() []pipeline.Event {
	return []pipeline.Event{
		{Type: "agent.started", Source: "a", Time: time.Unix(1, 0)},
		{Type: "agent.debug", Source: "a"},
		{Type: "tool.invoked", Source: "evil", Data: json.RawMessage(`{"x":1}`)},
		{Type: "x.debug", Source: "evil"},
		{Type: "workflow.debugger", Source: "evilx", Tags: []string{"t"}},
	}
}

// refVerdicts is what the reference filter decides (sdk/ABI.md conformance).
var refVerdicts = []pipeline.Verdict{pipeline.Keep, pipeline.Drop, pipeline.DeadLetter, pipeline.DeadLetter, pipeline.Keep}

func runBatch(t testing.TB, s pipeline.Stage, evs []pipeline.Event) *pipeline.Batch {
	t.Helper()
	var b pipeline.Batch
	b.Reset(append([]pipeline.Event(nil), evs...))
	if err := s.Process(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

// failsTwice runs two batches of evs through p, each of which must fail:
// every event dead-lettered with a reason that says want, the failure
// counted under kind both times. It returns p's counters after.
func failsTwice(t *testing.T, p *host.Plugin, evs []pipeline.Event, kind, want string) host.Snapshot {
	t.Helper()
	s := p.Stage()
	for round := 0; round < 2; round++ { // a fresh instance replaces a broken one
		b := runBatch(t, s, evs)
		for i := range b.Events {
			if b.Verdicts[i] != pipeline.DeadLetter || !strings.Contains(b.Reasons[i], want) {
				t.Fatalf("round %d event %d: %v %q, want dead_letter with %q", round, i, b.Verdicts[i], b.Reasons[i], want)
			}
		}
	}
	st := p.Stats()
	if st.Failures[kind] != 2 {
		t.Errorf("failures %v, want 2 of %s", st.Failures, kind)
	}
	return st
}

func TestReferenceWATFilter(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "../sdk/wat/filter.wasm"}})
	if m := p.Manifest(); m.Name != "ref-filter" || m.Kind != "filter" {
		t.Errorf("manifest %+v", m)
	}
	s := p.Stage()
	for round := 0; round < 3; round++ { // the instance is reused
		b := runBatch(t, s, testEvents())
		for i, want := range refVerdicts {
			if b.Verdicts[i] != want {
				t.Errorf("round %d event %d (%s from %s): %v, want %v", round, i, b.Events[i].Type, b.Events[i].Source, b.Verdicts[i], want)
			}
		}
	}
	// A large batch makes the guest grow its memory.
	big := make([]pipeline.Event, 5000)
	for i := range big {
		big[i] = pipeline.Event{Type: "a.debug", Data: json.RawMessage(`{"pad":"` + strings.Repeat("p", 100) + `"}`)}
	}
	b := runBatch(t, s, big)
	if b.Kept() != 0 {
		t.Errorf("kept %d of 5000 debug events", b.Kept())
	}
	st := p.Stats()
	if st.Batches != 4 || st.EventsIn != 5015 || len(st.Failures) != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestHostilePluginsAreContained(t *testing.T) {
	h := newHost(t)
	// Memory of every kind stays bounded: linear memory by max_memory,
	// tables by the preflight, the call stack by the stack bound. The
	// process's memory from the system (a high-water mark) says whether
	// any of them ran away (bigframe alone would take 400 MB unbounded).
	defer func() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("memory from the system after the hostile suite: %d MiB", ms.Sys>>20)
		if ms.Sys > 256<<20 {
			t.Errorf("the hostile suite took %d MiB from the system", ms.Sys>>20)
		}
	}()
	tests := []struct {
		name, kind string
		timeout    time.Duration
	}{
		{"loop", host.FailTimeout, 50 * time.Millisecond},
		{"trap", host.FailTrap, 0},
		{"stack", host.FailStack, 0},
		{"bigframe", host.FailStack, 0},
		{"membomb", host.FailTrap, 0},
		{"oob", host.FailBadOutput, 0},
		{"giant", host.FailBadOutput, 0},
		{"badverdict", host.FailBadOutput, 0},
		{"errcode", host.FailError, 0},
		{"openfile", host.FailError, 0},
		{"socket", host.FailError, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/" + tc.name + ".wasm", Timeout: tc.timeout, MaxMemory: 8 << 20}})
			failsTwice(t, p, testEvents(), tc.kind, tc.kind)
			if tc.name == "openfile" || tc.name == "socket" {
				b := runBatch(t, p.Stage(), testEvents()[:1])
				if !strings.Contains(b.Reasons[0], "eventpipe_process returned -") || strings.Contains(b.Reasons[0], "-1000") { // a WASI errno: no descriptor to use
					t.Errorf("sandbox escape or unexpected errno: %q", b.Reasons[0])
				}
			}
		})
	}
}

func TestRefusedAtLoad(t *testing.T) {
	h := newHost(t)
	bin, _ := os.ReadFile("../sdk/wat/filter.wasm")
	sum := sha256.Sum256(bin)
	good := "sha256:" + hex.EncodeToString(sum[:])
	tests := []struct {
		spec host.Spec
		want string
	}{
		{host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/nomarker.wasm"}, Kind: "filter"}, "not an eventpipe v1 plugin"},
		{host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/httpask.wasm"}, Kind: "filter"}, `capability "http"`},
		{host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/httpimport.wasm"}, Kind: "filter"}, "http_request"},
		{host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/logger.wasm"}, Kind: "filter"}, `capability "log"`},
		{host.Spec{PluginConfig: host.PluginConfig{Path: "../sdk/wat/filter.wasm"}, Kind: "route"}, "is a filter plugin, used here as route"},
		{host.Spec{PluginConfig: host.PluginConfig{Path: "../sdk/wat/filter.wasm", SHA256: "sha256:" + strings.Repeat("0", 64)}, Kind: "filter"}, "sha256 mismatch"},
		{host.Spec{PluginConfig: host.PluginConfig{Path: "missing.wasm"}, Kind: "filter"}, "no such file"},
		{host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/loop.wat"}, Kind: "filter"}, "not a valid wasm module"},
		// A loop while loading is stopped by the load timeout, or by the
		// load's fuel on a machine too busy to see the timer first.
		{host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/loopinit.wasm", LoadTimeout: 200 * time.Millisecond}, Kind: "filter"}, "did not finish loading within 200ms|ran out of its load fuel"},
		{host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/loopstart.wasm", LoadTimeout: 200 * time.Millisecond}, Kind: "filter"}, "did not finish loading within 200ms|ran out of its load fuel"},
		// reads names record fields, and a transform has none to leave out.
		{host.Spec{PluginConfig: host.PluginConfig{Path: patchedModule(t, "testdata/plugins/walk.wasm", `"source"]`, `"body"]`)}, Kind: "filter"}, `reads "body", which is not a record field`},
		{host.Spec{PluginConfig: host.PluginConfig{Path: patchedModule(t, "testdata/plugins/walk.wasm", `"filter","capabilities":[]`, `"transform","cap":[]`)}, Kind: "transform"}, "a transform may not declare reads"},
	}
	for _, tc := range tests {
		_, err := h.Load(context.Background(), tc.spec)
		if err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
			t.Errorf("%s: %v, want %q", tc.spec.Path, err, tc.want)
		}
	}
	p, err := h.Load(context.Background(), host.Spec{PluginConfig: host.PluginConfig{Path: "../sdk/wat/filter.wasm", SHA256: good}, Kind: "filter"})
	if err != nil {
		t.Fatalf("pinned load: %v", err)
	}
	_ = p.Close(context.Background())
}

func TestLogCapabilityAndPolicies(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/logger.wasm", Capabilities: []string{"log"}}})
	for i := 0; i < 30; i++ {
		runBatch(t, p.Stage(), testEvents()[:1])
	}
	if st := p.Stats(); st.LogsDropped == 0 || st.Batches != 30 {
		t.Errorf("log rate limit not applied: %+v", st)
	}
	for policy, want := range map[string]pipeline.Verdict{"fail_open": pipeline.Keep, "fail_closed": pipeline.Drop, "dead_letter": pipeline.DeadLetter} {
		p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/trap.wasm", OnError: policy}})
		b := runBatch(t, p.Stage(), testEvents())
		for i := range b.Events {
			if b.Verdicts[i] != want {
				t.Errorf("%s: event %d %v", policy, i, b.Verdicts[i])
			}
		}
	}
}

func TestCrashLoopBackoff(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/trap.wasm"}})
	s := p.Stage()
	for i := 0; i < 8; i++ {
		runBatch(t, s, testEvents()[:1])
	}
	st := p.Stats()
	if st.Failures[host.FailTrap] != 5 || st.Failures[host.FailBackoff] != 3 {
		t.Errorf("want 5 traps then 3 batches backed off, got %v", st.Failures)
	}
	b := runBatch(t, s, testEvents()[:1])
	if !strings.Contains(b.Reasons[0], "failing repeatedly") {
		t.Errorf("reason %q", b.Reasons[0])
	}
}

func TestPoolRunsConcurrentStages(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "../sdk/wat/filter.wasm", Pool: 3}})
	errs := make(chan error, 6)
	for w := 0; w < 6; w++ {
		go func() {
			s := p.Stage()
			for i := 0; i < 20; i++ {
				var b pipeline.Batch
				b.Reset(testEvents())
				_ = s.Process(context.Background(), &b)
				for k, want := range refVerdicts {
					if b.Verdicts[k] != want {
						errs <- fmt.Errorf("event %d: %v", k, b.Verdicts[k])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < 6; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// An unmetered and a metered build of one module must not share compiled
// code: loaded after an unmetered build of the same endless loop, the
// metered build must still be stopped by its timeout.
func TestUnmeteredAndMeteredBuildsDoNotShareCode(t *testing.T) {
	h := newHost(t)
	_ = load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/loop.wasm"}, Unmetered: true}) // compiled first, never run
	checked := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/loop.wasm", Timeout: 50 * time.Millisecond}})
	b := runBatch(t, checked.Stage(), testEvents()[:1])
	// Stopped by its timeout or by its fuel, whichever comes first (a
	// metered loop runs its ~100M units of fuel in about the 50 ms): an
	// unmetered build would be stopped by neither.
	if !strings.Contains(b.Reasons[0], host.FailTimeout) && !strings.Contains(b.Reasons[0], host.FailFuel) {
		t.Fatalf("metered loop not stopped after an unmetered build was cached: %q", b.Reasons[0])
	}
}
