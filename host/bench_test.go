package host_test

import (
	"context"
	"encoding/json"
	"fmt"
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
// (testdata/plugins/walk.wat). The difference per
// event is the host's framework overhead (copying the batch into guest
// memory, one call, reading verdicts); the guest only walks the records.
func BenchmarkFilterOverhead(b *testing.B) {
	evs := benchBatch(1000)
	run := func(b *testing.B, s pipeline.Stage) { benchStage(b, s, evs) }
	b.Run("native", func(b *testing.B) { run(b, nativeRef{}) })
	h := newHost(b)
	p := load(b, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/walk.wasm"}})
	b.Run("wasm-walk", func(b *testing.B) { run(b, p.Stage()) })
	tp := load(b, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/walk.wasm"}, Unmetered: true})
	b.Run("wasm-walk-unmetered", func(b *testing.B) { run(b, tp.Stage()) })
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
