// Package component is the seam every part of a pipeline meets: sources,
// stages and outputs are all built the same way, from a factory and a
// config struct, and all live the same life — Create, Start, Shutdown.
//
// It follows the OpenTelemetry Collector's model. A Factory names a
// component type once ("file", "sanitize", "wasm"), makes its config with
// every default filled in (defaults live in exactly one place: the
// component's NewConfig), and builds the component from a validated config
// and Settings. Settings carry what the component may use of the process —
// its name, a logger, a metrics handle, the environment, the standard
// streams — so no component reaches for globals.
//
// The package imports only the core: it knows nothing of YAML, wasm, NATS
// or Prometheus. The runner decodes configuration files into the structs the
// factories return and assembles the graph; the command registers the
// factories it wants (the wasm host registers its own).
package component

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Class is what a component is in the flow.
type Class uint8

const (
	ClassSource Class = iota // pushes events into the bus
	ClassStage               // works on batches: filter, transform, route
	ClassOutput              // delivers events to one named destination
	ClassStore               // keeps accepted events durably between sources and stages

	numClasses = iota
)

func (c Class) String() string {
	switch c {
	case ClassSource:
		return "source"
	case ClassStage:
		return "stage"
	case ClassOutput:
		return "output"
	case ClassStore:
		return "store"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Config is a component's configuration struct. Validate reports every
// problem it can see without the outside world (files, addresses and
// plugins are checked by Create), preferably as *pipeline.FieldError so a
// loader can point at the offending line; join several with errors.Join.
type Config interface {
	Validate() error
}

// Enabler is implemented by configs that can switch their component off
// (sanitize's enabled: false). A disabled component is not created.
type Enabler interface {
	Enabled() bool
}

// Prefilter is implemented by a stage whose type patterns can run on the
// bus's fast path instead, so that unwanted events are never queued (the
// filter stage's include_types and exclude_types). HandOverTypePatterns
// returns them and makes the stage stop applying them itself: the runner
// calls it once, when it gives them to the bus, so no event is matched
// twice.
type Prefilter interface {
	HandOverTypePatterns() (include, exclude []string)
}

// Lifecycle is what every component does besides its work. Start runs
// before the first event reaches the component (bind, open, connect);
// Shutdown after the last, within ctx's deadline, releasing everything the
// component holds. A component that was created is shut down exactly once,
// whether or not it was started.
type Lifecycle = pipeline.Component

// Source is a source component.
type Source interface {
	pipeline.Source
	Lifecycle
}

// Stage is a stage component.
type Stage interface {
	pipeline.Stage
	Lifecycle
}

// Output is an output component.
type Output = pipeline.Exporter

// Store keeps accepted events durably between the sources and the stages
// (the persist section). With a store, "accepted" means stored: a source
// is answered only after Append returned, and an event leaves the store
// only once every output it was routed to took it or it was dead-lettered.
type Store interface {
	Lifecycle
	// Append stores events (already admitted by the bus, with ids) and
	// returns once the store has acknowledged every one of them; on error
	// none may be taken as stored. duplicates counts the events the store
	// already held (the same ids, published again) and did not store twice.
	Append(ctx context.Context, events []pipeline.Event) (duplicates int, err error)
	// Consume calls h with batches of stored events, in store order, until
	// ctx ends, or, once drain is closed, until nothing is left to
	// deliver. A batch is acknowledged when h returns nil; when h fails,
	// or the process dies first, it is delivered again (to this process or
	// another sharing the store) after the store's ack wait.
	Consume(ctx context.Context, drain <-chan struct{}, h func(context.Context, []pipeline.Event) error) error
}

// PipelinedStore is a Store that keeps several batches with the outputs at
// once. ConsumePipelined calls h with batches in store order, one at a
// time; h returns once the batch is with the outputs, and the wait it
// returns, once they have handled it (or the error): the batch is
// acknowledged then, or delivered again. A bound on the batches waiting
// at once holds consumption back, so one slow output holds back the
// others only when the bound is reached.
type PipelinedStore interface {
	Store
	ConsumePipelined(ctx context.Context, drain <-chan struct{}, h func(context.Context, []pipeline.Event) (wait func() error)) error
}

// Settings is what a component gets from the process besides its config.
type Settings struct {
	// ID is where the component is defined: "export.audit",
	// "filter.plugins[0]", "ingest[1]". It names the component in errors.
	ID string
	// Name is the component's name in counters, logs and dead letters: the
	// output's name, or the stage's ("filter", "sanitize:plugins/x.wasm").
	Name string
	// Role is what the pipeline uses a plugin stage as: "filter",
	// "transform" or "route"; "export" for outputs.
	Role string
	// Logger is the component's logger, already labelled with its ID.
	Logger *slog.Logger
	// Metrics registers the component's own counters.
	Metrics Metrics
	// Getenv looks up the process environment (never os.Getenv directly).
	Getenv func(string) (string, bool)
	// Resolve makes a path from the configuration absolute (relative to the
	// configuration file's directory).
	Resolve func(string) string
	// Stdin and Stdout are the process's streams.
	Stdin  io.Reader
	Stdout io.Writer
	// Outputs are the names of the pipeline's outputs, in order (bit i of a
	// batch's route set is Outputs[i]).
	Outputs []string
	// MaxEventSize bounds one event, as the events section says.
	MaxEventSize int
	// HTTPClient, if set, is used by components that make HTTP requests
	// (tests point it at their servers).
	HTTPClient *http.Client
}

// Metrics registers counters for a component. The runner labels each with
// the component's name; counters outlive a configuration reload.
type Metrics interface {
	// Counter returns the counter eventpipe_<name>; labels are fixed
	// label values (for example {"kind": "trap"}).
	Counter(name, help string, labels map[string]string) Counter
}

// Counter is a monotonically increasing count.
type Counter interface{ Add(delta float64) }

// NopMetrics discards every count.
type NopMetrics struct{}

// Counter returns a counter that counts nothing.
func (NopMetrics) Counter(string, string, map[string]string) Counter { return nopCounter{} }

type nopCounter struct{}

func (nopCounter) Add(float64) {}

// Factory builds components of one type.
type Factory interface {
	// Type is the name a configuration uses for the component.
	Type() string
	Class() Class
	// NewConfig returns a config holding every default.
	NewConfig() Config
	// Create builds the component from its config. It checks what only
	// the outside world can tell (a file exists, an address parses, a
	// plugin loads and accepts its configuration) and does not start it.
	// The runner calls it even when Validate reported problems, so that
	// one pass finds them all: Create must refuse a config it cannot use.
	Create(ctx context.Context, set Settings, cfg Config) (Lifecycle, error)
}

type factory[C Config, T Lifecycle] struct {
	typ    string
	class  Class
	config func() C
	create func(context.Context, Settings, C) (T, error)
}

func (f factory[C, T]) Type() string      { return f.typ }
func (f factory[C, T]) Class() Class      { return f.class }
func (f factory[C, T]) NewConfig() Config { return f.config() }
func (f factory[C, T]) Create(ctx context.Context, set Settings, cfg Config) (Lifecycle, error) {
	c, ok := cfg.(C)
	if !ok {
		return nil, fmt.Errorf("%s %s: config is %T, want %T", f.class, f.typ, cfg, c)
	}
	return f.create(ctx, set, c)
}

// NewSourceFactory returns the factory of a source type.
func NewSourceFactory[C Config](typ string, config func() C, create func(context.Context, Settings, C) (Source, error)) Factory {
	return factory[C, Source]{typ, ClassSource, config, create}
}

// NewStageFactory returns the factory of a stage type.
func NewStageFactory[C Config](typ string, config func() C, create func(context.Context, Settings, C) (Stage, error)) Factory {
	return factory[C, Stage]{typ, ClassStage, config, create}
}

// NewStoreFactory returns the factory of a store type.
func NewStoreFactory[C Config](typ string, config func() C, create func(context.Context, Settings, C) (Store, error)) Factory {
	return factory[C, Store]{typ, ClassStore, config, create}
}

// NewOutputFactory returns the factory of an output type.
func NewOutputFactory[C Config](typ string, config func() C, create func(context.Context, Settings, C) (Output, error)) Factory {
	return factory[C, Output]{typ, ClassOutput, config, create}
}

// Registry holds factories by class and type: one map per class, as the
// OpenTelemetry Collector keeps its factories. No class is special.
type Registry struct {
	byClass [numClasses]map[string]Factory
}

// NewRegistry returns a registry holding factories.
func NewRegistry(factories ...Factory) (*Registry, error) {
	r := &Registry{}
	for i := range r.byClass {
		r.byClass[i] = map[string]Factory{}
	}
	return r, r.Register(factories...)
}

// Register adds factories; a type registered twice in one class is an error.
func (r *Registry) Register(factories ...Factory) error {
	var errs []error
	for _, f := range factories {
		m := r.byClass[f.Class()]
		if _, dup := m[f.Type()]; dup {
			errs = append(errs, fmt.Errorf("component: %s type %q registered twice", f.Class(), f.Type()))
			continue
		}
		m[f.Type()] = f
	}
	return errors.Join(errs...)
}

// Lookup returns the factory of a type, or an error listing the known ones.
func (r *Registry) Lookup(c Class, typ string) (Factory, error) {
	if f, ok := r.byClass[c][typ]; ok {
		return f, nil
	}
	known := r.Types(c)
	if len(known) == 0 {
		known = []string{"none"}
	}
	return nil, fmt.Errorf("unknown %s type %q (known: %s)", c, typ, strings.Join(known, ", "))
}

// Types lists the registered types of a class, sorted.
func (r *Registry) Types(c Class) []string {
	out := make([]string, 0, len(r.byClass[c]))
	for t := range r.byClass[c] {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// NoLifecycle gives a component that holds nothing a Start and Shutdown
// that do nothing. Embed it.
type NoLifecycle struct{}

// Start does nothing.
func (NoLifecycle) Start(context.Context) error { return nil }

// Shutdown does nothing.
func (NoLifecycle) Shutdown(context.Context) error { return nil }

// Clone returns a copy of the registry, to add factories to without
// changing r.
func (r *Registry) Clone() *Registry {
	c, _ := NewRegistry()
	for i, m := range r.byClass {
		for k, f := range m {
			c.byClass[i][k] = f
		}
	}
	return c
}
