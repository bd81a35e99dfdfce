package pipeline

// Stats is a snapshot of a bus's counters.
type Stats struct {
	Enabled bool `json:"enabled"`
	Closed  bool `json:"closed"`
	// Published counts events accepted into the buffer.
	Published uint64 `json:"published"`
	// Delivered counts events handed to the handler and subscribers.
	Delivered uint64 `json:"delivered"`
	// Filtered counts events the type filter passed over (not an error).
	Filtered uint64 `json:"filtered"`
	// RateLimited counts events refused by the rate limit.
	RateLimited uint64 `json:"rate_limited"`
	// Invalid counts events refused for a bad type or size.
	Invalid uint64 `json:"invalid"`
	// Disabled counts events published by ingest while events were off.
	Disabled uint64 `json:"disabled"`
	// Dropped counts buffer overflows by policy.
	Dropped Drops `json:"dropped"`
	// Refused counts events whose publisher gave up waiting for room
	// (its context ended): the publisher was told, and an ingest answers
	// 503 so that the client sends them again. Not lost, not dropped.
	Refused uint64 `json:"refused"`
	// Unsanitized counts events the Config.Sanitizer could not sanitize:
	// withheld from subscribers, handed to the Handler marked DeadLetter.
	Unsanitized uint64 `json:"unsanitized,omitempty"`
	// HandlerErrors counts batches whose handler returned an error.
	HandlerErrors uint64 `json:"handler_errors"`
	// QueueDepth is the number of queued events now; HighWater the most seen.
	QueueDepth int `json:"queue_depth"`
	HighWater  int `json:"queue_high_water"`
	// BytesHeld is the memory the queued events hold (Event.Size summed).
	BytesHeld     int64               `json:"bytes_held"`
	Subscriptions []SubscriptionStats `json:"subscriptions,omitempty"`
}

// DroppedTotal is every event lost on the fast path or in the buffer, for
// any reason (filtered events are not lost: they were not wanted).
func (s Stats) DroppedTotal() uint64 {
	return s.Dropped.Total() + s.RateLimited + s.Invalid
}

// Stats returns a snapshot of the bus's counters.
func (b *Bus) Stats() Stats {
	s := Stats{
		Enabled:       b.Enabled(),
		Closed:        b.closing.Load(),
		Delivered:     b.delivered.Load(),
		Filtered:      b.filtered.Load(),
		RateLimited:   b.rateLimited.Load(),
		Invalid:       b.invalid.Load(),
		Disabled:      b.disabled.Load(),
		HandlerErrors: b.handlerErrs.Load(),
		Unsanitized:   b.unsanitized.Load(),
	}
	b.mu.Lock()
	q := b.q
	b.mu.Unlock()
	if q != nil {
		qs := q.stats()
		s.Published, s.Dropped, s.QueueDepth, s.HighWater, s.BytesHeld = qs.accepted, qs.drops, qs.depth, qs.highWater, qs.bytes
		s.Refused = qs.refused
	}
	for _, sub := range *b.subs.Load() {
		s.Subscriptions = append(s.Subscriptions, sub.Stats())
	}
	return s
}

// LastSequence is the sequence number of the last event accepted into the
// buffer (0 before the first). Every event accepted so far has a sequence
// no greater; a handler that has seen it has seen them all, less those the
// overflow policy dropped.
func (b *Bus) LastSequence() uint64 {
	b.mu.Lock()
	q := b.q
	b.mu.Unlock()
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seq
}
