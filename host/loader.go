package host

import (
	"context"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// Loader makes plugin entries of a pipeline.yaml into stages: the
// runner.PluginLoader the command registers.
type Loader struct {
	Host *Host
}

// Stage loads a filter, transform or route plugin.
func (l Loader) Stage(p config.Plugin, kind string, env runner.Env) (pipeline.Stage, error) {
	spec := l.spec(p, kind, env)
	if kind == KindRoute {
		for _, o := range env.Config.Outputs {
			spec.Outputs = append(spec.Outputs, o.Name)
		}
	}
	pl, err := l.Host.Load(context.Background(), spec)
	if err != nil {
		return nil, err
	}
	return pl.Stage(), nil
}

// Exporter loads an export plugin, with the runner's retries around it.
func (l Loader) Exporter(p config.Plugin, env runner.Env) (pipeline.Exporter, error) {
	spec := l.spec(p, KindExport, env)
	spec.Name = env.Name
	pl, err := l.Host.Load(context.Background(), spec)
	if err != nil {
		return nil, err
	}
	return export.NewRetry(pl.Exporter(), export.RetryConfig{}), nil
}

func (l Loader) spec(p config.Plugin, kind string, env runner.Env) Spec {
	spec := Spec{
		Path: env.Config.Resolve(p.Path), SHA256: p.SHA256, Kind: kind, Config: p.Config,
		Pool: p.Pool, MaxMemory: p.MaxMemory, Timeout: p.Timeout, OnError: p.OnError,
		Capabilities: p.Capabilities, Env: p.Env, Trusted: p.Trusted, AllowedHosts: p.AllowedHosts,
	}
	for _, ap := range p.AllowedPaths {
		spec.AllowedPaths = append(spec.AllowedPaths, env.Config.Resolve(ap))
	}
	return spec
}
