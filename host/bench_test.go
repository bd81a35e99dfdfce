package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/pipeline"
)

func benchBatch(n int) []pipeline.Event {
	evs := make([]pipeline.Event, n)
	for i := range evs {
		typ := "agent.completed"
		if i%10 == 0 {
			typ = "agent.debug"
		}
		evs[i] = pipeline.Event{Type: typ, Source: "researcher", ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", 180)))}
	}
	return evs
}

// nativeRef is the reference filter's logic in Go: the baseline.
type nativeRef struct{}

func (nativeRef) Process(_ context.Context, b *pipeline.Batch) error {
	for i := range b.Events {
		e := &b.Events[i]
		switch {
		case e.Source == "evil":
			b.Mark(i, pipeline.DeadLetter, "ref", "evil")
		case strings.HasSuffix(e.Type, ".debug"):
			b.Mark(i, pipeline.Drop, "ref", "debug")
		}
	}
	return nil
}

// BenchmarkFilterOverhead: a 1000-event batch (~200-byte payloads) through
// the reference filter without per-byte work, native and as a wasm plugin
// (testdata/plugins/walk.wat). The difference per event is the host's
// framework overhead (writing the batch into guest memory, one call,
// reading verdicts); the guest only walks the records. walk.wat's manifest
// says it reads type and source (so the host copies only those);
// every-field is the same module without that line, given every field as
// a plugin that reads data is.
func BenchmarkFilterOverhead(b *testing.B) {
	evs := benchBatch(1000)
	run := func(b *testing.B, s pipeline.Stage) { benchStage(b, s, evs) }
	b.Run("native", func(b *testing.B) { run(b, nativeRef{}) })
	h := newHost(b)
	walk := host.PluginConfig{Path: "testdata/plugins/walk.wasm"}
	every := host.PluginConfig{Path: everyField(b, walk.Path)}
	b.Run("wasm-walk", func(b *testing.B) { run(b, load(b, h, host.Spec{PluginConfig: walk}).Stage()) })
	b.Run("wasm-walk-every-field", func(b *testing.B) { run(b, load(b, h, host.Spec{PluginConfig: every}).Stage()) })
	b.Run("wasm-walk-unmetered", func(b *testing.B) { run(b, load(b, h, host.Spec{PluginConfig: walk, Unmetered: true}).Stage()) })
}

// BenchmarkBatchSize: the reference walk over batches of 1, 64 and 512
// events (the pipeline's default batch_size; with batch_linger 0 a batch
// is what is queued, often few events): the host's cost per batch (a
// call, the watchdog armed and stopped, the verdicts) spread over them.
func BenchmarkBatchSize(b *testing.B) {
	h := newHost(b)
	p := load(b, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/walk.wasm"}})
	for _, n := range []int{1, 64, 512} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchStage(b, p.Stage(), benchBatch(n)) })
	}
}

// everyField is walk.wasm with its manifest's reads key renamed to one the
// host ignores: the host then gives it every field.
func everyField(t testing.TB, path string) string {
	return patchedModule(t, path, `"reads"`, `"_eads"`)
}

// patchedModule writes a copy of the module at path with the text old (in
// a data segment: the manifest) replaced by repl padded with spaces to the
// same length, so that the module stays valid.
func patchedModule(t testing.TB, path, old, repl string) string {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(repl) > len(old) {
		t.Fatalf("%q is longer than %q", repl, old)
	}
	patched := bytes.Replace(wasm, []byte(old), []byte(repl+strings.Repeat(" ", len(old)-len(repl))), 1)
	if bytes.Equal(patched, wasm) {
		t.Fatalf("%s: no %s in it", path, old)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, patched, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFilterReadsOnlyWhatItDeclares: walk.wat declares reads [type,
// source]; its verdicts over a batch (debug types dropped, the "evil"
// source refused) are the native reference's, whether the host gives it
// two fields or all of them.
func TestFilterReadsOnlyWhatItDeclares(t *testing.T) {
	evs := benchBatch(50)
	evs[7].Source = "evil"
	var want pipeline.Batch
	want.Reset(slices.Clone(evs))
	if err := (nativeRef{}).Process(context.Background(), &want); err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	for name, path := range map[string]string{"reads": "testdata/plugins/walk.wasm", "every-field": everyField(t, "testdata/plugins/walk.wasm")} {
		t.Run(name, func(t *testing.T) {
			p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: path}})
			if got, want := len(p.Manifest().Reads), map[string]int{"reads": 2, "every-field": 0}[name]; got != want {
				t.Fatalf("manifest reads %v", p.Manifest().Reads)
			}
			var b pipeline.Batch
			b.Reset(slices.Clone(evs))
			if err := p.Stage().Process(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.Verdicts, want.Verdicts) {
				t.Fatalf("verdicts\n got %v\nwant %v", b.Verdicts, want.Verdicts)
			}
			if b.Verdicts[7] != pipeline.DeadLetter || b.Verdicts[10] != pipeline.Drop || b.Verdicts[1] != pipeline.Keep {
				t.Fatalf("reference verdicts are not what the batch was built for: %v", b.Verdicts[:11])
			}
		})
	}
}

// benchStage runs s over evs per iteration and reports ns per event.
func benchStage(b *testing.B, s pipeline.Stage, evs []pipeline.Event) {
	var bt pipeline.Batch
	b.ReportAllocs()
	for b.Loop() {
		bt.Reset(evs)
		_ = s.Process(context.Background(), &bt)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

// nopStage is a stage that does nothing: the native baseline of a
// transform that changes nothing.
type nopStage struct{}

func (nopStage) Process(context.Context, *pipeline.Batch) error { return nil }

// BenchmarkTransformOverhead: a 1000-event batch through a transform that
// returns its input unchanged (testdata/plugins/identity.wat): the host's
// whole cost of a transform per event — the batch encoded into guest
// memory, the output read back and compared field by field with the
// events (nothing is copied when nothing changed).
func BenchmarkTransformOverhead(b *testing.B) {
	evs := benchBatch(1000)
	b.Run("native", func(b *testing.B) { benchStage(b, nopStage{}, evs) })
	h := newHost(b)
	p := load(b, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/identity.wasm"}, Kind: host.KindTransform})
	b.Run("wasm-identity", func(b *testing.B) { benchStage(b, p.Stage(), evs) })
}
