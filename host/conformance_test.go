package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/internal/wasmbuild"
	"github.com/eventpipe/eventpipe/pipeline"
)

// conformanceDir holds the non-Go conformance plugins: the committed
// builds, or fresh ones (CI sets EVENTPIPE_CONFORMANCE_DIR after
// rebuilding them from source with `make conformance`).
func conformanceDir() string {
	if d := os.Getenv("EVENTPIPE_CONFORMANCE_DIR"); d != "" {
		return d
	}
	return "testdata/conformance"
}

var goConformance, extismConformance, webhookExporter, cloudSubject string // built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventpipe-conformance-")
	if err != nil {
		panic(err)
	}
	goConformance = filepath.Join(dir, "filter-go.wasm")
	extismConformance = filepath.Join(dir, "filter-extism.wasm")
	webhookExporter = filepath.Join(dir, "webhook-exporter.wasm")
	cloudSubject = filepath.Join(dir, "cloud-subject.wasm")
	for out, src := range map[string]string{goConformance: "../sdk/go/examples/conformance",
		extismConformance: "../sdk/go/examples/extism-conformance", webhookExporter: "../sdk/go/examples/webhook-exporter",
		cloudSubject: "../sdk/go/examples/cloud-subject"} {
		if err := wasmbuild.Build(src, out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func fnv1a(b []byte) uint32 {
	h := uint32(0x811c9dc5)
	for _, c := range b {
		h = (h ^ uint32(c)) * 0x01000193
	}
	return h
}

// nativeConformance is the conformance filter in Go, run natively: the
// verdicts every language must reproduce, and the benchmark baseline.
type nativeConformance struct{}

func (nativeConformance) Process(_ context.Context, b *pipeline.Batch) error {
	for i := range b.Events {
		e := &b.Events[i]
		switch {
		case e.Source == "evil":
			b.Mark(i, pipeline.DeadLetter, "c", "evil")
		case strings.HasSuffix(e.Type, ".debug"):
			b.Mark(i, pipeline.Drop, "c", "debug")
		case fnv1a(e.Data)%7 == 0:
			b.Mark(i, pipeline.Drop, "c", "fnv")
		}
	}
	return nil
}

func conformancePlugins() map[string]string {
	d := conformanceDir()
	return map[string]string{
		"wat":            "../sdk/wat/filter.wasm",
		"c":              filepath.Join(d, "filter-c.wasm"),
		"rust":           filepath.Join(d, "filter-rust.wasm"),
		"assemblyscript": filepath.Join(d, "filter-as.wasm"),
		"go":             goConformance,
		"extism":         extismConformance,
	}
}

func conformanceEvents() []pipeline.Event {
	var evs []pipeline.Event
	types := []string{"agent.completed", "agent.debug", "x.debug", "debug", "a.debugger", "tool.invoked"}
	sources := []string{"a", "evil", "evil2", "", "eviL"}
	for i := 0; i < 300; i++ {
		evs = append(evs, pipeline.Event{
			Type: types[i%len(types)], Source: sources[i%len(sources)], ID: fmt.Sprint(i),
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"s":"%s"}`, i, strings.Repeat("z", i%40))),
			Tags: []string{"t"}[:i%2],
		})
	}
	evs = append(evs, pipeline.Event{Type: "no.data"})
	return evs
}

func TestConformanceAllLanguagesAgree(t *testing.T) {
	h := newHost(t)
	evs := conformanceEvents()
	want := runBatch(t, nativeConformance{}, evs).Verdicts
	var counts [3]int
	for _, v := range want {
		counts[v]++
	}
	if counts[0] == 0 || counts[1] == 0 || counts[2] == 0 {
		t.Fatalf("the event set does not exercise every verdict: %v", counts)
	}
	for lang, path := range conformancePlugins() {
		t.Run(lang, func(t *testing.T) {
			p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: path}})
			got := runBatch(t, p.Stage(), evs).Verdicts
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("event %d (%s from %q): %v, native says %v", i, evs[i].Type, evs[i].Source, got[i], want[i])
				}
			}
		})
	}
}

// BenchmarkConformanceFilter: the conformance filter (FNV-1a over ~200-byte
// data, real work per byte) natively and in each language, 1000-event
// batches. ns/event includes the host's overhead.
func BenchmarkConformanceFilter(b *testing.B) {
	evs := benchBatch(1000)
	run := func(b *testing.B, s pipeline.Stage) { benchStage(b, s, evs) }
	b.Run("native-go", func(b *testing.B) { run(b, nativeConformance{}) })
	h := newHost(b)
	for _, lang := range []string{"wat", "c", "rust", "assemblyscript", "go", "extism"} {
		p := load(b, h, host.Spec{PluginConfig: host.PluginConfig{Path: conformancePlugins()[lang]}})
		b.Run(lang, func(b *testing.B) { run(b, p.Stage()) })
		tp := load(b, h, host.Spec{PluginConfig: host.PluginConfig{Path: conformancePlugins()[lang]}, Unmetered: true})
		b.Run(lang+"-unmetered", func(b *testing.B) { run(b, tp.Stage()) })
	}
}

func TestExtismPluginObeysTimeoutAndPolicy(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: extismConformance, Timeout: 100 * time.Millisecond, Config: map[string]any{"hang": true}}})
	if st := failsTwice(t, p, conformanceEvents()[:3], host.FailTimeout, "timeout"); st.Restarts != 2 {
		t.Errorf("restarts %d, want 2", st.Restarts)
	}
}

// An Extism plugin is metered as an ABI v1 module is: every batch is
// charged (identical ones about the same: the Go PDK guest's own heap
// differs from one to the next), a batch over its fuel is stopped (kind
// fuel) and follows on_error, and the next one runs on a fresh instance.
func TestExtismPluginIsMetered(t *testing.T) {
	h := newHost(t)
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: extismConformance}})
	var used []uint64
	for range 3 {
		before := p.Stats().FuelUsed
		runBatch(t, p.Stage(), conformanceEvents())
		used = append(used, p.Stats().FuelUsed-before)
	}
	if slices.Min(used) == 0 || slices.Max(used)-slices.Min(used) > slices.Min(used)/20 {
		t.Errorf("fuel per identical batch: %v", used)
	}
	starved := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: extismConformance,
		Fuel: int64(used[0] / 2), FuelPerEvent: 1, Timeout: 10 * time.Minute}})
	if st := failsTwice(t, starved, conformanceEvents(), host.FailFuel, "ran out of fuel"); st.Restarts != 2 {
		t.Errorf("restarts %d, want 2", st.Restarts)
	}
}

// An Extism plugin that loops while it loads (its manifest, here) is
// stopped by load_timeout or its load fuel, and refused with the reason.
func TestExtismPluginLoopingAtLoadIsRefused(t *testing.T) {
	h := newHost(t)
	_, err := h.Load(context.Background(), host.Spec{PluginConfig: host.PluginConfig{Path: extismConformance,
		LoadTimeout: 300 * time.Millisecond, Config: map[string]any{"hang_at_load": true}}, Kind: host.KindFilter})
	if err == nil || !regexp.MustCompile(`did not finish loading within 300ms|ran out of its load fuel`).MatchString(err.Error()) {
		t.Fatalf("load: %v", err)
	}
}
