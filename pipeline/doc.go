// Package pipeline is the part of eventpipe that an application embeds: the
// event model, type patterns, the Emitter and the Bus with its native fast
// path, and the small interfaces (Stage, Exporter, Source) through which the
// rest of eventpipe meets the core.
//
// Events are off by default. A nil or disabled emitter costs about a
// nanosecond and allocates nothing, so code can be instrumented everywhere:
//
//	if bus.Enabled() {
//		bus.Emit(ctx, pipeline.Event{Type: "agent.completed", Data: data})
//	}
//
// The package imports no wasm, NATS, HTTP-server or YAML code; an application
// that only embeds the bus pulls in none of it.
package pipeline
