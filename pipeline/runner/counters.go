package runner

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// counters belong to the process, not to a graph: a reload keeps them.
type counters struct {
	rejected    atomic.Uint64
	deadLetters atomic.Uint64
	repaired    atomic.Uint64 // events decoding made valid UTF-8
	stored      atomic.Uint64 // events the store acknowledged (persistence on)
	duplicates  atomic.Uint64 // events the store already held
	drops       sync.Map      // "stage: reason" -> *atomic.Uint64
	outMu       sync.Mutex
	outputs     map[string]*outputStats
}

func (c *counters) init() { c.outputs = map[string]*outputStats{} }

type outputStats struct {
	exported  atomic.Uint64
	failed    atomic.Uint64 // events dead-lettered after export failure
	batches   atomic.Uint64
	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
	lastOK    time.Time
}

// outputStats returns the counters of the output called name, made on
// first use and kept across reloads.
func (c *counters) outputStats(name string) *outputStats {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	s, ok := c.outputs[name]
	if !ok {
		s = &outputStats{}
		c.outputs[name] = s
	}
	return s
}

func (c *counters) countDrop(key string) {
	v, _ := c.drops.LoadOrStore(key, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

// Summary is the one-line account printed at the end of a run.
type Summary struct {
	Accepted uint64 `json:"accepted"`
	// Stored is true when persistence is on: Accepted then counts events
	// stored. Duplicates are events published again with ids the store
	// already held, not stored twice; Redelivered, events the pipeline
	// got again after a crash or a failed batch (possible duplicates).
	Stored       bool              `json:"stored,omitempty"`
	Duplicates   uint64            `json:"duplicates,omitempty"`
	Redelivered  uint64            `json:"redelivered,omitempty"`
	Exported     map[string]uint64 `json:"exported"`
	Dropped      map[string]uint64 `json:"dropped"`
	DeadLettered uint64            `json:"dead_lettered"`
	Rejected     uint64            `json:"rejected"`
	// Refused are events ingest did not take because the buffer stayed
	// full (HTTP 503: the client sends them again): not accepted, so
	// neither dropped nor lost.
	Refused uint64 `json:"refused,omitempty"`
	// Repaired are accepted events whose bytes that were not UTF-8 were
	// replaced with U+FFFD.
	Repaired uint64 `json:"repaired,omitempty"`
	Lost     uint64 `json:"lost"` // dead-letter writes that failed
	// Unflushed is what the drain could not deliver before its deadline.
	Unflushed string `json:"unflushed,omitempty"`
}

// Summary reports the process's counters now, over every configuration
// it has run.
func (r *Runner) Summary() Summary {
	bs := r.bus.Stats()
	s := Summary{
		Accepted: bs.Published, Exported: map[string]uint64{}, Dropped: map[string]uint64{},
		DeadLettered: r.deadLetters.Load(), Rejected: r.rejected.Load(),
	}
	if r.dlq != nil {
		s.Lost = r.dlq.Lost()
	}
	if r.store != nil {
		s.Stored, s.Accepted, s.Duplicates = true, r.stored.Load(), r.duplicates.Load()
		if rd, ok := r.store.(interface{ Redelivered() uint64 }); ok {
			s.Redelivered = rd.Redelivered()
		}
	}
	r.outMu.Lock()
	for name, o := range r.outputs {
		s.Exported[name] = o.exported.Load()
	}
	r.outMu.Unlock()
	r.drops.Range(func(k, v any) bool {
		s.Dropped[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	if bs.Filtered > 0 {
		s.Dropped["filter: type"] = bs.Filtered
	}
	if bs.RateLimited > 0 {
		s.Dropped["rate limit"] = bs.RateLimited
	}
	if n := bs.Dropped.Total(); n > 0 {
		s.Dropped["buffer overflow"] = n
	}
	s.Refused = bs.Refused
	if bs.Disabled > 0 {
		s.Dropped["events disabled"] = bs.Disabled
	}
	s.Repaired = r.repaired.Load()
	return s
}

func (s Summary) String() string {
	var exp []string
	var total uint64
	for _, k := range sortedMapKeys(s.Exported) {
		exp = append(exp, fmt.Sprintf("%s=%d", k, s.Exported[k]))
		total += s.Exported[k]
	}
	var drops []string
	var dropped uint64
	for _, k := range sortedMapKeys(s.Dropped) {
		drops = append(drops, fmt.Sprintf("%s=%d", k, s.Dropped[k]))
		dropped += s.Dropped[k]
	}
	line := fmt.Sprintf("eventpipe: accepted %d", s.Accepted)
	if s.Stored {
		line = fmt.Sprintf("eventpipe: stored %d", s.Accepted)
		if s.Duplicates > 0 {
			line += fmt.Sprintf(" (+%d duplicates by id, not stored again)", s.Duplicates)
		}
		if s.Redelivered > 0 {
			line += fmt.Sprintf(", redelivered %d", s.Redelivered)
		}
	}
	line += fmt.Sprintf(", exported %d (%s), dropped %d", total, strings.Join(exp, " "), dropped)
	if len(drops) > 0 {
		line += " (" + strings.Join(drops, ", ") + ")"
	}
	line += fmt.Sprintf(", dead-lettered %d, rejected input %d", s.DeadLettered, s.Rejected)
	if s.Refused > 0 {
		line += fmt.Sprintf(", refused %d (told to send again)", s.Refused)
	}
	if s.Repaired > 0 {
		line += fmt.Sprintf(", repaired %d (bytes that were not UTF-8 replaced)", s.Repaired)
	}
	if s.Lost > 0 {
		line += fmt.Sprintf(", LOST %d (dead-letter write failed)", s.Lost)
	}
	if s.Unflushed != "" {
		line += ", NOT FLUSHED: " + s.Unflushed
	}
	return line
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
