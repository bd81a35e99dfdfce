package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// Two paths lead from the sources to the stages.
//
// Without a store, Publish puts events in the bus's bounded buffer, and its
// dispatcher hands batches to handleBufferedBatch. An accepted event lives
// in memory until it is exported.
//
// With a store (the persist section), PublishBatch admits events through
// the bus's checks (type, size, filter, rate limit), gives them ids and
// appends them to the store, returning only once the store acknowledged
// them; consume reads them back in batches and acknowledges a batch once
// handleBatch has exported or dead-lettered every event of it. Events
// emitted on the bus directly still pass its buffer, whose handler
// (storeBatch) appends them to the store.

// Publish makes the runner the sources' pipeline.Publisher.
// Repaired counts events whose bytes that were not UTF-8 decoding
// replaced (pipeline.RepairCounter).
func (r *Runner) Repaired(n int) { r.repaired.Add(uint64(n)) }

// Enabled reports whether events are on (the [events] switch, or the
// admin endpoints): a source that can tell its sender refuses while off.
func (r *Runner) Enabled() bool { return r.bus.Enabled() }

func (r *Runner) Publish(ctx context.Context, ev pipeline.Event) error {
	if r.store == nil {
		err := r.bus.Publish(ctx, ev)
		if err == nil {
			r.metrics.ingested.Inc()
		}
		return err
	}
	var errs [1]error
	if _, err := r.PublishBatch(ctx, []pipeline.Event{ev}, errs[:]); err != nil {
		return err
	}
	return errs[0]
}

// PublishBatch makes the runner a pipeline.BatchPublisher: with a store,
// it returns once the store acknowledged the events it accepted.
func (r *Runner) PublishBatch(ctx context.Context, evs []pipeline.Event, errs []error) (int, error) {
	if r.store == nil {
		return pipeline.PublishBatch(ctx, oneByOne{r}, evs, errs)
	}
	// The events admitted are stored as one slice: evs itself when every
	// one of them was (the common case, no copy), a compacted copy
	// otherwise.
	n := len(evs)
	var stop error
	var keep []pipeline.Event
	all := true
	for i := range evs {
		ok, err := r.bus.Admit(ctx, &evs[i])
		var de *pipeline.DecodeError
		switch {
		case ok:
			if !all {
				keep = append(keep, evs[i])
			}
			continue
		case errors.As(err, &de):
			errs[i] = err
		case err != nil:
			n, stop = i, err
		}
		if all {
			all = false
			keep = append(make([]pipeline.Event, 0, len(evs)), evs[:i]...)
		}
		if stop != nil {
			break
		}
	}
	if all {
		keep = evs
	}
	if len(keep) > 0 {
		r.ids.Assign(keep)
		if err := r.append(ctx, keep); err != nil {
			return 0, err
		}
	}
	return n, stop
}

// append stores events and counts them.
func (r *Runner) append(ctx context.Context, evs []pipeline.Event) error {
	dups, err := r.store.Append(ctx, evs)
	if err != nil {
		return err
	}
	r.stored.Add(uint64(len(evs) - dups))
	r.duplicates.Add(uint64(dups))
	r.metrics.ingested.Add(float64(len(evs) - dups))
	return nil
}

// oneByOne is the runner as a plain Publisher, which pipeline.PublishBatch
// publishes to one event at a time (into the buffer).
type oneByOne struct{ r *Runner }

func (p oneByOne) Publish(ctx context.Context, ev pipeline.Event) error { return p.r.Publish(ctx, ev) }
func (p oneByOne) Reject(ctx context.Context, rj pipeline.Rejected)     { p.r.Reject(ctx, rj) }

// storeBatch is the bus's handler when there is a store: it appends what
// was emitted on the bus to the store. What the store refuses is
// dead-lettered, never dropped silently.
func (r *Runner) storeBatch(ctx context.Context, b *pipeline.Batch) error {
	r.ids.Assign(b.Events)
	err := r.append(ctx, b.Events)
	if err == nil {
		return nil
	}
	r.log.Error("store refused events emitted on the bus; they go to the dead letter", "events", len(b.Events), "err", err)
	recs := make([]export.DeadLetterRecord, len(b.Events))
	for i := range b.Events {
		recs[i] = export.EventRecord(&b.Events[i], "persist", "", err.Error())
	}
	return r.deadLetter(recs)
}

// consume reads the store until ctx ends, or, once drain is closed, until
// it holds nothing more to deliver. Batches run with hctx, which ends only
// at the drain deadline, so that a stop does not cut a batch in two.
func (r *Runner) consume(ctx, hctx context.Context, drain <-chan struct{}) error {
	if ps, ok := r.store.(component.PipelinedStore); ok {
		// Several batches with the outputs at once: a slow output holds
		// back the others only when the store's bound is reached.
		return ps.ConsumePipelined(ctx, drain, func(_ context.Context, events []pipeline.Event) func() error {
			for i := range events {
				events[i].Sequence = r.seq.Add(1)
			}
			b := &pipeline.Batch{}
			b.Reset(events)
			fl, err := r.process(hctx, b)
			return func() error {
				if werr := fl.wait(hctx); werr != nil {
					return werr
				}
				return err
			}
		})
	}
	var b pipeline.Batch
	return r.store.Consume(ctx, drain, func(_ context.Context, events []pipeline.Event) error {
		for i := range events {
			events[i].Sequence = r.seq.Add(1)
		}
		b.Reset(events)
		return r.handleBatch(hctx, &b)
	})
}

// handleBufferedBatch handles a batch from the bus's buffer; the sources
// waiting on Commit are told when the outputs have handled it.
func (r *Runner) handleBufferedBatch(ctx context.Context, b *pipeline.Batch) error {
	return r.handleBatch(ctx, b) // the commits follow the batch's completion (dispatch)
}

// Commit makes the runner a pipeline.Committer. With a store, what was
// published is stored already; without, fn waits until the buffer's
// dispatcher has handled every event accepted so far.
func (r *Runner) Commit(fn func()) {
	if r.store != nil {
		fn()
		return
	}
	r.commits.add(r.bus.LastSequence(), fn)
}

// commits are the sources' Commit callbacks waiting for the buffer.
type commits struct {
	mu      sync.Mutex
	done    uint64 // every sequence up to done has been handled
	waiting []commit
}

type commit struct {
	seq uint64
	fn  func()
}

func (c *commits) add(seq uint64, fn func()) {
	c.mu.Lock()
	if seq <= c.done {
		c.mu.Unlock()
		fn()
		return
	}
	c.waiting = append(c.waiting, commit{seq, fn})
	c.mu.Unlock()
}

// handled records that the events up to seq were handled and runs the
// callbacks that waited for them, in order.
func (c *commits) handled(seq uint64) {
	c.mu.Lock()
	c.done = max(c.done, seq)
	k := 0
	for k < len(c.waiting) && c.waiting[k].seq <= c.done {
		k++
	}
	ready := append([]commit(nil), c.waiting[:k]...)
	c.waiting = append(c.waiting[:0], c.waiting[k:]...)
	c.mu.Unlock()
	for _, w := range ready {
		w.fn()
	}
}

// drainStore lets the consumer catch up with the store (a finite run) or
// stops it at once (a signal: what is stored stays for the next run),
// within the drain deadline.
func (r *Runner) drainStore(finished bool, drain chan struct{}, stopConsume, stopBatches context.CancelFunc, done <-chan error, dctx context.Context) error {
	if finished {
		close(drain)
	} else {
		stopConsume()
	}
	select {
	case err := <-done:
		return err
	case <-dctx.Done():
		stopConsume()
		stopBatches()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		return fmt.Errorf("persist: the pipeline had not caught up with the store at the drain deadline; what is stored stays for the next run")
	}
}
