// Package runner assembles a pipeline from a config.Config — bus, stages,
// exporters, sources, dead-letter file and admin server — and runs it with
// github.com/oklog/run: ingest actors, the admin server and signal handling,
// then a drain that flushes every exporter within a deadline.
package runner

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
	"github.com/eventpipe/eventpipe/pipeline/ingest"
)

// Validator is a component config: a struct with Validate.
type Validator interface{ Validate() error }

// Env is what factories get besides their config.
type Env struct {
	Config     *config.Config
	Name       string // the output's name, for exporters
	Stdin      io.Reader
	Stdout     io.Writer
	Logger     *slog.Logger
	HTTPClient *http.Client
}

type exporterFactory struct {
	newConfig func() Validator
	create    func(Validator, Env) (pipeline.Exporter, error)
}

type sourceFactory struct {
	newConfig func() Validator
	create    func(Validator, Env) (pipeline.Source, error)
}

// PluginLoader builds a wasm stage or exporter from a plugin entry. The core
// knows nothing about wasm: the command registers the host's loader.
// kind is filter, transform, route or export.
type PluginLoader interface {
	Stage(p config.Plugin, kind string, env Env) (pipeline.Stage, error)
	Exporter(p config.Plugin, env Env) (pipeline.Exporter, error)
}

// Registry maps component kinds (the "type" of an output or source) to
// their config structs and constructors, the way the OpenTelemetry
// Collector assembles pipelines from factories.
type Registry struct {
	exporters map[string]exporterFactory
	sources   map[string]sourceFactory
	plugins   PluginLoader
}

// NewRegistry returns a registry with the built-in kinds: exporters stdout,
// file and webhook; sources stdin, file and http.
func NewRegistry() *Registry {
	r := &Registry{exporters: map[string]exporterFactory{}, sources: map[string]sourceFactory{}}
	RegisterExporter(r, "stdout", func(c *export.StdoutConfig, env Env) (pipeline.Exporter, error) {
		return export.NewStdout(*c, env.Stdout), nil
	})
	RegisterExporter(r, "file", func(c *export.FileConfig, env Env) (pipeline.Exporter, error) {
		c.Path = env.Config.Resolve(c.Path)
		return export.NewFile(*c)
	})
	RegisterExporter(r, "webhook", func(c *export.WebhookConfig, env Env) (pipeline.Exporter, error) {
		w, err := export.NewWebhook(*c, env.HTTPClient)
		if err != nil {
			return nil, err
		}
		return export.NewRetry(w, c.Retry), nil
	})
	lines := func(c *ingest.LinesConfig, env Env) (pipeline.Source, error) {
		p := c.Path
		if c.Type == "stdin" {
			p = "-"
		}
		return ingest.NewFile(env.Config.Resolve(p), env.Stdin, env.Config.Events.MaxEventSize), nil
	}
	RegisterSource(r, "stdin", lines)
	RegisterSource(r, "file", lines)
	RegisterSource(r, "http", func(c *ingest.HTTPConfig, env Env) (pipeline.Source, error) {
		return ingest.NewHTTP(*c, env.Config.Events.MaxEventSize), nil
	})
	return r
}

// RegisterExporter adds an exporter kind. T is its config struct; a field
// tagged yaml:"type" receives the kind.
func RegisterExporter[T any, PT interface {
	*T
	Validator
}](r *Registry, kind string, create func(PT, Env) (pipeline.Exporter, error)) {
	r.exporters[kind] = exporterFactory{
		newConfig: func() Validator { return PT(new(T)) },
		create:    func(v Validator, env Env) (pipeline.Exporter, error) { return create(v.(PT), env) },
	}
}

// RegisterSource adds a source kind.
func RegisterSource[T any, PT interface {
	*T
	Validator
}](r *Registry, kind string, create func(PT, Env) (pipeline.Source, error)) {
	r.sources[kind] = sourceFactory{
		newConfig: func() Validator { return PT(new(T)) },
		create:    func(v Validator, env Env) (pipeline.Source, error) { return create(v.(PT), env) },
	}
}

// SetPluginLoader enables plugin entries (filter.plugins, sanitize.plugins,
// route.plugin and outputs of type plugin).
func (r *Registry) SetPluginLoader(l PluginLoader) { r.plugins = l }

func kinds[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decodeOutput decodes and validates an output's settings.
func (r *Registry) decodeOutput(c *config.Config, o config.Output) (Validator, config.Errors) {
	path := "export." + o.Name
	if o.Type == "plugin" {
		if r.plugins == nil {
			return nil, config.Errors{errAt(c, path+".type", "plugin outputs need the wasm host, which this build does not include")}
		}
		pc := &pluginOutput{}
		errs := config.DecodeNode(c.File, o.Node, path, &pc.Plugin, "type")
		return pc, errs
	}
	f, ok := r.exporters[o.Type]
	if !ok {
		return nil, config.Errors{errAt(c, path+".type", fmt.Sprintf("unknown output type %q (want %s, plugin)", o.Type, joinKinds(kinds(r.exporters))))}
	}
	cfg := f.newConfig()
	errs := config.DecodeNode(c.File, o.Node, path, cfg)
	if len(errs) == 0 {
		if err := cfg.Validate(); err != nil {
			errs = append(errs, errAt(c, path, err.Error()))
		}
	}
	return cfg, errs
}

type pluginOutput struct{ Plugin config.Plugin }

func (p *pluginOutput) Validate() error { return nil }

func (r *Registry) decodeSource(c *config.Config, s config.Source) (Validator, config.Errors) {
	f, ok := r.sources[s.Type]
	if !ok {
		return nil, config.Errors{errAt(c, s.Path+".type", fmt.Sprintf("unknown ingest type %q (want %s)", s.Type, joinKinds(kinds(r.sources))))}
	}
	cfg := f.newConfig()
	errs := config.DecodeNode(c.File, s.Node, s.Path, cfg)
	if len(errs) == 0 {
		if err := cfg.Validate(); err != nil {
			errs = append(errs, errAt(c, s.Path, err.Error()))
		}
	}
	return cfg, errs
}

func joinKinds(ks []string) string {
	out := ""
	for i, k := range ks {
		if i > 0 {
			out += ", "
		}
		out += k
	}
	return out
}

func errAt(c *config.Config, path, msg string) config.Error {
	e := config.Error{File: c.File, Path: path, Msg: msg}
	for p := path; p != ""; {
		if pos, ok := c.Pos[p]; ok {
			e.Line, e.Col = pos.Line, pos.Col
			break
		}
		i := lastSep(p)
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return e
}

func lastSep(p string) int {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '.' || p[i] == '[' {
			return i
		}
	}
	return -1
}

// Validate checks what only the registry knows: output and source kinds and
// their settings, and plugin entries. With config.Load it makes
// `eventpipe validate`.
func (r *Registry) Validate(c *config.Config) error {
	var errs config.Errors
	for _, o := range c.Outputs {
		_, e := r.decodeOutput(c, o)
		errs = append(errs, e...)
	}
	for _, s := range c.Sources {
		_, e := r.decodeSource(c, s)
		errs = append(errs, e...)
	}
	if r.plugins == nil {
		for i := range c.Filter.Plugins {
			errs = append(errs, errAt(c, fmt.Sprintf("filter.plugins[%d]", i), "plugins need the wasm host, which this build does not include"))
		}
		for i := range c.Sanitize.Plugins {
			errs = append(errs, errAt(c, fmt.Sprintf("sanitize.plugins[%d]", i), "plugins need the wasm host, which this build does not include"))
		}
		if c.Route.Plugin != nil {
			errs = append(errs, errAt(c, "route.plugin", "plugins need the wasm host, which this build does not include"))
		}
	}
	return errs.Err()
}
