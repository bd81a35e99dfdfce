package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/eventpipe/eventpipe/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gate is a handler that records batches and can hold the dispatcher.
type gate struct {
	mu      sync.Mutex
	events  []pipeline.Event
	entered chan struct{} // one send per batch, if someone listens
	release chan struct{} // closed to let batches through
}

func newGate(closed bool) *gate {
	g := &gate{entered: make(chan struct{}, 1024), release: make(chan struct{})}
	if closed {
		close(g.release)
	}
	return g
}

func (g *gate) HandleBatch(ctx context.Context, b *pipeline.Batch) error {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	for _, ev := range b.Events {
		g.events = append(g.events, ev.Clone())
	}
	g.mu.Unlock()
	return nil
}

func (g *gate) got() []pipeline.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]pipeline.Event(nil), g.events...)
}

func newBus(t *testing.T, mod func(*pipeline.Config)) *pipeline.Bus {
	t.Helper()
	cfg := pipeline.DefaultConfig()
	cfg.Enabled = true
	mod(&cfg)
	b, err := pipeline.NewBus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func closeBus(t *testing.T, b *pipeline.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func ev(typ string, n int) pipeline.Event {
	return pipeline.Event{Type: typ, Data: []byte(fmt.Sprintf(`{"n":%d}`, n))}
}

func TestDisabledByDefault(t *testing.T) {
	b, err := pipeline.NewBus(pipeline.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if b.Enabled() {
		t.Fatal("enabled by default")
	}
	if err := b.Emit(context.Background(), ev("agent.completed", 1)); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Published != 0 || s.QueueDepth != 0 {
		t.Errorf("disabled bus counted events: %+v", s)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if b.Enabled() {
			_ = b.Emit(context.Background(), ev("agent.completed", 1))
		}
	})
	if allocs != 0 {
		t.Errorf("disabled emit allocates %v", allocs)
	}
	var nilBus *pipeline.Bus
	if nilBus.Enabled() || nilBus.Emit(context.Background(), pipeline.Event{Type: "a.b"}) != nil {
		t.Error("nil bus is not a disabled emitter")
	}
	goleak.VerifyNone(t) // a disabled bus runs no goroutine
	closeBus(t, b)
	if err := b.Emit(context.Background(), ev("a.b", 1)); err != nil {
		t.Errorf("emit on a closed, disabled bus: %v", err)
	}
}

func TestEmitDeliversInOrder(t *testing.T) {
	g := newGate(true)
	b := newBus(t, func(c *pipeline.Config) { c.Handler = g; c.BatchSize = 7 })
	const n = 1000
	for i := 0; i < n; i++ {
		if err := b.Emit(context.Background(), ev("agent.step", i)); err != nil {
			t.Fatal(err)
		}
	}
	closeBus(t, b)
	got := g.got()
	if len(got) != n {
		t.Fatalf("delivered %d, want %d", len(got), n)
	}
	ids := map[string]bool{}
	for i, e := range got {
		if e.Sequence != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, e.Sequence)
		}
		if want := fmt.Sprintf(`{"n":%d}`, i); string(e.Data) != want {
			t.Fatalf("event %d data %s, want %s", i, e.Data, want)
		}
		if len(e.ID) != 36 || ids[e.ID] {
			t.Fatalf("event %d: bad or repeated id %q", i, e.ID)
		}
		ids[e.ID] = true
		if e.Time.IsZero() || e.SchemaVersion != pipeline.SchemaVersion {
			t.Fatalf("event %d not stamped: %+v", i, e)
		}
		if i > 0 && e.ID <= got[i-1].ID {
			t.Fatalf("ids do not increase: %s after %s", e.ID, got[i-1].ID)
		}
	}
	s := b.Stats()
	if s.Published != n || s.Delivered != n || s.QueueDepth != 0 || s.BytesHeld != 0 {
		t.Errorf("stats %+v", s)
	}
	if err := b.Emit(context.Background(), ev("agent.step", 0)); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("emit after close: %v, want ErrClosed", err)
	}
}

// fill holds the dispatcher inside the handler with one event, then fills
// the buffer of size n. It returns the gate to release.
func fill(t *testing.T, policy pipeline.Overflow, n int, mod func(*pipeline.Config)) (*pipeline.Bus, *gate) {
	t.Helper()
	g := newGate(false)
	b := newBus(t, func(c *pipeline.Config) {
		c.Handler, c.BufferSize, c.Overflow, c.BatchSize = g, n, policy, 1
		if mod != nil {
			mod(c)
		}
	})
	if err := b.Emit(context.Background(), ev("agent.step", 0)); err != nil {
		t.Fatal(err)
	}
	<-g.entered // the dispatcher holds event 0
	for i := 1; i <= n; i++ {
		if err := b.Emit(context.Background(), ev("agent.step", i)); err != nil {
			t.Fatal(err)
		}
	}
	if d := b.Stats().QueueDepth; d != n {
		t.Fatalf("queue depth %d, want %d", d, n)
	}
	return b, g
}

func dataOf(evs []pipeline.Event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, strings.TrimSuffix(strings.TrimPrefix(string(e.Data), `{"n":`), "}"))
	}
	return strings.Join(parts, ",")
}

func TestOverflowPolicies(t *testing.T) {
	t.Run("drop_oldest", func(t *testing.T) {
		b, g := fill(t, pipeline.DropOldest, 3, nil)
		for i := 4; i <= 5; i++ {
			if err := b.Emit(context.Background(), ev("agent.step", i)); err != nil {
				t.Fatal(err)
			}
		}
		close(g.release)
		closeBus(t, b)
		if got := dataOf(g.got()); got != "0,3,4,5" {
			t.Errorf("delivered %s, want 0,3,4,5", got)
		}
		if d := b.Stats().Dropped; d.Oldest != 2 || d.Total() != 2 {
			t.Errorf("drops %+v", d)
		}
	})
	t.Run("drop_newest", func(t *testing.T) {
		b, g := fill(t, pipeline.DropNewest, 3, nil)
		if err := b.Emit(context.Background(), ev("agent.step", 4)); !errors.Is(err, pipeline.ErrDropped) {
			t.Fatalf("got %v, want ErrDropped", err)
		}
		close(g.release)
		closeBus(t, b)
		if got := dataOf(g.got()); got != "0,1,2,3" {
			t.Errorf("delivered %s", got)
		}
		if d := b.Stats().Dropped; d.Newest != 1 || d.Total() != 1 {
			t.Errorf("drops %+v", d)
		}
	})
	t.Run("reject", func(t *testing.T) {
		b, g := fill(t, pipeline.Reject, 2, nil)
		if err := b.Emit(context.Background(), ev("agent.step", 3)); !errors.Is(err, pipeline.ErrBufferFull) {
			t.Fatalf("got %v, want ErrBufferFull", err)
		}
		close(g.release)
		closeBus(t, b)
		if d := b.Stats().Dropped; d.Rejected != 1 {
			t.Errorf("drops %+v", d)
		}
	})
	t.Run("block times out", func(t *testing.T) {
		b, g := fill(t, pipeline.Block, 2, func(c *pipeline.Config) { c.BlockTimeout = 20 * time.Millisecond })
		if err := b.Emit(context.Background(), ev("agent.step", 3)); !errors.Is(err, pipeline.ErrBlockTimeout) {
			t.Fatalf("got %v, want ErrBlockTimeout", err)
		}
		close(g.release)
		closeBus(t, b)
		if d := b.Stats().Dropped; d.BlockTimeout != 1 {
			t.Errorf("drops %+v", d)
		}
	})
	t.Run("block waits for room", func(t *testing.T) {
		b, g := fill(t, pipeline.Block, 2, func(c *pipeline.Config) { c.BlockTimeout = time.Minute })
		done := make(chan error, 1)
		go func() { done <- b.Emit(context.Background(), ev("agent.step", 3)) }()
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		closeBus(t, b)
		if got := dataOf(g.got()); got != "0,1,2,3" {
			t.Errorf("delivered %s", got)
		}
		if d := b.Stats().Dropped; d.Total() != 0 {
			t.Errorf("drops %+v", d)
		}
	})
	t.Run("publish waits whatever the policy", func(t *testing.T) {
		b, g := fill(t, pipeline.DropNewest, 2, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.Publish(ctx, ev("agent.step", 9)); !errors.Is(err, context.Canceled) {
			t.Fatalf("publish on full buffer with cancelled ctx: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- b.Publish(context.Background(), ev("agent.step", 3)) }()
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		closeBus(t, b)
		if got := dataOf(g.got()); got != "0,1,2,3" {
			t.Errorf("delivered %s", got)
		}
	})
	t.Run("close wakes a blocked producer", func(t *testing.T) {
		b, g := fill(t, pipeline.Block, 1, func(c *pipeline.Config) { c.BlockTimeout = time.Minute })
		done := make(chan error, 1)
		go func() { done <- b.Emit(context.Background(), ev("agent.step", 2)) }()
		closed := make(chan error, 1)
		go func() { closed <- b.Close(context.Background()) }()
		if err := <-done; !errors.Is(err, pipeline.ErrClosed) && err != nil {
			t.Fatalf("blocked emit got %v", err)
		}
		close(g.release)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	})
}

// TestBufferBytes: the buffer is bounded in bytes as well as in events: a
// burst of large events waits or drops under the overflow policy, counted
// like any overflow, and the bytes held never pass the bound.
func TestBufferBytes(t *testing.T) {
	big := func(i int) pipeline.Event {
		e := ev("agent.step", i)
		e.Data = []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", 1000)))
		return e
	}
	one := big(0)
	limit := int64(2*one.Size() + one.Size()/2) // room for two queued events, not three
	g := newGate(false)
	b := newBus(t, func(c *pipeline.Config) {
		c.Handler, c.BufferSize, c.Overflow, c.BatchSize, c.BufferBytes = g, 100, pipeline.Reject, 1, limit
	})
	if err := b.Emit(context.Background(), big(0)); err != nil {
		t.Fatal(err)
	}
	<-g.entered // the dispatcher holds event 0
	var refused int
	for i := 1; i <= 5; i++ {
		if err := b.Emit(context.Background(), big(i)); errors.Is(err, pipeline.ErrBufferFull) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	st := b.Stats()
	if st.QueueDepth != 2 || refused != 3 || st.Dropped.Rejected != 3 {
		t.Errorf("depth %d, refused %d, counted %+v; want 2 queued and 3 refused", st.QueueDepth, refused, st.Dropped)
	}
	if st.BytesHeld > limit || st.BytesHeld == 0 {
		t.Errorf("bytes held %d, bound %d", st.BytesHeld, limit)
	}
	close(g.release)
	closeBus(t, b)
	if got := dataOf(g.got()); !strings.HasPrefix(got, "0,") || len(g.got()) != 3 {
		t.Errorf("delivered %d events", len(g.got()))
	}
	if st := b.Stats(); st.BytesHeld != 0 {
		t.Errorf("bytes held after the drain: %d", st.BytesHeld)
	}
}

// TestBufferBytesLetsOneLargeEventIn: an event larger than the byte bound
// is not refused forever: it passes when the buffer is empty.
func TestBufferBytesLetsOneLargeEventIn(t *testing.T) {
	g := newGate(true)
	b := newBus(t, func(cfg *pipeline.Config) { cfg.Handler, cfg.BufferBytes = g, 100 })
	e := ev("agent.step", 1)
	e.Data = []byte(`{"pad":"` + strings.Repeat("y", 500) + `"}`)
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	closeBus(t, b)
	if n := len(g.got()); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}
}

func TestRateLimit(t *testing.T) {
	t.Run("drop", func(t *testing.T) {
		g := newGate(true)
		b := newBus(t, func(c *pipeline.Config) {
			c.Handler, c.MaxEventsPerSecond, c.Burst = g, 0.001, 5
		})
		limited := 0
		for i := 0; i < 20; i++ {
			if err := b.Emit(context.Background(), ev("agent.step", i)); errors.Is(err, pipeline.ErrRateLimited) {
				limited++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		closeBus(t, b)
		if limited != 15 || len(g.got()) != 5 || b.Stats().RateLimited != 15 {
			t.Errorf("limited %d, delivered %d, stats %+v", limited, len(g.got()), b.Stats())
		}
	})
	t.Run("wait", func(t *testing.T) {
		b := newBus(t, func(c *pipeline.Config) {
			c.MaxEventsPerSecond, c.Burst, c.RateLimitPolicy = 0.001, 1, pipeline.RateWait
		})
		if err := b.Emit(context.Background(), ev("agent.step", 0)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := b.Emit(ctx, ev("agent.step", 1)); !errors.Is(err, pipeline.ErrRateLimited) {
			t.Fatalf("got %v, want ErrRateLimited after the wait failed", err)
		}
		if b.Stats().RateLimited != 1 {
			t.Errorf("stats %+v", b.Stats())
		}
	})
}

func TestFastPathFilter(t *testing.T) {
	g := newGate(true)
	b := newBus(t, func(c *pipeline.Config) {
		c.Handler = g
		c.Filter = pipeline.FilterConfig{
			EmitTimingEvents: false, EmitStateEvents: true, EmitDebugEvents: false,
			IncludeTypes: []string{"agent.*", "state.*", "timing.*", "*.debug"},
			ExcludeTypes: []string{"agent.secret"},
		}
	})
	for _, typ := range []string{"agent.started", "agent.secret", "tool.invoked", "agent.debug", "state.changed", "timing.agent", "debug.trace"} {
		if err := b.Emit(context.Background(), pipeline.Event{Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	closeBus(t, b)
	var got []string
	for _, e := range g.got() {
		got = append(got, e.Type)
	}
	if strings.Join(got, " ") != "agent.started state.changed" {
		t.Errorf("passed %v", got)
	}
	if s := b.Stats(); s.Filtered != 5 || s.Published != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestEmitRejectsBadEvents(t *testing.T) {
	b := newBus(t, func(c *pipeline.Config) { c.MaxEventSize = 64 })
	for _, e := range []pipeline.Event{
		{Type: ""}, {Type: "nodots"}, {Type: "a..b"},
		{Type: "a.b", Data: []byte(`"` + strings.Repeat("x", 100) + `"`)},
	} {
		var de *pipeline.DecodeError
		if err := b.Emit(context.Background(), e); !errors.As(err, &de) {
			t.Errorf("emit %q: %v, want a DecodeError", e.Type, err)
		}
	}
	if s := b.Stats(); s.Invalid != 4 || s.Published != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestSetEnabledAtRunTime(t *testing.T) {
	g := newGate(true)
	b := newBus(t, func(c *pipeline.Config) { c.Handler = g; c.Enabled = false })
	_ = b.Emit(context.Background(), ev("a.b", 0))
	b.SetEnabled(true)
	_ = b.Emit(context.Background(), ev("a.b", 1))
	b.SetEnabled(false)
	_ = b.Emit(context.Background(), ev("a.b", 2))
	b.SetEnabled(true)
	_ = b.Emit(context.Background(), ev("a.b", 3))
	// Concurrent toggling and emitting is race-free.
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if w == 0 {
					b.SetEnabled(i%2 == 0)
				} else {
					_ = b.Emit(context.Background(), pipeline.Event{Type: "x.y"})
				}
			}
		}()
	}
	wg.Wait()
	closeBus(t, b)
	if got := dataOf(g.got()[:2]); got != "1,3" {
		t.Errorf("delivered %s, want 1,3", got)
	}
}

func TestCloseFlushes(t *testing.T) {
	g := newGate(false)
	b := newBus(t, func(c *pipeline.Config) { c.Handler = g; c.BatchSize = 10; c.BufferSize = 5000 })
	sub, err := b.Subscribe("agent.*", pipeline.SubscribeOptions{QueueSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		if err := b.Emit(context.Background(), ev("agent.step", i)); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close(context.Background()) }()
	close(g.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := len(g.got()); n != 3000 {
		t.Fatalf("handler got %d of 3000", n)
	}
	n := 0
	for {
		_, err := sub.Next(context.Background())
		if errors.Is(err, pipeline.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3000 {
		t.Fatalf("subscriber got %d of 3000", n)
	}
	if _, err := b.Subscribe("x.*", pipeline.SubscribeOptions{}); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
	<-b.Done()
	goleak.VerifyNone(t)
}

func TestCloseDeadline(t *testing.T) {
	g := newGate(false) // never released: the handler waits for its context
	b := newBus(t, func(c *pipeline.Config) { c.Handler = g; c.BatchSize = 1 })
	for i := 0; i < 5; i++ {
		_ = b.Emit(context.Background(), ev("a.b", i))
	}
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := b.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "4 queued events not flushed") {
		t.Fatalf("close: %v", err)
	}
	goleak.VerifyNone(t)
}

func TestSubscriptions(t *testing.T) {
	b := newBus(t, func(c *pipeline.Config) {})
	agents, _ := b.Subscribe("agent.*", pipeline.SubscribeOptions{QueueSize: 100})
	failed, _ := b.Subscribe("**.failed", pipeline.SubscribeOptions{QueueSize: 100})
	slow, _ := b.Subscribe("*", pipeline.SubscribeOptions{QueueSize: 2, Overflow: pipeline.DropOldest})
	if _, err := b.Subscribe("agent.[", pipeline.SubscribeOptions{}); err == nil {
		t.Error("bad pattern accepted")
	}
	for _, typ := range []string{"agent.started", "tool.call.failed", "agent.failed", "workflow.started"} {
		_ = b.Emit(context.Background(), pipeline.Event{Type: typ})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := func(s *pipeline.Subscription) string {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return e.Type
	}
	if a, b := next(agents), next(agents); a != "agent.started" || b != "agent.failed" {
		t.Errorf("agents got %s %s", a, b)
	}
	if a, b := next(failed), next(failed); a != "tool.call.failed" || b != "agent.failed" {
		t.Errorf("failed got %s %s", a, b)
	}
	closeBus(t, b)
	// The slow subscriber kept the two newest and counted two drops.
	if a, c := next(slow), next(slow); a != "agent.failed" || c != "workflow.started" {
		t.Errorf("slow got %s %s", a, c)
	}
	if st := slow.Stats(); st.Dropped.Oldest != 2 || st.Delivered != 4 {
		t.Errorf("slow stats %+v", st)
	}
	if _, err := slow.Next(ctx); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("after drain: %v", err)
	}
}

func TestUnsubscribeReleases(t *testing.T) {
	g := newGate(true)
	b := newBus(t, func(c *pipeline.Config) { c.Handler = g })
	sub, _ := b.Subscribe("*", pipeline.SubscribeOptions{QueueSize: 10, Overflow: pipeline.Block, BlockTimeout: time.Hour})
	for i := 0; i < 5; i++ {
		_ = b.Emit(context.Background(), ev("a.b", i))
	}
	sub.Unsubscribe()
	sub.Unsubscribe()
	if _, err := sub.Next(context.Background()); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("next after unsubscribe: %v", err)
	}
	// With the blocking subscriber gone, a flood cannot stall the bus.
	for i := 0; i < 100; i++ {
		_ = b.Emit(context.Background(), ev("a.b", i))
	}
	closeBus(t, b)
	if len(g.got()) != 105 {
		t.Errorf("handler got %d", len(g.got()))
	}
	if s := b.Stats(); len(s.Subscriptions) != 0 {
		t.Errorf("subscription still listed: %+v", s.Subscriptions)
	}
}

func TestBlockingSubscriberSeesEverything(t *testing.T) {
	b := newBus(t, func(c *pipeline.Config) { c.BufferSize = 10000 })
	sub, _ := b.Subscribe("*", pipeline.SubscribeOptions{QueueSize: 4, Overflow: pipeline.Block, BlockTimeout: time.Minute})
	const n = 2000
	got := make(chan int, 1)
	go func() {
		c := 0
		for {
			if _, err := sub.Next(context.Background()); err != nil {
				got <- c
				return
			}
			c++
		}
	}()
	for i := 0; i < n; i++ {
		if err := b.Emit(context.Background(), ev("a.b", i)); err != nil {
			t.Fatal(err)
		}
	}
	closeBus(t, b)
	if c := <-got; c != n {
		t.Errorf("blocking subscriber saw %d of %d", c, n)
	}
}

func TestStatsHighWaterAndBytes(t *testing.T) {
	b, g := fill(t, pipeline.DropOldest, 10, nil)
	s := b.Stats()
	if s.HighWater != 10 || s.BytesHeld <= 0 {
		t.Errorf("stats %+v", s)
	}
	close(g.release)
	closeBus(t, b)
	if s := b.Stats(); s.BytesHeld != 0 || s.HighWater != 10 || s.Published != 11 || s.Delivered != 11 {
		t.Errorf("after close %+v", s)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := pipeline.DefaultConfig()
	cfg.BufferSize = -1
	cfg.MaxEventsPerSecond = -3
	cfg.Filter.IncludeTypes = []string{"agent.["}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"buffer_size", "max_events_per_second", "agent.["} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := pipeline.NewBus(cfg); err == nil {
		t.Error("NewBus accepted an invalid config")
	}
}

// refuseSanitizer refuses events of one type and marks the others.
type refuseSanitizer struct{ refuse string }

func (s refuseSanitizer) Event(ev *pipeline.Event) (bool, error) {
	if ev.Type == s.refuse {
		return false, errors.New("data is not JSON")
	}
	ev.Source = "sanitized"
	return true, nil
}

// An event the Sanitizer refuses reaches no subscriber and reaches the
// handler marked DeadLetter with the reason; the others pass sanitized.
func TestSanitizerRunsBeforeHandlerAndSubscribers(t *testing.T) {
	cfg := pipeline.DefaultConfig()
	cfg.Enabled = true
	cfg.Sanitizer = refuseSanitizer{refuse: "a.bad"}
	var mu sync.Mutex
	var verdicts []string
	cfg.Handler = pipeline.BatchHandlerFunc(func(_ context.Context, b *pipeline.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		for i, e := range b.Events {
			verdicts = append(verdicts, fmt.Sprintf("%s %s %v %s", e.Type, e.Source, b.Verdicts[i], b.Reasons[i]))
		}
		return nil
	})
	bus, err := pipeline.NewBus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := bus.Subscribe("a.*", pipeline.SubscribeOptions{QueueSize: 10})
	for _, typ := range []string{"a.good", "a.bad", "a.fine"} {
		if err := bus.Emit(context.Background(), pipeline.Event{Type: typ, Source: "raw"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		e, err := sub.Next(context.Background())
		if err != nil {
			break
		}
		got = append(got, e.Type+" "+e.Source)
	}
	if want := []string{"a.good sanitized", "a.fine sanitized"}; !slices.Equal(got, want) {
		t.Errorf("subscriber got %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		fmt.Sprintf("a.good sanitized %v ", pipeline.Keep),
		fmt.Sprintf("a.bad raw %v data is not JSON", pipeline.DeadLetter),
		fmt.Sprintf("a.fine sanitized %v ", pipeline.Keep),
	}
	if !slices.Equal(verdicts, want) {
		t.Errorf("handler saw %q, want %q", verdicts, want)
	}
	if n := bus.Stats().Unsanitized; n != 1 {
		t.Errorf("Unsanitized = %d, want 1", n)
	}
}
