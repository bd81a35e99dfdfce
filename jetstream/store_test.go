package jetstream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

func settings(testing.TB) component.Settings {
	return component.Settings{ID: "persist", Name: "persist", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: component.NopMetrics{}, Resolve: func(p string) string { return p }}
}

// embedded returns a store config on a fresh embedded server directory.
func embedded(t *testing.T) StoreConfig {
	cfg := *NewStoreConfig()
	cfg.DataDir = t.TempDir()
	return cfg
}

func startStore(t *testing.T, cfg StoreConfig) *Store {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := NewStore(settings(t), cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func events(n int, types ...string) []pipeline.Event {
	ids := pipeline.NewIDGenerator()
	out := make([]pipeline.Event, n)
	for i := range out {
		out[i] = pipeline.Event{SchemaVersion: "1.0", Type: types[i%len(types)], Time: time.Now().UTC(), Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		out[i].ID = ids.New(out[i].Time)
	}
	return out
}

// collect consumes until want events arrived (or the deadline), then stops.
func collect(t *testing.T, s *Store, want int) []pipeline.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []pipeline.Event
	err := s.Consume(ctx, nil, func(_ context.Context, evs []pipeline.Event) error {
		mu.Lock()
		defer mu.Unlock()
		for i := range evs {
			got = append(got, evs[i].Clone())
		}
		if len(got) >= want {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < want {
		t.Fatalf("consumed %d events, want %d", len(got), want)
	}
	return got
}

func TestAppendConsumeInOrderPerType(t *testing.T) {
	s := startStore(t, embedded(t))
	in := events(1000, "agent.started", "tool.invoked", "agent.completed")
	if dups, err := s.Append(context.Background(), in); err != nil || dups != 0 {
		t.Fatalf("append: %d duplicates, %v", dups, err)
	}
	got := collect(t, s, len(in))
	if len(got) != len(in) {
		t.Fatalf("got %d events, want %d", len(got), len(in))
	}
	seen := map[string]pipeline.Event{}
	for _, e := range got {
		seen[e.ID] = e
	}
	for _, e := range in {
		g, ok := seen[e.ID]
		if !ok || g.Type != e.Type || string(g.Data) != string(e.Data) || !g.Time.Equal(e.Time) {
			t.Fatalf("event %s: got %+v, want %+v", e.ID, g, e)
		}
	}
}

// TestDrainEndsWhenCaughtUp: Consume with drain closed returns once every
// stored event was handled, and not before.
func TestDrainEndsWhenCaughtUp(t *testing.T) {
	s := startStore(t, embedded(t))
	in := events(700, "agent.step")
	if _, err := s.Append(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	drain := make(chan struct{})
	close(drain)
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Consume(ctx, drain, func(_ context.Context, evs []pipeline.Event) error { n += len(evs); return nil }); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil || n != len(in) {
		t.Fatalf("drained %d of %d (ctx %v)", n, len(in), ctx.Err())
	}
}

// TestFailedBatchIsDeliveredAgain: a batch whose handler fails is not
// acknowledged; it comes back, counted as redelivered.
func TestFailedBatchIsDeliveredAgain(t *testing.T) {
	s := startStore(t, embedded(t))
	in := events(10, "agent.step")
	if _, err := s.Append(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	calls, delivered := 0, 0
	_ = s.Consume(ctx, nil, func(_ context.Context, evs []pipeline.Event) error {
		calls++
		if calls == 1 {
			return fmt.Errorf("output down")
		}
		delivered += len(evs)
		if delivered >= len(in) {
			cancel()
		}
		return nil
	})
	if delivered != len(in) {
		t.Fatalf("delivered %d after a failure, want %d", delivered, len(in))
	}
	if st := s.Stats(); st.Redelivered != uint64(len(in)) {
		t.Errorf("redelivered %d, want %d", st.Redelivered, len(in))
	}
}

// TestDuplicatesByID: publishing the same events again is deduplicated by
// the stream (message ids derive from the event ids) and counted.
func TestDuplicatesByID(t *testing.T) {
	s := startStore(t, embedded(t))
	in := events(20, "a.b", "c.d")
	if _, err := s.Append(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	dups, err := s.Append(context.Background(), in)
	if err != nil || dups != len(in) {
		t.Fatalf("second append: %d duplicates, %v; want %d", dups, err, len(in))
	}
	got := collect(t, s, len(in))
	if len(got) != len(in) {
		t.Fatalf("consumed %d, want %d", len(got), len(in))
	}
}

// TestEmbeddedRestartKeepsEvents: what was stored survives a restart of
// the embedded server, and the durable consumer resumes after what was
// acknowledged.
func TestEmbeddedRestartKeepsEvents(t *testing.T) {
	cfg := embedded(t)
	s := NewStore(settings(t), cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), events(30, "x.y")); err != nil {
		t.Fatal(err)
	}
	collect(t, s, 30) // acknowledged
	later := events(12, "x.z")
	if _, err := s.Append(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(context.Background())

	s2 := startStore(t, cfg)
	got := collect(t, s2, len(later))
	if len(got) != len(later) || got[0].ID != later[0].ID {
		t.Fatalf("after restart got %d events (first %q), want the %d unacknowledged ones", len(got), got[0].ID, len(later))
	}
	info, err := s2.js.Stream(context.Background(), cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if st := info.CachedInfo().State; st.Msgs != 2 { // one message per type and batch
		t.Errorf("stream holds %d messages, want 2", st.Msgs)
	}
}

// TestDataDirIsLocked: two processes (here: two stores) cannot share one
// embedded data directory.
func TestDataDirIsLocked(t *testing.T) {
	cfg := embedded(t)
	startStore(t, cfg)
	s := NewStore(settings(t), cfg)
	err := s.Start(context.Background())
	if err == nil {
		_ = s.Shutdown(context.Background())
		t.Fatal("a second store started on a locked data dir")
	}
}

// TestRetentionDiscardOld: over its message limit the stream drops the
// oldest messages; those the pipeline had not read are counted.
func TestRetentionDiscardOld(t *testing.T) {
	cfg := embedded(t)
	cfg.MaxMessages = 5
	s := startStore(t, cfg)
	got := 0
	// First read one message, so the consumer has a position.
	if _, err := s.Append(context.Background(), events(1, "a.b")); err != nil {
		t.Fatal(err)
	}
	got += len(collect(t, s, 1))
	// The stopped reader's pull request may still wait on the server,
	// which would hand it the next message (delivered to nobody, then
	// discarded): wait until the server has dropped it.
	waitFor(t, "no pull request waiting", func() bool {
		info, err := s.cons.Info(context.Background())
		return err == nil && info.NumWaiting == 0
	})
	for range 20 { // 20 messages, one event each; only the last 5 stay
		if _, err := s.Append(context.Background(), events(1, "a.b")); err != nil {
			t.Fatal(err)
		}
	}
	got += len(collect(t, s, 5))
	if got != 6 {
		t.Errorf("consumed %d events, want 6", got)
	}
	if d := s.Stats().Discarded; d != 15 {
		t.Errorf("discarded %d messages, want 15", d)
	}
}

// TestRetentionDiscardNew: with discard new, a full stream refuses
// events: Append fails and nothing is taken as stored.
func TestRetentionDiscardNew(t *testing.T) {
	cfg := embedded(t)
	cfg.MaxMessages, cfg.Discard = 3, "new"
	s := startStore(t, cfg)
	for i := range 3 {
		if _, err := s.Append(context.Background(), events(1, "a.b")); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if _, err := s.Append(context.Background(), events(1, "a.b")); err == nil {
		t.Fatal("a full stream with discard new accepted an event")
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(*StoreConfig){
		"bad stream":   func(c *StoreConfig) { c.Stream = "a.b" },
		"bad prefix":   func(c *StoreConfig) { c.SubjectPrefix = "x.>" },
		"replicas":     func(c *StoreConfig) { c.Replicas = 3 },
		"discard":      func(c *StoreConfig) { c.Discard = "oldest" },
		"ack wait":     func(c *StoreConfig) { c.AckWait = time.Millisecond },
		"url + listen": func(c *StoreConfig) { c.URL, c.Listen = "nats://x:4222", ":4222" },
	} {
		c := NewStoreConfig()
		mod(c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := NewStoreConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
