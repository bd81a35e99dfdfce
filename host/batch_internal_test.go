package host

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

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

// The fields a plugin reads are the event's; the others arrive empty, and
// the record says so in its lengths (sdk/ABI.md). The record is read here
// by the ABI's offsets, not by decodeBatch.
func TestEncodeBatchReads(t *testing.T) {
	e := pipeline.Event{Type: "agent.completed", Source: "researcher", ID: "0193a1b2", CorrelationID: "c1", CausationID: "z1",
		Language: "en", Tags: []string{"a", `q"<`}, Data: json.RawMessage(`{"x":1}`), Sequence: 9,
		Time: time.Unix(5, 6), Cloud: &pipeline.CloudAttributes{Subject: "s"}}
	tags, _ := json.Marshal(e.Tags)
	cloud := pipeline.AppendCloudAttributes(nil, e.Cloud)
	all := []string{e.Type, e.Source, e.ID, e.CorrelationID, e.CausationID, e.Language, string(tags), string(e.Data), string(cloud)}
	for _, tc := range []struct {
		reads []string
		want  []int // indexes into all that are present
	}{
		{nil, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{[]string{"type", "source"}, []int{0, 1}},
		{[]string{"data", "time"}, []int{7}},
		{[]string{"tags", "attributes", "id"}, []int{2, 6, 8}},
		{[]string{}, nil},
	} {
		t.Run(strings.Join(tc.reads, ","), func(t *testing.T) {
			fs, err := parseReads(tc.reads)
			if err != nil {
				t.Fatal(err)
			}
			var scratch []byte
			evs := []pipeline.Event{e, e}
			size := encodedSize(evs, true, fs, &scratch)
			if _, err := encodeBatch(make([]byte, size-1), evs, true, fs, &scratch); !errors.Is(err, errShortBuffer) {
				t.Fatalf("one byte short: %v", err)
			}
			buf := make([]byte, size+100) // a larger buffer, as the guest's usually is
			n, err := encodeBatch(buf, evs, true, fs, &scratch)
			if err != nil || n != size {
				t.Fatalf("wrote %d of %d: %v", n, size, err)
			}
			le := binary.LittleEndian
			rec := buf[batchHeader:]
			if int64(le.Uint64(rec[4:])) != e.Time.UnixNano() || le.Uint64(rec[12:]) != 9 {
				t.Fatalf("time or sequence missing from the header")
			}
			lens := []int{int(le.Uint16(rec[20:])), int(le.Uint16(rec[22:])), int(le.Uint16(rec[24:])), int(le.Uint16(rec[26:])),
				int(le.Uint16(rec[28:])), int(le.Uint16(rec[30:])), int(le.Uint16(rec[32:])), int(le.Uint32(rec[36:])), int(le.Uint16(rec[34:]))}
			p := recordHeader
			for k, n := range lens {
				want := ""
				if slices.Contains(tc.want, k) {
					want = all[k]
				}
				if got := string(rec[p : p+n]); got != want {
					t.Errorf("field %d = %q, want %q", k, got, want)
				}
				p += n
			}
			if int(le.Uint32(rec)) != p || 2*p+batchHeader != size {
				t.Errorf("record size %d, fields end at %d, batch %d", le.Uint32(rec), p, size)
			}
		})
	}
	if _, err := parseReads([]string{"type", "payload"}); err == nil || !strings.Contains(err.Error(), `"payload"`) {
		t.Errorf("unknown field: %v", err)
	}
}

// Tags are written as encoding/json writes them, without it for plain ones.
func TestAppendTagsJSON(t *testing.T) {
	for _, tags := range [][]string{{"a"}, {"a", "b-c.d_e"}, {""}, {`q"`}, {`back\slash`}, {"<html>&"}, {"tab\t"}, {"é", "x"}, {"\u2028"}, {"bad\xff"}} {
		want, _ := json.Marshal(tags)
		if got := appendTagsJSON([]byte("keep"), tags); string(got) != "keep"+string(want) {
			t.Errorf("%q: %s, want %s", tags, got, want)
		}
	}
}

// A transform's output is the plugin's to write, hostile or not: whatever
// the bytes, decodeBatch returns an error or events that keep the host's
// rules (valid types, JSON or empty data, within the maximum size, id and
// sequence as they were), and never panics. The seeds are real batches,
// one changed in place by the fuzzer.
func FuzzDecodeBatch(f *testing.F) {
	events := func() []pipeline.Event {
		return []pipeline.Event{
			{ID: "a", Type: "agent.step", Source: "s", Sequence: 1, Data: json.RawMessage(`{"x":1}`), Tags: []string{"t"}},
			{ID: "b", Type: "tool.call", Sequence: 2, Time: time.Unix(7, 0), Cloud: &pipeline.CloudAttributes{Subject: "s"}},
		}
	}
	for _, attrs := range []bool{false, true} {
		evs := events()
		var scratch []byte
		buf := make([]byte, encodedSize(evs, attrs, allFields, &scratch))
		if _, err := encodeBatch(buf, evs, attrs, allFields, &scratch); err != nil {
			f.Fatal(err)
		}
		f.Add(buf, attrs)
	}
	f.Add([]byte("EPB1"), false)
	f.Fuzz(func(t *testing.T, out []byte, attrs bool) {
		evs := events()
		dropped := make([]bool, len(evs))
		var scratch []byte
		_, err := decodeBatch(out, evs, dropped, 4096, attrs, &scratch)
		if err != nil {
			return
		}
		for i, e := range evs {
			if dropped[i] {
				continue
			}
			if !pipeline.ValidType(e.Type) || len(e.Data) > 0 && !json.Valid(e.Data) || e.PayloadSize() > 4096 {
				t.Fatalf("event %d accepted against the rules: %+v", i, e)
			}
			if want := events()[i]; e.ID != want.ID || e.Sequence != want.Sequence {
				t.Fatalf("event %d: host-owned fields changed: %q %d", i, e.ID, e.Sequence)
			}
		}
	})
}
