package stage

import (
	"context"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// Factories returns the native stages' factories: filter, sanitize, route.
func Factories() []component.Factory {
	return []component.Factory{
		component.NewStageFactory("filter", func() *FilterConfig { return &FilterConfig{} },
			func(_ context.Context, _ component.Settings, c *FilterConfig) (component.Stage, error) {
				return NewFilter(*c)
			}),
		component.NewStageFactory("sanitize", newSanitizeConfig,
			func(_ context.Context, set component.Settings, c *SanitizeConfig) (component.Stage, error) {
				cfg := *c
				if len(cfg.HashFields) > 0 && len(cfg.HashKey) == 0 {
					key, _ := set.Getenv(cfg.HashKeyEnv)
					if key == "" {
						return nil, pipeline.FieldErrorf("hash_fields", "needs a key in the environment variable %s (hash_key_env)", cfg.HashKeyEnv)
					}
					cfg.HashKey = []byte(key)
				}
				return NewSanitize(cfg)
			}),
		component.NewStageFactory("route", func() *RouteConfig { return &RouteConfig{} },
			func(_ context.Context, set component.Settings, c *RouteConfig) (component.Stage, error) {
				return NewRouter(*c, set.Outputs)
			}),
	}
}

// newSanitizeConfig is the sanitize section's defaults: the library's
// DefaultSanitizeConfig, switched on, with the hash key in
// EVENTPIPE_HASH_KEY.
func newSanitizeConfig() *SanitizeConfig {
	c := DefaultSanitizeConfig()
	c.On = true
	c.HashKeyEnv = "EVENTPIPE_HASH_KEY"
	return &c
}

// HandOverTypePatterns returns the filter's include and exclude type
// patterns for the bus's fast path and stops matching them in Process
// (component.Prefilter); conditions still run here.
func (f *Filter) HandOverTypePatterns() (include, exclude []string) {
	f.include, f.exclude = pipeline.PatternSet{}, pipeline.PatternSet{}
	return f.types[0], f.types[1]
}
