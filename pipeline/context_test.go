package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/eventtest"
)

func TestTrackLifecycle(t *testing.T) {
	c := eventtest.New()
	ctx := pipeline.WithEmitter(context.Background(), c)
	err := pipeline.Track(ctx, "agent", func(ctx context.Context) error {
		return pipeline.Track(ctx, "tool", func(ctx context.Context) error {
			return pipeline.Emit(ctx, "tool.progress", map[string]int{"pct": 50})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	c.AssertSequence(t, "agent.started", "tool.started", "tool.progress", "tool.completed", "agent.completed")
	c.AssertCorrelated(t, "*")
	c.AssertDataContains(t, "tool.progress", map[string]any{"pct": 50})
	evs := c.Events()
	if evs[1].CausationID != evs[0].ID || evs[2].CausationID != evs[1].ID || evs[3].CausationID != evs[1].ID || evs[4].CausationID != evs[0].ID {
		t.Errorf("causation chain broken: %+v", evs)
	}
	var done struct {
		DurationMS *float64 `json:"duration_ms"`
	}
	_ = json.Unmarshal(evs[4].Data, &done)
	if done.DurationMS == nil || *done.DurationMS < 0 {
		t.Errorf("completed has no duration: %s", evs[4].Data)
	}
}

func TestTrackFailureAndTimingOff(t *testing.T) {
	c, err := eventtest.NewWithFilter(pipeline.FilterConfig{EmitTimingEvents: false})
	if err != nil {
		t.Fatal(err)
	}
	ctx := pipeline.WithCorrelation(pipeline.WithEmitter(context.Background(), c), "corr-9")
	boom := errors.New("boom: token sk-123")
	if err := pipeline.Track(ctx, "workflow", func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Track returned %v", err)
	}
	c.AssertSequence(t, "workflow.started", "workflow.failed")
	c.AssertDataContains(t, "workflow.failed", map[string]any{"error": "boom: token sk-123"})
	for _, e := range c.Events() {
		if e.CorrelationID != "corr-9" {
			t.Errorf("%s has correlation %q", e.Type, e.CorrelationID)
		}
	}
	var data map[string]any
	_ = json.Unmarshal(c.Matching("workflow.failed")[0].Data, &data)
	if _, ok := data["duration_ms"]; ok {
		t.Error("duration reported with timing events off")
	}
}

func TestTrackPanic(t *testing.T) {
	c := eventtest.New()
	ctx := pipeline.WithEmitter(context.Background(), c)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic swallowed")
			}
		}()
		_ = pipeline.Track(ctx, "agent", func(context.Context) error { panic("kaput") })
	}()
	c.AssertDataContains(t, "agent.failed", map[string]any{"error": "panic: kaput"})
}

func TestNoEmitterCostsNothing(t *testing.T) {
	ctx := context.Background()
	calls := 0
	data := map[string]int{"x": 1}
	work := func(context.Context) error { calls++; return nil }
	allocs := testing.AllocsPerRun(100, func() {
		_ = pipeline.Emit(ctx, "agent.completed", data)
		_ = pipeline.Track(ctx, "agent", work)
	})
	if allocs != 0 {
		t.Errorf("no emitter: %v allocs", allocs)
	}
	if calls == 0 {
		t.Error("Track did not run the work")
	}
	if pipeline.On(ctx) {
		t.Error("On without emitter")
	}
	bus, _ := pipeline.NewBus(pipeline.DefaultConfig()) // disabled
	ctx = pipeline.WithEmitter(ctx, bus)
	if pipeline.On(ctx) {
		t.Error("On with a disabled bus")
	}
}

func TestEmitThroughBusCarriesContext(t *testing.T) {
	g := newGate(true)
	b := newBus(t, func(c *pipeline.Config) { c.Handler = g })
	ctx := pipeline.WithCause(pipeline.WithCorrelation(pipeline.WithEmitter(context.Background(), b), "c1"), "e0")
	if pipeline.EmitterFrom(ctx) != pipeline.Emitter(b) || pipeline.CorrelationFrom(ctx) != "c1" || pipeline.CauseFrom(ctx) != "e0" {
		t.Errorf("context does not carry emitter, correlation and cause")
	}
	if pipeline.EmitterFrom(context.Background()) != nil || pipeline.CorrelationFrom(context.Background()) != "" || pipeline.CauseFrom(nil) != "" {
		t.Errorf("empty context carries something")
	}
	if err := pipeline.Emit(ctx, "agent.completed", json.RawMessage(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.Emit(ctx, "agent.completed", []byte(`{bad`)); err == nil {
		t.Error("invalid raw JSON accepted")
	}
	closeBus(t, b)
	got := g.got()
	if len(got) != 1 || got[0].CorrelationID != "c1" || got[0].CausationID != "e0" || string(got[0].Data) != `{"ok":true}` {
		t.Errorf("got %+v", got)
	}
}
