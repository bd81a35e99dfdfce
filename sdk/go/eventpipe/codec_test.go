package eventpipe

import (
	"errors"
	"testing"
)

// The SDK's encoding round-trips: what AppendRecord writes, DecodeBatch reads.
func TestRecordRoundTrip(t *testing.T) {
	in := []Event{
		{Time: 42, Sequence: 7, Type: "agent.completed", Source: "s", ID: "i", CorrelationID: "c", CausationID: "z",
			Language: "go", Tags: []byte(`["a"]`), Data: []byte(`{"k":1}`), Attributes: []byte(`{"subject":"s/1"}`)},
		{Type: "x.y"},
	}
	buf := AppendBatchHeader(nil, len(in)+1)
	for i := range in {
		buf = AppendRecord(buf, &in[i])
	}
	buf = AppendRecord(buf, nil) // a dropped record
	var got []Event
	err := DecodeBatch(buf, func(_ int, e *Event) error {
		c := *e
		c.Tags, c.Data, c.Attributes = append([]byte(nil), e.Tags...), append([]byte(nil), e.Data...), append([]byte(nil), e.Attributes...)
		got = append(got, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Type != "" {
		t.Fatalf("got %+v", got)
	}
	a, b := in[0], got[0]
	if a.Time != b.Time || a.Sequence != b.Sequence || a.Type != b.Type || a.Source != b.Source || a.ID != b.ID ||
		a.CorrelationID != b.CorrelationID || a.CausationID != b.CausationID || a.Language != b.Language ||
		string(a.Tags) != string(b.Tags) || string(a.Data) != string(b.Data) || string(a.Attributes) != string(b.Attributes) {
		t.Errorf("round trip: %+v != %+v", a, b)
	}
	if err := DecodeBatch(buf[:len(buf)-3], func(int, *Event) error { return nil }); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated batch: %v", err)
	}
}

// The manifest carries reads only when the plugin lists them (absent: the
// host gives every field).
func TestManifestReads(t *testing.T) {
	defer func(p *Plugin) { registered = p }(registered)
	for _, tc := range []struct {
		reads []string
		want  string
	}{
		{nil, `{"abi":2,"capabilities":[],"kind":"filter","name":"f","version":"1"}`},
		{[]string{"type", "source"}, `{"abi":2,"capabilities":[],"kind":"filter","name":"f","reads":["type","source"],"version":"1"}`},
		{[]string{}, `{"abi":2,"capabilities":[],"kind":"filter","name":"f","reads":[],"version":"1"}`},
	} {
		registered = &Plugin{Name: "f", Version: "1", Kind: KindFilter, Reads: tc.reads}
		if got := string(manifestJSON()); got != tc.want {
			t.Errorf("reads %v: %s, want %s", tc.reads, got, tc.want)
		}
	}
}
