package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Emitter is what instrumented components hold. A nil Emitter, or one whose
// Enabled reports false, means events are off: check Enabled before building
// an event and the call costs about a nanosecond.
type Emitter interface {
	Enabled() bool
	Emit(ctx context.Context, ev Event) error
}

// Bus is the in-process event bus: a fast-path filter, a rate limit and a
// bounded buffer in front of one dispatcher goroutine that hands batches to
// the Handler and to pattern subscriptions.
//
// A Bus is safe for concurrent use. The zero Bus is not usable: call NewBus.
// A nil *Bus is a valid, disabled Emitter.
type Bus struct {
	enabled atomic.Bool
	closing atomic.Bool

	// Set before enabled first becomes true; read-only afterwards.
	q       *queue
	cfg     Config
	filter  atomic.Pointer[Filter]
	limiter *rate.Limiter
	ids     *IDGenerator
	clock   clock

	filtered    atomic.Uint64
	rateLimited atomic.Uint64
	invalid     atomic.Uint64
	disabled    atomic.Uint64 // published while disabled
	delivered   atomic.Uint64
	handlerErrs atomic.Uint64
	unsanitized atomic.Uint64

	mu      sync.Mutex // guards start and subs changes
	started bool
	subs    atomic.Pointer[[]*Subscription]
	done    chan struct{} // closed when the dispatcher has exited
	runCtx  context.Context
	cancel  context.CancelFunc
}

// NewBus returns a bus configured by cfg (see DefaultConfig). If
// cfg.Enabled, its buffer and dispatcher start now; otherwise on Enable.
func NewBus(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("eventpipe: invalid bus config: %w", err)
	}
	cfg = cfg.withDefaults()
	f, err := NewFilter(cfg.Filter)
	if err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, done: make(chan struct{})}
	b.filter.Store(f)
	if cfg.MaxEventsPerSecond > 0 {
		b.limiter = rate.NewLimiter(rate.Limit(cfg.MaxEventsPerSecond), cfg.Burst)
	}
	b.runCtx, b.cancel = context.WithCancel(context.Background())
	empty := []*Subscription{}
	b.subs.Store(&empty)
	if cfg.Enabled {
		b.SetEnabled(true)
	}
	return b, nil
}

// Enabled reports whether events are on. It is safe on a nil *Bus and
// inlines to a nil check and one atomic load.
func (b *Bus) Enabled() bool {
	return b != nil && b.enabled.Load()
}

// SetEnabled turns events on or off at run time. Turning them off stops
// accepting new events; queued ones are still delivered. A closed bus stays
// off.
func (b *Bus) SetEnabled(on bool) {
	if !on {
		b.enabled.Store(false)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing.Load() {
		return
	}
	if !b.started {
		b.q = newQueue(b.cfg.BufferSize, b.cfg.BufferBytes, !b.cfg.Relay)
		b.ids = NewIDGenerator()
		b.started = true
		go b.dispatch()
	}
	b.enabled.Store(true)
}

// SetFilter replaces the fast-path type filter (category switches and
// include/exclude patterns) at run time, e.g. on a configuration reload.
// Events already queued are not filtered again.
func (b *Bus) SetFilter(c FilterConfig) error {
	f, err := NewFilter(c)
	if err != nil {
		return err
	}
	b.filter.Store(f)
	return nil
}

// Emit queues ev under the configured overflow policy. It never blocks unless
// the policy is Block (bounded by BlockTimeout and ctx) or the rate-limit
// policy is wait. A disabled bus returns nil at once and counts nothing.
//
// Emit stamps Time (if zero), SchemaVersion (if empty) and Sequence; the
// dispatcher assigns an ID if the event has none. ctx bounds waiting only;
// it does not carry the correlation: pipeline.Emit does that.
func (b *Bus) Emit(ctx context.Context, ev Event) error {
	if !b.Enabled() {
		return nil
	}
	return b.accept(ctx, &ev, b.cfg.Overflow, b.cfg.BlockTimeout)
}

// Publish is Emit for ingest: when the buffer is full it waits for room
// (bounded by ctx only) whatever the overflow policy, so a source feeding
// from a file applies backpressure instead of losing events. On a disabled
// bus the event is counted as refused-while-disabled and nil is returned.
func (b *Bus) Publish(ctx context.Context, ev Event) error {
	if !b.Enabled() {
		if b != nil {
			b.disabled.Add(1)
		}
		return nil
	}
	return b.accept(ctx, &ev, Block, 0)
}

func (b *Bus) accept(ctx context.Context, ev *Event, policy Overflow, blockTimeout time.Duration) error {
	if ok, err := b.admit(ctx, ev); !ok {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return b.q.push(ctx, ev, policy, blockTimeout)
}

// Admit applies what Publish applies before the buffer — the type and size
// checks, the fast-path filter and the rate limit, counted the same way —
// and stamps the time and schema version, without queueing the event. It
// reports whether the event is to be kept; a refusal comes with its error
// (nil when the filter passed over it). A runner with persistence on
// admits events with it and stores them instead of queueing them.
func (b *Bus) Admit(ctx context.Context, ev *Event) (bool, error) {
	if b == nil {
		return false, ErrClosed
	}
	if b.closing.Load() {
		return false, ErrClosed
	}
	return b.admit(ctx, ev)
}

func (b *Bus) admit(ctx context.Context, ev *Event) (bool, error) {
	if msg := ev.typeError(); msg != "" {
		b.invalid.Add(1)
		return false, &DecodeError{Field: "type", Reason: msg}
	}
	if !b.filter.Load().Allow(ev.Type) {
		b.filtered.Add(1)
		return false, nil
	}
	if b.cfg.MaxEventSize > 0 && ev.PayloadSize() > b.cfg.MaxEventSize {
		b.invalid.Add(1)
		return false, &DecodeError{Reason: fmt.Sprintf("%d bytes is over the limit of %d", ev.PayloadSize(), b.cfg.MaxEventSize), Err: ErrTooLarge}
	}
	if b.limiter != nil {
		if ctx == nil {
			ctx = context.Background()
		}
		if b.cfg.RateLimitPolicy == RateWait {
			if err := b.limiter.Wait(ctx); err != nil {
				b.rateLimited.Add(1)
				return false, fmt.Errorf("%w: %v", ErrRateLimited, err)
			}
		} else if !b.limiter.Allow() {
			b.rateLimited.Add(1)
			return false, ErrRateLimited
		}
	}
	if ev.Time.IsZero() {
		ev.Time = b.clock.now()
	}
	if ev.SchemaVersion == "" {
		ev.SchemaVersion = SchemaVersion
	}
	return true, nil
}

// dispatch moves batches from the buffer to subscribers and the handler
// until the bus is closed and drained.
func (b *Bus) dispatch() {
	defer close(b.done)
	var batch Batch
	events := make([]Event, 0, b.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var idbuf []byte
	var failed []sanitizeFailure
	for {
		events = b.q.popWait(b.runCtx, events[:0], b.cfg.BatchSize, b.cfg.BatchLinger, timer)
		if len(events) == 0 {
			if b.runCtx.Err() != nil || b.q.isClosedAndEmpty() {
				break
			}
			continue
		}
		idbuf = b.ids.assign(events, idbuf)
		failed = b.sanitize(events, failed[:0])
		b.deliver(events, failed)
		if h := b.cfg.Handler; h != nil {
			batch.Reset(events)
			for _, f := range failed {
				batch.Mark(f.i, DeadLetter, "sanitize", f.reason)
			}
			if err := h.HandleBatch(b.runCtx, &batch); err != nil {
				b.handlerErrs.Add(1)
			}
		}
		b.delivered.Add(uint64(len(events)))
		clear(events) // drop references held by the reused slice
	}
	for _, s := range *b.subs.Load() {
		s.q.close()
	}
}

// sanitizeFailure is an event the Config.Sanitizer refused, and why.
type sanitizeFailure struct {
	i      int
	reason string
}

// sanitize runs the Config.Sanitizer over events, appending the ones it
// refused (in order) to failed.
func (b *Bus) sanitize(events []Event, failed []sanitizeFailure) []sanitizeFailure {
	s := b.cfg.Sanitizer
	if s == nil {
		return failed
	}
	for i := range events {
		if _, err := s.Event(&events[i]); err != nil {
			failed = append(failed, sanitizeFailure{i, err.Error()})
		}
	}
	b.unsanitized.Add(uint64(len(failed)))
	return failed
}

// deliver gives subscribers the events, except those the sanitizer
// refused (skip, in order).
func (b *Bus) deliver(events []Event, skip []sanitizeFailure) {
	subs := *b.subs.Load()
	if len(subs) == 0 {
		return
	}
	for i := range events {
		if len(skip) > 0 && skip[0].i == i {
			skip = skip[1:]
			continue
		}
		ev := &events[i]
		for _, s := range subs {
			if s.pattern.Match(ev.Type) {
				_ = s.q.push(b.runCtx, ev, s.opts.Overflow, s.opts.BlockTimeout)
			}
		}
	}
}

func (q *queue) isClosedAndEmpty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed && q.n == 0
}

// Close stops accepting events (Emit and Publish then return ErrClosed),
// delivers everything queued to the handler and subscribers, closes the
// subscriptions and stops the dispatcher. If ctx ends first, Close cancels
// the handler's context and reports how many events were not flushed.
// Close is safe to call more than once.
func (b *Bus) Close(ctx context.Context) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	b.closing.Store(true)
	started := b.started
	b.mu.Unlock()
	if !started {
		b.mu.Lock()
		if !b.started {
			b.started = true // nothing may start a dispatcher any more
			b.enabled.Store(false)
			for _, s := range *b.subs.Load() {
				s.q.close()
			}
			close(b.done)
		}
		b.mu.Unlock()
		b.cancel()
		return nil
	}
	b.q.close()
	select {
	case <-b.done:
		b.cancel()
		return nil
	case <-ctx.Done():
		// The handler's context is cancelled; Close does not wait for it
		// to notice: a handler stuck in a call it cannot leave (a plugin
		// without termination checks) must not keep the process alive.
		left := b.q.stats().depth
		b.cancel()
		return fmt.Errorf("eventpipe: close: %w: %d queued events not flushed (and the batch in flight, if any)", ctx.Err(), left)
	}
}

// Done is closed when the bus has been closed and drained.
func (b *Bus) Done() <-chan struct{} { return b.done }
