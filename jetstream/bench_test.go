package jetstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

const benchEvents = 500000

// writeInput writes n JSON lines of about 250 bytes, four types.
func writeInput(b *testing.B, dir string, n int) string {
	path := filepath.Join(dir, "in.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	types := []string{"agent.step", "tool.invoked", "tool.completed", "agent.thought"}
	for i := range n {
		fmt.Fprintf(w, `{"type":%q,"correlation_id":"c%d","data":{"i":%d,"text":"%0150d"}}`+"\n", types[i%4], i%100, i, i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return path
}

// runPipeline runs JSON lines -> filter -> sanitize -> file once, with or
// without persistence, and returns the events per second.
func runPipeline(b *testing.B, in string, persist bool) float64 {
	return runPipelineN(b, in, persist, benchEvents)
}

func runPipelineN(b *testing.B, in string, persist bool, n int) float64 {
	dir := b.TempDir()
	text := "events: {enabled: true}\nfilter: {exclude_types: [\"*.debug\"]}\nsanitize: {enabled: true}\nroute: {default: [out]}\nexport:\n  out: {type: file, path: out.jsonl}\ndead_letter: {path: dead.jsonl}\n"
	if persist {
		text += "persist: {data_dir: data}\n"
	}
	cfgPath := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	reg := runner.NewRegistry()
	if err := reg.Register(Factories()...); err != nil {
		b.Fatal(err)
	}
	r, err := runner.New(context.Background(), cfg, runner.Options{Registry: reg, Inputs: []string{in},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	sum, err := r.Run(context.Background())
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if sum.Exported["out"] != uint64(n) {
		b.Fatalf("exported %d of %d: %s", sum.Exported["out"], n, sum)
	}
	return float64(n) / elapsed.Seconds()
}

// BenchmarkEndToEndPersist measures JSON lines in -> stored -> filter ->
// sanitize -> file against the same pipeline without persistence, in the
// same run (issue target: persist >= 60% of memory).
func BenchmarkEndToEndPersist(b *testing.B) {
	in := writeInput(b, b.TempDir(), benchEvents)
	var mem, dur float64
	for range b.N {
		mem += runPipeline(b, in, false)
		dur += runPipeline(b, in, true)
	}
	b.ReportMetric(mem/float64(b.N), "memory-events/s")
	b.ReportMetric(dur/float64(b.N), "persist-events/s")
	b.ReportMetric(dur/mem, "persist/memory")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReplayToFile reads stored events back into a JSON-lines file
// (issue target: >= 300k events/s).
func BenchmarkReplayToFile(b *testing.B) {
	cfg := *NewStoreConfig()
	cfg.DataDir = b.TempDir()
	s := NewStore(settings(nil), cfg)
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	types := []string{"agent.step", "tool.invoked", "tool.completed", "agent.thought"}
	for k := 0; k < benchEvents; k += 256 {
		if _, err := s.Append(context.Background(), events(256, types...)); err != nil {
			b.Fatal(err)
		}
	}
	rd, err := NewReader(s.conn, cfg)
	if err != nil {
		b.Fatal(err)
	}
	out, err := os.Create(filepath.Join(b.TempDir(), "replay.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	b.ResetTimer()
	start := time.Now()
	total := 0
	for range b.N {
		w := bufio.NewWriterSize(out, 1<<20)
		var buf []byte
		err := rd.Read(context.Background(), Query{}, func(ev pipeline.Event) error {
			buf = append(ev.AppendJSON(buf[:0]), '\n')
			total++
			_, err := w.Write(buf)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = w.Flush()
	}
	if want := (benchEvents + 255) / 256 * 256 * b.N; total != want {
		b.Fatalf("replayed %d events, want %d", total, want)
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkScaleOut runs the stored stream through one runner held to
// GOMAXPROCS=1, then through two sharing a consumer, each held to
// GOMAXPROCS=1 (issue target: two >= 1.6x one). The nats-server runs in
// the benchmark process.
func BenchmarkScaleOut(b *testing.B) {
	bin := binary(b)
	srv := natsServer(b)
	cfg := *NewStoreConfig()
	cfg.URL = srv.ClientURL()
	const n = 1000000
	fill(b, cfg, n)
	var one, two float64
	for i := range b.N {
		for _, k := range []int{1, 2} {
			shares, elapsed := runShared(b, bin, b.TempDir(), cfg.URL, fmt.Sprintf("bench%d-%d", i, k), k, "GOMAXPROCS=1")
			rate := n / elapsed.Seconds()
			total := 0
			for _, s := range shares {
				total += s
			}
			if total != n {
				b.Fatalf("%d runners exported %d of %d", k, total, n)
			}
			if k == 1 {
				one += rate
			} else {
				two += rate
			}
		}
	}
	b.ReportMetric(one/float64(b.N), "one-events/s")
	b.ReportMetric(two/float64(b.N), "two-events/s")
	b.ReportMetric(two/one, "two/one")
	b.ReportMetric(0, "ns/op")
}
