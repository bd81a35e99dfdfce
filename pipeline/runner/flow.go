package runner

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// handleBatch runs the stages and outputs of the graph in force on one
// batch. It returns when every event has been exported, dropped on purpose
// or dead-lettered.
func (r *Runner) handleBatch(ctx context.Context, b *pipeline.Batch) error {
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
	exportDead, failed := r.export(ctx, g, b)
	dead = append(dead, exportDead...)
	r.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	// Live tails see the events exported: routed to an output, and taken
	// by every output they were routed to (as exported, sequence and all).
	if r.tapUsers.Load() > 0 {
		for i := range b.Events {
			if b.Verdicts[i] == pipeline.Keep && b.Routes[i] != 0 && !slices.Contains(failed, i) {
				_ = r.tap.Emit(ctx, b.Events[i])
			}
		}
	}
	return r.deadLetter(dead)
}

// export hands every output the kept events routed to it, the outputs in
// parallel, and returns the dead-letter records of what they refused and
// the indexes (into b) of those events.
func (r *Runner) export(ctx context.Context, g *graph, b *pipeline.Batch) (dead []export.DeadLetterRecord, failed []int) {
	var active []*output
	for oi, o := range g.outputs {
		o.buf, o.idx = o.buf[:0], o.idx[:0]
		bit := uint64(1) << uint(oi)
		for i := range b.Events {
			if b.Verdicts[i] == pipeline.Keep && b.Routes[i]&bit != 0 {
				o.buf = append(o.buf, b.Events[i])
				o.idx = append(o.idx, i)
			}
		}
		if len(o.buf) > 0 {
			active = append(active, o)
		}
	}
	errs := make([]error, len(active))
	if len(active) == 1 {
		errs[0] = active[0].exporter.Export(ctx, active[0].buf)
	} else if len(active) > 1 {
		var wg sync.WaitGroup
		for k, o := range active {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[k] = o.exporter.Export(ctx, o.buf)
			}()
		}
		wg.Wait()
	}
	for k, o := range active {
		st := o.stats
		st.batches.Add(1)
		if errs[k] == nil {
			st.exported.Add(uint64(len(o.buf)))
			r.metrics.exported.WithLabelValues(o.name).Add(float64(len(o.buf)))
			st.mu.Lock()
			st.lastOK = time.Now()
			st.mu.Unlock()
			continue
		}
		// A PartialError names the events that were not delivered; the
		// others were.
		lost := pipeline.FailedEvents(errs[k], len(o.buf))
		if ok := len(o.buf) - len(lost); ok > 0 {
			st.exported.Add(uint64(ok))
			r.metrics.exported.WithLabelValues(o.name).Add(float64(ok))
		}
		st.failed.Add(uint64(len(lost)))
		r.metrics.exportFailures.WithLabelValues(o.name).Add(float64(len(lost)))
		st.mu.Lock()
		st.lastErr, st.lastErrAt = errs[k].Error(), time.Now()
		st.mu.Unlock()
		r.log.Error("export failed; events go to the dead letter", "output", o.name, "events", len(lost), "err", errs[k])
		for _, j := range lost {
			if j >= 0 && j < len(o.idx) {
				dead = append(dead, export.EventRecord(&b.Events[o.idx[j]], "export", o.name, errs[k].Error()))
				failed = append(failed, o.idx[j])
			}
		}
	}
	return dead, failed
}

func (r *Runner) deadLetter(recs []export.DeadLetterRecord) error {
	if len(recs) == 0 {
		return nil
	}
	for _, rec := range recs {
		r.metrics.deadLettered.WithLabelValues(rec.Stage).Inc()
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
