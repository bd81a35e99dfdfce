package export

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/eventpipe/eventpipe/pipeline"
)

// RetryConfig is exponential backoff with jitter.
type RetryConfig struct {
	// MaxAttempts is how many times a batch is tried in all (default 5; 1
	// means no retry).
	MaxAttempts int `yaml:"max_attempts"`
	// InitialInterval is the first wait (default 100ms); each next wait is
	// Multiplier (default 2) times longer, up to MaxInterval (default 10s),
	// each randomised by ±Jitter (default 0.2).
	InitialInterval time.Duration `yaml:"initial_interval"`
	MaxInterval     time.Duration `yaml:"max_interval"`
	Multiplier      float64       `yaml:"multiplier"`
	Jitter          float64       `yaml:"jitter"`
	// MaxElapsed bounds the whole retrying of one batch (default 1m).
	MaxElapsed time.Duration `yaml:"max_elapsed"`
}

// Validate checks the configuration.
func (c *RetryConfig) Validate() error {
	if c.MaxAttempts < 0 || c.InitialInterval < 0 || c.MaxInterval < 0 || c.MaxElapsed < 0 || c.Multiplier < 0 {
		return errors.New("values must not be negative")
	}
	if c.Jitter < 0 || c.Jitter > 1 {
		return pipeline.FieldErrorf("jitter", "want 0 to 1, got %v", c.Jitter)
	}
	if c.Multiplier != 0 && c.Multiplier < 1 {
		return pipeline.FieldErrorf("multiplier", "want at least 1, got %v", c.Multiplier)
	}
	return nil
}

func (c RetryConfig) withDefaults() RetryConfig {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.InitialInterval == 0 {
		c.InitialInterval = 100 * time.Millisecond
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = 10 * time.Second
	}
	if c.Multiplier == 0 {
		c.Multiplier = 2
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	if c.MaxElapsed == 0 {
		c.MaxElapsed = time.Minute
	}
	return c
}

// Retry wraps an exporter with retries. A permanent error (pipeline.
// Permanent) is not retried; a RetryAfterError waits at least as long as
// the server asked. The final error says how many attempts were made.
type Retry struct {
	pipeline.Exporter
	cfg RetryConfig
	// OnRetry, if set, is called before each wait (for metrics and logs).
	OnRetry func(attempt int, err error, wait time.Duration)
}

// NewRetry wraps e.
func NewRetry(e pipeline.Exporter, cfg RetryConfig) *Retry {
	return &Retry{Exporter: e, cfg: cfg.withDefaults()}
}

// Export tries the batch until it succeeds, fails permanently, runs out of
// attempts or time, or ctx ends.
func (r *Retry) Export(ctx context.Context, events []pipeline.Event) error {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     r.cfg.InitialInterval,
		RandomizationFactor: r.cfg.Jitter,
		Multiplier:          r.cfg.Multiplier,
		MaxInterval:         r.cfg.MaxInterval,
		MaxElapsedTime:      r.cfg.MaxElapsed,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// batch is what the next attempt sends: events at first, then the
	// events a PartialError said were not delivered; pending holds their
	// indexes into events (nil while batch is events). given are the
	// events that failed for good on an earlier attempt.
	batch := events
	var pending, given []int
	var givenErr error
	orig := func(i int) int {
		if pending == nil {
			return i
		}
		return pending[i]
	}
	// result is err about batch, as an error about events.
	result := func(err error) error {
		if pending == nil && given == nil {
			return err
		}
		out := append([]int(nil), given...)
		for _, i := range pipeline.FailedEvents(err, len(batch)) {
			out = append(out, orig(i))
		}
		slices.Sort(out)
		return &pipeline.PartialError{Failed: out, Err: err}
	}
	for attempt := 1; ; attempt++ {
		err := r.Exporter.Export(ctx, batch)
		if err == nil {
			if given != nil {
				return &pipeline.PartialError{Failed: given, Err: givenErr}
			}
			return nil
		}
		if pipeline.IsPermanent(err) {
			return result(err)
		}
		if attempt >= r.cfg.MaxAttempts {
			return result(fmt.Errorf("gave up after %d attempts: %w", attempt, err))
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return result(fmt.Errorf("gave up after %d attempts (%v elapsed): %w", attempt, r.cfg.MaxElapsed, err))
		}
		var pe *pipeline.PartialError
		if errors.As(err, &pe) {
			// Send again only what was not delivered and may still be.
			var next []int
			for _, i := range pe.Failed {
				if slices.Contains(pe.Permanent, i) {
					given = append(given, orig(i))
					givenErr = err
				} else {
					next = append(next, orig(i))
				}
			}
			slices.Sort(given)
			pending = next
			batch = make([]pipeline.Event, len(pending))
			for k, i := range pending {
				batch[k] = events[i]
			}
		}
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.After > wait {
			wait = min(ra.After, r.cfg.MaxElapsed)
		}
		if r.OnRetry != nil {
			r.OnRetry(attempt, err, wait)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return result(fmt.Errorf("gave up after %d attempts: %w (last error: %w)", attempt, ctx.Err(), err))
		}
	}
}
