package jetstream

import (
	"context"

	"github.com/eventpipe/eventpipe/pipeline/component"
)

// Factories returns the factories of this package: the jetstream store
// (the persist section), and the nats source and output.
func Factories() []component.Factory {
	return []component.Factory{
		component.NewStoreFactory("jetstream", NewStoreConfig,
			func(_ context.Context, set component.Settings, cfg *StoreConfig) (component.Store, error) {
				return NewStore(set, *cfg), nil
			}),
		component.NewSourceFactory("nats", NewSourceConfig,
			func(_ context.Context, set component.Settings, cfg *SourceConfig) (component.Source, error) {
				return NewSource(set, *cfg), nil
			}),
		component.NewOutputFactory("nats", NewOutputConfig,
			func(_ context.Context, set component.Settings, cfg *OutputConfig) (component.Output, error) {
				return NewOutput(set, *cfg), nil
			}),
	}
}
