package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// The official CloudEvents Go SDK is the judge of the HTTP binding: events
// sent by its client in each mode go through eventpipe and come out, in
// each mode of the webhook, at a receiver that reads them with the SDK;
// every attribute and the data, byte for byte, must be as sent.

// sdkEvents is the table: JSON data with every optional attribute and
// extensions of each type, pretty JSON, text, binary and XML data, and an
// event with only the required attributes.
func sdkEvents(t *testing.T) []cloudevents.Event {
	t.Helper()
	var out []cloudevents.Event
	add := func(id string, fn func(e *cloudevents.Event)) {
		e := cloudevents.NewEvent()
		e.SetID(id)
		e.SetSource("https://example.com/agents/7")
		e.SetType("com.example.agent.completed")
		fn(&e)
		if err := e.Validate(); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		out = append(out, e)
	}
	add("all-attributes", func(e *cloudevents.Event) {
		e.SetSubject("run/42")
		e.SetTime(time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.UTC))
		e.SetDataSchema("https://example.com/schemas/completed.json")
		e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		e.SetExtension("priority", 3)
		e.SetExtension("sampled", true)
		e.SetExtension("correlationid", "c-1")
		_ = e.SetData(cloudevents.ApplicationJSON, map[string]any{"tokens": 12, "result": "ok"})
	})
	add("pretty-json", func(e *cloudevents.Event) {
		e.SetDataContentType("application/json")
		e.DataEncoded = []byte("{\n  \"a\": [1, 2],\n  \"b\": \"x\"\n}")
	})
	add("text", func(e *cloudevents.Event) {
		e.SetDataContentType("text/plain; charset=utf-8")
		e.DataEncoded = []byte("hello\nwörld <&> \"quoted\"")
	})
	add("binary", func(e *cloudevents.Event) {
		_ = e.SetData("application/octet-stream", []byte{0xff, 0x00, 0x10, 0xc3, 0x28, 'a'})
	})
	add("xml", func(e *cloudevents.Event) {
		e.SetDataContentType("application/xml")
		e.DataEncoded = []byte(`<order id="1"><total>9.5</total></order>`)
	})
	add("required-only", func(e *cloudevents.Event) {})
	add("vendor-json", func(e *cloudevents.Event) {
		e.SetDataContentType("application/vnd.example+json")
		e.DataEncoded = []byte(`{"ok":true}`)
		e.SetExtension("tenant", "acme")
	})
	return out
}

// sdkReceiver collects the events the SDK reads from each request.
type sdkReceiver struct {
	mu     sync.Mutex
	events []cloudevents.Event
	modes  map[string]int
	errs   []error
	got    chan struct{}
}

func (s *sdkReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var evs []cloudevents.Event
	var err error
	mode := "binary"
	switch {
	case cehttp.IsHTTPBatch(r.Header):
		mode = "batch"
		evs, err = cehttp.NewEventsFromHTTPRequest(r)
	default:
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents+json") {
			mode = "structured"
		}
		var e *cloudevents.Event
		if e, err = cehttp.NewEventFromHTTPRequest(r); err == nil {
			evs = []cloudevents.Event{*e}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.modes[mode]++
	s.events = append(s.events, evs...)
	select {
	case s.got <- struct{}{}:
	default:
	}
}

// wait returns the events once n arrived (or fails after a generous
// deadline).
func (s *sdkReceiver) wait(t *testing.T, n int) []cloudevents.Event {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		if len(s.events) >= n || len(s.errs) > 0 {
			out := append([]cloudevents.Event(nil), s.events...)
			errs := s.errs
			s.mu.Unlock()
			if len(errs) > 0 {
				t.Fatalf("the SDK could not read what eventpipe sent: %v", errs)
			}
			return out
		}
		s.mu.Unlock()
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("received %d of %d events", len(s.events), n)
		}
	}
}

// comparable is an SDK event as attributes and data; extension values are
// compared in their canonical string form (binary mode carries every
// value as a string).
func comparable(t *testing.T, e cloudevents.Event) map[string]string {
	t.Helper()
	m := map[string]string{
		"specversion": e.SpecVersion(), "id": e.ID(), "source": e.Source(), "type": e.Type(),
		"subject": e.Subject(), "datacontenttype": e.DataContentType(), "dataschema": e.DataSchema(),
		"data": fmt.Sprintf("%q", e.Data()),
	}
	if !e.Time().IsZero() {
		m["time"] = e.Time().UTC().Format(time.RFC3339Nano)
	}
	for k, v := range e.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			t.Fatal(err)
		}
		m["ext:"+k] = s
	}
	return m
}

func TestCloudEventsRoundTripWithTheOfficialSDK(t *testing.T) {
	sent := sdkEvents(t)
	for _, out := range []string{"binary", "structured", "batch"} {
		for _, in := range []string{"binary", "structured", "batch"} {
			t.Run(in+"-in/"+out+"-out", func(t *testing.T) {
				// What the SDK's receiver would get straight from its
				// client in the input mode: in the JSON format the SDK
				// compacts JSON data (encoding/json does).
				want := map[string]map[string]string{}
				for _, e := range sent {
					if in != "binary" {
						raw, err := json.Marshal(e)
						if err != nil {
							t.Fatal(err)
						}
						e = cloudevents.NewEvent()
						if err := json.Unmarshal(raw, &e); err != nil {
							t.Fatal(err)
						}
					}
					want[e.ID()] = comparable(t, e)
				}
				recv := &sdkReceiver{modes: map[string]int{}, got: make(chan struct{}, 1)}
				srv := httptest.NewServer(recv)
				defer srv.Close()
				dir := t.TempDir()
				cfg := writeConfig(t, dir, fmt.Sprintf(`events:
  enabled: true
ingest:
  - type: http
    listen: 127.0.0.1:0
sanitize:
  enabled: false
route:
  default: [hook, lines]
export:
  hook:
    type: webhook
    url: %s
    format: cloudevents
    mode: %s
  lines:
    type: file
    path: events.jsonl
    format: cloudevents
dead_letter:
  path: dead.jsonl
`, srv.URL, out))
				r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv})
				if err != nil {
					t.Fatal(err)
				}
				stop := sync.OnceValues(started(t, r))
				defer stop()
				url := "http://" + r.IngestAddrs()[0].String() + "/events"
				sendWithSDK(t, url, in, sent)
				got := recv.wait(t, len(sent))
				if len(got) != len(sent) {
					t.Fatalf("received %d events, sent %d", len(got), len(sent))
				}
				for _, e := range got {
					if diff := cmp.Diff(want[e.ID()], comparable(t, e)); diff != "" {
						t.Errorf("event %s changed on the way (-sent +received):\n%s", e.ID(), diff)
					}
				}
				recv.mu.Lock()
				if recv.modes[out] == 0 || len(recv.modes) != 1 {
					t.Errorf("receiver saw modes %v, want only %s", recv.modes, out)
				}
				recv.mu.Unlock()
				if _, err := stop(); err != nil {
					t.Fatal(err)
				}
				if dead, _ := os.ReadFile(filepath.Join(dir, "dead.jsonl")); len(dead) > 0 {
					t.Errorf("dead letters: %s", dead)
				}
				// The file output's cloudevents format: one structured
				// CloudEvent per line, as the SDK reads it.
				raw, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
				if len(lines) != len(sent) {
					t.Fatalf("%d lines in the file, want %d", len(lines), len(sent))
				}
				for _, line := range lines {
					e := cloudevents.NewEvent()
					if err := json.Unmarshal([]byte(line), &e); err != nil {
						t.Fatalf("the SDK cannot read the line %s: %v", line, err)
					}
					w := want[e.ID()]
					if e.ID() == "pretty-json" {
						w = maps.Clone(w) // a line holds compacted JSON
						var buf bytes.Buffer
						_ = json.Compact(&buf, sent[1].Data())
						w["data"] = fmt.Sprintf("%q", buf.Bytes())
					}
					if diff := cmp.Diff(w, comparable(t, e)); diff != "" {
						t.Errorf("file line of %s (-sent +read):\n%s", e.ID(), diff)
					}
				}
			})
		}
	}
}

// sendWithSDK sends the events with the SDK's client in binary or
// structured mode (one request each), or as one batch.
func sendWithSDK(t *testing.T, url, mode string, events []cloudevents.Event) {
	t.Helper()
	ctx := context.Background()
	waitAccepting(t, url)
	if mode == "batch" {
		req, err := cehttp.NewHTTPRequestFromEvents(ctx, url, events)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("batch: %s: %s", resp.Status, body)
		}
		return
	}
	// NewClient without options: NewClientHTTP would stamp a time on the
	// events that have none.
	p, err := cehttp.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx = cloudevents.ContextWithTarget(ctx, url)
	if mode == "structured" {
		ctx = binding.WithForceStructured(ctx)
	} else {
		ctx = binding.WithForceBinary(ctx)
	}
	for _, e := range events {
		if res := c.Send(ctx, e); !cloudevents.IsACK(res) {
			t.Fatalf("send %s: %v", e.ID(), res)
		}
	}
}

// waitAccepting waits until the ingest endpoint answers.
func waitAccepting(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a listener being bound, not synchronising with it
	}
}

// Requests that are none of the binding's modes, or break its rules, get a
// 4xx with the reason, and nothing is accepted.
func TestCloudEventsInvalidRequests(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "events:\n  enabled: true\ningest:\n  - type: http\n    listen: 127.0.0.1:0\nroute:\n  default: [out]\nexport:\n  out:\n    type: file\n    path: out.jsonl\ndead_letter:\n  path: dead.jsonl\n")
	r, err := runner.New(context.Background(), cfg, runner.Options{Logger: quiet(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	stop := started(t, r)
	url := "http://" + r.IngestAddrs()[0].String() + "/events"
	waitAccepting(t, url)
	binary := func(h map[string]string) http.Header {
		out := http.Header{}
		base := map[string]string{"ce-specversion": "1.0", "ce-id": "x1", "ce-source": "/s", "ce-type": "com.example.t"}
		for k, v := range h {
			base[k] = v
		}
		for k, v := range base {
			if v != "" {
				out.Set(k, v)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		status int
		reason string
	}{
		{"binary without id", binary(map[string]string{"ce-id": ""}), `{}`, 400, "id"},
		{"binary without source", binary(map[string]string{"ce-source": ""}), `{}`, 400, "source"},
		{"binary without type", binary(map[string]string{"ce-type": ""}), `{}`, 400, "type"},
		{"binary of version 0.3", binary(map[string]string{"ce-specversion": "0.3"}), `{}`, 400, "unsupported CloudEvents version"},
		{"binary JSON that is not", binary(map[string]string{"Content-Type": "application/json"}), `{"a":`, 400, "not JSON"},
		{"binary bad time", binary(map[string]string{"ce-time": "yesterday"}), ``, 400, "RFC 3339"},
		{"binary bad extension name", binary(map[string]string{"ce-my_ext": "1"}), ``, 400, "attribute name"},
		{"structured without specversion", http.Header{"Content-Type": {"application/cloudevents+json"}}, `{"id":"1","source":"/s","type":"a.b"}`, 400, "not a CloudEvent"},
		{"structured array", http.Header{"Content-Type": {"application/cloudevents+json"}}, `[{"specversion":"1.0","id":"1","source":"/s","type":"a.b"}]`, 400, "one JSON object"},
		{"structured xml format", http.Header{"Content-Type": {"application/cloudevents+xml"}}, `<x/>`, 415, "unsupported content type"},
		{"structured text data not a string", http.Header{"Content-Type": {"application/cloudevents+json"}}, `{"specversion":"1.0","id":"1","source":"/s","type":"a.b","datacontenttype":"text/plain","data":{"a":1}}`, 400, "must be a JSON string"},
		{"structured bad base64", http.Header{"Content-Type": {"application/cloudevents+json"}}, `{"specversion":"1.0","id":"1","source":"/s","type":"a.b","data_base64":"%%%"}`, 400, "base64"},
		{"batch not an array", http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, `{"specversion":"1.0"}`, 400, "JSON array"},
		{"batch item without source", http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, `[{"specversion":"1.0","id":"1","type":"a.b"}]`, 400, "source"},
		{"unknown content type", http.Header{"Content-Type": {"application/xml"}}, `<x/>`, 415, "unsupported content type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(tc.body)))
			req.Header = tc.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.reason) || strings.Contains(string(body), `"accepted":1`) {
				t.Errorf("%s: %s, want %d mentioning %q", tc.name, body, tc.status, tc.reason)
			}
		})
	}
	sum, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Exported["out"] != 0 || sum.Accepted != 0 {
		t.Errorf("accepted %d, exported %v from invalid requests", sum.Accepted, sum.Exported)
	}
}
