package host_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/pipeline"
)

// lockedBuffer is a log destination safe for the host's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Plugin text reaches the host log as one escaped, bounded line; nothing
// is served before the manifest was checked; a forged metric name is
// refused and counted.
func TestPluginTextCannotForgeLogLines(t *testing.T) {
	h := newHost(t)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/logforge.wasm",
		Capabilities: []string{"log", "metrics"}}, Logger: logger})
	runBatch(t, p.Stage(), testEvents()[:1])
	out := logs.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), out)
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "early") {
		t.Errorf("raw escape or a log from before the capability check:\n%q", out)
	}
	if !strings.Contains(out, `ok\\n\\x1b[2Jtime=`) || !strings.Contains(out, "more bytes") || len(lines[0]) > 2*host.MaxLogText {
		t.Errorf("log line not escaped and bounded (%d bytes):\n%s", len(lines[0]), out)
	}
	st := p.Stats()
	if len(st.Custom) != 0 || st.Failures["bad_metric"] != 1 {
		t.Errorf("metrics %v, failures %v: want the forged name refused and counted", st.Custom, st.Failures)
	}
}

// A module that imports a host function the pipeline does not grant is
// refused before any of its code runs.
func TestUngrantedImportRefusedBeforeInstantiation(t *testing.T) {
	h := newHost(t)
	var logs lockedBuffer
	_, err := h.Load(t.Context(), host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/logforge.wasm",
		Capabilities: []string{"metrics"}}, Kind: host.KindFilter, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err == nil || !strings.Contains(err.Error(), `needs capability "log"`) {
		t.Fatalf("err = %v", err)
	}
	if logs.String() != "" {
		t.Errorf("the module ran: %s", logs.String())
	}
}

// sequence and id belong to the host: a transform that rewrites them
// leaves them as they were, and the attempt is counted.
func TestHostOwnedFieldsKept(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/reseq.wasm"}, Kind: host.KindTransform})
	evs := testEvents()
	for i := range evs {
		evs[i].Sequence, evs[i].ID = uint64(i+1), "id-"+evs[i].Type
	}
	b := runBatch(t, p.Stage(), evs)
	for i := range b.Events {
		if b.Events[i].Sequence != uint64(i+1) || b.Events[i].ID != evs[i].ID || b.Verdicts[i] != pipeline.Keep {
			t.Errorf("event %d: sequence %d id %s verdict %v", i, b.Events[i].Sequence, b.Events[i].ID, b.Verdicts[i])
		}
	}
	if got := p.Stats().Failures["host_field"]; got != uint64(len(evs)) {
		t.Errorf("host_field rewrites counted %d, want %d", got, len(evs))
	}
}

// Fuel is deterministic: an endless loop stops when its batch's fuel is
// spent, long before a generous timeout; and the same batch always costs
// the same fuel.
func TestFuelStopsLoopsAndIsDeterministic(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/loop.wasm",
		Fuel: 1_000_000, FuelPerEvent: 1, Timeout: 10 * time.Minute}})
	b := runBatch(t, p.Stage(), testEvents())
	if !strings.Contains(b.Reasons[0], "ran out of fuel") || p.Stats().Failures[host.FailFuel] != 1 {
		t.Fatalf("reason %q, failures %v", b.Reasons[0], p.Stats().Failures)
	}
	w := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "../sdk/wat/filter.wasm"}})
	var used []uint64
	for range 3 {
		before := w.Stats().FuelUsed
		runBatch(t, w.Stage(), testEvents())
		used = append(used, w.Stats().FuelUsed-before)
	}
	if used[0] == 0 || used[0] != used[1] || used[1] != used[2] {
		t.Errorf("fuel per identical batch: %v", used)
	}
}

// A module file over the size limit is refused without being read (a
// sparse file: nothing is written to disk).
func TestHugeModuleRefusedUnread(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.wasm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(500 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = newHost(t).Load(t.Context(), host.Spec{PluginConfig: host.PluginConfig{Path: path}, Kind: host.KindFilter})
	if err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("err = %v", err)
	}
}

// Compiled wasm has no point where Go's garbage collector can pause it:
// a loop that never left it would hold every stop-the-world (and the
// whole process, watchdog included) until its fuel ran out. Metered code
// yields to Go every YieldEvery units, so collections complete while a
// plugin loops.
func TestGarbageCollectionWhileAPluginLoops(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/loop.wasm",
		Timeout: 5 * time.Second, Fuel: 1 << 50}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b pipeline.Batch
		b.Reset(testEvents()[:1])
		_ = p.Stage().Process(context.Background(), &b)
	}()
	for range 40 {
		time.Sleep(20 * time.Millisecond) // pacing: some collections fall inside the loop
		runtime.GC()
		select {
		case <-done:
			t.Fatal("a collection waited for the plugin's batch to end")
		default:
		}
	}
	<-done // the watchdog stops it at its timeout
	if got := p.Stats().Failures[host.FailTimeout]; got != 1 {
		t.Errorf("timeouts %d, want 1", got)
	}
}
