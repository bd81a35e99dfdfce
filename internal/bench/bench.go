// Package bench measures eventpipe end to end, the way `eventpipe bench`
// and `make bench` report it: JSON lines in, native filter, sanitize and
// route, JSON lines out to a file; and the emit-to-export latency at a fixed
// rate with the default batching.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// Options say what to measure.
type Options struct {
	Events   int           // events for the throughput run
	Rate     int           // events per second for the latency run (0: skip)
	Duration time.Duration // length of the latency run
	Progress io.Writer     // where the progress bar goes (nil: none)
	Dir      string        // scratch directory (default: a temporary one)
	// Registry and Pipeline let a caller measure another stage set (e.g.
	// with wasm plugins); Pipeline is YAML with the stages and a single
	// output named "out".
	Registry *component.Registry
	Pipeline string
}

// Result is what was measured.
type Result struct {
	Events       int
	Bytes        int64
	Elapsed      time.Duration
	EventsPerSec float64
	MBPerSec     float64
	// AllocsPerEvent and BytesPerEvent are the heap allocations of the
	// run (every goroutine) divided by the events.
	AllocsPerEvent float64
	BytesPerEvent  float64
	// PeakHeap is the most heap in use seen during the run (sampled).
	PeakHeap    uint64
	Exported    uint64
	LatencyRate int
	P50, P99    time.Duration
	LatencyN    int
}

func (r Result) String() string {
	s := fmt.Sprintf("throughput: %d events (%.0f bytes each) in %v: %.0f events/s, %.1f MB/s in (exported %d); %.2f allocations and %.0f bytes allocated per event\n",
		r.Events, float64(r.Bytes)/float64(max(r.Events, 1)), r.Elapsed.Round(time.Millisecond), r.EventsPerSec, r.MBPerSec, r.Exported,
		r.AllocsPerEvent, r.BytesPerEvent)
	if r.LatencyN > 0 {
		s += fmt.Sprintf("latency at %d events/s (%d events): p50 %v, p99 %v\n", r.LatencyRate, r.LatencyN, r.P50, r.P99)
	}
	return s
}

// DefaultPipeline is the measured pipeline: native filter (a type pattern
// and a data condition), sanitize with the default rules, route, file out.
const DefaultPipeline = `
events:
  buffer_size: 10000
  batch_size: 512
  batch_linger: 1ms
filter:
  exclude_types: ["*.debug"]
  conditions:
    - field: data.step
      op: gte
      value: 0
sanitize:
  enabled: true
route:
  rules:
    - types: ["agent.*", "tool.*"]
      to: [out]
  default: [out]
export:
  out:
    type: file
    path: out.jsonl
dead_letter:
  path: dead.jsonl
`

// Input makes n JSON lines of 200-300 bytes, one in four with something to
// sanitize.
func Input(n int) []byte {
	var b bytes.Buffer
	types := []string{"agent.completed", "tool.invoked", "agent.thought", "workflow.step"}
	for i := 0; i < n; i++ {
		t := types[i%len(types)]
		if i%4 == 3 {
			fmt.Fprintf(&b, `{"type":%q,"source":"researcher-%d","correlation_id":"run-%d","data":{"step":%d,"error":"open /home/alice/work/../notes-%d.md: token=abc%d","retry":true}}`+"\n", t, i%8, i/100, i, i, i)
			continue
		}
		fmt.Fprintf(&b, `{"type":%q,"source":"researcher-%d","correlation_id":"run-%d","data":{"step":%d,"tokens":%d,"result":"summarised the quarterly report for the team","ok":true}}`+"\n", t, i%8, i/100, i, i*7)
	}
	return b.Bytes()
}

// countingReader reports progress as input is consumed.
type countingReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.bar != nil {
		_ = c.bar.Add(n)
	}
	return n, err
}

func setup(o *Options) (func(), error) {
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "eventpipe-bench-")
		if err != nil {
			return nil, err
		}
		o.Dir = d
		return func() { os.RemoveAll(d) }, nil
	}
	return func() {}, nil
}

func load(o Options, yaml string) (*config.Config, error) {
	path := filepath.Join(o.Dir, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	return config.Load(path, nil)
}

// Run measures throughput (and latency when Rate > 0).
func Run(ctx context.Context, o Options) (Result, error) {
	cleanup, err := setup(&o)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	if o.Pipeline == "" {
		o.Pipeline = DefaultPipeline
	}
	res, err := Throughput(ctx, o)
	if err != nil || o.Rate <= 0 {
		return res, err
	}
	lat, err := Latency(ctx, o)
	res.LatencyRate, res.P50, res.P99, res.LatencyN = lat.LatencyRate, lat.P50, lat.P99, lat.LatencyN
	return res, err
}

// Throughput runs Events events from memory through the pipeline.
func Throughput(ctx context.Context, o Options) (Result, error) {
	if o.Dir == "" {
		cleanup, err := setup(&o)
		if err != nil {
			return Result{}, err
		}
		defer cleanup()
	}
	if o.Pipeline == "" {
		o.Pipeline = DefaultPipeline
	}
	cfg, err := load(o, o.Pipeline)
	if err != nil {
		return Result{}, err
	}
	_ = os.Remove(filepath.Join(o.Dir, "out.jsonl"))
	input := Input(o.Events)
	var bar *progressbar.ProgressBar
	if o.Progress != nil {
		bar = progressbar.NewOptions64(int64(len(input)), progressbar.OptionSetWriter(o.Progress),
			progressbar.OptionSetDescription("throughput"), progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	r, err := runner.New(ctx, cfg, runner.Options{
		Registry: o.Registry, Stdin: &countingReader{r: bytes.NewReader(input), bar: bar}, Stdout: io.Discard,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Inputs: []string{"-"},
	})
	if err != nil {
		return Result{}, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	sum, err := r.Run(ctx)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{Events: o.Events, Bytes: int64(len(input)), Elapsed: elapsed, Exported: sum.Exported["out"],
		AllocsPerEvent: float64(after.Mallocs-before.Mallocs) / float64(max(o.Events, 1)),
		BytesPerEvent:  float64(after.TotalAlloc-before.TotalAlloc) / float64(max(o.Events, 1))}
	res.EventsPerSec = float64(o.Events) / elapsed.Seconds()
	res.MBPerSec = float64(len(input)) / elapsed.Seconds() / 1e6
	if res.Exported != uint64(o.Events) {
		return res, fmt.Errorf("bench: exported %d of %d events: %s", res.Exported, o.Events, sum)
	}
	return res, nil
}

// latencyExporter records, for every event, the time from its publish
// (its Time, stamped by the bus) to its export.
type latencyExporter struct {
	mu   sync.Mutex
	lats []time.Duration
}

type latencyConfig struct{}

func (*latencyConfig) Validate() error { return nil }

func (l *latencyExporter) Start(context.Context) error    { return nil }
func (l *latencyExporter) Shutdown(context.Context) error { return nil }
func (l *latencyExporter) Export(_ context.Context, evs []pipeline.Event) error {
	now := time.Now()
	l.mu.Lock()
	for i := range evs {
		l.lats = append(l.lats, now.Sub(evs[i].Time))
	}
	l.mu.Unlock()
	return nil
}

// Latency publishes Rate events per second for Duration through the
// default batching and reports export latency percentiles.
func Latency(ctx context.Context, o Options) (Result, error) {
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
	}
	lat := &latencyExporter{}
	reg := o.Registry
	if reg == nil {
		reg = runner.NewRegistry()
	}
	reg = reg.Clone()
	if err := reg.Register(component.NewOutputFactory("latency", func() *latencyConfig { return &latencyConfig{} },
		func(context.Context, component.Settings, *latencyConfig) (component.Output, error) { return lat, nil })); err != nil {
		return Result{}, err
	}
	yaml := `
sanitize:
  enabled: true
route:
  default: [out]
export:
  out:
    type: latency
dead_letter:
  path: dead.jsonl
`
	cfg, err := load(o, yaml)
	if err != nil {
		return Result{}, err
	}
	r, err := runner.New(ctx, cfg, runner.Options{Registry: reg, Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return Result{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := r.Run(runCtx); done <- err }()
	lines := bytes.Split(bytes.TrimSpace(Input(1024)), []byte("\n"))
	evs := make([]pipeline.Event, len(lines))
	for i, l := range lines {
		evs[i], _ = pipeline.Decode(l, pipeline.DecodeOptions{})
	}
	var bar *progressbar.ProgressBar
	total := int(float64(o.Rate) * o.Duration.Seconds())
	if o.Progress != nil {
		bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(o.Progress), progressbar.OptionSetDescription("latency"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	// Publish on 1 ms ticks whatever is due by then.
	tick := time.NewTicker(time.Millisecond)
	start := time.Now()
	sent := 0
	for sent < total {
		<-tick.C
		due := min(int(float64(o.Rate)*time.Since(start).Seconds()), total)
		for ; sent < due && sent < total; sent++ {
			ev := evs[sent%len(evs)]
			ev.Time = time.Time{} // stamped at publish
			if err := r.Publish(ctx, ev); err != nil {
				tick.Stop()
				stop()
				return Result{}, err
			}
		}
		if bar != nil {
			_ = bar.Set(sent)
		}
	}
	tick.Stop()
	stop()
	if err := <-done; err != nil {
		return Result{}, err
	}
	if bar != nil {
		_ = bar.Finish()
	}
	lat.mu.Lock()
	defer lat.mu.Unlock()
	sort.Slice(lat.lats, func(i, j int) bool { return lat.lats[i] < lat.lats[j] })
	n := len(lat.lats)
	if n == 0 {
		return Result{}, fmt.Errorf("bench: no events exported")
	}
	return Result{LatencyRate: o.Rate, LatencyN: n, P50: lat.lats[n/2], P99: lat.lats[n*99/100]}, nil
}
