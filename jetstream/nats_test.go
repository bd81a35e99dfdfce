package jetstream

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/pipeline"
)

// natsServer starts a real nats-server with JetStream on a loopback port.
func natsServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(60 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func jsClient(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// recorder is a Publisher that keeps what it is given and commits when
// told to, as the runner does once events are safe.
type recorder struct {
	mu       sync.Mutex
	events   []pipeline.Event
	rejected []pipeline.Rejected
	commits  []func()
}

func (r *recorder) Publish(_ context.Context, ev pipeline.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev.Clone())
	return nil
}

func (r *recorder) Reject(_ context.Context, rej pipeline.Rejected) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected = append(r.rejected, rej)
}

func (r *recorder) Commit(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits = append(r.commits, fn)
}

// commitAll runs the commits held so far (the events became safe).
func (r *recorder) commitAll() {
	r.mu.Lock()
	fns := r.commits
	r.commits = nil
	r.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (r *recorder) counts() (events, rejected int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events), len(r.rejected)
}

func runSource(t *testing.T, cfg SourceConfig, p pipeline.Publisher) (stop func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	src := NewSource(settings(t), cfg)
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, p) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = src.Shutdown(context.Background())
	}
}

func TestNATSOutputPublishesOncePerID(t *testing.T) {
	srv := natsServer(t)
	_, js := jsClient(t, srv.ClientURL())
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OUT", Subjects: []string{"app.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := *NewOutputConfig()
	cfg.URL, cfg.SubjectPrefix = srv.ClientURL(), "app"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	out := NewOutput(settings(t), cfg)
	if err := out.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer out.Shutdown(ctx)
	evs := events(300, "agent.started", "tool.failed")
	// A retry after a crash sends the first half again, then all of it.
	for _, batch := range [][]pipeline.Event{evs[:150], evs[:150], evs} {
		if err := out.Export(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 300 {
		t.Fatalf("stream holds %d messages, want 300 (one per event id)", info.State.Msgs)
	}
	m, err := stream.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "app.tool.failed" || m.Header.Get(nats.MsgIdHdr) != evs[1].ID {
		t.Fatalf("message 2: subject %s id %q, want app.tool.failed %q", m.Subject, m.Header.Get(nats.MsgIdHdr), evs[1].ID)
	}
	ev, err := pipeline.Decode(m.Data, pipeline.DecodeOptions{})
	if err != nil || ev.ID != evs[1].ID || string(ev.Data) != string(evs[1].Data) {
		t.Fatalf("message 2 decodes to %+v, %v", ev, err)
	}
}

func TestNATSOutputWithoutStreamFails(t *testing.T) {
	srv := natsServer(t)
	cfg := *NewOutputConfig()
	cfg.URL, cfg.Timeout = srv.ClientURL(), 30*time.Second
	out := NewOutput(settings(t), cfg)
	if err := out.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer out.Shutdown(context.Background())
	err := out.Export(context.Background(), events(3, "agent.started"))
	if err == nil || !strings.Contains(err.Error(), "no stream captures events.agent.started") {
		t.Fatalf("err = %v, want no stream captures events.agent.started", err)
	}
}

func TestNATSSourceCore(t *testing.T) {
	srv := natsServer(t)
	nc, _ := jsClient(t, srv.ClientURL())
	rec := &recorder{}
	cfg := *NewSourceConfig()
	cfg.URL, cfg.Subject = srv.ClientURL(), "app.>"
	stop := runSource(t, cfg, rec)
	defer stop()
	evs := events(4, "tool.used")
	var lines []byte
	for i := range evs[1:] {
		lines = append(evs[1+i].AppendJSON(lines), '\n')
	}
	mustPub := func(subj string, data []byte) {
		if err := nc.Publish(subj, data); err != nil {
			t.Fatal(err)
		}
	}
	mustPub("app.one", evs[0].AppendJSON(nil)) // one event
	mustPub("app.many", lines)                 // JSON lines
	mustPub("app.bad", []byte("{not json"))    // rejected with its subject
	mustPub("other", evs[0].AppendJSON(nil))   // not subscribed
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 events and 1 rejection", func() bool { n, r := rec.counts(); return n == 4 && r == 1 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := range evs {
		if rec.events[i].ID != evs[i].ID {
			t.Errorf("event %d: id %s, want %s", i, rec.events[i].ID, evs[i].ID)
		}
	}
	if got := rec.rejected[0].Offset; got != "subject app.bad line 1" {
		t.Errorf("rejection offset %q", got)
	}
}

// A JetStream source acknowledges a message only once the pipeline says
// its events are safe: a source stopped before that leaves the messages
// to be delivered again, to it or another runner.
func TestNATSSourceStreamAcksOnlyCommitted(t *testing.T) {
	srv := natsServer(t)
	_, js := jsClient(t, srv.ClientURL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "APP", Subjects: []string{"app.>"}}); err != nil {
		t.Fatal(err)
	}
	evs := events(50, "x.one", "y.two")
	for i := range evs {
		if _, err := js.Publish(ctx, "app."+evs[i].Type, evs[i].AppendJSON(nil)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := *NewSourceConfig()
	cfg.URL, cfg.Stream, cfg.Subject, cfg.AckWait = srv.ClientURL(), "APP", "app.x.one", time.Second
	rec := &recorder{}
	stop := runSource(t, cfg, rec)
	waitFor(t, "25 events of type x", func() bool { n, _ := rec.counts(); return n == 25 })
	stop() // nothing committed

	// Another runner on the same consumer gets all 25 again; this time
	// they are committed, so a third gets nothing.
	rec2 := &recorder{}
	stop = runSource(t, cfg, rec2)
	waitFor(t, "the 25 events delivered again", func() bool { n, _ := rec2.counts(); return n == 25 })
	rec2.commitAll()
	cons, err := js.Consumer(ctx, "APP", "eventpipe")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	stop()
	for i, ev := range rec2.events {
		if ev.Type != "x.one" || ev.ID != evs[2*i].ID {
			t.Fatalf("event %d: %s %s, want x.one %s", i, ev.Type, ev.ID, evs[2*i].ID)
		}
	}
}

// A nats source can read the stream a persist store writes (binary
// records), e.g. another pipeline's.
func TestNATSSourceReadsAStoresStream(t *testing.T) {
	srv := natsServer(t)
	cfg := *NewStoreConfig()
	cfg.URL = srv.ClientURL()
	evs := events(300, "x.one", "y.two")
	s := startStore(t, cfg)
	if _, err := s.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	src := *NewSourceConfig()
	src.URL, src.Stream, src.Consumer = srv.ClientURL(), cfg.Stream, "reader"
	rec := &recorder{}
	stop := runSource(t, src, rec)
	defer stop()
	waitFor(t, "300 events", func() bool { n, _ := rec.counts(); return n == 300 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := map[string]bool{}
	for _, ev := range rec.events {
		seen[ev.ID] = true
	}
	for _, ev := range evs {
		if !seen[ev.ID] {
			t.Fatalf("event %s not read", ev.ID)
		}
	}
}
