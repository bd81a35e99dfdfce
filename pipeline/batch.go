package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Verdict is what the stages decided for one event of a batch.
type Verdict uint8

const (
	Keep       Verdict = iota // pass on to routing and export
	Drop                      // filtered out on purpose (counted, not an error)
	DeadLetter                // refused: goes to the dead-letter destination with its reason
)

func (v Verdict) String() string {
	switch v {
	case Drop:
		return "drop"
	case DeadLetter:
		return "dead_letter"
	}
	return "keep"
}

// Batch is a run of events that the stages after the buffer work on
// together. Stages mark verdicts and routes in place; they never reorder.
// Verdicts, Reasons and Routes have the length of Events.
type Batch struct {
	Events   []Event
	Verdicts []Verdict
	// Reasons holds, for a DeadLetter (or Drop) verdict, why; "" otherwise.
	Reasons []string
	// Stages holds the name of the stage that set a non-Keep verdict.
	Stages []string
	// Routes holds, per event, a bit set of output indices (bit i: the i-th
	// output of the pipeline). Zero before routing.
	Routes []uint64
}

// Reset prepares b to carry events (which it takes, not copies), with every
// verdict Keep and no routes. It reuses b's slices.
func (b *Batch) Reset(events []Event) {
	n := len(events)
	b.Events = events
	b.Verdicts = resize(b.Verdicts, n)
	b.Reasons = resize(b.Reasons, n)
	b.Stages = resize(b.Stages, n)
	b.Routes = resize(b.Routes, n)
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// Len is the number of events in the batch.
func (b *Batch) Len() int { return len(b.Events) }

// Mark sets the verdict of event i, with the stage and reason.
func (b *Batch) Mark(i int, v Verdict, stage, reason string) {
	b.Verdicts[i] = v
	b.Stages[i] = stage
	b.Reasons[i] = reason
}

// Kept counts events still marked Keep.
func (b *Batch) Kept() int {
	n := 0
	for _, v := range b.Verdicts {
		if v == Keep {
			n++
		}
	}
	return n
}

// BatchHandler receives every batch that leaves the bus buffer. The bus
// calls it from one goroutine, one batch at a time; an event leaves the bus
// for good when HandleBatch returns. The batch and its slices are reused
// after HandleBatch returns: copy what must outlive the call.
type BatchHandler interface {
	HandleBatch(ctx context.Context, b *Batch) error
}

// BatchHandlerFunc adapts a function to BatchHandler.
type BatchHandlerFunc func(ctx context.Context, b *Batch) error

// HandleBatch calls f.
func (f BatchHandlerFunc) HandleBatch(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Stage processes a batch in place: a filter marks drops, a transform
// rewrites events, a router sets routes. Native and wasm stages satisfy the
// same interface. An error from Process is a failure of the stage itself
// (not of an event); the runner applies the stage's failure policy.
type Stage interface {
	Process(ctx context.Context, b *Batch) error
}

// Component is the lifecycle of stages, exporters and sources that hold
// resources: Start before the first use, Shutdown with a deadline after the
// last.
type Component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// A Sanitizer rewrites an event in place, reporting whether it changed it
// (Config.Sanitizer); *stage.Sanitize is one.
type Sanitizer interface {
	Event(ev *Event) (changed bool, err error)
}

// Exporter delivers events to one named output. Export returns nil when the
// output accepted every event, an error wrapped with Permanent when retrying
// cannot help, and any other error when a retry may succeed. Retry, backoff
// and dead-lettering wrap exporters once (in the runner), not inside each.
type Exporter interface {
	Component
	Export(ctx context.Context, events []Event) error
}

// Publisher is what a Source pushes into: the bus, with backpressure.
type Publisher interface {
	// Publish accepts an event, waiting for room when the buffer is full.
	Publish(ctx context.Context, ev Event) error
	// Reject records input that is not an event: counted and sent to the
	// dead-letter destination with its reason and position.
	Reject(ctx context.Context, r Rejected)
}

// BatchPublisher is a Publisher that takes several events at once. With
// persistence on it returns only once the store has acknowledged the
// events it accepted, so a source that acknowledges its own input (an HTTP
// 202, a file checkpoint) does so after PublishBatch returns.
type BatchPublisher interface {
	Publisher
	// PublishBatch publishes evs in order. errs (as long as evs) receives
	// each event's own refusal, a *DecodeError (bad type, too large). It
	// returns how many events were dealt with — accepted, filtered out or
	// refused in errs — and, when that is fewer than len(evs), why the
	// rest were not: the rate limit, a full buffer, an unreachable store,
	// ctx's end.
	PublishBatch(ctx context.Context, evs []Event, errs []error) (int, error)
}

// Committer is a Publisher that can tell a source when what it published
// is safe: stored when persistence is on; otherwise exported or
// dead-lettered. Sources that keep a read position (a followed file) save
// it in fn.
type Committer interface {
	// Commit calls fn, on another goroutine or before it returns, once
	// every event published before the call is safe. fn never runs if the
	// process stops first.
	Commit(fn func())
}

// PublishBatch publishes evs through p: at once when p is a
// BatchPublisher, else one by one with Publish (see
// BatchPublisher.PublishBatch for the results).
func PublishBatch(ctx context.Context, p Publisher, evs []Event, errs []error) (int, error) {
	if bp, ok := p.(BatchPublisher); ok {
		return bp.PublishBatch(ctx, evs, errs)
	}
	for i := range evs {
		err := p.Publish(ctx, evs[i])
		if err != nil && !isDecodeError(err) {
			return i, err
		}
		errs[i] = err
	}
	return len(evs), nil
}

// isDecodeError is errors.As for *DecodeError, in a function of its own:
// the target escapes, and must not be allocated per event for nothing.
func isDecodeError(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}

// Rejected is input that never became an event.
type Rejected struct {
	Source string // which ingest: "stdin", a file name, "http"
	Offset string // where: "line 12", "byte 300", "item 3"
	Raw    []byte // the input as received
	Reason string
	Time   time.Time
}

// Source produces events until its context ends or its input is exhausted.
// A finite source (a file, stdin) returns nil when it reached its end, so a
// run over a file can end by itself; Finite says which kind it is.
type Source interface {
	Run(ctx context.Context, p Publisher) error
	Finite() bool
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that IsPermanent reports true: the runner will not
// retry it and dead-letters the batch at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err (or an error it wraps) was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// PartialError is an exporter's failure to deliver some of a batch: the
// events at the indexes Failed (ascending, into the slice given to Export)
// were not delivered, and Err says why; every other event was. An exporter
// that sends events one by one (a webhook in CloudEvents binary mode)
// returns it so that a retry sends only what failed and only the failed
// events are dead-lettered. Err may be Permanent.
type PartialError struct {
	Failed []int
	// Permanent are the indexes in Failed that would fail again (a 400):
	// a retry leaves them out.
	Permanent []int
	Err       error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%d events not delivered: %v", len(e.Failed), e.Err)
}
func (e *PartialError) Unwrap() error { return e.Err }

// FailedEvents returns the indexes of the events err says were not
// delivered, out of n: those of a PartialError, otherwise all of them.
func FailedEvents(err error, n int) []int {
	var pe *PartialError
	if errors.As(err, &pe) {
		return pe.Failed
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	return all
}
