package host

import (
	"context"

	"github.com/eventpipe/eventpipe/pipeline/component"
)

// Factories returns the plugin factories: type "plugin" as a stage (its
// role, filter, transform or route, comes from where the entry stands in
// pipeline.yaml) and as an output. A plugin is loaded, checked and
// initialised with its configuration by Create, so `eventpipe validate`
// finds what `run` would refuse; Shutdown closes its runtime.
func (h *Host) Factories() []component.Factory {
	return []component.Factory{
		component.NewStageFactory("plugin", NewPluginConfig,
			func(ctx context.Context, set component.Settings, c *PluginConfig) (component.Stage, error) {
				spec := h.spec(set, c)
				if spec.Kind == KindRoute {
					spec.Outputs = set.Outputs
				}
				p, err := h.Load(ctx, spec)
				if err != nil {
					return nil, err
				}
				return p.Stage(), nil
			}),
		component.NewOutputFactory("plugin", NewPluginConfig,
			func(ctx context.Context, set component.Settings, c *PluginConfig) (component.Output, error) {
				spec := h.spec(set, c)
				spec.Kind, spec.Name = KindExport, set.Name
				p, err := h.Load(ctx, spec)
				if err != nil {
					return nil, err
				}
				return p.Exporter(), nil
			}),
	}
}

// spec is the Spec of a plugin entry: paths resolved against the
// configuration file, the environment and logger the process gives.
func (h *Host) spec(set component.Settings, c *PluginConfig) Spec {
	spec := Spec{PluginConfig: *c, Kind: set.Role, Getenv: set.Getenv, Logger: set.Logger, MaxEventSize: set.MaxEventSize}
	if set.Resolve != nil {
		spec.Path = set.Resolve(c.Path)
		spec.AllowedPaths = make([]string, len(c.AllowedPaths))
		for i, ap := range c.AllowedPaths {
			spec.AllowedPaths[i] = set.Resolve(ap)
		}
	}
	return spec
}
