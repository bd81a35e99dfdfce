package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Failure kinds, as counted in metrics.
const (
	FailTrap      = "trap"
	FailTimeout   = "timeout"
	FailFuel      = "fuel"  // the batch used up its fuel
	FailStack     = "stack" // calls nested past the stack bound
	FailBadOutput = "bad_output"
	FailError     = "error" // the plugin returned an error code
	FailStart     = "start" // a fresh instance would not start
	FailBackoff   = "backoff"
)

// Metrics are one plugin's counters.
type Metrics struct {
	Batches   atomic.Uint64
	EventsIn  atomic.Uint64
	EventsOut atomic.Uint64 // kept after the plugin
	Nanos     atomic.Uint64 // time spent in batches
	FuelUsed  atomic.Uint64 // fuel units metered modules used
	// PassedThrough counts events the plugin got as the previous plugin's
	// output, copied as it was instead of encoded again.
	PassedThrough atomic.Uint64
	restarts      atomic.Uint64
	logsDropped   atomic.Uint64
	mu            sync.Mutex
	failures      map[string]uint64
	custom        map[string]int64
}

func newMetrics() *Metrics {
	return &Metrics{failures: map[string]uint64{}, custom: map[string]int64{}}
}

func (m *Metrics) fail(kind string) { m.failN(kind, 1) }

func (m *Metrics) failN(kind string, n uint64) {
	m.mu.Lock()
	m.failures[kind] += n
	m.mu.Unlock()
}

// addCustom adds to a plugin's own counter; a plugin has at most
// MaxMetrics of them (false: a new name beyond that is refused).
func (m *Metrics) addCustom(name string, d int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.custom[name]; !ok && len(m.custom) >= MaxMetrics {
		return false
	}
	m.custom[name] += d
	return true
}

// Snapshot is a copy of a plugin's counters.
type Snapshot struct {
	Batches, EventsIn, EventsOut, Restarts, LogsDropped, FuelUsed uint64
	// PassedThrough are events the plugin got as the previous plugin's
	// output, not encoded again.
	PassedThrough uint64
	Time          time.Duration
	Failures      map[string]uint64
	Custom        map[string]int64
}

// Stats returns the plugin's counters.
func (p *Plugin) Stats() Snapshot {
	m := p.metrics
	s := Snapshot{Batches: m.Batches.Load(), EventsIn: m.EventsIn.Load(), EventsOut: m.EventsOut.Load(),
		Restarts: m.restarts.Load(), LogsDropped: m.logsDropped.Load(), FuelUsed: m.FuelUsed.Load(), Time: time.Duration(m.Nanos.Load()),
		PassedThrough: m.PassedThrough.Load(),
		Failures:      map[string]uint64{}, Custom: map[string]int64{}}
	m.mu.Lock()
	for k, v := range m.failures {
		s.Failures[k] = v
	}
	for k, v := range m.custom {
		s.Custom[k] = v
	}
	m.mu.Unlock()
	return s
}

// failure is a batch the plugin did not process, with why.
type failure struct {
	kind string
	err  error
}

func (f *failure) Error() string { return f.kind + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// Stage adapts a Plugin to pipeline.Stage with its failure policy and a
// crash-loop backoff: after 5 failures in a row batches get the policy
// without running, for 1s doubling up to 1m, until a run succeeds.
type Stage struct {
	*Plugin
	by          string // "plugin:<name>", the stage in verdict reasons
	mu          sync.Mutex
	consecutive int
	backoff     time.Duration
	skipUntil   time.Time
	scratch     []pipeline.Event // own copy of the kept events, when some are not
	view        []pipeline.Event // what the plugin sees this batch
	jsonBuf     []byte           // Extism input
	kept        []int            // the indexes of the events the plugin sees: all, or keptBuf
	keptBuf     []int
	all         []int // 0, 1, 2, ...: kept when every event is
	dropped     []bool

	// A transform's output, kept for the next plugin stage when it can
	// take it as it is (pass-through: no decode and encode again).
	prev     *Stage // the plugin stage right before this one, if any
	chained  bool   // a plugin stage runs right after this one (keep lastOut)
	lastOut  []byte // this stage's output for the current batch
	lastN    int    // its records
	lastABI  bool   // its records carry attributes (revision 2)
	lastGood bool   // lastOut is this batch's, no event dropped or host field rewritten
}

// ChainAfter tells the stage which stage runs right before it (the
// runner calls it). When that is a plugin transform whose output needs no
// repair, this stage copies that output into its guest instead of
// encoding the events again.
func (s *Stage) ChainAfter(prev pipeline.Stage) {
	if p, ok := prev.(*Stage); ok && p != s {
		s.prev, p.chained = p, true
	}
}

// Stage returns the plugin as a pipeline stage.
func (p *Plugin) Stage() *Stage { return &Stage{Plugin: p, by: "plugin:" + p.spec.Name} }

// Process runs the plugin on the batch's kept events (one call), or applies
// the failure policy when it fails. It returns nil: a plugin failure is
// handled here, counted and reported through the events' verdicts.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastGood = false // set again only if this batch's output can be passed on
	s.kept = s.keptIndexes(b.Verdicts)
	// The plugin sees the kept events: the batch's own slice when all are
	// kept (the common case, no copy), a compacted copy otherwise.
	if len(s.kept) == len(b.Events) {
		s.view = b.Events
	} else {
		s.scratch = s.scratch[:0]
		for _, i := range s.kept {
			s.scratch = append(s.scratch, b.Events[i])
		}
		s.view = s.scratch
	}
	defer func() { s.view = nil }()
	if len(s.kept) == 0 {
		return nil
	}
	start := time.Now()
	if start.Before(s.skipUntil) {
		s.metrics.fail(FailBackoff)
		s.apply(b, &failure{FailBackoff, fmt.Errorf("plugin failing repeatedly; not run until %s", s.skipUntil.Format(time.RFC3339))})
		return nil
	}
	err := s.run(ctx, b)
	s.metrics.Batches.Add(1)
	s.metrics.EventsIn.Add(uint64(len(s.kept)))
	s.metrics.Nanos.Add(uint64(time.Since(start)))
	if err == nil {
		s.consecutive, s.backoff = 0, 0
		s.metrics.EventsOut.Add(uint64(countKept(b.Verdicts, s.kept)))
		return nil
	}
	var f *failure
	if !errors.As(err, &f) {
		f = &failure{FailError, err}
	}
	s.metrics.fail(f.kind)
	s.spec.Logger.Warn("plugin failed; batch handled by on_error", "plugin", s.spec.Name, "kind", f.kind, "err", f.err, "on_error", s.spec.OnError, "events", len(s.kept))
	s.consecutive++
	if s.consecutive >= 5 {
		if s.backoff == 0 {
			s.backoff = time.Second
		} else {
			s.backoff = min(2*s.backoff, time.Minute)
		}
		s.skipUntil = time.Now().Add(s.backoff)
	}
	s.apply(b, f)
	return nil
}

// keptIndexes is the indexes of the events whose verdict is Keep.
func (s *Stage) keptIndexes(verdicts []pipeline.Verdict) []int {
	n := len(verdicts)
	if !slices.ContainsFunc(verdicts, func(v pipeline.Verdict) bool { return v != pipeline.Keep }) {
		for len(s.all) < n {
			s.all = append(s.all, len(s.all))
		}
		return s.all[:n]
	}
	s.keptBuf = s.keptBuf[:0]
	for i, v := range verdicts {
		if v == pipeline.Keep {
			s.keptBuf = append(s.keptBuf, i)
		}
	}
	return s.keptBuf
}

// countKept counts the events at kept whose verdict is still Keep.
func countKept(verdicts []pipeline.Verdict, kept []int) int {
	n := 0
	if len(kept) == len(verdicts) { // all of them: no indirection
		for _, v := range verdicts {
			if v == pipeline.Keep {
				n++
			}
		}
		return n
	}
	for _, i := range kept {
		if verdicts[i] == pipeline.Keep {
			n++
		}
	}
	return n
}

// apply gives the kept events the on_error treatment.
func (s *Stage) apply(b *pipeline.Batch, f *failure) {
	reason := fmt.Sprintf("plugin %s failed (%s): %v", s.spec.Name, f.kind, f.err)
	for _, i := range s.kept {
		switch s.spec.OnError {
		case "fail_open":
		case "fail_closed":
			b.Mark(i, pipeline.Drop, s.by, reason)
		default:
			b.Mark(i, pipeline.DeadLetter, s.by, reason)
		}
	}
}

// run makes the one call for the batch and applies its output.
func (s *Stage) run(ctx context.Context, b *pipeline.Batch) error {
	if s.ext != nil {
		return s.runExtism(ctx, b)
	}
	in, err := s.acquire(ctx)
	if err != nil {
		return &failure{FailStart, err}
	}
	broken := false
	defer func() { s.release(ctx, in, broken) }()
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	in.arm(s.batchFuel(len(s.view)), s.spec.Timeout)
	defer s.disarm(in)
	attrs := s.Plugin.manifest.ABI >= 2
	// The previous plugin's output, as it is, when it is this batch's
	// events unchanged since (no stage between, none dropped, no host
	// field rewritten) in the revision this plugin reads.
	var pass []byte
	if p := s.prev; p != nil && p.lastGood && p.lastN == len(s.view) && p.lastABI == attrs && s.reads == allFields {
		pass = p.lastOut
	}
	var ptr uint32
	var size int
	if pass != nil {
		var view []byte
		ptr, view, err = in.view(cctx, len(pass))
		size = copy(view, pass)
	} else {
		ptr, size, err = in.encode(cctx, s.view, attrs, s.reads)
	}
	if errors.Is(err, errFieldTooLong) {
		return &failure{FailError, err}
	}
	if err != nil {
		broken = true
		return s.classify(cctx, in, err)
	}
	if pass != nil {
		s.metrics.PassedThrough.Add(uint64(len(s.view)))
	}
	in.stack[0], in.stack[1] = uint64(ptr), uint64(size)
	if err := in.process.CallWithStack(cctx, in.stack[:]); err != nil {
		broken = true
		return s.classify(cctx, in, err)
	}
	res := int64(in.stack[0])
	if res < 0 {
		return &failure{FailError, fmt.Errorf("eventpipe_process returned %d: %s", res, in.lastError(cctx))}
	}
	out, ok := in.read(uint64(res))
	if !ok {
		broken = true
		return &failure{FailBadOutput, fmt.Errorf("output pointer %#x+%d is outside memory (%d bytes)", uint32(res>>32), uint32(res), in.mem.Size())}
	}
	n := len(s.kept)
	switch s.manifest.Kind {
	case KindFilter:
		if len(out) != n {
			broken = true
			return &failure{FailBadOutput, fmt.Errorf("filter output is %d bytes for %d events", len(out), n)}
		}
		for k, i := range s.kept {
			switch out[k] {
			case 0:
			case 1:
				b.Mark(i, pipeline.Drop, s.by, "dropped by plugin")
			case 2:
				b.Mark(i, pipeline.DeadLetter, s.by, "refused by plugin")
			default:
				broken = true
				return &failure{FailBadOutput, fmt.Errorf("verdict %d for event %d (want 0, 1 or 2)", out[k], k)}
			}
		}
	case KindRoute:
		if len(out) != 8*n {
			broken = true
			return &failure{FailBadOutput, fmt.Errorf("route output is %d bytes for %d events (want %d)", len(out), n, 8*n)}
		}
		limit := uint64(1)<<uint(len(s.spec.Outputs)) - 1
		for k, i := range s.kept {
			r := binary.LittleEndian.Uint64(out[8*k:])
			if r&^limit != 0 {
				broken = true
				return &failure{FailBadOutput, fmt.Errorf("event %d routed to output bit beyond the %d outputs", k, len(s.spec.Outputs))}
			}
			b.Routes[i] = r
			if r == 0 {
				b.Mark(i, pipeline.Drop, s.by, "unrouted")
			}
		}
	case KindTransform:
		s.dropped = slices.Grow(s.dropped[:0], n)[:n]
		clear(s.dropped)
		rewrites, err := decodeBatch(out, s.view, s.dropped, s.spec.MaxEventSize, s.Plugin.manifest.ABI >= 2, &in.scratch)
		if rewrites > 0 {
			s.metrics.failN("host_field", uint64(rewrites))
		}
		if err != nil {
			broken = true
			return &failure{FailBadOutput, err}
		}
		drops := 0
		for k, i := range s.kept {
			if s.dropped[k] {
				b.Mark(i, pipeline.Drop, s.by, "dropped by plugin")
				drops++
				continue
			}
			if &b.Events[i] != &s.view[k] {
				b.Events[i] = s.view[k]
			}
		}
		if s.chained && drops == 0 && rewrites == 0 {
			// The next plugin stage may take this output as it is. A copy:
			// out is the instance's memory, reused by its next call.
			s.lastOut = append(s.lastOut[:0], out...)
			s.lastN, s.lastABI, s.lastGood = n, s.Plugin.manifest.ABI >= 2, true
		}
	}
	return nil
}

// disarm stops the instance's watchdog and counts the fuel the call used.
func (p *Plugin) disarm(in *instance) (left int64, fired bool) {
	budget := in.budget
	left, fired = in.disarm()
	if in.fuel != nil {
		p.metrics.FuelUsed.Add(uint64(int64(budget) - max(left, 0)))
	}
	return left, fired
}

// classify names a call failure: a timeout (the watchdog emptied the
// tank), fuel run out, the stack bound passed, or a trap.
func (p *Plugin) classify(ctx context.Context, in *instance, err error) error {
	if left, fired := p.disarm(in); fired {
		return &failure{FailTimeout, fmt.Errorf("batch took longer than its timeout of %s", p.spec.Timeout)}
	} else if in.fuel != nil && left <= 0 {
		return &failure{FailFuel, fmt.Errorf("ran out of fuel (%d units for the batch)", in.budget)}
	} else if in.stackOver() {
		return &failure{FailStack, fmt.Errorf("call stack over %d MiB", MaxStackWords*8>>20)}
	}
	return classify(ctx, err)
}

// classify names a call failure: a timeout (the instance was closed when
// the batch's deadline passed) or a trap.
func classify(ctx context.Context, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled) {
		return &failure{FailTimeout, fmt.Errorf("batch took longer than its timeout: %v", err)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &failure{FailTimeout, fmt.Errorf("batch took longer than its timeout: %v", err)}
	}
	return &failure{FailTrap, err}
}

// Start does nothing: the plugin was loaded and initialised when created.
func (s *Stage) Start(context.Context) error { return nil }

// Shutdown closes the plugin's instances and runtime.
func (s *Stage) Shutdown(ctx context.Context) error { return s.Close(ctx) }
