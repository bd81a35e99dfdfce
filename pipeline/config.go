package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a Bus. Start from DefaultConfig: its zero value turns
// timing events off. Zero numeric fields take their defaults.
type Config struct {
	// Enabled turns events on. Off by default: then Emit costs about a
	// nanosecond and the bus holds no buffer and runs no goroutine.
	Enabled bool `yaml:"enabled"`
	// BufferSize bounds the events queued between Emit and the stages.
	// Default 10000.
	BufferSize int `yaml:"buffer_size"`
	// BufferBytes bounds the memory the queued events hold (Event.Size
	// summed), so that a burst of large events cannot exhaust memory while
	// an output hangs. An event that would pass it waits or is dropped
	// under the overflow policy, exactly as when BufferSize is reached.
	// Default 64 MiB; negative means no byte bound.
	BufferBytes int64 `yaml:"buffer_bytes"`
	// Overflow is what Emit does when the buffer is full. Default DropOldest.
	// Publish (used by ingest) always waits for room instead.
	Overflow Overflow `yaml:"overflow"`
	// BlockTimeout bounds a wait under the Block policy. Default 1s.
	BlockTimeout time.Duration `yaml:"block_timeout"`
	// MaxEventsPerSecond limits the rate of accepted events; 0 means no limit.
	MaxEventsPerSecond float64 `yaml:"max_events_per_second"`
	// Burst is how many events may pass at once above the rate. Default:
	// MaxEventsPerSecond (at least 1).
	Burst int `yaml:"burst"`
	// RateLimitPolicy is what happens to an event over the rate.
	RateLimitPolicy RateLimitPolicy `yaml:"rate_limit_policy"`
	// Filter holds the category switches and include/exclude patterns.
	Filter FilterConfig `yaml:",inline"`
	// MaxEventSize limits an event's payload (type, ids, tags, data) in
	// bytes; 0 means DefaultMaxEventSize, negative means no limit.
	MaxEventSize int `yaml:"max_event_size"`
	// BatchSize is the largest batch handed to the Handler. Default 512.
	BatchSize int `yaml:"batch_size"`
	// BatchLinger is how long the bus waits for a batch to fill once it
	// holds one event. Default 0: a batch is what is queued when the
	// dispatcher looks, so latency stays minimal at low rates.
	BatchLinger time.Duration `yaml:"batch_linger"`
	// Handler receives every batch (the pipeline's stages and exporters).
	// Nil: events go to subscribers only.
	Handler BatchHandler `yaml:"-"`
	// Sanitizer, if set, rewrites every event before the subscribers and
	// the Handler see it. Give it the sanitizer the pipeline's sanitize
	// stage runs — stage.NewSanitize(stage.DefaultSanitizeConfig()), from
	// package pipeline/stage — and an embedding program is private by
	// default too: secrets, user data and home directories out of event
	// data (Track's error text included), source and subject. An event it
	// cannot sanitize (data that is not JSON) is never passed on raw:
	// subscribers do not get it, the Handler gets it marked DeadLetter
	// with the reason, and Stats counts it as Unsanitized. It is called
	// from the bus's one dispatching goroutine, so it need not be safe
	// for concurrent use.
	Sanitizer Sanitizer `yaml:"-"`
	// StatsInterval is how often a runner (eventpipe run) emits an
	// event.stats event through the pipeline, like any event: throughput,
	// queue depth and bytes held, drops by reason, error rate, per output
	// exported and failed. 0: never. The bus itself does not use it.
	StatsInterval time.Duration `yaml:"stats_interval"`
	// Relay makes a bus that passes on events of another: they keep the
	// sequence they carry instead of getting this bus's (a runner's live
	// tail shows the numbers that were exported).
	Relay bool `yaml:"-"`
}

// DefaultBufferBytes is the default bound on the bytes a bus buffer holds.
const DefaultBufferBytes = 64 << 20

// DefaultConfig returns the defaults of the original [events] section:
// disabled, buffer 10000, timing events on, state and debug events off.
func DefaultConfig() Config {
	return Config{
		BufferSize:   10000,
		BufferBytes:  DefaultBufferBytes,
		Overflow:     DropOldest,
		BlockTimeout: time.Second,
		BatchSize:    512,
		MaxEventSize: DefaultMaxEventSize,
		Filter:       FilterConfig{EmitTimingEvents: true},
	}
}

func (c Config) withDefaults() Config {
	if c.BufferSize == 0 {
		c.BufferSize = 10000
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = DefaultBufferBytes
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = time.Second
	}
	if c.BatchSize == 0 {
		c.BatchSize = 512
	}
	if c.MaxEventSize == 0 {
		c.MaxEventSize = DefaultMaxEventSize
	}
	if c.MaxEventsPerSecond > 0 && c.Burst == 0 {
		c.Burst = max(1, int(c.MaxEventsPerSecond))
	}
	return c
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.BufferSize < 0 {
		errs = append(errs, FieldErrorf("buffer_size", "must be positive, got %d", c.BufferSize))
	}
	if c.Overflow > Reject {
		errs = append(errs, FieldErrorf("overflow", "unknown policy %d", c.Overflow))
	}
	if c.BlockTimeout < 0 {
		errs = append(errs, FieldErrorf("block_timeout", "must not be negative"))
	}
	if c.MaxEventsPerSecond < 0 {
		errs = append(errs, FieldErrorf("max_events_per_second", "must not be negative, got %v", c.MaxEventsPerSecond))
	}
	if c.Burst < 0 {
		errs = append(errs, FieldErrorf("burst", "must not be negative, got %d", c.Burst))
	}
	if c.RateLimitPolicy > RateWait {
		errs = append(errs, FieldErrorf("rate_limit_policy", "unknown policy %d", c.RateLimitPolicy))
	}
	if c.BatchSize < 0 {
		errs = append(errs, FieldErrorf("batch_size", "must be positive, got %d", c.BatchSize))
	}
	if c.BatchLinger < 0 {
		errs = append(errs, FieldErrorf("batch_linger", "must not be negative"))
	}
	if _, err := NewFilter(c.Filter); err != nil {
		errs = append(errs, fmt.Errorf("filter: %w", err))
	}
	return errors.Join(errs...)
}
