package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/bench"
)

func TestBenchRunsAndCountsEverything(t *testing.T) {
	res, err := bench.Run(context.Background(), bench.Options{Events: 5000, Rate: 20000, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Exported != 5000 || res.EventsPerSec <= 0 || res.LatencyN == 0 || res.P99 < res.P50 {
		t.Errorf("%+v", res)
	}
}

// BenchmarkEndToEnd: JSON lines in -> native filter -> sanitize -> route ->
// file out, 200-300 byte events.
func BenchmarkEndToEnd(b *testing.B) {
	res, err := bench.Throughput(context.Background(), bench.Options{Events: max(b.N, 1000)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.EventsPerSec, "events/s")
	b.ReportMetric(res.MBPerSec, "MB/s")
	b.ReportMetric(res.AllocsPerEvent, "allocs/event")
	b.ReportMetric(res.BytesPerEvent, "B/event")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLatency: emit -> export at 100k events/s, default batching.
func BenchmarkLatency(b *testing.B) {
	res, err := bench.Latency(context.Background(), bench.Options{Rate: 100_000, Duration: time.Second, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
