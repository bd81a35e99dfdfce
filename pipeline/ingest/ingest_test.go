package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/ingest"
)

// recorder is a Publisher that keeps what it is given.
type recorder struct {
	mu       sync.Mutex
	events   []pipeline.Event
	rejected []pipeline.Rejected
	publish  func(ctx context.Context, ev pipeline.Event) error
}

func (r *recorder) Publish(ctx context.Context, ev pipeline.Event) error {
	if r.publish != nil {
		if err := r.publish(ctx, ev); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) Reject(_ context.Context, rj pipeline.Rejected) {
	r.mu.Lock()
	r.rejected = append(r.rejected, rj)
	r.mu.Unlock()
}

func TestLinesRejectsBadLinesWithLineNumbers(t *testing.T) {
	input := strings.Join([]string{
		`{"type":"agent.started"}`,
		``,
		`not json`,
		`{"event_type":"agent.thought","timestamp":"2026-01-01T00:00:00Z"}`,
		`{"type":"nodots"}`,
		`{"specversion":"1.0","type":"tool.done","source":"s","id":"1"}`,
		`{"type":"agent.big","data":"` + strings.Repeat("x", 200) + `"}`,
		`{"type":"agent.last"}`,
	}, "\n") // no final newline
	rec := &recorder{}
	src := ingest.NewLines("in.jsonl", func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(input)), nil }, 150)
	if !src.Finite() {
		t.Error("a file source is finite")
	}
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range rec.events {
		types = append(types, e.Type)
	}
	if strings.Join(types, " ") != "agent.started agent.thought tool.done agent.last" {
		t.Errorf("published %v", types)
	}
	want := map[string]string{"line 3": "not a JSON object", "line 5": "not a dotted name", "line 7": "over the limit of 150"}
	if len(rec.rejected) != len(want) {
		t.Fatalf("rejected %+v", rec.rejected)
	}
	for _, rj := range rec.rejected {
		if !strings.Contains(rj.Reason, want[rj.Offset]) || rj.Source != "in.jsonl" || len(rj.Raw) == 0 {
			t.Errorf("rejection %+v", rj)
		}
	}
}

func TestLinesVeryLongLine(t *testing.T) {
	long := `{"type":"a.b","data":"` + strings.Repeat("y", 200<<10) + `"}`
	input := long + "\n" + `{"type":"a.after"}` + "\n"
	rec := &recorder{}
	src := ingest.NewLines("x", func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(input)), nil }, 1<<20)
	if err := src.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 2 || len(rec.events[0].Data) < 200<<10 {
		t.Errorf("got %d events", len(rec.events))
	}
}

func TestFileSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.jsonl")
	_ = os.WriteFile(path, []byte("{\"type\":\"a.b\"}\r\n{\"type\":\"c.d\"}\n"), 0o600)
	rec := &recorder{}
	if err := ingest.NewFile(path, nil, 0).Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 2 {
		t.Errorf("%d events", len(rec.events))
	}
	if err := ingest.NewFile(filepath.Join(t.TempDir(), "missing"), nil, 0).Run(context.Background(), rec); err == nil {
		t.Error("missing file: no error")
	}
	rec = &recorder{}
	if err := ingest.NewFile("-", strings.NewReader("{\"type\":\"s.in\"}\n"), 0).Run(context.Background(), rec); err != nil || len(rec.events) != 1 {
		t.Errorf("stdin: %v %d", err, len(rec.events))
	}
}

func post(t *testing.T, url, ctype, body string) (int, ingest.Response, http.Header) {
	t.Helper()
	resp, err := http.Post(url, ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r ingest.Response
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r, resp.Header
}

func TestHTTPContentTypes(t *testing.T) {
	rec := &recorder{}
	h := ingest.NewHTTP(ingest.HTTPConfig{Listen: "127.0.0.1:0", MaxBodyBytes: 4096}, 0)
	srv := httptest.NewServer(h.Handler(rec))
	defer srv.Close()
	tests := []struct {
		name, ctype, body string
		status, accepted  int
		rejected          []int
	}{
		{"one event", "application/json", `{"type":"a.one"}`, 202, 1, nil},
		{"array", "application/json", `[{"type":"a.x"},{"type":"a.y"}]`, 202, 2, nil},
		{"ndjson", "application/x-ndjson", "{\"type\":\"a.l1\"}\n\n{\"type\":\"a.l2\"}\n", 202, 2, nil},
		{"cloudevent", "application/cloudevents+json", `{"specversion":"1.0","type":"ce.one","source":"s","id":"1"}`, 202, 1, nil},
		{"cloudevents batch", "application/cloudevents-batch+json; charset=utf-8", `[{"specversion":"1.0","type":"ce.a","source":"s","id":"1"},{"specversion":"1.0","type":"ce.b","source":"s","id":"2"}]`, 202, 2, nil},
		{"some bad", "application/json", `[{"type":"a.ok"},{"type":"bad"},{"nope":1},{"type":"a.ok2"}]`, 400, 2, []int{1, 2}},
		{"malformed", "application/json", `[{"type":`, 400, 0, nil},
		{"batch not array", "application/cloudevents-batch+json", `{"type":"a.b"}`, 400, 0, nil},
		{"wrong type", "text/html", `<p>`, 415, 0, nil},
		{"too big", "application/json", `{"type":"a.b","data":"` + strings.Repeat("z", 5000) + `"}`, 413, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, r, _ := post(t, srv.URL, tc.ctype, tc.body)
			if status != tc.status || r.Accepted != tc.accepted {
				t.Fatalf("status %d accepted %d (%+v), want %d %d", status, r.Accepted, r, tc.status, tc.accepted)
			}
			var idx []int
			for _, rj := range r.Rejected {
				idx = append(idx, rj.Index)
				if rj.Reason == "" {
					t.Error("rejection without reason")
				}
			}
			if fmt.Sprint(idx) != fmt.Sprint(tc.rejected) && !(len(idx) == 0 && len(tc.rejected) == 0) {
				t.Errorf("rejected %v, want %v", idx, tc.rejected)
			}
		})
	}
	resp, _ := http.Get(srv.URL)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestHTTPBackpressure(t *testing.T) {
	hold := make(chan struct{})
	entered := make(chan struct{}, 1)
	cfg := pipeline.DefaultConfig()
	cfg.Enabled, cfg.BufferSize, cfg.BatchSize = true, 1, 1
	cfg.Handler = pipeline.BatchHandlerFunc(func(context.Context, *pipeline.Batch) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-hold
		return nil
	})
	bus, _ := pipeline.NewBus(cfg)
	defer bus.Close(context.Background())
	defer close(hold)
	rec := &recorder{publish: bus.Publish}
	h := ingest.NewHTTP(ingest.HTTPConfig{Listen: "127.0.0.1:0", PublishTimeout: 20 * time.Millisecond}, 0)
	srv := httptest.NewServer(h.Handler(rec))
	defer srv.Close()
	if s, _, _ := post(t, srv.URL, "application/json", `{"type":"a.first"}`); s != 202 {
		t.Fatalf("first: %d", s)
	}
	<-entered // the dispatcher holds the first event; the buffer has room for one
	status, r, hdr := post(t, srv.URL, "application/json", `[{"type":"a.fits"},{"type":"a.waits"}]`)
	if status != 503 || r.Accepted != 1 || hdr.Get("Retry-After") == "" {
		t.Errorf("full buffer: %d %+v %v", status, r, hdr)
	}
	// The event refused with 503 is counted as refused, not dropped: the
	// client was told to send it again.
	if st := bus.Stats(); st.Refused != 1 || st.Dropped.Total() != 0 {
		t.Errorf("refused %d, dropped %+v; want 1 refused and none dropped", st.Refused, st.Dropped)
	}

	rl := pipeline.DefaultConfig()
	rl.Enabled, rl.MaxEventsPerSecond, rl.Burst = true, 0.001, 1
	limited, _ := pipeline.NewBus(rl)
	defer limited.Close(context.Background())
	srv2 := httptest.NewServer(h.Handler(&recorder{publish: limited.Publish}))
	defer srv2.Close()
	status, r, _ = post(t, srv2.URL, "application/json", `[{"type":"a.one"},{"type":"a.two"}]`)
	if status != 429 || r.Accepted != 1 {
		t.Errorf("rate limited: %d %+v", status, r)
	}

	// While events are disabled, ingest says so instead of 202.
	off := &switchable{recorder: recorder{}}
	srv3 := httptest.NewServer(h.Handler(off))
	defer srv3.Close()
	status, r, hdr = post(t, srv3.URL, "application/json", `{"type":"a.b"}`)
	if status != 503 || !strings.Contains(r.Error, "disabled") || hdr.Get("Retry-After") == "" || len(off.events) != 0 {
		t.Errorf("disabled: %d %+v", status, r)
	}
}

// switchable is a recorder with events switched off.
type switchable struct{ recorder }

func (*switchable) Enabled() bool { return false }

func TestHTTPRun(t *testing.T) {
	rec := &recorder{}
	h := ingest.NewHTTP(ingest.HTTPConfig{Listen: ":0"}, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, rec) }()
	<-h.Ready()
	if !strings.HasPrefix(h.Addr().String(), "127.0.0.1:") {
		t.Errorf("listening on %v, want loopback", h.Addr())
	}
	resp, err := http.Post("http://"+h.Addr().String()+"/events", "application/json", bytes.NewReader([]byte(`{"type":"a.b"}`)))
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("%v %v", err, resp)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func FuzzSplitBody(f *testing.F) {
	f.Add("application/json", []byte(`[{"type":"a.b"},{"type":"c.d"}]`))
	f.Add("application/x-ndjson", []byte("{\"type\":\"a.b\"}\n{}\n"))
	f.Add("application/cloudevents-batch+json", []byte(`[{"specversion":"1.0","type":"a.b"}]`))
	f.Add("application/json; charset=utf-8", []byte(`{"type":"x.y"}`))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		items, err := ingest.SplitBody(ctype, body)
		if err != nil {
			return
		}
		for _, it := range items {
			// Every item is decoded or refused with a DecodeError, never a panic.
			if _, err := pipeline.Decode(it, pipeline.DecodeOptions{}); err != nil {
				if _, ok := err.(*pipeline.DecodeError); !ok {
					t.Fatalf("non-decode error %T", err)
				}
			}
		}
	})
}
