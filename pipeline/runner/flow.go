package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// handleBatch runs the stages of the graph in force on one batch and hands
// the kept events to its outputs' queues. Without a store it returns then:
// the outputs work at their own pace, and sources waiting on Commit are
// told once every output has handled the batch (and all before it). With
// a store it returns once they have, as the store acknowledges then.
func (r *Runner) handleBatch(ctx context.Context, b *pipeline.Batch) error {
	fl, err := r.process(ctx, b)
	if r.store != nil {
		if werr := fl.wait(ctx); werr != nil {
			return werr
		}
	}
	return err
}

// process runs the stages on b, writes the dead letters they made, and
// dispatches the kept events to the outputs, returning the batch in
// flight.
func (r *Runner) process(ctx context.Context, b *pipeline.Batch) (*inflight, error) {
	select {
	case <-r.flowReady:
	case <-r.flowFailed:
		return doneInflight(), fmt.Errorf("%d events not handled: the pipeline did not start", len(b.Events))
	case <-ctx.Done():
		return doneInflight(), fmt.Errorf("%d events not handled: the pipeline did not start: %w", len(b.Events), ctx.Err())
	}
	start := time.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	g := r.graph
	for _, n := range g.stages {
		if err := n.comp.(pipeline.Stage).Process(ctx, b); err != nil {
			// A stage that fails as a whole: its events go to the dead
			// letter rather than on unprocessed.
			for i := range b.Events {
				if b.Verdicts[i] == pipeline.Keep {
					b.Mark(i, pipeline.DeadLetter, n.name, "stage failed: "+err.Error())
				}
			}
		}
	}
	var dead []export.DeadLetterRecord
	for i := range b.Events {
		switch b.Verdicts[i] {
		case pipeline.Drop:
			r.countDrop(b.Stages[i] + ": " + b.Reasons[i])
			r.metrics.dropped.WithLabelValues(b.Stages[i]).Inc()
		case pipeline.DeadLetter:
			dead = append(dead, export.EventRecord(&b.Events[i], b.Stages[i], "", b.Reasons[i]))
		}
	}
	err := r.deadLetter(dead)
	// The outputs take their shares from here, each at its own pace.
	return r.dispatch(ctx, g, b, start), err
}

func (r *Runner) deadLetter(recs []export.DeadLetterRecord) error {
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		r.metrics.deadLettered.WithLabelValues(recs[i].Stage).Inc()
		recs[i].Reason = r.opts.scrub.String(recs[i].Reason)
	}
	r.deadLetters.Add(uint64(len(recs)))
	if err := r.dlq.Write(recs...); err != nil {
		// The file keeps what it could not write (bounded) and writes it
		// with the next records; what did not fit is counted as lost.
		r.log.Error("dead letter write failed", "events", len(recs), "err", err, "lost_so_far", r.dlq.Lost())
		return err
	}
	return nil
}

// Reject records input that is not an event.
func (r *Runner) Reject(_ context.Context, rj pipeline.Rejected) {
	r.rejected.Add(1)
	r.metrics.rejected.WithLabelValues(rj.Source).Inc()
	_ = r.deadLetter([]export.DeadLetterRecord{{
		Time: rj.Time, Reason: rj.Reason, Stage: "ingest", Source: rj.Source, Offset: rj.Offset, Raw: string(rj.Raw),
	}})
}

// doneInflight is a batch in flight that is already complete (nothing was
// handed to the outputs).
func doneInflight() *inflight {
	fl := &inflight{done: make(chan struct{})}
	close(fl.done)
	return fl
}
