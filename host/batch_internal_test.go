package host

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
)

// A transform's output is held to the host's rules record by record.
func TestDecodeBatchHostRules(t *testing.T) {
	orig := []pipeline.Event{{ID: "a", Type: "agent.step", Sequence: 7, Data: json.RawMessage(`{}`)}}
	for _, tc := range []struct {
		name     string
		change   func(*pipeline.Event)
		max      int
		rewrites int
		err      string
	}{
		{"unchanged", func(*pipeline.Event) {}, 1024, 0, ""},
		{"sequence", func(e *pipeline.Event) { e.Sequence = 999 }, 1024, 1, ""},
		{"id", func(e *pipeline.Event) { e.ID = "forged" }, 1024, 1, ""},
		{"grown past the maximum", func(e *pipeline.Event) { e.Data = json.RawMessage(`"` + strings.Repeat("x", 2000) + `"`) }, 1024, 0, "over the maximum event size of 1024"},
		{"grown, no maximum", func(e *pipeline.Event) { e.Data = json.RawMessage(`"` + strings.Repeat("x", 2000) + `"`) }, -1, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := []pipeline.Event{orig[0]}
			tc.change(&out[0])
			buf := make([]byte, encodedSize(out, false, allFields, new([]byte)))
			if _, err := encodeBatch(buf, out, false, allFields, new([]byte)); err != nil {
				t.Fatal(err)
			}
			evs := []pipeline.Event{orig[0]}
			rw, err := decodeBatch(buf, evs, make([]bool, 1), tc.max, false, new([]byte))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if rw != tc.rewrites || evs[0].ID != "a" || evs[0].Sequence != 7 {
				t.Errorf("rewrites %d, id %s, sequence %d", rw, evs[0].ID, evs[0].Sequence)
			}
		})
	}
}

// ABI 2 records carry the CloudEvents attributes after data: a plugin that
// changes them changes the event; ABI 1 records have none, and a v1
// transform leaves the event's attributes as they were.
func TestRecordAttributes(t *testing.T) {
	orig := pipeline.Event{ID: "a", Type: "com.example.t", Data: json.RawMessage(`{"x":1}`),
		Cloud: &pipeline.CloudAttributes{Subject: "s/1", Extensions: json.RawMessage(`{"tenant":"acme"}`)}}
	changed := orig
	changed.Cloud = &pipeline.CloudAttributes{Subject: "s/2", DataContentType: "application/json", Extensions: json.RawMessage(`{"tenant":"acme"}`)}
	for _, tc := range []struct {
		name  string
		attrs bool
		want  string
	}{{"abi 2", true, "s/2"}, {"abi 1", false, "s/1"}} {
		t.Run(tc.name, func(t *testing.T) {
			out := []pipeline.Event{changed}
			buf := make([]byte, encodedSize(out, tc.attrs, allFields, new([]byte)))
			if _, err := encodeBatch(buf, out, tc.attrs, allFields, new([]byte)); err != nil {
				t.Fatal(err)
			}
			// The data sits where ABI 1 says, whatever the revision.
			if got := string(buf[batchHeader+recordHeader+len("a")+len("com.example.t"):][:7]); got != `{"x":1}` {
				t.Fatalf("data at %q", got)
			}
			evs := []pipeline.Event{orig}
			if _, err := decodeBatch(buf, evs, make([]bool, 1), -1, tc.attrs, new([]byte)); err != nil {
				t.Fatal(err)
			}
			if evs[0].Cloud.Subject != tc.want || string(evs[0].Cloud.Extensions) != `{"tenant":"acme"}` || string(evs[0].Data) != `{"x":1}` {
				t.Errorf("got %+v %s", evs[0].Cloud, evs[0].Data)
			}
		})
	}
}

// BenchmarkEncodeBatch: the host's share of a batch, writing it into the
// guest's memory format (the largest part of the per-event overhead): every
// field, and only type and source (a plugin whose manifest reads just them).
func BenchmarkEncodeBatch(b *testing.B) {
	evs := make([]pipeline.Event, 1000)
	for i := range evs {
		evs[i] = pipeline.Event{Type: "agent.completed", Source: "researcher", ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
			Data: json.RawMessage(`{"i":1,"pad":"` + strings.Repeat("x", 180) + `"}`)}
	}
	for _, bc := range []struct {
		name string
		fs   fieldSet
	}{{"all-fields", allFields}, {"type-source", fieldType | fieldSource}} {
		b.Run(bc.name, func(b *testing.B) {
			var scratch []byte
			buf := make([]byte, encodedSize(evs, false, bc.fs, &scratch))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeBatch(buf, evs, false, bc.fs, &scratch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
		})
	}
}
