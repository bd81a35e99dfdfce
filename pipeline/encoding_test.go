package pipeline_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Two outputs sharing a batch's encodings encode each event once between
// them, whatever events each was routed; a retry of some events (another
// count) and a format not shared encode for themselves.
func TestSharedEncodingsEncodeOnce(t *testing.T) {
	batch := []pipeline.Event{{ID: "a", Type: "x.a"}, {ID: "b", Type: "x.b"}, {ID: "c", Type: "x.c"}}
	shared := pipeline.NewSharedEncodings(len(batch), pipeline.EncodingEventpipe)
	var encodes atomic.Int64
	enc := func(dst []byte, ev *pipeline.Event) []byte { encodes.Add(1); return ev.AppendJSON(dst) }
	export := func(idx []int, format string) string {
		evs := make([]pipeline.Event, len(idx))
		for k, i := range idx {
			evs[k] = batch[i]
		}
		ctx := pipeline.WithSharedEncodings(context.Background(), shared, idx)
		v := pipeline.SharedEncodingsFor(ctx, format, len(evs))
		var out []byte
		for k := range evs {
			out = append(v.Append(out, k, &evs[k], enc), '\n')
		}
		return string(out)
	}
	first := export([]int{0, 1}, pipeline.EncodingEventpipe)
	second := export([]int{1, 2}, pipeline.EncodingEventpipe)
	if n := encodes.Load(); n != 3 {
		t.Errorf("%d encodes for 3 events", n)
	}
	if !strings.Contains(first, `"id":"b"`) || strings.Split(first, "\n")[1] != strings.Split(second, "\n")[0] {
		t.Errorf("outputs differ: %q %q", first, second)
	}
	encodes.Store(0)
	_ = export([]int{0, 1}, pipeline.EncodingCloudEvents) // not shared
	if n := encodes.Load(); n != 2 {
		t.Errorf("%d encodes for a format not shared, want 2", n)
	}
	if v := pipeline.SharedEncodingsFor(pipeline.WithSharedEncodings(context.Background(), shared, []int{0, 1}), pipeline.EncodingEventpipe, 1); v != nil {
		t.Error("a view for another number of events (a retry of some) must not be shared")
	}
}
