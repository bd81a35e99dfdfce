package plugins_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/internal/bench"
	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

// BenchmarkSanitizePlugin: the built-in sanitize plugins (Go and Rust) on
// 1000-event batches of ~300-byte events, with limits on, against the
// native stage in the same run (issue target: >= 30% of native).
func BenchmarkSanitizePlugin(b *testing.B) {
	src := []pipeline.Event{}
	for _, line := range strings.Split(strings.TrimSpace(string(bench.Input(1000))), "\n") {
		ev, _ := pipeline.Decode([]byte(line), pipeline.DecodeOptions{})
		ev.ID, ev.Time = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", time.Now()
		src = append(src, ev)
	}
	run := func(b *testing.B, s pipeline.Stage) {
		evs := make([]pipeline.Event, len(src))
		var bt pipeline.Batch
		for b.Loop() {
			copy(evs, src)
			bt.Reset(evs)
			_ = s.Process(context.Background(), &bt)
		}
		b.ReportMetric(float64(b.N*len(src))/b.Elapsed().Seconds(), "events/s")
	}
	native, _ := stage.NewSanitize(stage.DefaultSanitizeConfig())
	b.Run("native", func(b *testing.B) { run(b, native) })
	b.Run("wasm", func(b *testing.B) { run(b, load(b, "sanitize", host.KindTransform, nil)) })
	b.Run("wasm-rust", func(b *testing.B) { run(b, load(b, "sanitize-rust", host.KindTransform, nil)) })
	b.Run("wasm-rust-unmetered", func(b *testing.B) {
		h, _ := host.New(host.Options{})
		p, err := h.Load(context.Background(), host.Spec{PluginConfig: host.PluginConfig{Path: filepath.Join(wasmDir, "sanitize-rust.wasm")}, Unmetered: true, Kind: host.KindTransform})
		if err != nil {
			b.Fatal(err)
		}
		run(b, p.Stage())
	})
	b.Run("wasm-unmetered", func(b *testing.B) {
		h, _ := host.New(host.Options{})
		p, err := h.Load(context.Background(), host.Spec{PluginConfig: host.PluginConfig{Path: filepath.Join(wasmDir, "sanitize.wasm")}, Unmetered: true, Kind: host.KindTransform})
		if err != nil {
			b.Fatal(err)
		}
		run(b, p.Stage())
	})
}

// BenchmarkEndToEndWasmSanitize: JSON lines -> filter -> wasm sanitize ->
// route -> file, against the same pipeline with the native sanitize.
func BenchmarkEndToEndWasmSanitize(b *testing.B) {
	n := max(b.N, 20000)
	native, err := bench.Throughput(context.Background(), bench.Options{Events: n})
	if err != nil {
		b.Fatal(err)
	}
	for _, trusted := range []bool{false, true} {
		yaml := strings.Replace(bench.DefaultPipeline, "sanitize:\n  enabled: true\n",
			"sanitize:\n  enabled: false\n  plugins:\n    - path: "+filepath.Join(wasmDir, "sanitize.wasm")+"\n      trusted: "+map[bool]string{true: "true", false: "false"}[trusted]+"\n", 1)
		h, _ := host.New(host.Options{CacheDir: filepath.Join(os.TempDir(), "eventpipe-test-wasm-cache")})
		reg := runner.NewRegistry()
		if err := reg.Register(h.Factories()...); err != nil {
			b.Fatal(err)
		}
		res, err := bench.Throughput(context.Background(), bench.Options{Events: n, Pipeline: yaml, Registry: reg})
		if err != nil {
			b.Fatal(err)
		}
		name := "wasm"
		if trusted {
			name = "wasm-unmetered"
		}
		b.ReportMetric(res.EventsPerSec, name+"-events/s")
		b.ReportMetric(res.EventsPerSec/native.EventsPerSec*100, name+"-%-of-native")
	}
	b.ReportMetric(native.EventsPerSec, "native-events/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStartBuiltins: assembling a pipeline that uses both Go built-in
// plugins (filter and sanitize), with a warm compilation cache, as `eventpipe
// run` does at start. The runner loads plugins in parallel.
func BenchmarkStartBuiltins(b *testing.B) {
	dir := b.TempDir()
	cache := filepath.Join(dir, "cache")
	path := filepath.Join(dir, "pipeline.yaml")
	yaml := "filter:\n  plugins:\n    - path: " + filepath.Join(wasmDir, "filter.wasm") +
		"\nsanitize:\n  enabled: false\n  plugins:\n    - path: " + filepath.Join(wasmDir, "sanitize.wasm") + "\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	start := func() {
		h, err := host.New(host.Options{CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close(context.Background())
		cfg, err := config.Load(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		reg := runner.NewRegistry()
		if err := reg.Register(h.Factories()...); err != nil {
			b.Fatal(err)
		}
		r, err := runner.New(context.Background(), cfg, runner.Options{Registry: reg, Inputs: []string{empty}, Stdout: io.Discard,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		// Not measured: running over no input shuts the plugins down, so
		// that one start does not leave its runtimes to the next.
		b.StopTimer()
		if _, err := r.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	start() // warm the cache
	for b.Loop() {
		start()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/start")
}

// TestFuelOfBuiltins: the built-in plugins are metered, and use a small
// part of the default fuel (host.DefaultFuelPerEvent keeps a margin of
// at least 100 times what they need).
func TestFuelOfBuiltins(t *testing.T) {
	src := []pipeline.Event{}
	for _, line := range strings.Split(strings.TrimSpace(string(bench.Input(1000))), "\n") {
		ev, _ := pipeline.Decode([]byte(line), pipeline.DecodeOptions{})
		src = append(src, ev)
	}
	for _, name := range []string{"filter", "sanitize", "sanitize-rust"} {
		kind := host.KindFilter
		if name != "filter" {
			kind = host.KindTransform
		}
		s := load(t, name, kind, nil)
		var bt pipeline.Batch
		bt.Reset(append([]pipeline.Event(nil), src...))
		_ = s.Process(context.Background(), &bt)
		st := s.Stats()
		per := st.FuelUsed / uint64(len(src))
		t.Logf("%s: %d units for %d events: %d per event", name, st.FuelUsed, len(src), per)
		if per == 0 || per*100 > host.DefaultFuelPerEvent {
			t.Errorf("%s uses %d units per event: not metered, or the default of %d leaves too little margin", name, per, host.DefaultFuelPerEvent)
		}
	}
}
