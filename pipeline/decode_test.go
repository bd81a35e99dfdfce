package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/pipeline"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UTC()
}

func TestDecodeShapes(t *testing.T) {
	data := json.RawMessage(`{"result":"ok","tokens":12}`)
	tests := []struct {
		file  string
		shape pipeline.Shape
		want  pipeline.Event
	}{
		{"eventpipe.json", pipeline.ShapeEventpipe, pipeline.Event{
			SchemaVersion: "1.0", ID: "01936b2e-8f2a-7c3d-9e4f-0a1b2c3d4e5f", Type: "agent.completed",
			Time: mustTime(t, "2026-11-27T10:00:00.123456789Z"), Source: "agent-1", Sequence: 42,
			CorrelationID: "c-1", CausationID: "e-0", Tags: []string{"prod", "fast"}, Language: "lua", Data: data,
		}},
		{"llmspell.json", pipeline.ShapeLLMSpell, pipeline.Event{
			SchemaVersion: "1.0", ID: "0b6f7c1e-5b2a-4c3d-8e4f-1a2b3c4d5e6f", Type: "agent.completed",
			Time: mustTime(t, "2026-11-27T10:00:00.123456789Z"), Source: "agent-1", Sequence: 42,
			CorrelationID: "c-1", Tags: []string{"prod", "fast"}, Language: "lua", Data: data,
		}},
		{"cloudevents.json", pipeline.ShapeCloudEvents, pipeline.Event{
			SchemaVersion: "1.0", ID: "ce-77", Type: "agent.completed",
			Time: mustTime(t, "2026-11-27T10:00:00.5Z"), Source: "agent-1",
			CorrelationID: "c-1", CausationID: "e-0", Data: data,
			Cloud: &pipeline.CloudAttributes{Subject: "run/7", DataContentType: "application/json", DataSchema: "https://example.com/s.json",
				Extensions: json.RawMessage(`{"traceparent":"00-abc-01","priority":3,"sequence":"9"}`)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "decode", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, shape, err := pipeline.DecodeShape(raw, pipeline.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if shape != tc.shape {
				t.Errorf("shape %v, want %v", shape, tc.shape)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decoded event differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
		max            int
	}{
		{"no type", `{"id":"1","data":{}}`, "type: missing", 0},
		{"llmspell no type", `{"event_type":"","timestamp":"2026-01-01T00:00:00Z"}`, "type: missing", 0},
		{"undotted", `{"type":"completed"}`, `type: type "completed" is not a dotted name`, 0},
		{"empty segment", `{"type":"agent..completed"}`, "empty segment", 0},
		{"trailing dot", `{"type":"agent."}`, "empty segment", 0},
		{"bad char", `{"type":"agent completed"}`, "character", 0},
		{"too large", `{"type":"agent.completed","data":"xxxxxxxxxxxxxxxxxxxx"}`, "over the limit of 30", 30},
		{"bad json", `{"type":"agent.completed",`, "malformed JSON", 0},
		{"not object", `["agent.completed"]`, "not a JSON object", 0},
		{"empty", ``, "empty input", 0},
		{"wrong type field", `{"type":7}`, "type: wrong type", 0},
		{"bad time", `{"type":"a.b","time":"yesterday"}`, "time: not an RFC 3339 time", 0},
		{"time before year 1 in UTC", `{"type":"a.b","time":"0000-01-01T00:00:00+01:00"}`, "time: time out of range", 0},
		{"bad llmspell time", `{"event_type":"a.b","timestamp":"x"}`, "timestamp: not an RFC 3339 time", 0},
		{"bad ce version", `{"specversion":"0.3","type":"a.b","source":"s","id":"1"}`, "unsupported CloudEvents version", 0},
		{"bad id", `{"type":"a.b","id":{}}`, "id: must be a string", 0},
		{"bad data", `{"type":"a.b","data":{x}}`, "malformed JSON", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Decode([]byte(tc.in), pipeline.DecodeOptions{MaxSize: tc.max})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var de *pipeline.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	_, err := pipeline.Decode([]byte(`{"type":"a.b","data":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`), pipeline.DecodeOptions{MaxSize: 20})
	if !errors.Is(err, pipeline.ErrTooLarge) {
		t.Errorf("want ErrTooLarge, got %v", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, f := range []string{"eventpipe.json", "llmspell.json", "cloudevents.json"} {
		raw, _ := os.ReadFile(filepath.Join("testdata", "decode", f))
		ev, err := pipeline.Decode(raw, pipeline.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		back, shape, err := pipeline.DecodeShape(out, pipeline.DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: re-decoding %s: %v", f, out, err)
		}
		if shape != pipeline.ShapeEventpipe {
			t.Errorf("%s: encoded in shape %v", f, shape)
		}
		if diff := cmp.Diff(ev, back); diff != "" {
			t.Errorf("%s: round trip differs (-want +got):\n%s", f, diff)
		}
	}
}

func TestEncodeGolden(t *testing.T) {
	ev := pipeline.Event{
		ID: "id-1", Type: "agent.completed", Time: time.Date(2026, 11, 27, 10, 0, 0, 5, time.FixedZone("x", 3600)),
		Source: "a\"b<c>\n\u2028", Sequence: 7, Tags: []string{"t\x01"}, Data: json.RawMessage(`{"k":1}`),
	}
	got := string(ev.AppendJSON(nil))
	want := `{"schema_version":"1.0","id":"id-1","type":"agent.completed","time":"2026-11-27T09:00:00.000000005Z",` +
		`"source":"a\"b\u003cc\u003e\n\u2028","sequence":7,"tags":["t\u0001"],"data":{"k":1}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("not valid JSON")
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"eventpipe.json", "llmspell.json", "cloudevents.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "decode", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"type":"a.b","data":null}`))
	f.Add([]byte(`{"specversion":"1.0","type":"a.b","data_base64":"AAEC"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, err := pipeline.Decode(in, pipeline.DecodeOptions{})
		if err != nil {
			return
		}
		if ev.Cloud == nil && !pipeline.ValidType(ev.Type) { // a CloudEvent's type need not be dotted
			t.Fatalf("accepted invalid type %q", ev.Type)
		}
		out := ev.AppendJSON(nil)
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("encoded invalid JSON %q", out)
		}
		back, err := pipeline.Decode(out, pipeline.DecodeOptions{MaxSize: -1})
		if err != nil {
			t.Fatalf("re-decode of %s: %v", out, err)
		}
		if back.Type != ev.Type || back.ID != ev.ID || !back.Time.Equal(ev.Time) {
			t.Fatalf("round trip changed the event: %+v vs %+v", ev, back)
		}
	})
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("quote\" back\\ <tag> & \n\t\x00 \u2028 \xff")
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return // an empty source is left out of the JSON
		}
		ev := pipeline.Event{Type: "a.b", Source: s}
		out := ev.AppendJSON(nil)
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("invalid JSON for %q: %s", s, out)
		}
		want, _ := json.Marshal(s)
		var w string
		_ = json.Unmarshal(want, &w)
		if m["source"] != w {
			t.Fatalf("source %q, want %q", m["source"], w)
		}
	})
}

func TestDecodeOwnsItsData(t *testing.T) {
	in := []byte(`{"type":"a.b","data":{"k":"v"}}`)
	ev, err := pipeline.Decode(in, pipeline.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'x'
	}
	if string(ev.Data) != `{"k":"v"}` {
		t.Errorf("data aliases the input: %s", ev.Data)
	}
}

// Bytes that are not UTF-8, in strings or data, are replaced with U+FFFD
// and the repair is reported: every encoding of the event is valid JSON.
func TestDecodeRepairsInvalidUTF8(t *testing.T) {
	for _, in := range []string{
		"{\"type\":\"a.b\",\"source\":\"x\xff\",\"data\":{\"k\":\"v\xc3\x28\"}}",
		"{\"type\":\"a.b\",\"data\":[\"\xed\xa0\x80\"]}",
		"{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\",\"subject\":\"\xff\",\"data\":{\"k\":\"\xfe\"}}",
	} {
		repaired := 0
		ev, err := pipeline.Decode([]byte(in), pipeline.DecodeOptions{OnRepair: func() { repaired++ }})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		for _, out := range [][]byte{ev.AppendJSON(nil), ev.AppendCloudEventLine(nil)} {
			if !utf8.Valid(out) || !json.Valid(out) || !bytes.Contains(out, []byte("\uFFFD")) {
				t.Errorf("%q encoded as %q", in, out)
			}
		}
		if repaired != 1 {
			t.Errorf("%q: %d repairs reported", in, repaired)
		}
	}
	repaired := 0
	if _, err := pipeline.Decode([]byte(`{"type":"a.b","data":"ünïcödé"}`), pipeline.DecodeOptions{OnRepair: func() { repaired++ }}); err != nil || repaired != 0 {
		t.Errorf("valid UTF-8: %v, %d repairs", err, repaired)
	}
}

// A number no float64 holds is refused with the reason; large numbers
// that fit are kept as written.
func TestDecodeRefusesNumbersJSONReadersCannotHold(t *testing.T) {
	for _, in := range []string{
		`{"type":"a.b","data":{"x":1e999}}`,
		`{"type":"a.b","data":[-2E+400]}`,
		`{"type":"a.b","data":` + strings.Repeat("9", 400) + `}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"x":1e309}}`,
	} {
		_, err := pipeline.Decode([]byte(in), pipeline.DecodeOptions{})
		if err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%.60s: %v", in, err)
		}
	}
	for _, in := range []string{`{"type":"a.b","data":{"x":1.7e308,"y":"1e999","z":123456789012345678901234567890,"w":1e-999}}`} {
		ev, err := pipeline.Decode([]byte(in), pipeline.DecodeOptions{})
		if err != nil || !strings.Contains(string(ev.Data), "123456789012345678901234567890") {
			t.Errorf("%s: %v", in, err)
		}
	}
}
