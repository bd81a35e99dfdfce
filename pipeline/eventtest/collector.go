// Package eventtest helps test code that emits events: a Collector that is
// an Emitter and keeps what it is given, and assertions whose failure
// messages show what was emitted.
package eventtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Collector is an enabled Emitter that records every event it is given,
// after applying the same type filter as a Bus with the same FilterConfig,
// so a test sees what production would. It stamps Time, Sequence, ID and
// SchemaVersion like the bus. Safe for concurrent use.
type Collector struct {
	filter *pipeline.Filter
	ids    *pipeline.IDGenerator

	mu      sync.Mutex
	events  []pipeline.Event
	changed chan struct{} // closed and replaced on every new event
}

// New returns a Collector with the bus defaults (timing events on, state
// and debug events off, every type included).
func New() *Collector {
	c, err := NewWithFilter(pipeline.DefaultConfig().Filter)
	if err != nil {
		panic(err) // the default filter always compiles
	}
	return c
}

// NewWithFilter returns a Collector that applies fc.
func NewWithFilter(fc pipeline.FilterConfig) (*Collector, error) {
	f, err := pipeline.NewFilter(fc)
	if err != nil {
		return nil, err
	}
	return &Collector{filter: f, ids: pipeline.NewIDGenerator(), changed: make(chan struct{})}, nil
}

// Enabled is always true.
func (c *Collector) Enabled() bool { return true }

// TimingEvents reports the filter's emit_timing_events switch.
func (c *Collector) TimingEvents() bool { return c.filter.TimingEvents() }

// Emit records ev if the filter lets it through. A bad type is an error, as
// on the bus.
func (c *Collector) Emit(_ context.Context, ev pipeline.Event) error {
	if !pipeline.ValidType(ev.Type) {
		return fmt.Errorf("eventtest: invalid event type %q", ev.Type)
	}
	if !c.filter.Allow(ev.Type) {
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.SchemaVersion == "" {
		ev.SchemaVersion = pipeline.SchemaVersion
	}
	if ev.ID == "" {
		ev.ID = c.ids.New(ev.Time)
	}
	ev = ev.Clone()
	c.mu.Lock()
	ev.Sequence = uint64(len(c.events) + 1)
	c.events = append(c.events, ev)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// Events returns a copy of what was recorded, in order.
func (c *Collector) Events() []pipeline.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pipeline.Event(nil), c.events...)
}

// Matching returns the recorded events whose type matches pattern.
func (c *Collector) Matching(pattern string) []pipeline.Event {
	p := pipeline.MustCompilePattern(pattern)
	var out []pipeline.Event
	for _, ev := range c.Events() {
		if p.Match(ev.Type) {
			out = append(out, ev)
		}
	}
	return out
}

// Reset forgets every recorded event.
func (c *Collector) Reset() {
	c.mu.Lock()
	c.events = nil
	c.mu.Unlock()
}

// WaitFor waits until an event matching pattern has been recorded (or was
// already) and returns the first one; it fails the test after timeout. It
// waits on the collector's own notification, not by polling.
func (c *Collector) WaitFor(t testing.TB, pattern string, timeout time.Duration) pipeline.Event {
	t.Helper()
	p, err := pipeline.CompilePattern(pattern)
	if err != nil {
		t.Fatalf("eventtest: WaitFor: %v", err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for _, ev := range c.events {
			if p.Match(ev.Type) {
				c.mu.Unlock()
				return ev
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("eventtest: no event matching %q within %v; emitted:\n%s", pattern, timeout, c.summary())
			return pipeline.Event{}
		}
	}
}

func (c *Collector) types() []string {
	evs := c.Events()
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func (c *Collector) summary() string {
	evs := c.Events()
	if len(evs) == 0 {
		return "  (nothing)"
	}
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %d %s %s\n", ev.Sequence, ev.Type, ev.Data)
	}
	return b.String()
}

// AssertEmitted fails unless at least one event matching pattern was
// recorded.
func (c *Collector) AssertEmitted(t testing.TB, pattern string) {
	t.Helper()
	if len(c.Matching(pattern)) == 0 {
		t.Errorf("eventtest: no event matching %q was emitted; emitted:\n%s", pattern, c.summary())
	}
}

// AssertNotEmitted fails if an event matching pattern was recorded.
func (c *Collector) AssertNotEmitted(t testing.TB, pattern string) {
	t.Helper()
	if got := c.Matching(pattern); len(got) > 0 {
		t.Errorf("eventtest: %d events matching %q were emitted; emitted:\n%s", len(got), pattern, c.summary())
	}
}

// AssertCount fails unless exactly n events matching pattern were recorded.
func (c *Collector) AssertCount(t testing.TB, pattern string, n int) {
	t.Helper()
	if got := len(c.Matching(pattern)); got != n {
		t.Errorf("eventtest: %d events matching %q, want %d; emitted:\n%s", got, pattern, n, c.summary())
	}
}

// AssertSequence fails unless the recorded types, in order, are exactly
// types. The message is a diff (-want +got).
func (c *Collector) AssertSequence(t testing.TB, types ...string) {
	t.Helper()
	if diff := cmp.Diff(types, c.types()); diff != "" {
		t.Errorf("eventtest: emitted types differ (-want +got):\n%s", diff)
	}
}

// AssertDataContains fails unless some event matching pattern has data
// holding every key of want with an equal value (compared as JSON). The
// message diffs want against the closest candidates.
func (c *Collector) AssertDataContains(t testing.TB, pattern string, want map[string]any) {
	t.Helper()
	wantJSON := normalize(want)
	var seen []map[string]any
	for _, ev := range c.Matching(pattern) {
		var got map[string]any
		if err := json.Unmarshal(ev.Data, &got); err != nil {
			continue
		}
		sub := map[string]any{}
		for k := range wantJSON {
			if v, ok := got[k]; ok {
				sub[k] = v
			}
		}
		if cmp.Equal(wantJSON, sub) {
			return
		}
		seen = append(seen, sub)
	}
	if len(seen) == 0 {
		t.Errorf("eventtest: no event matching %q with object data; emitted:\n%s", pattern, c.summary())
		return
	}
	t.Errorf("eventtest: no event matching %q has data containing %v (-want +got, per candidate):\n%s",
		pattern, want, diffAll(wantJSON, seen))
}

func diffAll(want map[string]any, got []map[string]any) string {
	var b strings.Builder
	for _, g := range got {
		b.WriteString(cmp.Diff(want, g))
	}
	return b.String()
}

// normalize round-trips v through JSON so that Go values compare with
// decoded ones (numbers as float64 and so on).
func normalize(v map[string]any) map[string]any {
	raw, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

// AssertCorrelated fails unless every event matching pattern (at least one)
// shares one non-empty correlation id, and each event's causation id, when
// set, names an event that was recorded.
func (c *Collector) AssertCorrelated(t testing.TB, pattern string) {
	t.Helper()
	evs := c.Matching(pattern)
	if len(evs) == 0 {
		t.Errorf("eventtest: no event matching %q to check correlation; emitted:\n%s", pattern, c.summary())
		return
	}
	ids := map[string]bool{}
	for _, ev := range c.Events() {
		ids[ev.ID] = true
	}
	corr := evs[0].CorrelationID
	got := make([]string, len(evs))
	want := make([]string, len(evs))
	for i, ev := range evs {
		got[i], want[i] = ev.CorrelationID, corr
		if ev.CausationID != "" && !ids[ev.CausationID] {
			t.Errorf("eventtest: %s (seq %d) names causation_id %s, which was not emitted", ev.Type, ev.Sequence, ev.CausationID)
		}
	}
	if corr == "" {
		t.Errorf("eventtest: events matching %q have no correlation id; emitted:\n%s", pattern, c.summary())
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("eventtest: events matching %q are not correlated (-want +got):\n%s", pattern, diff)
	}
}
