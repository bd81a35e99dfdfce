package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// scope is what a context carries for events: the emitter, the correlation
// id, and the id of the event that caused what happens next. One value under
// one key keeps a lookup to a single ctx.Value walk.
type scope struct {
	em          Emitter
	correlation string
	cause       string
}

type scopeKey struct{}

func scopeFrom(ctx context.Context) *scope {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(scopeKey{}).(*scope)
	return s
}

func withScope(ctx context.Context, f func(*scope)) context.Context {
	var s scope
	if old := scopeFrom(ctx); old != nil {
		s = *old
	}
	f(&s)
	return context.WithValue(ctx, scopeKey{}, &s)
}

// WithEmitter returns a context carrying em. Code that never asks for events
// keeps working unchanged: a context without an emitter means events off.
func WithEmitter(ctx context.Context, em Emitter) context.Context {
	return withScope(ctx, func(s *scope) { s.em = em })
}

// EmitterFrom returns the emitter ctx carries, or nil.
func EmitterFrom(ctx context.Context) Emitter {
	if s := scopeFrom(ctx); s != nil {
		return s.em
	}
	return nil
}

// WithCorrelation returns a context whose events carry correlation id id.
func WithCorrelation(ctx context.Context, id string) context.Context {
	return withScope(ctx, func(s *scope) { s.correlation = id })
}

// CorrelationFrom returns the correlation id ctx carries, or "".
func CorrelationFrom(ctx context.Context) string {
	if s := scopeFrom(ctx); s != nil {
		return s.correlation
	}
	return ""
}

// WithCause returns a context whose events name id as their causation_id.
func WithCause(ctx context.Context, id string) context.Context {
	return withScope(ctx, func(s *scope) { s.cause = id })
}

// CauseFrom returns the causation id ctx carries, or "".
func CauseFrom(ctx context.Context) string {
	if s := scopeFrom(ctx); s != nil {
		return s.cause
	}
	return ""
}

// On reports whether ctx carries an enabled emitter. Check it before building
// an expensive event.
func On(ctx context.Context) bool {
	s := scopeFrom(ctx)
	return s != nil && s.em != nil && s.em.Enabled()
}

// Emit sends an event of type typ with data (encoded as JSON; a
// json.RawMessage or []byte is taken as JSON as is) through the emitter ctx
// carries, with the context's correlation and causation ids. Without an
// enabled emitter it does nothing, and data is never encoded.
func Emit(ctx context.Context, typ string, data any) error {
	s := scopeFrom(ctx)
	if s == nil || s.em == nil || !s.em.Enabled() {
		return nil
	}
	raw, err := encodeData(data)
	if err != nil {
		return fmt.Errorf("eventpipe: emit %s: %w", typ, err)
	}
	return s.em.Emit(ctx, Event{Type: typ, CorrelationID: s.correlation, CausationID: s.cause, Data: raw})
}

func encodeData(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if !json.Valid(d) {
			return nil, fmt.Errorf("data is not valid JSON")
		}
		return d, nil
	case []byte:
		if !json.Valid(d) {
			return nil, fmt.Errorf("data is not valid JSON")
		}
		return d, nil
	}
	return json.Marshal(data)
}

// timingReporter is implemented by emitters that know whether timing events
// are on (Bus and eventtest.Collector do).
type timingReporter interface{ TimingEvents() bool }

// TimingEvents reports whether the bus adds timing data (emit_timing_events).
func (b *Bus) TimingEvents() bool { return b.filter.Load().TimingEvents() }

// Track runs fn as a unit of work called name and reports it: it emits
// "<name>.started", then "<name>.completed" (with duration_ms when timing
// events are on) or "<name>.failed" (with the error text, which the sanitize
// stage scrubs like any data). All three share the context's correlation id
// (a new one if it has none); the started event causes the other two and is
// the cause of every event fn emits. A panic in fn is reported as failed and
// re-raised. Without an enabled emitter Track just calls fn.
func Track(ctx context.Context, name string, fn func(ctx context.Context) error) (err error) {
	s := scopeFrom(ctx)
	if s == nil || s.em == nil || !s.em.Enabled() {
		return fn(ctx)
	}
	em := s.em
	timing := true
	if tr, ok := em.(timingReporter); ok {
		timing = tr.TimingEvents()
	}
	start := time.Now().UTC()
	corr := s.correlation
	if corr == "" {
		corr = NewID(start)
	}
	startedID := NewID(start)
	_ = em.Emit(ctx, Event{Type: name + ".started", ID: startedID, Time: start, CorrelationID: corr, CausationID: s.cause})
	inner := withScope(ctx, func(sc *scope) { sc.correlation, sc.cause = corr, startedID })
	finish := func(failure any) {
		end := time.Now().UTC()
		data := map[string]any{}
		if timing {
			data["duration_ms"] = float64(end.Sub(start).Nanoseconds()) / 1e6
		}
		typ := name + ".completed"
		if failure != nil {
			typ = name + ".failed"
			data["error"] = fmt.Sprint(failure)
		}
		raw, _ := json.Marshal(data)
		if len(data) == 0 {
			raw = nil
		}
		_ = em.Emit(ctx, Event{Type: typ, Time: end, CorrelationID: corr, CausationID: startedID, Data: raw})
	}
	defer func() {
		if r := recover(); r != nil {
			finish(fmt.Sprintf("panic: %v", r))
			panic(r)
		}
	}()
	err = fn(inner)
	if err != nil {
		finish(err)
	} else {
		finish(nil)
	}
	return err
}

// NewID returns a fresh time-sortable id (UUIDv7) for an event at time t.
func NewID(t time.Time) string {
	return NewIDGenerator().New(t)
}
