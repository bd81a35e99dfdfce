package pipeline

import (
	"context"
	"fmt"
	"time"
)

// SubscribeOptions bound a subscription's queue.
type SubscribeOptions struct {
	// QueueSize bounds the events waiting for this subscriber. Default 1024.
	QueueSize int
	// Overflow is what happens when the subscriber falls behind. DropOldest
	// (the default), DropNewest and Reject drop and count; Block stalls the
	// bus dispatcher (and so every subscriber and the pipeline) until room
	// appears or BlockTimeout passes: choose it only for a subscriber that
	// must see everything.
	Overflow Overflow
	// BlockTimeout bounds a Block wait. Default 1s.
	BlockTimeout time.Duration
}

// Subscription receives the events whose type matches its pattern, in
// publish order, through a bounded queue of its own.
type Subscription struct {
	bus     *Bus
	pattern Pattern
	opts    SubscribeOptions
	q       *queue
}

// Subscribe returns a subscription to the events whose type matches pattern
// (see Pattern). Events published before Subscribe are not delivered.
func (b *Bus) Subscribe(pattern string, opts SubscribeOptions) (*Subscription, error) {
	p, err := CompilePattern(pattern)
	if err != nil {
		return nil, fmt.Errorf("eventpipe: subscribe: %w", err)
	}
	if opts.QueueSize < 0 {
		return nil, fmt.Errorf("eventpipe: subscribe: queue size must be positive, got %d", opts.QueueSize)
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = 1024
	}
	if opts.BlockTimeout == 0 {
		opts.BlockTimeout = time.Second
	}
	s := &Subscription{bus: b, pattern: p, opts: opts, q: newQueue(opts.QueueSize, 0, false)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing.Load() {
		return nil, ErrClosed
	}
	old := *b.subs.Load()
	next := make([]*Subscription, 0, len(old)+1)
	next = append(append(next, old...), s)
	b.subs.Store(&next)
	return s, nil
}

// Pattern is the pattern the subscription was made with.
func (s *Subscription) Pattern() string { return s.pattern.String() }

// Next returns the next event, waiting until one arrives, ctx ends, or the
// subscription is closed and drained (then ErrClosed).
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	var one [1]Event
	for {
		got := s.q.popInto(one[:0], 1)
		if len(got) == 1 {
			return got[0], nil
		}
		s.q.mu.Lock()
		if s.q.closed && s.q.n == 0 {
			s.q.mu.Unlock()
			return Event{}, ErrClosed
		}
		if s.q.n > 0 {
			// Pushed between popInto and this lock, while no one was
			// marked waiting: nobody will signal it, so take it now.
			s.q.mu.Unlock()
			continue
		}
		s.q.waiting = true
		s.q.mu.Unlock()
		select {
		case <-s.q.notEmpty:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// TryNext returns the next queued event without waiting.
func (s *Subscription) TryNext() (Event, bool) {
	var one [1]Event
	got := s.q.popInto(one[:0], 1)
	if len(got) == 1 {
		return got[0], true
	}
	return Event{}, false
}

// Unsubscribe removes the subscription from the bus and releases its queue:
// queued events are discarded (and counted as dropped), Next returns
// ErrClosed. It is safe to call more than once.
func (s *Subscription) Unsubscribe() {
	b := s.bus
	b.mu.Lock()
	old := *b.subs.Load()
	next := make([]*Subscription, 0, len(old))
	for _, o := range old {
		if o != s {
			next = append(next, o)
		}
	}
	b.subs.Store(&next)
	b.mu.Unlock()
	s.q.close()
	s.q.mu.Lock()
	s.q.drops.Oldest += uint64(s.q.n)
	clear(s.q.buf)
	s.q.buf, s.q.head, s.q.n = nil, 0, 0
	s.q.mu.Unlock()
}

// SubscriptionStats describe one subscription.
type SubscriptionStats struct {
	Pattern   string `json:"pattern"`
	Delivered uint64 `json:"delivered"` // accepted into its queue
	Dropped   Drops  `json:"dropped"`
	Depth     int    `json:"queue_depth"`
	HighWater int    `json:"queue_high_water"`
}

// Stats reports the subscription's counters.
func (s *Subscription) Stats() SubscriptionStats {
	qs := s.q.stats()
	qs.drops.BlockTimeout += qs.refused // the bus stopped while it waited: lost to this subscriber
	return SubscriptionStats{Pattern: s.pattern.String(), Delivered: qs.accepted, Dropped: qs.drops, Depth: qs.depth, HighWater: qs.highWater}
}
