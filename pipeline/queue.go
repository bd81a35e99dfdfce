package pipeline

import (
	"context"
	"sync"
	"time"
)

// queue is a bounded FIFO of events with an overflow policy. It backs both
// the bus buffer and each subscription. One mutex guards it: the slow side
// (the consumer) copies many events out per lock, so producers rarely wait.
//
// The ring grows on demand up to its capacity, so an idle bus or a quiet
// subscription holds little memory.
type queue struct {
	mu       sync.Mutex
	buf      []Event
	head, n  int
	capacity int
	// maxBytes bounds the bytes the queued events hold (Event.Size
	// summed). Negative: counted (the bus reports them) but not bounded;
	// 0: not even counted (subscriptions report no bytes, so their pushes
	// pay for no Size). One event is always let in when the queue is
	// empty, so an event larger than the bound still passes, alone.
	maxBytes int64
	bytes    int64
	sizes    []int64 // Event.Size of each slot of buf, when bytes are counted
	closed   bool

	seq       uint64 // last assigned sequence, when assignSeq
	assignSeq bool

	notEmpty chan struct{} // cap 1: signalled when a reader is waiting
	space    chan struct{} // closed (and replaced) when room appears; nil if no waiter

	waiting   bool // a reader sleeps on notEmpty
	highWater int
	drops     Drops
	refused   uint64 // pushes whose context ended while waiting for room
	accepted  uint64
}

func newQueue(capacity int, maxBytes int64, assignSeq bool) *queue {
	initial := min(capacity, 64)
	q := &queue{
		buf:       make([]Event, initial),
		capacity:  capacity,
		maxBytes:  maxBytes,
		assignSeq: assignSeq,
		notEmpty:  make(chan struct{}, 1),
	}
	if maxBytes != 0 {
		q.sizes = make([]int64, initial)
	}
	return q
}

// push adds ev under the policy. ctx bounds a Block wait together with
// blockTimeout (<= 0: no timeout besides ctx).
func (q *queue) push(ctx context.Context, ev *Event, policy Overflow, blockTimeout time.Duration) error {
	var size int64
	if q.maxBytes != 0 {
		size = int64(ev.Size())
	}
	q.mu.Lock()
	var deadline *time.Timer
	for q.full(size) || q.closed {
		if q.closed {
			q.mu.Unlock()
			stopTimer(deadline)
			return ErrClosed
		}
		switch policy {
		case DropOldest:
			if q.sizes != nil {
				q.bytes -= q.sizes[q.head]
			}
			q.buf[q.head] = Event{}
			q.head = q.next(q.head)
			q.n--
			q.drops.Oldest++
		case DropNewest:
			q.drops.Newest++
			q.mu.Unlock()
			return ErrDropped
		case Reject:
			q.drops.Rejected++
			q.mu.Unlock()
			return ErrBufferFull
		case Block:
			if q.space == nil {
				q.space = make(chan struct{})
			}
			space := q.space
			q.mu.Unlock()
			if deadline == nil && blockTimeout > 0 {
				deadline = time.NewTimer(blockTimeout)
			}
			var timeout <-chan time.Time
			if deadline != nil {
				timeout = deadline.C
			}
			select {
			case <-space:
				q.mu.Lock()
				continue
			case <-timeout:
				q.mu.Lock()
				q.drops.BlockTimeout++
				q.mu.Unlock()
				return ErrBlockTimeout
			case <-ctx.Done():
				// The caller's context ended: it is told (ctx.Err), and an
				// ingest answers "send again" (503). Refused, not dropped.
				q.mu.Lock()
				q.refused++
				q.mu.Unlock()
				return ctx.Err()
			}
		}
	}
	if q.n == len(q.buf) {
		q.grow()
	}
	if q.assignSeq {
		q.seq++
		ev.Sequence = q.seq
	}
	slot := (q.head + q.n) % len(q.buf)
	q.buf[slot] = *ev
	if q.sizes != nil {
		q.sizes[slot] = size
		q.bytes += size
	}
	q.n++
	q.accepted++
	if q.n > q.highWater {
		q.highWater = q.n
	}
	wake := q.waiting
	q.waiting = false
	q.mu.Unlock()
	stopTimer(deadline)
	if wake {
		select {
		case q.notEmpty <- struct{}{}:
		default:
		}
	}
	return nil
}

// full reports whether an event of size bytes must wait (or be dropped):
// the queue holds capacity events, or adding it would pass maxBytes.
func (q *queue) full(size int64) bool {
	return q.n >= q.capacity || (q.maxBytes > 0 && q.n > 0 && q.bytes+size > q.maxBytes)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (q *queue) next(i int) int {
	i++
	if i == len(q.buf) {
		return 0
	}
	return i
}

// grow doubles the ring up to capacity. Called with mu held and the ring full.
func (q *queue) grow() {
	size := min(max(2*len(q.buf), 1), q.capacity)
	nb := make([]Event, size)
	k := copy(nb, q.buf[q.head:])
	copy(nb[k:], q.buf[:q.head])
	if q.sizes != nil {
		ns := make([]int64, size)
		copy(ns[copy(ns, q.sizes[q.head:]):], q.sizes[:q.head])
		q.sizes = ns
	}
	q.buf, q.head = nb, 0
}

// popInto appends up to max queued events to dst, removing them from the
// queue, and wakes producers blocked on a full queue.
func (q *queue) popInto(dst []Event, max int) []Event {
	q.mu.Lock()
	dst = q.popLocked(dst, max)
	q.mu.Unlock()
	return dst
}

func (q *queue) popLocked(dst []Event, max int) []Event {
	popped := min(max, q.n)
	for k := popped; k > 0; {
		// Copy the contiguous run from head, then clear it so the ring
		// holds no references for the GC.
		run := min(k, len(q.buf)-q.head)
		seg := q.buf[q.head : q.head+run]
		dst = append(dst, seg...)
		if q.sizes != nil {
			// Sizes were taken at push, outside the lock: the consumer
			// only subtracts them here.
			for _, sz := range q.sizes[q.head : q.head+run] {
				q.bytes -= sz
			}
		}
		clear(seg)
		q.head += run
		if q.head == len(q.buf) {
			q.head = 0
		}
		q.n -= run
		k -= run
	}
	if q.n == 0 {
		q.head, q.bytes = 0, 0
	}
	if popped > 0 && q.space != nil {
		close(q.space)
		q.space = nil
	}
	if q.n > 0 {
		// Another reader may be waiting; keep the signal armed.
		select {
		case q.notEmpty <- struct{}{}:
		default:
		}
	}
	return dst
}

// popWait waits until at least one event is queued (or the queue is closed
// and empty, or ctx ends), then collects up to max events, lingering up to
// linger for a fuller batch. It returns dst unchanged only when closed and
// empty, or when ctx ended.
func (q *queue) popWait(ctx context.Context, dst []Event, max int, linger time.Duration, lingerTimer *time.Timer) []Event {
	start := len(dst)
	for {
		q.mu.Lock()
		dst = q.popLocked(dst, max-(len(dst)-start))
		closed := q.closed
		if len(dst) == start && !closed {
			q.waiting = true
		}
		q.mu.Unlock()
		if len(dst) > start || closed {
			break
		}
		select {
		case <-q.notEmpty:
		case <-ctx.Done():
			return dst
		}
	}
	if linger <= 0 || len(dst)-start >= max {
		return dst
	}
	lingerTimer.Reset(linger)
	defer lingerTimer.Stop()
	for len(dst)-start < max {
		q.mu.Lock()
		q.waiting = true
		q.mu.Unlock()
		select {
		case <-q.notEmpty:
		case <-lingerTimer.C:
			return q.popInto(dst, max-(len(dst)-start))
		case <-ctx.Done():
			return dst
		}
		q.mu.Lock()
		dst = q.popLocked(dst, max-(len(dst)-start))
		closed := q.closed
		q.mu.Unlock()
		if closed {
			break
		}
	}
	return dst
}

// close makes further pushes fail and wakes every waiter. Queued events stay
// readable.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	q.mu.Unlock()
	select {
	case q.notEmpty <- struct{}{}:
	default:
	}
}

type queueStats struct {
	depth     int
	highWater int
	bytes     int64
	accepted  uint64
	drops     Drops
	refused   uint64
}

func (q *queue) stats() queueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return queueStats{depth: q.n, highWater: q.highWater, bytes: q.bytes, accepted: q.accepted, drops: q.drops, refused: q.refused}
}

// Drops counts events a bounded buffer discarded or refused, by reason.
type Drops struct {
	Oldest       uint64 `json:"drop_oldest"`   // discarded to make room (drop_oldest)
	Newest       uint64 `json:"drop_newest"`   // refused, buffer full (drop_newest)
	Rejected     uint64 `json:"reject"`        // refused with ErrBufferFull (reject)
	BlockTimeout uint64 `json:"block_timeout"` // refused after waiting (block)
}

// Total is the sum over all reasons.
func (d Drops) Total() uint64 { return d.Oldest + d.Newest + d.Rejected + d.BlockTimeout }
