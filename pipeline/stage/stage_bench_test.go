package stage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

// benchEvents are ~300-byte events, one in four carrying something to
// sanitize.
func benchEvents(n int) []pipeline.Event {
	out := make([]pipeline.Event, n)
	for i := range out {
		data := fmt.Sprintf(`{"agent":"researcher","step":%d,"tokens":%d,"result":"summarised the quarterly report for the team","ok":true}`, i, i*7)
		if i%4 == 0 {
			data = fmt.Sprintf(`{"agent":"researcher","step":%d,"error":"open /home/alice/work/../x.txt: token=abc%d","user":"alice"}`, i, i)
		}
		out[i] = pipeline.Event{ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Type: "agent.completed", Source: "researcher",
			CorrelationID: "run-1", Data: json.RawMessage(data)}
	}
	return out
}

func BenchmarkSanitize(b *testing.B) {
	s, _ := stage.NewSanitize(stage.DefaultSanitizeConfig())
	src := benchEvents(1000)
	evs := make([]pipeline.Event, len(src))
	var bt pipeline.Batch
	b.ReportAllocs()
	for b.Loop() {
		copy(evs, src)
		bt.Reset(evs)
		_ = s.Process(context.Background(), &bt)
	}
	b.ReportMetric(float64(b.N*len(src))/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkFilterConditions(b *testing.B) {
	f, _ := stage.NewFilter(stage.FilterConfig{Conditions: []stage.Condition{{"data.ok", "eq", true}}})
	src := benchEvents(1000)
	var bt pipeline.Batch
	for b.Loop() {
		bt.Reset(src)
		_ = f.Process(context.Background(), &bt)
	}
	b.ReportMetric(float64(b.N*len(src))/b.Elapsed().Seconds(), "events/s")
}
