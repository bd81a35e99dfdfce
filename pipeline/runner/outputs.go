package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// QueueConfig is an output's queue (the queue key of every output): the
// events routed to the output wait there while it works, so that a slow
// or hanging output holds back only itself until the queue is full; then
// its overflow policy applies.
type QueueConfig struct {
	// Size bounds the events waiting for the output. Default 10000.
	Size int `yaml:"size"`
	// Overflow is what happens to events routed to a full queue: block
	// (the default: the pipeline waits for room, holding back every
	// output, and ingest pushes back) or dead_letter (they go to the
	// dead-letter file, to be replayed; the other outputs go on).
	Overflow string `yaml:"overflow"`
}

// DefaultQueueSize is the default of queue.size.
const DefaultQueueSize = 10000

// Validate checks the configuration.
func (c *QueueConfig) Validate() error {
	var errs []error
	if c.Size < 0 {
		errs = append(errs, pipeline.FieldErrorf("size", "must not be negative"))
	}
	switch c.Overflow {
	case "", "block", "dead_letter":
	default:
		errs = append(errs, pipeline.FieldErrorf("overflow", "want block or dead_letter, got %q", c.Overflow))
	}
	return errors.Join(errs...)
}

// job is an output's share of a batch: the events routed to it, and
// their indexes in the batch.
type job struct {
	events []pipeline.Event
	idx    []int
	b      *inflight
	shared *pipeline.SharedEncodings // encodings shared with other outputs, or nil
}

// inflight is a batch whose events are with the outputs. It is complete
// when every output has handled its share (exported or dead-lettered).
type inflight struct {
	left    atomic.Int32
	lastSeq uint64
	start   time.Time
	done    chan struct{}

	mu     sync.Mutex
	failed []int            // batch indexes an output refused
	tap    []pipeline.Event // the events exported, for live tails (when one listens)
	tapIdx []int
	ready  bool // complete, waiting for the batches before it
}

// worker runs one output: it exports the jobs of its queue in order, one
// at a time, with the output's retries.
type worker struct {
	out      *output
	jobs     chan job
	room     *semaphore.Weighted // events the queue may still take
	size     int64
	overflow string
	queued   atomic.Int64 // events waiting or being exported
	since    atomic.Int64 // when the export in flight began (unix ns), 0: none
	wg       sync.WaitGroup
}

func newWorker(o *output, qc QueueConfig) *worker {
	size := int64(qc.Size)
	if size == 0 {
		size = DefaultQueueSize
	}
	overflow := qc.Overflow
	if overflow == "" {
		overflow = "block"
	}
	// Jobs are at least one event each: size bounds their number too.
	return &worker{out: o, jobs: make(chan job, size), room: semaphore.NewWeighted(size), size: size, overflow: overflow}
}

// weight is what a job of n events takes of the queue: a batch larger
// than the whole queue takes all of it.
func (w *worker) weight(n int) int64 { return min(int64(n), w.size) }

// enqueue hands the output its share of a batch. Under block it waits for
// room (or ctx); under dead_letter a job that does not fit is refused.
func (w *worker) enqueue(ctx context.Context, j job) error {
	n := w.weight(len(j.events))
	if w.overflow == "dead_letter" {
		if !w.room.TryAcquire(n) {
			return errQueueFull
		}
	} else if err := w.room.Acquire(ctx, n); err != nil {
		return err
	}
	w.queued.Add(int64(len(j.events)))
	w.jobs <- j
	return nil
}

var errQueueFull = errors.New("queue full: the output is slower than the events routed to it")

// run exports jobs until the queue is closed and empty.
func (w *worker) run(ctx context.Context, r *Runner) {
	defer w.wg.Done()
	for j := range w.jobs {
		w.since.Store(time.Now().UnixNano())
		ectx := ctx
		if j.shared != nil {
			ectx = pipeline.WithSharedEncodings(ctx, j.shared, j.idx)
		}
		err := w.out.exporter.Export(ectx, j.events)
		w.since.Store(0)
		r.exported(w.out, j, err)
		n := len(j.events)
		r.jobs.put(j)
		w.queued.Add(-int64(n))
		w.room.Release(w.weight(n))
	}
}

// jobBufs recycles the buffers of jobs: a batch's copies for an output
// are most of the runner's allocation otherwise.
type jobBufs struct{ pool sync.Pool }

func (p *jobBufs) get(n int) job {
	if v, ok := p.pool.Get().(*job); ok && cap(v.events) >= n {
		return job{events: v.events[:0], idx: v.idx[:0]}
	}
	return job{events: make([]pipeline.Event, 0, n), idx: make([]int, 0, n)}
}

// put takes back j's buffers once nothing refers to its events.
func (p *jobBufs) put(j job) {
	clear(j.events) // drop the references to the events' strings and data
	p.pool.Put(&job{events: j.events[:0], idx: j.idx[:0]})
}

// slow reports whether the output is slow now: an export running longer
// than after, or its queue more than nine tenths full.
func (w *worker) slow(after time.Duration) bool {
	if s := w.since.Load(); s != 0 && time.Since(time.Unix(0, s)) > after {
		return true
	}
	return w.queued.Load()*10 > w.size*9
}

// startWorkers starts a worker per output of g.
func (r *Runner) startWorkers(g *graph) {
	ctx, cancel := context.WithCancel(context.Background())
	g.stopExports = cancel
	for _, o := range g.outputs {
		o.w = newWorker(o, o.queue)
		o.w.wg.Add(1)
		go o.w.run(ctx, r)
	}
}

// stopWorkers closes the outputs' queues of g, lets them empty until
// ctx's deadline, then stops the exports in flight: what is left is
// dead-lettered, not lost.
func (r *Runner) stopWorkers(ctx context.Context, g *graph) error {
	var pending int64
	for _, o := range g.outputs {
		if o.w != nil {
			close(o.w.jobs)
		}
	}
	done := make(chan struct{})
	go func() {
		for _, o := range g.outputs {
			if o.w != nil {
				o.w.wg.Wait()
			}
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, o := range g.outputs {
		if o.w != nil {
			pending += o.w.queued.Load()
		}
	}
	// Exports in flight are stopped; they and the jobs still queued fail
	// at once and go to the dead-letter file.
	if g.stopExports != nil {
		g.stopExports()
	}
	<-done
	return fmt.Errorf("%d events were still with the outputs at the drain deadline: dead-lettered", pending)
}

// dispatch hands the kept, routed events of b to the outputs' queues and
// returns the batch in flight; with wait it returns once every output has
// handled its share.
func (r *Runner) dispatch(ctx context.Context, g *graph, b *pipeline.Batch, start time.Time) *inflight {
	fl := &inflight{start: start, done: make(chan struct{})}
	if n := len(b.Events); n > 0 {
		fl.lastSeq = b.Events[n-1].Sequence
	}
	type share struct {
		w *worker
		j job
	}
	var shares []share
	for oi, o := range g.outputs {
		bit := uint64(1) << uint(oi)
		n := 0
		for i := range b.Events {
			if b.Verdicts[i] == pipeline.Keep && b.Routes[i]&bit != 0 {
				n++
			}
		}
		if n == 0 {
			continue
		}
		// The batch is reused once the handler returns: the output gets
		// copies, in buffers the worker gives back (r.jobs).
		j := r.jobs.get(n)
		for i := range b.Events {
			if b.Verdicts[i] == pipeline.Keep && b.Routes[i]&bit != 0 {
				j.events = append(j.events, b.Events[i])
				j.idx = append(j.idx, i)
			}
		}
		j.b = fl
		shares = append(shares, share{o.w, j})
	}
	// Outputs writing the same encoding share it: each event is encoded
	// once per format, not once per output.
	var shared *pipeline.SharedEncodings
	for a := range shares {
		f := shares[a].w.out.encoding
		if f == "" {
			continue
		}
		for c := a + 1; c < len(shares); c++ {
			if shares[c].w.out.encoding == f {
				if shared == nil {
					shared = pipeline.NewSharedEncodings(len(b.Events))
				}
				shared.Add(f)
				shares[a].j.shared, shares[c].j.shared = shared, shared
			}
		}
	}
	if r.tapUsers.Load() > 0 {
		for i := range b.Events {
			if b.Verdicts[i] == pipeline.Keep && b.Routes[i] != 0 {
				fl.tap, fl.tapIdx = append(fl.tap, b.Events[i]), append(fl.tapIdx, i)
			}
		}
	}
	fl.left.Store(int32(len(shares)) + 1) // +1: dispatch itself, done below
	r.inflight.add(fl)
	for _, s := range shares {
		if err := s.w.enqueue(ctx, s.j); err != nil {
			// Not taken (dead_letter overflow, or shutting down): the
			// events go to the dead-letter file with the reason.
			r.exported(s.w.out, s.j, pipeline.Permanent(fmt.Errorf("output %s: %w", s.w.out.name, err)))
		}
	}
	r.shareDone(fl)
	return fl
}

// exported accounts for an output's share of a batch once it has been
// handled: counters, the dead letters of what failed, and the batch's
// completion.
func (r *Runner) exported(o *output, j job, err error) {
	st := o.stats
	st.batches.Add(1)
	var lost []int
	if err == nil {
		st.mu.Lock()
		st.lastOK = time.Now()
		st.mu.Unlock()
	} else {
		// A PartialError names the events that were not delivered; the
		// others were.
		lost = pipeline.FailedEvents(err, len(j.events))
		st.mu.Lock()
		st.lastErr, st.lastErrAt = r.opts.scrub.String(err.Error()), time.Now()
		st.mu.Unlock()
		r.log.Error("export failed; events go to the dead letter", "output", o.name, "events", len(lost), "err", err)
	}
	if ok := len(j.events) - len(lost); ok > 0 {
		st.exported.Add(uint64(ok))
		r.metrics.exported.WithLabelValues(o.name).Add(float64(ok))
	}
	if len(lost) > 0 {
		st.failed.Add(uint64(len(lost)))
		r.metrics.exportFailures.WithLabelValues(o.name).Add(float64(len(lost)))
		dead := make([]export.DeadLetterRecord, 0, len(lost))
		failed := make([]int, 0, len(lost))
		for _, k := range lost {
			if k >= 0 && k < len(j.events) {
				dead = append(dead, export.EventRecord(&j.events[k], "export", o.name, err.Error()))
				failed = append(failed, j.idx[k])
			}
		}
		_ = r.deadLetter(dead)
		j.b.mu.Lock()
		j.b.failed = append(j.b.failed, failed...)
		j.b.mu.Unlock()
	}
	r.shareDone(j.b)
}

// wait returns when every output has handled the batch, or ctx's error.
func (fl *inflight) wait(ctx context.Context) error {
	select {
	case <-fl.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shareDone counts one share of fl as handled; the last completes it.
func (r *Runner) shareDone(fl *inflight) {
	if fl.left.Add(-1) != 0 {
		return
	}
	r.metrics.batchSeconds.Observe(time.Since(fl.start).Seconds())
	// Live tails see the events exported: taken by every output they were
	// routed to, as exported (sequence and all).
	for k, ev := range fl.tap {
		if !slices.Contains(fl.failed, fl.tapIdx[k]) {
			_ = r.tap.Emit(context.Background(), ev)
		}
	}
	r.inflight.complete(fl, &r.commits)
	close(fl.done)
}

// batches are the batches in flight in the order they were dispatched:
// a source's Commit must wait for every batch up to its events, and
// outputs finish batches out of order.
type batches struct {
	mu    sync.Mutex
	queue []*inflight
	empty chan struct{} // closed when queue is empty (made on demand)
}

func (q *batches) add(fl *inflight) {
	q.mu.Lock()
	q.queue = append(q.queue, fl)
	q.mu.Unlock()
}

// complete marks fl complete and tells commits how far every batch is.
func (q *batches) complete(fl *inflight, c *commits) {
	q.mu.Lock()
	fl.ready = true
	var upTo uint64
	for len(q.queue) > 0 && q.queue[0].ready {
		upTo = max(upTo, q.queue[0].lastSeq)
		q.queue[0] = nil
		q.queue = q.queue[1:]
	}
	if len(q.queue) == 0 && q.empty != nil {
		close(q.empty)
		q.empty = nil
	}
	q.mu.Unlock()
	if upTo > 0 {
		c.handled(upTo)
	}
}

// wait returns when no batch is in flight, or at ctx's end.
func (q *batches) wait(ctx context.Context) error {
	q.mu.Lock()
	if len(q.queue) == 0 {
		q.mu.Unlock()
		return nil
	}
	if q.empty == nil {
		q.empty = make(chan struct{})
	}
	empty := q.empty
	q.mu.Unlock()
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
