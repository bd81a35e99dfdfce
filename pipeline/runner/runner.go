// Package runner assembles a pipeline from a config.Config and runs it.
//
// Every source, stage and output is a component (package component): the
// runner looks up its factory by type in a component.Registry, decodes its
// settings into the factory's config struct, validates it and creates it
// (graph.go); starts the graph downstream first and shuts it down upstream
// first (lifecycle.go); carries batches from the bus through the stages to
// the outputs and the dead-letter file (flow.go); swaps graphs on reload
// (reload.go); and keeps the process's counters (counters.go), the admin
// server (admin.go) and Prometheus metrics (metrics.go). No kind of
// component is special to it.
package runner

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// Options are what a Runner needs besides its configuration.
type Options struct {
	// Registry holds the component factories; nil: NewRegistry() (the
	// native sources, stages and outputs; no plugins).
	Registry *component.Registry
	Stdin    io.Reader    // for stdin sources; nil: os.Stdin
	Stdout   io.Writer    // for stdout outputs; nil: os.Stdout
	Logger   *slog.Logger // nil: slog.Default()
	// Getenv looks up the environment for components (hash keys, plugin
	// env grants); nil: os.LookupEnv.
	Getenv func(string) (string, bool)
	// Inputs are extra JSON-lines sources (file paths, "-" for stdin), as
	// given by `eventpipe run --input`.
	Inputs []string
	// Sources are more sources to run (e.g. a dead-letter replay).
	Sources []pipeline.Source
	// SkipConfigSources ignores the configuration's ingest section.
	SkipConfigSources bool
	// DefaultAdmin is the admin address used when the configuration sets
	// none (the CLI's run: 127.0.0.1:8080). Unlike a configured address,
	// one that cannot be bound only turns the admin API off, logged.
	DefaultAdmin string
	// Outputs replace the configuration's outputs of the same names (the
	// config unit tests of `eventpipe test` record what each would get):
	// the configured output is decoded and validated, not created.
	Outputs map[string]component.Output
	// NoStore ignores the configuration's persist section: events go
	// from the sources through the in-memory buffer (a replay does this,
	// so that replayed events are not stored again).
	NoStore bool
	// DrainTimeout bounds the flush at shutdown. Default 30s.
	DrainTimeout time.Duration
	// SlowAfter is how long an export may run before /health/events
	// calls its output slow. Default 5s.
	SlowAfter  time.Duration
	HTTPClient *http.Client

	scrub *scrubber // set by withDefaults: error text for people (dead-letter reasons, last_error, the log)
}

// Runner is one running pipeline: a bus and dead-letter file that live as
// long as the process, and a graph of components that a reload replaces.
type Runner struct {
	opts    Options
	log     *slog.Logger
	bus     *pipeline.Bus
	dlq     *export.DeadLetter
	sources *graph // built once: changes to ingest need a restart
	metrics *metrics
	// store, when the persist section is on, is where sources put
	// events; the stages read them back from it (persist.go).
	store   component.Store
	ids     *pipeline.IDGenerator
	seq     atomic.Uint64 // sequence numbers of events read from the store
	commits commits

	mu    sync.RWMutex // guards cfg and graph: a batch holds it for reading, a reload for writing
	cfg   *config.Config
	graph *graph

	counters
	state      atomic.Value // string: starting, running, draining, stopped
	tap        *pipeline.Bus
	tapUsers   atomic.Int32
	adminAddr  atomic.Value
	token      string  // the admin token (set before the admin server serves)
	inflight   batches // batches with the outputs, in order
	jobs       jobBufs // the buffers of the outputs' shares
	adminReady chan struct{}
	// flowReady is closed once the stages and outputs have started: the
	// bus may hand over a batch before (an event published as Run
	// begins), and it waits.
	flowReady  chan struct{}
	flowFailed chan struct{} // closed when the run failed to start: batches waiting give up
}

// New assembles a runner from cfg: every component is created (plugins
// loaded, files and addresses checked) but none is started. Every problem
// found is returned at once, as config.Errors.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Runner, error) {
	opts = opts.withDefaults()
	r := &Runner{opts: opts, log: opts.Logger, cfg: cfg, adminReady: make(chan struct{}), flowReady: make(chan struct{}), flowFailed: make(chan struct{})}
	r.counters.init()
	r.state.Store("starting")
	r.metrics = newMetrics(r)
	g, err := r.build(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	r.sources, r.graph = g.split()
	bc := cfg.Events
	bc.Filter.IncludeTypes, bc.Filter.ExcludeTypes = g.prefilter()
	bc.Handler = pipeline.BatchHandlerFunc(r.handleBufferedBatch)
	if g.store != nil {
		r.store = g.store.comp.(component.Store)
		r.ids = pipeline.NewIDGenerator()
		// Events emitted on the bus directly (an embedding program) go
		// through the buffer into the store like the sources' events.
		bc.Handler = pipeline.BatchHandlerFunc(r.storeBatch)
	}
	if r.bus, err = pipeline.NewBus(bc); err != nil {
		r.shutdown(r.sources, r.graph)
		_ = r.shutdownStore()
		return nil, err
	}
	tc := pipeline.DefaultConfig()
	tc.Enabled, tc.BufferSize, tc.Relay = true, 4096, true
	tc.Filter = pipeline.FilterConfig{EmitTimingEvents: true, EmitStateEvents: true, EmitDebugEvents: true}
	r.tap, _ = pipeline.NewBus(tc)
	return r, nil
}

func (o Options) withDefaults() Options {
	if o.Registry == nil {
		o.Registry = NewRegistry()
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Errors in the log lose their secrets and paths (scrub.go).
	o.scrub = newScrubber()
	o.Logger = slog.New(scrubHandler{next: o.Logger.Handler(), s: o.scrub})
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.SlowAfter == 0 {
		o.SlowAfter = 5 * time.Second
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	return o
}

// Validate runs every check New runs — components decoded, validated and
// created, plugins loaded and initialised with their configuration,
// addresses parsed, input files found — and then releases what was
// created without starting anything. It is `eventpipe validate`.
func Validate(ctx context.Context, cfg *config.Config, opts Options) error {
	opts = opts.withDefaults()
	r := &Runner{opts: opts, log: opts.Logger, cfg: cfg}
	r.counters.init()
	r.metrics = newMetrics(r)
	g, err := r.build(ctx, cfg, true)
	if err == nil {
		r.shutdownGraph(g)
	}
	return err
}

// config is the configuration in force.
func (r *Runner) config() *config.Config {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cfg
}

// Bus is the runner's bus (for embedding and tests).
func (r *Runner) Bus() *pipeline.Bus { return r.bus }

func (r *Runner) shutdown(gs ...*graph) {
	for _, g := range gs {
		r.shutdownGraph(g)
	}
}
