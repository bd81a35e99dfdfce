package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

// Embedding the bus: events are off until enabled, then flow to a handler
// (here, printing) and to pattern subscriptions. Close flushes.
func ExampleBus() {
	cfg := pipeline.DefaultConfig()
	cfg.Enabled = true
	cfg.Handler = pipeline.BatchHandlerFunc(func(_ context.Context, b *pipeline.Batch) error {
		for _, e := range b.Events {
			fmt.Println(e.Sequence, e.Type, string(e.Data))
		}
		return nil
	})
	bus, err := pipeline.NewBus(cfg)
	if err != nil {
		panic(err)
	}
	ctx := pipeline.WithEmitter(context.Background(), bus)
	_ = pipeline.Emit(ctx, "agent.completed", map[string]int{"tokens": 12})
	_ = pipeline.Emit(ctx, "agent.debug", "filtered: debug events are off by default")

	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = bus.Close(closeCtx)
	fmt.Println("published:", bus.Stats().Published, "filtered:", bus.Stats().Filtered)
	// Output:
	// 1 agent.completed {"tokens":12}
	// published: 1 filtered: 1
}

func ExampleBus_Subscribe() {
	cfg := pipeline.DefaultConfig()
	cfg.Enabled = true
	bus, _ := pipeline.NewBus(cfg)
	sub, _ := bus.Subscribe("*.failed", pipeline.SubscribeOptions{QueueSize: 100})
	_ = bus.Emit(context.Background(), pipeline.Event{Type: "agent.started"})
	_ = bus.Emit(context.Background(), pipeline.Event{Type: "agent.failed"})
	e, _ := sub.Next(context.Background())
	fmt.Println(e.Type)
	_ = bus.Close(context.Background())
	// Output: agent.failed
}

func ExampleTrack() {
	bus, _ := pipeline.NewBus(pipeline.DefaultConfig()) // disabled: Track only runs the work
	ctx := pipeline.WithEmitter(context.Background(), bus)
	err := pipeline.Track(ctx, "agent", func(ctx context.Context) error {
		fmt.Println("working")
		return nil
	})
	fmt.Println(err)
	// Output:
	// working
	// <nil>
}

func ExampleCompilePattern() {
	p, _ := pipeline.CompilePattern("agent.*")
	fmt.Println(p.Match("agent.completed"), p.Match("agent.tool.invoked"))
	// Output: true false
}

func ExampleDecode() {
	// An rs-llmspell event decodes to the same Event as eventpipe's own shape.
	e, err := pipeline.Decode([]byte(`{"event_type":"agent.completed","timestamp":"2026-01-02T03:04:05Z",
		"metadata":{"correlation_id":"c-1","source":"agent-1","tags":["prod"]},"language":"Lua","data":{"ok":true}}`),
		pipeline.DecodeOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(e.AppendJSON(nil)))
	// Output: {"schema_version":"1.0","id":"","type":"agent.completed","time":"2026-01-02T03:04:05.000000000Z","source":"agent-1","sequence":0,"correlation_id":"c-1","tags":["prod"],"language":"lua","data":{"ok":true}}
}

// An embedding program private by default: the sanitize stage's own
// sanitizer runs before the handler and the subscribers, so the error
// text Track reports loses its secrets, e-mail addresses and home
// directories.
func ExampleConfig_sanitizer() {
	san, err := stage.NewSanitize(stage.DefaultSanitizeConfig())
	if err != nil {
		panic(err)
	}
	cfg := pipeline.DefaultConfig()
	cfg.Enabled = true
	cfg.Filter.EmitTimingEvents = false // no duration_ms, for a stable output
	cfg.Sanitizer = san
	bus, _ := pipeline.NewBus(cfg)
	sub, _ := bus.Subscribe("*.failed", pipeline.SubscribeOptions{QueueSize: 10})
	ctx := pipeline.WithEmitter(context.Background(), bus)
	_ = pipeline.Track(ctx, "deploy", func(context.Context) error {
		return errors.New("open /home/alice/.kube/config: token=abc123 rejected for alice@example.com")
	})
	e, _ := sub.Next(context.Background())
	fmt.Println(e.Type, string(e.Data))
	_ = bus.Close(context.Background())
	// Output: deploy.failed {"error":"open ~/.kube/config: token=[REDACTED] rejected for [REDACTED]"}
}
