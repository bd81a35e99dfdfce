package jetstream

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/pipeline"
)

// The nats output speaks the CloudEvents NATS binding in both modes, and
// the nats source reads what it wrote back as the same events, every
// attribute kept.
func TestNATSCloudEventsBindingRoundTrip(t *testing.T) {
	srv := natsServer(t)
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	sent := []pipeline.Event{
		{SchemaVersion: "1.0", ID: "ce-1", Type: "com.example.done", Source: "/a", Time: at, CorrelationID: "c-1", Data: json.RawMessage(`{"x":1}`),
			Cloud: &pipeline.CloudAttributes{Subject: "s/1", DataContentType: "application/json", DataSchema: "https://example.com/s",
				Extensions: json.RawMessage(`{"tenant":"acme"}`)}},
		{SchemaVersion: "1.0", ID: "ce-2", Type: "com.example.blob", Source: "/a", Time: at, Data: json.RawMessage(`"/wAQ"`),
			Cloud: &pipeline.CloudAttributes{DataContentType: "application/octet-stream", DataBase64: true, NoTime: true}},
		{SchemaVersion: "1.0", ID: "ce-3", Type: "com.example.text", Source: "/a", Time: at, Data: json.RawMessage(`"hi there"`),
			Cloud: &pipeline.CloudAttributes{DataContentType: "text/plain", NoTime: true}},
	}
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			nc, _ := jsClient(t, srv.ClientURL())
			rec := &recorder{}
			scfg := *NewSourceConfig()
			scfg.URL, scfg.Subject = srv.ClientURL(), mode+".>"
			stop := runSource(t, scfg, rec)
			defer stop()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			cfg := *NewOutputConfig()
			cfg.URL, cfg.SubjectPrefix, cfg.JetStream, cfg.Format, cfg.Mode = srv.ClientURL(), mode, false, "cloudevents", mode
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			out := NewOutput(settings(t), cfg)
			ctx := context.Background()
			if err := out.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer out.Shutdown(ctx)
			// The core subscription may not be in place at once: send
			// until the source has seen the events.
			waitFor(t, "the events", func() bool {
				if n, _ := rec.counts(); n >= len(sent) {
					return true
				}
				rec.mu.Lock()
				rec.events = nil
				rec.mu.Unlock()
				if err := out.Export(ctx, sent); err != nil {
					t.Fatal(err)
				}
				return false
			})
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.rejected) > 0 {
				t.Fatalf("rejected: %+v", rec.rejected)
			}
			byID := map[string]pipeline.Event{}
			for _, ev := range rec.events {
				byID[ev.ID] = ev
			}
			for _, want := range sent {
				got, ok := byID[want.ID]
				if !ok {
					t.Fatalf("%s not read back", want.ID)
				}
				if want.Cloud.NoTime {
					got.Time = want.Time // the source stamps none; the bus would
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s (-sent +read):\n%s", want.ID, diff)
				}
			}
		})
	}
}

func TestSubjectOfAnyType(t *testing.T) {
	for typ, want := range map[string]string{
		"agent.completed": "ev.agent.completed",
		"UserCreated":     "ev.UserCreated",
		"order created":   "ev._enc.b3JkZXIgY3JlYXRlZA",
		"a.*":             "ev._enc.YS4q",
		"a..b":            "ev._enc.YS4uYg",
		"com.example.>":   "ev._enc.Y29tLmV4YW1wbGUuPg",
		"_enc.x":          "ev._enc.X2VuYy54",
		"ünïcode.type":    "ev._enc." + "w7xuw69jb2RlLnR5cGU",
	} {
		if got := Subject("ev", typ); got != want {
			t.Errorf("Subject(%q) = %q, want %q", typ, got, want)
		}
	}
}

// A CloudEvent's type need not be a NATS subject: such events are stored
// and read back like any other.
func TestStoreKeepsCloudEventsOfAnyType(t *testing.T) {
	s := startStore(t, embedded(t))
	in := events(6, "order created", "com.example.*", "plain.type")
	for i := range in {
		in[i].Source = "/orders"
		in[i].Cloud = &pipeline.CloudAttributes{Subject: "o/1", Extensions: json.RawMessage(`{"tenant":"acme"}`)}
	}
	if _, err := s.Append(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got := collect(t, s, len(in))
	byID := map[string]pipeline.Event{}
	for _, e := range got {
		byID[e.ID] = e
	}
	for _, e := range in {
		g := byID[e.ID]
		if g.Type != e.Type || g.Cloud == nil || g.Cloud.Subject != "o/1" || string(g.Cloud.Extensions) != `{"tenant":"acme"}` {
			t.Errorf("%s: got %+v %+v", e.ID, g, g.Cloud)
		}
	}
}
