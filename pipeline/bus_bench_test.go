package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
)

var benchData = json.RawMessage(`{"agent":"researcher","step":3,"tokens":128,"ok":true}`)

func benchEvent() pipeline.Event {
	return pipeline.Event{Type: "agent.completed", Source: "agent-1", CorrelationID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Data: benchData}
}

// BenchmarkEmitDisabled is the cost instrumented code pays when events are
// off: the Enabled check on a disabled bus, on a nil bus, and through the
// Emitter interface.
func BenchmarkEmitDisabled(b *testing.B) {
	ctx := context.Background()
	bus, _ := pipeline.NewBus(pipeline.DefaultConfig())
	b.Run("bus", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if bus.Enabled() {
				_ = bus.Emit(ctx, benchEvent())
			}
		}
	})
	b.Run("nil-bus", func(b *testing.B) {
		var nb *pipeline.Bus
		b.ReportAllocs()
		for b.Loop() {
			if nb.Enabled() {
				_ = nb.Emit(ctx, benchEvent())
			}
		}
	})
	b.Run("interface", func(b *testing.B) {
		var em pipeline.Emitter = bus
		b.ReportAllocs()
		for b.Loop() {
			if em.Enabled() {
				_ = em.Emit(ctx, benchEvent())
			}
		}
	})
	b.Run("emit-call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = bus.Emit(ctx, benchEvent())
		}
	})
}

// BenchmarkEmitEnabled emits into the buffer while the bus dispatcher drains
// it concurrently. "channel" is the native baseline measured in the same
// run: a buffered channel with a concurrent consumer.
func BenchmarkEmitEnabled(b *testing.B) {
	ctx := context.Background()

	b.Run("bus", func(b *testing.B) {
		cfg := pipeline.DefaultConfig()
		cfg.Enabled = true
		cfg.Handler = pipeline.BatchHandlerFunc(func(context.Context, *pipeline.Batch) error { return nil })
		bus, _ := pipeline.NewBus(cfg)
		e := benchEvent()
		b.ReportAllocs()
		for b.Loop() {
			_ = bus.Emit(ctx, e)
		}
		b.StopTimer()
		_ = bus.Close(ctx)
		s := bus.Stats()
		b.ReportMetric(float64(s.Dropped.Total())/float64(b.N), "dropped/op")
	})
	b.Run("bus-caller-stamped-time", func(b *testing.B) {
		// The same, with the producer supplying Time: what the bus itself
		// costs apart from reading the clock.
		cfg := pipeline.DefaultConfig()
		cfg.Enabled = true
		cfg.Handler = pipeline.BatchHandlerFunc(func(context.Context, *pipeline.Batch) error { return nil })
		bus, _ := pipeline.NewBus(cfg)
		e := benchEvent()
		e.Time = time.Now()
		b.ReportAllocs()
		for b.Loop() {
			_ = bus.Emit(ctx, e)
		}
		b.StopTimer()
		_ = bus.Close(ctx)
	})
	b.Run("time.Now-baseline", func(b *testing.B) {
		var t time.Time
		for b.Loop() {
			t = time.Now()
		}
		_ = t
	})
	b.Run("channel-baseline", func(b *testing.B) {
		ch := make(chan pipeline.Event, 10000)
		done := make(chan struct{})
		go func() {
			for range ch {
			}
			close(done)
		}()
		e := benchEvent()
		b.ReportAllocs()
		for b.Loop() {
			ch <- e
		}
		close(ch)
		<-done
	})
}

// BenchmarkEmitParallel measures throughput as producers are added.
func BenchmarkEmitParallel(b *testing.B) {
	ctx := context.Background()
	for _, p := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("producers-%d", p*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			cfg := pipeline.DefaultConfig()
			cfg.Enabled = true
			cfg.Handler = pipeline.BatchHandlerFunc(func(context.Context, *pipeline.Batch) error { return nil })
			bus, _ := pipeline.NewBus(cfg)
			b.SetParallelism(p)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				e := benchEvent()
				for pb.Next() {
					_ = bus.Emit(ctx, e)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			_ = bus.Close(ctx)
		})
	}
}

// BenchmarkQueuedMemory reports the memory a queued event holds: a bus whose
// dispatcher is held fills its buffer with events whose JSON encoding is
// about 200 bytes; the heap growth divided by the events is bytes/event.
func BenchmarkQueuedMemory(b *testing.B) {
	const n = 10000
	e := benchEvent()
	e.ID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	enc := len(e.AppendJSON(nil))
	for b.Loop() {
		hold := make(chan struct{})
		entered := make(chan struct{}, 1)
		cfg := pipeline.DefaultConfig()
		cfg.Enabled, cfg.BufferSize, cfg.BatchSize = true, n, 1
		cfg.Handler = pipeline.BatchHandlerFunc(func(context.Context, *pipeline.Batch) error {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-hold
			return nil
		})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		bus, _ := pipeline.NewBus(cfg)
		_ = bus.Emit(context.Background(), e)
		<-entered
		for i := 0; i < n; i++ {
			// Each event gets its own data, as events from an application do.
			e.Data = append(json.RawMessage(nil), benchData...)
			_ = bus.Emit(context.Background(), e)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := bus.Stats().BytesHeld
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/event")
		b.ReportMetric(float64(held)/n, "reported-bytes/event")
		b.ReportMetric(float64(enc), "json-bytes")
		close(hold)
		_ = bus.Close(context.Background())
	}
}
