package eventtest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/eventtest"
)

// recorder is a testing.TB that keeps failures instead of failing, so the
// assertions themselves can be tested.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
}
func (r *recorder) failed() string { return strings.Join(r.errors, "\n") }

func emit(t *testing.T, c *eventtest.Collector, typ, data string) {
	t.Helper()
	e := pipeline.Event{Type: typ}
	if data != "" {
		e.Data = []byte(data)
	}
	if err := c.Emit(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func TestAssertionsPassAndFail(t *testing.T) {
	c := eventtest.New()
	emit(t, c, "agent.started", `{"step":1}`)
	emit(t, c, "agent.completed", `{"result":"ok","n":3}`)
	emit(t, c, "agent.debug", `{}`) // debug events are off by default: filtered

	c.AssertEmitted(t, "agent.*")
	c.AssertCount(t, "agent.*", 2)
	c.AssertSequence(t, "agent.started", "agent.completed")
	c.AssertDataContains(t, "agent.completed", map[string]any{"result": "ok", "n": 3})
	c.AssertNotEmitted(t, "*.debug")

	cases := []struct {
		name string
		fn   func(r *recorder)
		want string
	}{
		{"emitted", func(r *recorder) { c.AssertEmitted(r, "tool.*") }, `no event matching "tool.*"`},
		{"count", func(r *recorder) { c.AssertCount(r, "agent.*", 3) }, "2 events matching"},
		{"sequence", func(r *recorder) { c.AssertSequence(r, "agent.started", "agent.failed") }, `"agent.failed"`},
		{"data", func(r *recorder) {
			c.AssertDataContains(r, "agent.completed", map[string]any{"result": "bad"})
		}, `"result": string("bad")`},
		{"correlated", func(r *recorder) { c.AssertCorrelated(r, "agent.*") }, "no correlation id"},
		{"not emitted", func(r *recorder) { c.AssertNotEmitted(r, "agent.started") }, "1 events matching"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			tc.fn(r)
			if !strings.Contains(r.failed(), tc.want) {
				t.Errorf("failure message %q does not contain %q", r.failed(), tc.want)
			}
		})
	}
}

func TestAssertCorrelatedDiff(t *testing.T) {
	c := eventtest.New()
	_ = c.Emit(context.Background(), pipeline.Event{Type: "a.one", CorrelationID: "x"})
	_ = c.Emit(context.Background(), pipeline.Event{Type: "a.two", CorrelationID: "y", CausationID: "nope"})
	r := &recorder{TB: t}
	c.AssertCorrelated(r, "a.*")
	if msg := r.failed(); !strings.Contains(msg, "not correlated") || !strings.Contains(msg, "nope") {
		t.Errorf("message %q", msg)
	}
}

func TestWaitFor(t *testing.T) {
	c := eventtest.New()
	start := make(chan struct{})
	go func() {
		<-start
		_ = c.Emit(context.Background(), pipeline.Event{Type: "job.started"})
		_ = c.Emit(context.Background(), pipeline.Event{Type: "job.done"})
	}()
	close(start)
	e := c.WaitFor(t, "job.done", 10*time.Second)
	if e.Type != "job.done" || e.Sequence != 2 {
		t.Errorf("got %+v", e)
	}
	r := &recorder{TB: t}
	c.WaitFor(r, "never.*", 5*time.Millisecond)
	if !r.fatal || !strings.Contains(r.failed(), "job.started") {
		t.Errorf("WaitFor timeout message %q", r.failed())
	}
}

func TestCollectorAppliesBusFilter(t *testing.T) {
	c, err := eventtest.NewWithFilter(pipeline.FilterConfig{EmitDebugEvents: true, ExcludeTypes: []string{"*.secret"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"agent.debug", "agent.secret", "timing.x"} {
		emit(t, c, typ, "")
	}
	// timing off in this FilterConfig (zero value), debug on, secret excluded.
	c.AssertSequence(t, "agent.debug")
	if err := c.Emit(context.Background(), pipeline.Event{Type: "bad"}); err == nil {
		t.Error("invalid type accepted")
	}
}

// ExampleCollector shows a test of code that emits events.
func ExampleCollector() {
	c := eventtest.New()
	ctx := pipeline.WithEmitter(context.Background(), c)
	_ = pipeline.Track(ctx, "agent", func(ctx context.Context) error {
		return pipeline.Emit(ctx, "agent.thought", map[string]string{"text": "hi"})
	})
	for _, e := range c.Events() {
		fmt.Println(e.Sequence, e.Type)
	}
	// Output:
	// 1 agent.started
	// 2 agent.thought
	// 3 agent.completed
}
