package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/run"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
	"github.com/eventpipe/eventpipe/pipeline/ingest"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

// Options are what a Runner needs besides its configuration.
type Options struct {
	Registry *Registry    // nil: NewRegistry()
	Stdin    io.Reader    // for stdin sources; nil: os.Stdin
	Stdout   io.Writer    // for stdout outputs; nil: os.Stdout
	Logger   *slog.Logger // nil: slog.Default()
	// Inputs are extra JSON-lines sources (file paths, "-" for stdin), as
	// given by `eventpipe run --input`.
	Inputs []string
	// Sources are more sources to run (e.g. a dead-letter replay).
	Sources []pipeline.Source
	// SkipConfigSources ignores the configuration's ingest section.
	SkipConfigSources bool
	// DrainTimeout bounds the flush at shutdown. Default 30s.
	DrainTimeout time.Duration
	HTTPClient   *http.Client
}

// namedStage is a stage with the name used in counters and dead letters.
type namedStage struct {
	name  string
	stage pipeline.Stage
}

type output struct {
	name     string
	exporter pipeline.Exporter
	buf      []pipeline.Event
	idx      []int
	stats    *outputStats
}

type outputStats struct {
	exported  atomic.Uint64
	failed    atomic.Uint64 // events dead-lettered after export failure
	batches   atomic.Uint64
	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
	lastOK    time.Time
}

// flow is the part of a pipeline that a reload replaces: stages and
// outputs.
type flow struct {
	stages  []namedStage
	outputs []*output
}

// Runner is one assembled pipeline.
type Runner struct {
	opts    Options
	log     *slog.Logger
	bus     *pipeline.Bus
	dlq     *export.DeadLetter
	sources []pipeline.Source
	metrics *metrics

	mu   sync.RWMutex // guards cfg and flow: a batch holds it for reading, a reload for writing
	cfg  *config.Config
	flow *flow

	state    atomic.Value // string: starting, running, draining, stopped
	tap      *pipeline.Bus
	tapUsers atomic.Int32

	rejected    atomic.Uint64
	deadLetters atomic.Uint64
	dlqErrors   atomic.Uint64
	drops       sync.Map // "stage: reason" -> *atomic.Uint64
	adminAddr   atomic.Value
	adminReady  chan struct{}
}

// New assembles a runner from cfg. Every problem found is returned at once.
func New(cfg *config.Config, opts Options) (*Runner, error) {
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if err := opts.Registry.Validate(cfg); err != nil {
		return nil, err
	}
	r := &Runner{opts: opts, log: opts.Logger, cfg: cfg, adminReady: make(chan struct{})}
	r.state.Store("starting")
	r.metrics = newMetrics(r)
	fl, err := r.buildFlow(cfg)
	if err != nil {
		return nil, err
	}
	r.flow = fl
	env := r.env(cfg, "")
	for _, s := range cfg.Sources {
		if opts.SkipConfigSources {
			break
		}
		v, errs := opts.Registry.decodeSource(cfg, s)
		if len(errs) > 0 {
			return nil, errs
		}
		src, err := opts.Registry.sources[s.Type].create(v, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Path, err)
		}
		r.sources = append(r.sources, src)
	}
	for _, in := range opts.Inputs {
		r.sources = append(r.sources, ingest.NewFile(in, opts.Stdin, cfg.Events.MaxEventSize))
	}
	r.sources = append(r.sources, opts.Sources...)
	bc := cfg.BusConfig()
	bc.Handler = pipeline.BatchHandlerFunc(r.handleBatch)
	if r.bus, err = pipeline.NewBus(bc); err != nil {
		return nil, err
	}
	tc := pipeline.DefaultConfig()
	tc.Enabled, tc.BufferSize = true, 4096
	tc.Filter = pipeline.FilterConfig{EmitTimingEvents: true, EmitStateEvents: true, EmitDebugEvents: true}
	r.tap, _ = pipeline.NewBus(tc)
	return r, nil
}

func (r *Runner) env(cfg *config.Config, name string) Env {
	return Env{Config: cfg, Name: name, Stdin: r.opts.Stdin, Stdout: r.opts.Stdout, Logger: r.log, HTTPClient: r.opts.HTTPClient}
}

// pluginJob is one plugin entry to load. Plugins load in parallel: a
// compiled Go plugin takes tens of milliseconds to validate and start even
// from a warm cache, and a pipeline may have several.
type pluginJob struct {
	path     string // where it is in the configuration
	plugin   config.Plugin
	kind     string // filter, transform, route, or "" for an export plugin
	env      Env
	stage    pipeline.Stage
	exporter pipeline.Exporter
	err      error
}

func (r *Runner) loadPlugins(cfg *config.Config) (map[string]*pluginJob, error) {
	reg := r.opts.Registry
	jobs := map[string]*pluginJob{}
	add := func(path string, p config.Plugin, kind, name string) {
		jobs[path] = &pluginJob{path: path, plugin: p, kind: kind, env: r.env(cfg, name)}
	}
	for i, p := range cfg.Filter.Plugins {
		path := fmt.Sprintf("filter.plugins[%d]", i)
		add(path, p, "filter", path)
	}
	for i, p := range cfg.Sanitize.Plugins {
		path := fmt.Sprintf("sanitize.plugins[%d]", i)
		add(path, p, "transform", path)
	}
	if cfg.Route.Plugin != nil {
		add("route.plugin", *cfg.Route.Plugin, "route", "route.plugin")
	}
	for _, o := range cfg.Outputs {
		if o.Type != "plugin" {
			continue
		}
		v, errs := reg.decodeOutput(cfg, o)
		if len(errs) > 0 {
			return nil, errs
		}
		add("export."+o.Name, v.(*pluginOutput).Plugin, "", o.Name)
	}
	if len(jobs) == 0 {
		return jobs, nil
	}
	if reg.plugins == nil {
		return nil, errors.New("plugins need the wasm host, which this build does not include")
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if j.kind == "" {
				j.exporter, j.err = reg.plugins.Exporter(j.plugin, j.env)
			} else {
				j.stage, j.err = reg.plugins.Stage(j.plugin, j.kind, j.env)
			}
		}()
	}
	wg.Wait()
	var errs []error
	for _, path := range sortedMapKeys(jobs) {
		if err := jobs[path].err; err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	return jobs, errors.Join(errs...)
}

// buildFlow makes the stages and outputs of cfg.
func (r *Runner) buildFlow(cfg *config.Config) (*flow, error) {
	reg := r.opts.Registry
	fl := &flow{}
	plugins, err := r.loadPlugins(cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.Filter.Conditions) > 0 {
		conds := make([]stage.Condition, len(cfg.Filter.Conditions))
		for i, c := range cfg.Filter.Conditions {
			conds[i] = stage.Condition{Field: c.Field, Op: c.Op, Value: c.Value}
		}
		f, err := stage.NewFilter(stage.FilterConfig{Conditions: conds})
		if err != nil {
			return nil, err
		}
		fl.stages = append(fl.stages, namedStage{"filter", f})
	}
	for i, p := range cfg.Filter.Plugins {
		fl.stages = append(fl.stages, namedStage{"filter:" + p.Path, plugins[fmt.Sprintf("filter.plugins[%d]", i)].stage})
	}
	if cfg.Sanitize.Enabled {
		sc := stage.SanitizeConfig{
			Paths: cfg.Sanitize.Paths, Secrets: cfg.Sanitize.Secrets, ExtraPatterns: cfg.Sanitize.ExtraPatterns,
			Replacement: cfg.Sanitize.Replacement, DenyFields: cfg.Sanitize.DenyFields,
			AllowFields: cfg.Sanitize.AllowFields, HashFields: cfg.Sanitize.HashFields,
		}
		if len(sc.HashFields) > 0 {
			key := os.Getenv(cfg.Sanitize.HashKeyEnv)
			if key == "" {
				return nil, fmt.Errorf("sanitize.hash_fields needs a key in the environment variable %s", cfg.Sanitize.HashKeyEnv)
			}
			sc.HashKey = []byte(key)
		}
		s, err := stage.NewSanitize(sc)
		if err != nil {
			return nil, err
		}
		fl.stages = append(fl.stages, namedStage{"sanitize", s})
	}
	for i, p := range cfg.Sanitize.Plugins {
		fl.stages = append(fl.stages, namedStage{"sanitize:" + p.Path, plugins[fmt.Sprintf("sanitize.plugins[%d]", i)].stage})
	}
	if cfg.Route.Plugin != nil {
		fl.stages = append(fl.stages, namedStage{"route:" + cfg.Route.Plugin.Path, plugins["route.plugin"].stage})
	} else {
		rules := make([]stage.RouteRule, len(cfg.Route.Rules))
		for i, rr := range cfg.Route.Rules {
			rules[i] = stage.RouteRule{Types: rr.Types, Continue: rr.Continue}
			for _, to := range rr.To {
				rules[i].To = append(rules[i].To, cfg.OutputIndex(to))
			}
		}
		var def []int
		for _, d := range cfg.Route.Default {
			def = append(def, cfg.OutputIndex(d))
		}
		rt, err := stage.NewRouter(rules, def)
		if err != nil {
			return nil, err
		}
		fl.stages = append(fl.stages, namedStage{"route", rt})
	}
	for _, o := range cfg.Outputs {
		var e pipeline.Exporter
		if j, ok := plugins["export."+o.Name]; ok {
			e = j.exporter // loaded with the other plugins
		} else {
			v, errs := reg.decodeOutput(cfg, o)
			if len(errs) > 0 {
				return nil, errs
			}
			if e, err = reg.exporters[o.Type].create(v, r.env(cfg, o.Name)); err != nil {
				return nil, fmt.Errorf("export.%s: %w", o.Name, err)
			}
		}
		st := &outputStats{}
		if rt, ok := e.(*export.Retry); ok {
			name := o.Name
			rt.OnRetry = func(attempt int, err error, wait time.Duration) {
				r.metrics.retries.WithLabelValues(name).Inc()
				r.log.Warn("export failed, retrying", "output", name, "attempt", attempt, "wait", wait, "err", err)
			}
		}
		fl.outputs = append(fl.outputs, &output{name: o.Name, exporter: e, stats: st})
	}
	return fl, nil
}

func (r *Runner) countDrop(stageName, reason string) {
	key := stageName + ": " + reason
	v, _ := r.drops.LoadOrStore(key, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
	r.metrics.dropped.WithLabelValues(stageName).Inc()
}

// handleBatch runs the stages and exporters on one batch. It returns when
// every event has been exported, dropped on purpose or dead-lettered.
func (r *Runner) handleBatch(ctx context.Context, b *pipeline.Batch) error {
	start := time.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	fl := r.flow
	for _, s := range fl.stages {
		if err := s.stage.Process(ctx, b); err != nil {
			// A stage that fails as a whole: its events go to the dead
			// letter rather than on unprocessed.
			for i := range b.Events {
				if b.Verdicts[i] == pipeline.Keep {
					b.Mark(i, pipeline.DeadLetter, s.name, "stage failed: "+err.Error())
				}
			}
		}
	}
	var dead []export.DeadLetterRecord
	for i := range b.Events {
		switch b.Verdicts[i] {
		case pipeline.Drop:
			r.countDrop(b.Stages[i], b.Reasons[i])
		case pipeline.DeadLetter:
			dead = append(dead, export.EventRecord(&b.Events[i], b.Stages[i], "", b.Reasons[i]))
		}
	}
	// Export: every output gets the kept events routed to it.
	var active []*output
	for oi, o := range fl.outputs {
		o.buf, o.idx = o.buf[:0], o.idx[:0]
		bit := uint64(1) << uint(oi)
		for i := range b.Events {
			if b.Verdicts[i] == pipeline.Keep && b.Routes[i]&bit != 0 {
				o.buf = append(o.buf, b.Events[i])
				o.idx = append(o.idx, i)
			}
		}
		if len(o.buf) > 0 {
			active = append(active, o)
		}
	}
	errs := make([]error, len(active))
	if len(active) == 1 {
		errs[0] = active[0].exporter.Export(ctx, active[0].buf)
	} else if len(active) > 1 {
		var wg sync.WaitGroup
		for k, o := range active {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[k] = o.exporter.Export(ctx, o.buf)
			}()
		}
		wg.Wait()
	}
	for k, o := range active {
		o.stats.batches.Add(1)
		if errs[k] == nil {
			o.stats.exported.Add(uint64(len(o.buf)))
			r.metrics.exported.WithLabelValues(o.name).Add(float64(len(o.buf)))
			o.stats.mu.Lock()
			o.stats.lastOK = time.Now()
			o.stats.mu.Unlock()
			continue
		}
		o.stats.failed.Add(uint64(len(o.buf)))
		r.metrics.exportFailures.WithLabelValues(o.name).Add(float64(len(o.buf)))
		o.stats.mu.Lock()
		o.stats.lastErr, o.stats.lastErrAt = errs[k].Error(), time.Now()
		o.stats.mu.Unlock()
		r.log.Error("export failed; events go to the dead letter", "output", o.name, "events", len(o.buf), "err", errs[k])
		for _, i := range o.idx {
			dead = append(dead, export.EventRecord(&b.Events[i], "export", o.name, errs[k].Error()))
		}
	}
	r.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	// Live tails see what passed the stages, once it has been exported.
	if r.tapUsers.Load() > 0 {
		for i := range b.Events {
			if b.Verdicts[i] == pipeline.Keep {
				_ = r.tap.Emit(ctx, b.Events[i])
			}
		}
	}
	return r.deadLetter(dead)
}

func (r *Runner) deadLetter(recs []export.DeadLetterRecord) error {
	if len(recs) == 0 {
		return nil
	}
	for _, rec := range recs {
		r.metrics.deadLettered.WithLabelValues(rec.Stage).Inc()
	}
	r.deadLetters.Add(uint64(len(recs)))
	if err := r.dlq.Write(recs...); err != nil {
		r.dlqErrors.Add(uint64(len(recs)))
		r.log.Error("dead letter write failed: events lost", "events", len(recs), "err", err)
		return err
	}
	return nil
}

// Publish and Reject make the runner the sources' pipeline.Publisher.
func (r *Runner) Publish(ctx context.Context, ev pipeline.Event) error {
	err := r.bus.Publish(ctx, ev)
	if err == nil {
		r.metrics.ingested.Inc()
	}
	return err
}

// Reject records input that is not an event.
func (r *Runner) Reject(_ context.Context, rj pipeline.Rejected) {
	r.rejected.Add(1)
	r.metrics.rejected.WithLabelValues(rj.Source).Inc()
	_ = r.deadLetter([]export.DeadLetterRecord{{
		Time: rj.Time, Reason: rj.Reason, Stage: "ingest", Source: rj.Source, Offset: rj.Offset, Raw: string(rj.Raw),
	}})
}

// config is the configuration in force.
func (r *Runner) config() *config.Config {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cfg
}

// Bus is the runner's bus (for embedding and tests).
func (r *Runner) Bus() *pipeline.Bus { return r.bus }

// Run runs the pipeline until ctx ends or, when every source is finite,
// until they have all reached their end; then it drains: stops ingest,
// flushes the buffer through the stages and every exporter within the drain
// timeout, and returns the summary.
func (r *Runner) Run(ctx context.Context) (Summary, error) {
	cfg := r.config()
	mode, _ := config.ParseMode(cfg.DeadLetter.Mode)
	dlq, err := export.OpenDeadLetter(cfg.Resolve(cfg.DeadLetter.Path), mode)
	if err != nil {
		return Summary{}, err
	}
	r.dlq = dlq
	defer dlq.Close()
	started, err := r.startOutputs(ctx, r.flow)
	if err != nil {
		r.shutdownOutputs(started)
		return Summary{}, err
	}
	r.state.Store("running")
	r.log.Info("pipeline running", "sources", len(r.sources), "stages", len(r.flow.stages), "outputs", len(r.flow.outputs), "dead_letter", dlq.Path())
	var g run.Group
	srcCtx, srcCancel := context.WithCancel(context.Background())
	g.Add(func() error { return r.runSources(ctx, srcCtx) }, func(error) { srcCancel() })
	if cfg.Admin.Listen != "" {
		srv, ln, err := r.adminServer(cfg.Admin.Listen)
		if err != nil {
			srcCancel()
			r.shutdownOutputs(r.flow.outputs)
			return Summary{}, err
		}
		g.Add(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("admin: %w", err)
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	} else {
		close(r.adminReady)
	}
	runErr := g.Run()
	srcCancel()

	r.state.Store("draining")
	dctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
	defer cancel()
	drainErr := r.bus.Close(dctx)
	_ = r.tap.Close(dctx)
	r.mu.Lock()
	fl := r.flow
	r.mu.Unlock()
	shutErr := r.shutdownOutputs(fl.outputs)
	r.state.Store("stopped")
	sum := r.Summary()
	return sum, errors.Join(runErr, drainErr, shutErr)
}

func (r *Runner) startOutputs(ctx context.Context, fl *flow) ([]*output, error) {
	var started []*output
	for _, o := range fl.outputs {
		if err := o.exporter.Start(ctx); err != nil {
			return started, fmt.Errorf("export.%s: %w", o.name, err)
		}
		started = append(started, o)
	}
	return started, nil
}

func (r *Runner) shutdownOutputs(outs []*output) error {
	var errs []error
	for _, o := range outs {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
		if err := o.exporter.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("export.%s: shutdown: %w", o.name, err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

// runSources runs every source. It returns when ctx ends; or, if all
// sources are finite, when all have finished; a source's error is logged
// and ends the run only when no other source remains.
func (r *Runner) runSources(ctx, srcCtx context.Context) error {
	srcCtx, cancel := context.WithCancel(srcCtx)
	defer cancel()
	finite := len(r.sources) > 0
	for _, s := range r.sources {
		finite = finite && s.Finite()
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(r.sources))
	for _, s := range r.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(srcCtx, r); err != nil {
				r.log.Error("ingest failed", "err", err)
				errc <- err
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-ctx.Done():
		cancel()
		<-done
		return nil
	case <-srcCtx.Done():
		<-done
		return nil
	case <-done:
		if !finite {
			// Only long-running sources failed; wait for a stop.
			select {
			case <-ctx.Done():
			case <-srcCtx.Done():
			}
		}
		close(errc)
		var errs []error
		for err := range errc {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
}

// Summary is the one-line account printed at the end of a run.
type Summary struct {
	Accepted     uint64            `json:"accepted"`
	Exported     map[string]uint64 `json:"exported"`
	Dropped      map[string]uint64 `json:"dropped"`
	DeadLettered uint64            `json:"dead_lettered"`
	Rejected     uint64            `json:"rejected"`
	Lost         uint64            `json:"lost"` // dead-letter writes that failed
}

// Summary reports the counters now.
func (r *Runner) Summary() Summary {
	bs := r.bus.Stats()
	s := Summary{
		Accepted: bs.Published, Exported: map[string]uint64{}, Dropped: map[string]uint64{},
		DeadLettered: r.deadLetters.Load(), Rejected: r.rejected.Load(), Lost: r.dlqErrors.Load(),
	}
	r.mu.RLock()
	for _, o := range r.flow.outputs {
		s.Exported[o.name] = o.stats.exported.Load()
	}
	r.mu.RUnlock()
	r.drops.Range(func(k, v any) bool {
		s.Dropped[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	if bs.Filtered > 0 {
		s.Dropped["filter: type"] = bs.Filtered
	}
	if bs.RateLimited > 0 {
		s.Dropped["rate limit"] = bs.RateLimited
	}
	if n := bs.Dropped.Total(); n > 0 {
		s.Dropped["buffer overflow"] = n
	}
	if bs.Disabled > 0 {
		s.Dropped["events disabled"] = bs.Disabled
	}
	return s
}

func (s Summary) String() string {
	var exp []string
	var total uint64
	for _, k := range sortedMapKeys(s.Exported) {
		exp = append(exp, fmt.Sprintf("%s=%d", k, s.Exported[k]))
		total += s.Exported[k]
	}
	var drops []string
	var dropped uint64
	for _, k := range sortedMapKeys(s.Dropped) {
		drops = append(drops, fmt.Sprintf("%s=%d", k, s.Dropped[k]))
		dropped += s.Dropped[k]
	}
	line := fmt.Sprintf("eventpipe: accepted %d, exported %d (%s), dropped %d", s.Accepted, total, strings.Join(exp, " "), dropped)
	if len(drops) > 0 {
		line += " (" + strings.Join(drops, ", ") + ")"
	}
	line += fmt.Sprintf(", dead-lettered %d, rejected input %d", s.DeadLettered, s.Rejected)
	if s.Lost > 0 {
		line += fmt.Sprintf(", LOST %d (dead-letter write failed)", s.Lost)
	}
	return line
}

// Reload replaces the stages and outputs with those of cfg without losing
// queued events: the new outputs start first, the swap waits for the batch
// in flight, then the old outputs flush and shut down. A config that does
// not validate or whose outputs fail to start is refused and the runner
// keeps the old one. Changes to ingest, admin and the events section (other
// than enabled) need a restart; they are reported in the log.
func (r *Runner) Reload(ctx context.Context, cfg *config.Config) error {
	if err := r.opts.Registry.Validate(cfg); err != nil {
		return err
	}
	fl, err := r.buildFlow(cfg)
	if err != nil {
		return err
	}
	started, err := r.startOutputs(ctx, fl)
	if err != nil {
		r.shutdownOutputs(started)
		return err
	}
	r.mu.Lock()
	old, oldCfg := r.flow, r.cfg
	r.flow, r.cfg = fl, cfg
	r.mu.Unlock()
	r.bus.SetEnabled(cfg.Events.Enabled)
	if oldCfg.Events != cfg.Events {
		e := cfg.Events
		e.Enabled = oldCfg.Events.Enabled
		if e != oldCfg.Events {
			r.log.Warn("reload: changes to events.* other than enabled take effect after a restart")
		}
	}
	if len(oldCfg.Ingest) != len(cfg.Ingest) || oldCfg.Admin != cfg.Admin {
		r.log.Warn("reload: changes to ingest and admin take effect after a restart")
	}
	return r.shutdownOutputs(old.outputs)
}
