package pipeline_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/pipeline"
)

func TestBinaryRoundTrip(t *testing.T) {
	zone := time.FixedZone("x", 5*3600+1800)
	evs := []pipeline.Event{
		{SchemaVersion: "1.0", ID: "a", Type: "agent.step", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Sequence: 7,
			Source: "s", CorrelationID: "c", CausationID: "z", Language: "go", Tags: []string{"t1", "", "t3"}, Data: json.RawMessage(`{"x":[1,2]}`)},
		{Type: "tool.x"}, // zero time, nothing else
		{ID: "b", Type: "a.b", Time: time.Date(1500, 1, 1, 0, 0, 0, 0, zone), Data: json.RawMessage(`"` + strings.Repeat("é", 3000) + `"`)},
	}
	var buf []byte
	for i := range evs {
		var err error
		if buf, err = evs[i].AppendBinary(buf); err != nil {
			t.Fatal(err)
		}
	}
	got, err := pipeline.DecodeBinary(nil, buf)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(evs, got, cmp.Comparer(func(a, b time.Time) bool {
		return a.Equal(b) && a.Format(time.RFC3339Nano) == b.Format(time.RFC3339Nano)
	})); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	// Every cut of the records is refused, never read past.
	for n := 1; n < len(buf); n += 7 {
		if _, err := pipeline.DecodeBinary(nil, buf[:n]); err == nil && n != recordEnd(buf, n) {
			t.Fatalf("a cut at %d bytes was accepted", n)
		}
	}
	if _, err := (&pipeline.Event{Type: "a.b", ID: strings.Repeat("x", 70000)}).AppendBinary(nil); err == nil {
		t.Error("a 70,000-byte id was written")
	}
}

// recordEnd is n if n falls on a record boundary of buf.
func recordEnd(buf []byte, n int) int {
	for o := 0; o < len(buf); {
		size := int(buf[o]) | int(buf[o+1])<<8 | int(buf[o+2])<<16 | int(buf[o+3])<<24
		o += size
		if o == n {
			return n
		}
	}
	return -1
}

func FuzzDecodeBinary(f *testing.F) {
	ev := pipeline.Event{ID: "a", Type: "a.b", Tags: []string{"x"}, Data: json.RawMessage(`{}`)}
	b, _ := ev.AppendBinary(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := pipeline.DecodeBinary(nil, data)
		if err != nil {
			return
		}
		// What decodes encodes to records that decode to the same events
		// (the first encoding may normalise, e.g. a time's zone offset;
		// after it the encoding is a fixed point).
		encode := func(evs []pipeline.Event) []byte {
			var out []byte
			for i := range evs {
				if out, err = evs[i].AppendBinary(out); err != nil {
					t.Fatal(err)
				}
			}
			return out
		}
		once := encode(evs)
		again, err := pipeline.DecodeBinary(nil, once)
		if err != nil {
			t.Fatalf("re-encoded records do not decode: %v", err)
		}
		if string(encode(again)) != string(once) {
			t.Fatalf("encoding is not stable")
		}
	})
}
