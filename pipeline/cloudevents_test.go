package pipeline_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/pipeline"
)

// cloudSamples are CloudEvents as eventpipe holds them, one per kind of
// data and attribute set.
func cloudSamples() map[string]pipeline.Event {
	at := time.Date(2026, 11, 28, 10, 0, 0, 5, time.UTC)
	base := func(c *pipeline.CloudAttributes, data string) pipeline.Event {
		ev := pipeline.Event{SchemaVersion: "1.0", ID: "ce-1", Type: "com.example.done", Source: "/agents/7", Time: at, Sequence: 3, Cloud: c}
		if data != "" {
			ev.Data = json.RawMessage(data)
		}
		return ev
	}
	full := base(&pipeline.CloudAttributes{Subject: "run/1", DataContentType: "application/json", DataSchema: "https://example.com/s",
		Extensions: json.RawMessage(`{"traceparent":"00-ab-01","priority":3,"sampled":true}`)}, `{"a":[1,2]}`)
	full.CorrelationID, full.Language, full.Tags = "c-1", "lua", []string{"x", "y,z"}
	return map[string]pipeline.Event{
		"full":    full,
		"text":    base(&pipeline.CloudAttributes{DataContentType: "text/plain", NoTime: true}, `"hello\nworld"`),
		"binary":  base(&pipeline.CloudAttributes{DataContentType: "application/octet-stream", DataBase64: true}, `"/wAQ"`),
		"minimal": base(&pipeline.CloudAttributes{NoTime: true}, ""),
	}
}

// An event with CloudEvents attributes survives every encoding eventpipe
// writes and reads: its JSON shape (files, dead letters), the store's
// binary records and one CloudEvent per line.
func TestCloudAttributesSurviveEveryEncoding(t *testing.T) {
	for name, ev := range cloudSamples() {
		t.Run(name, func(t *testing.T) {
			got, err := pipeline.Decode(ev.AppendJSON(nil), pipeline.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ev, got); diff != "" {
				t.Errorf("eventpipe shape (-want +got):\n%s", diff)
			}
			rec, err := ev.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := pipeline.DecodeBinary(nil, rec)
			if err != nil || len(evs) != 1 {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ev, evs[0]); diff != "" {
				t.Errorf("binary record (-want +got):\n%s", diff)
			}
			line := ev.AppendCloudEventLine(nil)
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("not one line: %s", line)
			}
			got, err = pipeline.Decode(line, pipeline.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := ev
			want.Sequence = 0 // the host's sequence is not a CloudEvents attribute of a CloudEvent
			if ev.Cloud.NoTime {
				want.Time = time.Time{} // and a time it did not have is not written
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("CloudEvents line %s (-want +got):\n%s", line, diff)
			}
		})
	}
}

// An eventpipe event written as a CloudEvent carries its own fields as
// extension attributes and reads back as the same event.
func TestEventpipeEventAsCloudEvent(t *testing.T) {
	ev := pipeline.Event{SchemaVersion: "1.0", ID: "e-1", Type: "agent.completed", Source: "agent-1", Sequence: 42,
		Time: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), CorrelationID: "c", CausationID: "d", Language: "lua",
		Tags: []string{"prod"}, Data: json.RawMessage(`{"ok":true}`)}
	line := ev.AppendCloudEventLine(nil)
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"specversion": "1.0", "datacontenttype": "application/json", "correlationid": "c",
		"causationid": "d", "language": "lua", "tags": `["prod"]`, "sequence": "42"} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	got, err := pipeline.Decode(line, pipeline.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != ev.Type || got.CorrelationID != "c" || got.CausationID != "d" || got.Language != "lua" ||
		!cmp.Equal(got.Tags, ev.Tags) || string(got.Data) != `{"ok":true}` || !got.Time.Equal(ev.Time) {
		t.Errorf("read back as %+v", got)
	}
}

// A pretty-printed body is one line in JSON lines outputs.
func TestDataWithLineBreaksStaysOneLine(t *testing.T) {
	ev, err := pipeline.Decode([]byte("{\"id\":\"i\",\"type\":\"a.b\",\n \"data\": {\n  \"x\": \"1\\n2\"\n }\n}"), pipeline.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range [][]byte{ev.AppendJSON(nil), ev.AppendCloudEventLine(nil)} {
		if bytes.ContainsAny(line, "\r\n") {
			t.Errorf("line break in %s", line)
		}
		back, err := pipeline.Decode(line, pipeline.DecodeOptions{})
		if err != nil || string(back.Data) != `{"x":"1\n2"}` {
			t.Errorf("%s: %v %s", line, err, back.Data)
		}
	}
}

func TestDecodeCloudBinary(t *testing.T) {
	attrs := map[string]string{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "tenant": "acme", "tags": `["a"]`}
	for _, tc := range []struct {
		ct, body, data string
		b64            bool
	}{
		{"application/json", `{"a": 1}`, `{"a": 1}`, false},
		{"text/plain", "hi\n", `"hi\n"`, false},
		{"application/octet-stream", "\xff\x00", `"/wA="`, true},
		{"", "\xff", `"/w=="`, true},
		{"", `[1]`, `[1]`, false},
	} {
		ev, err := pipeline.DecodeCloudBinary(attrs, tc.ct, []byte(tc.body), pipeline.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) != tc.data || ev.Cloud.DataBase64 != tc.b64 || ev.Cloud.DataContentType != tc.ct ||
			string(ev.Cloud.Extensions) != `{"tenant":"acme"}` || !cmp.Equal(ev.Tags, []string{"a"}) || !ev.Cloud.NoTime {
			t.Errorf("%q %q: %+v %+v", tc.ct, tc.body, ev, ev.Cloud)
		}
		ct, body, err := ev.CloudBinary(func(string, string) {})
		if err != nil || ct != tc.ct || string(body) != tc.body {
			t.Errorf("binary mode out: %q %q %v, want %q %q", ct, body, err, tc.ct, tc.body)
		}
	}
}

// FuzzCloudEventRoundTrip: whatever a structured CloudEvent decodes to is
// written out (JSON format, one line; binary mode) and read back as the
// same event, and the eventpipe shape keeps it too.
func FuzzCloudEventRoundTrip(f *testing.F) {
	for _, s := range []string{
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"x","dataschema":"https://e/s","traceparent":"00","n":3,"ok":true,"data":{"a":[1]}}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"a\nb"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"/wAQ","time":"2026-01-01T00:00:00+02:00"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","tags":"[\"a\"]","correlationid":"c","language":"go","sequence":"7"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, shape, err := pipeline.DecodeShape(b, pipeline.DecodeOptions{})
		if err != nil || shape != pipeline.ShapeCloudEvents {
			return
		}
		line := ev.AppendCloudEventLine(nil)
		back, err := pipeline.Decode(line, pipeline.DecodeOptions{})
		if err != nil {
			t.Fatalf("%s\nwritten as %s\nnot read back: %v", b, line, err)
		}
		if diff := cmp.Diff(ev, back); diff != "" {
			t.Fatalf("%s\nwritten as %s\n(-decoded +read back):\n%s", b, line, diff)
		}
		attrs := map[string]string{}
		ct, data, err := ev.CloudBinary(func(name, value string) { attrs[name] = value })
		if err != nil {
			t.Fatal(err)
		}
		fromBinary, err := pipeline.DecodeCloudBinary(attrs, ct, data, pipeline.DecodeOptions{MaxSize: -1})
		if err != nil {
			t.Fatalf("%s\nbinary mode %v %q %q not read back: %v", b, attrs, ct, data, err)
		}
		if fromBinary.ID != ev.ID || fromBinary.Type != ev.Type || fromBinary.Source != ev.Source ||
			fromBinary.Cloud.Subject != ev.Cloud.Subject || fromBinary.Cloud.DataContentType != ev.Cloud.DataContentType {
			t.Fatalf("binary mode changed %+v into %+v", ev, fromBinary)
		}
		if _, out, _ := fromBinary.CloudBinary(func(string, string) {}); string(out) != string(data) {
			t.Fatalf("binary data %q became %q", data, out)
		}
		shaped, err := pipeline.Decode(ev.AppendJSON(nil), pipeline.DecodeOptions{MaxSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ev, shaped); diff != "" {
			t.Fatalf("eventpipe shape (-decoded +read back):\n%s", diff)
		}
	})
}

// Extensions read from eventpipe's shape (a file, a plugin) keep only what
// can be written as extension attributes: no duplicate of an attribute of
// its own, no bad names, no objects.
func TestExtensionsFromAFileAreCleaned(t *testing.T) {
	ev, err := pipeline.Decode([]byte(`{"type":"a.b","id":"1","cloudevents":{"extensions":{"id":"x","Bad":1,"ok":"y","obj":{},"specversion":"2","n":3,"tags":"t"}}}`), pipeline.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ev.Cloud.Extensions); got != `{"ok":"y","n":3,"tags":"t"}` {
		t.Errorf("extensions %s", got)
	}
	ev.Tags = []string{"x"}
	line := ev.AppendCloudEventLine(nil)
	if bytes.Count(line, []byte(`"tags"`)) != 1 || bytes.Count(line, []byte(`"id"`)) != 1 {
		t.Errorf("duplicate attributes in %s", line)
	}
}
