package runner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
	"github.com/eventpipe/eventpipe/pipeline/ingest"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

// NewRegistry returns a registry of the native components: sources file,
// stdin and http; stages filter, sanitize and route; outputs stdout, file
// and webhook. The command adds the wasm host's plugin factories.
func NewRegistry() *component.Registry {
	var fs []component.Factory
	fs = append(fs, ingest.Factories()...)
	fs = append(fs, stage.Factories()...)
	fs = append(fs, export.Factories()...)
	r, err := component.NewRegistry(fs...)
	if err != nil {
		panic(err) // the native types are distinct
	}
	return r
}

// node is one created component.
type node struct {
	id, name string
	class    component.Class
	comp     component.Lifecycle
}

// graph is the components of one configuration, in flow order: sources,
// stages, outputs. It starts in reverse order (each component's consumer
// runs before it) and shuts down in flow order.
type graph struct {
	store   *node // the persist section's store, if any (built with the sources)
	nodes   []node
	stages  []node    // the stage nodes, in order, for the flow
	outputs []*output // the output nodes, each with its queue

	stopExports func() // cancels the exports in flight (after the drain deadline)
}

// add appends a created component.
func (g *graph) add(n node) {
	if n.class == component.ClassStore {
		g.store = &n
		return
	}
	g.nodes = append(g.nodes, n)
	if n.class == component.ClassStage {
		g.stages = append(g.stages, n)
	}
}

// output is an output node as the flow uses it.
type output struct {
	name     string
	exporter pipeline.Exporter
	queue    QueueConfig
	encoding string  // what it writes, to share with outputs writing the same ("": nothing shared)
	w        *worker // its queue and exporting goroutine, once started
	stats    *outputStats
}

// split separates the sources (which live as long as the runner) from the
// stages and outputs (which a reload replaces). The store is in neither:
// the runner starts it first and shuts it down last (g.store).
func (g *graph) split() (sources, flow *graph) {
	sources, flow = &graph{}, &graph{outputs: g.outputs}
	for _, n := range g.nodes {
		if n.class == component.ClassSource {
			sources.add(n)
		} else {
			flow.add(n)
		}
	}
	return sources, flow
}

// prefilter takes the type patterns of the stage that hands them over to
// the bus's fast path (the native filter). Call it once per graph.
func (g *graph) prefilter() (include, exclude []string) {
	for _, n := range g.stages {
		if p, ok := n.comp.(component.Prefilter); ok {
			return p.HandOverTypePatterns()
		}
	}
	return nil, nil
}

// pending is a component being built.
type pending struct {
	spec    config.Component
	factory component.Factory
	cfg     component.Config
	retry   export.RetryConfig
	queue   QueueConfig
	comp    component.Lifecycle
	decoded bool // the settings decoded (Validate may still have failed)
	errs    config.Errors
	// createErrs are Create's.
	createErrs config.Errors
}

// build creates every component of cfg (sources only when withSources).
// Decoding and validation run first for all; then the components are
// created in parallel (a compiled wasm plugin takes tens of milliseconds to
// instantiate even from a warm cache). Every problem is returned at once;
// on error nothing created is left open.
func (r *Runner) build(ctx context.Context, cfg *config.Config, withSources bool) (*graph, error) {
	var specs []config.Component
	for _, c := range cfg.Components() {
		if c.Class == component.ClassSource && (!withSources || r.opts.SkipConfigSources) {
			continue
		}
		if c.Class == component.ClassStore && (!withSources || r.opts.NoStore) {
			continue
		}
		specs = append(specs, c)
	}
	ps := make([]*pending, 0, len(specs))
	var errs config.Errors
	for _, spec := range specs {
		p := r.decode(cfg, spec)
		errs = append(errs, p.errs...)
		if p.cfg != nil {
			ps = append(ps, p)
		}
	}
	// Create runs even where Validate found problems (never where the
	// settings did not decode): creating starts nothing, and it finds
	// what only the outside world can tell, so one pass reports every
	// problem. Errors both report are listed once (Errors.Err).
	var wg sync.WaitGroup
	for _, p := range ps {
		if !p.decoded {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o, ok := r.opts.Outputs[p.spec.Name]; ok && p.spec.Class == component.ClassOutput {
				p.comp = o
				return
			}
			comp, err := p.factory.Create(ctx, r.settings(cfg, p.spec), p.cfg)
			if err != nil {
				p.createErrs = cfg.ErrorsFor(p.spec.ID, err)
				return
			}
			p.comp = comp
		}()
	}
	wg.Wait()
	g := &graph{}
	for _, p := range ps {
		errs = append(errs, p.createErrs...)
		if p.comp == nil {
			continue
		}
		n := node{id: p.spec.ID, name: p.spec.Name, class: p.spec.Class, comp: p.comp}
		if n.class == component.ClassOutput {
			var encoding string
			if e, ok := p.comp.(interface{ EncodingFormat() string }); ok {
				encoding = e.EncodingFormat()
			}
			n.comp = r.withRetry(p.spec.Name, p.comp.(pipeline.Exporter), p.retry)
			g.outputs = append(g.outputs, &output{name: n.name, exporter: n.comp.(pipeline.Exporter), queue: p.queue, encoding: encoding, stats: r.outputStats(n.name)})
		}
		g.add(n)
	}
	if withSources {
		for _, in := range r.opts.Inputs {
			set := r.settings(cfg, config.Component{ID: "--input " + in, Name: in})
			set.Resolve = nil // relative to the working directory, as typed
			src, err := ingest.NewInput(set, in)
			if err != nil {
				errs = append(errs, config.Error{Path: "--input", Msg: fmt.Sprintf("%s: %v", in, err)})
				continue
			}
			g.add(node{id: "--input " + in, name: in, class: component.ClassSource, comp: src})
		}
		for i, s := range r.opts.Sources {
			g.add(node{id: fmt.Sprintf("source[%d]", i), class: component.ClassSource, comp: asSource(s)})
		}
	}
	if err := errs.Err(); err != nil {
		r.shutdownGraph(g)
		return nil, err
	}
	// A stage that can take its input as the previous stage left it (a
	// wasm plugin after a wasm transform) is told which stage that is.
	for i := 1; i < len(g.stages); i++ {
		if c, ok := g.stages[i].comp.(interface{ ChainAfter(pipeline.Stage) }); ok {
			c.ChainAfter(g.stages[i-1].comp.(pipeline.Stage))
		}
	}
	return g, nil
}

// decode looks up a component's factory and decodes, checks and validates
// its settings.
func (r *Runner) decode(cfg *config.Config, spec config.Component) *pending {
	p := &pending{spec: spec}
	f, err := r.opts.Registry.Lookup(spec.Class, spec.Type)
	if err != nil {
		at := spec.ID + ".type"
		if spec.Type == "plugin" {
			at = spec.ID
			err = fmt.Errorf("plugins need the wasm host, which this build does not include")
		}
		p.errs = cfg.ErrorsFor(at, err)
		return p
	}
	p.factory, p.cfg = f, f.NewConfig()
	p.errs = cfg.Decode(spec, p.cfg)
	if en, ok := p.cfg.(component.Enabler); ok && len(p.errs) == 0 && !en.Enabled() {
		// A switched-off component is not built; its other settings would
		// have no effect, which is worth saying.
		for _, k := range spec.SetKeys() {
			if k != "enabled" {
				p.errs = append(p.errs, cfg.ErrorsFor(spec.ID+"."+k, fmt.Errorf("has no effect: %s.enabled is false", spec.ID))...)
			}
		}
		p.cfg = nil
		return p
	}
	if len(p.errs) == 0 {
		p.decoded = true
		p.errs = cfg.ErrorsFor(spec.ID, p.cfg.Validate())
	}
	if spec.Class == component.ClassOutput {
		rs := spec.Key("retry")
		p.errs = append(p.errs, cfg.Decode(rs, &p.retry)...)
		p.errs = append(p.errs, cfg.ErrorsFor(rs.ID, p.retry.Validate())...)
		qs := spec.Key("queue")
		p.errs = append(p.errs, cfg.Decode(qs, &p.queue)...)
		p.errs = append(p.errs, cfg.ErrorsFor(qs.ID, p.queue.Validate())...)
	}
	return p
}

// settings are what a component gets from the process.
func (r *Runner) settings(cfg *config.Config, spec config.Component) component.Settings {
	return component.Settings{
		ID: spec.ID, Name: spec.Name, Role: spec.Role,
		Logger:       r.log.With("component", spec.ID),
		Metrics:      r.metrics.forComponent(spec.Name),
		Getenv:       r.opts.Getenv,
		Resolve:      cfg.Resolve,
		Stdin:        r.opts.Stdin,
		Stdout:       r.opts.Stdout,
		Outputs:      cfg.OutputNames(),
		MaxEventSize: cfg.Events.MaxEventSize,
		HTTPClient:   r.opts.HTTPClient,
	}
}

// withRetry wraps an output once with retries and backoff, whatever its
// type; failed attempts are logged and counted.
func (r *Runner) withRetry(name string, e pipeline.Exporter, rc export.RetryConfig) pipeline.Exporter {
	rt := export.NewRetry(e, rc)
	rt.OnRetry = func(attempt int, err error, wait time.Duration) {
		r.metrics.retries.WithLabelValues(name).Inc()
		r.log.Warn("export failed, retrying", "output", name, "attempt", attempt, "wait", wait, "err", err)
	}
	return rt
}

// source adapts a plain pipeline.Source (one given in Options) to the
// component lifecycle.
type source struct {
	pipeline.Source
	component.NoLifecycle
}

func asSource(s pipeline.Source) component.Source {
	if c, ok := s.(component.Source); ok {
		return c
	}
	return source{Source: s}
}
