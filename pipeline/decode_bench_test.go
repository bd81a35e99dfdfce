package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
)

// decodeInput is the end-to-end benchmark's input: 200-300 byte events,
// one in four with something to sanitize.
func decodeInput(n int) [][]byte {
	var out [][]byte
	types := []string{"agent.completed", "tool.invoked", "agent.thought", "workflow.step"}
	for i := range n {
		t := types[i%len(types)]
		var b bytes.Buffer
		if i%4 == 3 {
			fmt.Fprintf(&b, `{"type":%q,"source":"researcher-%d","correlation_id":"run-%d","data":{"step":%d,"error":"open /home/alice/work/../notes-%d.md: token=abc%d","retry":true}}`, t, i%8, i/100, i, i, i)
		} else {
			fmt.Fprintf(&b, `{"type":%q,"source":"researcher-%d","correlation_id":"run-%d","data":{"step":%d,"tokens":%d,"result":"summarised the quarterly report for the team","ok":true}}`, t, i%8, i/100, i, i*7)
		}
		out = append(out, b.Bytes())
	}
	return out
}

// BenchmarkDecode: Decode against encoding/json into a struct of the same
// fields (the baseline), measured in one run. Reports events/s and
// allocations per event.
func BenchmarkDecode(b *testing.B) {
	lines := decodeInput(1024)
	var size int
	for _, l := range lines {
		size += len(l)
	}
	b.Run("eventpipe", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size / len(lines)))
		i := 0
		for b.Loop() {
			if _, err := pipeline.Decode(lines[i%len(lines)], pipeline.DecodeOptions{}); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("encoding-json", func(b *testing.B) {
		type wire struct {
			Type          string          `json:"type"`
			Source        string          `json:"source"`
			CorrelationID string          `json:"correlation_id"`
			Data          json.RawMessage `json:"data"`
		}
		b.ReportAllocs()
		b.SetBytes(int64(size / len(lines)))
		i := 0
		for b.Loop() {
			var w wire
			if err := json.Unmarshal(lines[i%len(lines)], &w); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
