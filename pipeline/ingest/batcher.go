package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
)

// batchLines is how many lines a file source publishes at once: enough to
// pay for one store acknowledgement per batch, few enough to keep latency
// and memory small. A source also publishes whenever its reader has
// nothing more buffered, so a slow trickle is not held back.
const batchLines = 1024

// Batcher decodes JSON lines into events and publishes them in batches.
// Input that is not an event is rejected at once with its position. The
// file sources use it, and so does any source whose input is JSON lines
// (the nats source).
type Batcher struct {
	name string
	p    pipeline.Publisher
	opts pipeline.DecodeOptions
	evs  []pipeline.Event
	pos  []Pos
	errs []error
}

// Pos is where a line came from, for rejections: "line 12", or
// "subject app.x line 1" when Where is set.
type Pos struct {
	Where string
	Line  int
}

func (p Pos) String() string {
	if p.Where == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	return fmt.Sprintf("%s line %d", p.Where, p.Line)
}

// NewBatcher returns a batcher publishing into p; source names the
// source in rejections, maxSize bounds one event.
func NewBatcher(source string, p pipeline.Publisher, maxSize int) *Batcher {
	return &Batcher{name: source, p: p, opts: decodeOptions(p, maxSize)}
}

// DecodeOptions are the batcher's (maximum size, repairs counted), for
// sources that decode some events themselves.
func (b *Batcher) DecodeOptions() pipeline.DecodeOptions { return b.opts }

// Add decodes one line (its newline may still be on it).
func (b *Batcher) Add(ctx context.Context, line []byte, pos Pos) {
	line = bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	ev, err := pipeline.Decode(line, b.opts)
	if err != nil {
		b.reject(ctx, line, pos, err)
		return
	}
	b.evs, b.pos = append(b.evs, ev), append(b.pos, pos)
}

// AddParallel decodes lines (positions pos) on up to workers goroutines
// and adds the events in order: a large input decodes on more than one
// core. Refused lines are rejected as Add does.
func (b *Batcher) AddParallel(ctx context.Context, lines [][]byte, pos []Pos, workers int) {
	n := len(lines)
	workers = max(1, min(workers, n/256)) // below 256 lines a part, a goroutine costs more than it saves
	if workers == 1 {
		for i := range lines {
			b.Add(ctx, lines[i], pos[i])
		}
		return
	}
	parts := make([]Batcher, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		part := &parts[w]
		part.name, part.p, part.opts = b.name, b.p, b.opts
		part.evs = make([]pipeline.Event, 0, hi-lo)
		part.pos = make([]Pos, 0, hi-lo)
		decode := func() {
			for i := lo; i < hi; i++ {
				part.Add(ctx, lines[i], pos[i])
			}
		}
		if w == workers-1 {
			decode() // the last part on this goroutine
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); decode() }()
	}
	wg.Wait()
	for w := range parts {
		b.evs = append(b.evs, parts[w].evs...)
		b.pos = append(b.pos, parts[w].pos...)
	}
}

// AddEvent adds an event decoded elsewhere (binary records).
func (b *Batcher) AddEvent(ev pipeline.Event, pos Pos) {
	b.evs, b.pos = append(b.evs, ev), append(b.pos, pos)
}

// Reject sends input that is not an event to the dead-letter file with
// its position and reason.
func (b *Batcher) Reject(ctx context.Context, raw []byte, pos Pos, err error) {
	b.reject(ctx, raw, pos, err)
}

// AddLines adds every line of data.
func (b *Batcher) AddLines(ctx context.Context, data []byte, where string) {
	for n := 1; len(data) > 0; n++ {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		b.Add(ctx, l, Pos{where, n})
	}
}

// Reset forgets the events added and not published.
func (b *Batcher) Reset() {
	clear(b.evs)
	b.evs, b.pos = b.evs[:0], b.pos[:0]
}

// lastLine is the line of the last event added (0: none).
func (b *Batcher) lastLine() int {
	if len(b.pos) == 0 {
		return 0
	}
	return b.pos[len(b.pos)-1].Line
}

// Len is the number of events added and not yet published.
func (b *Batcher) Len() int { return len(b.evs) }

func (b *Batcher) full() bool { return len(b.evs) >= batchLines }

// Flush publishes what was added. Events over the rate limit are skipped
// (the bus counts them); an event the bus refuses is rejected with its
// line. An error means the rest could not be published (the buffer or
// store refused them, or ctx ended): the batch is kept, and Flush may be
// called again to retry it.
func (b *Batcher) Flush(ctx context.Context) error {
	for len(b.evs) > 0 {
		b.errs = slices.Grow(b.errs[:0], len(b.evs))[:len(b.evs)]
		clear(b.errs)
		n, err := pipeline.PublishBatch(ctx, b.p, b.evs, b.errs)
		for i := range n {
			if b.errs[i] != nil {
				raw := b.evs[i].AppendJSON(nil)
				b.reject(ctx, raw, b.pos[i], b.errs[i])
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, pipeline.ErrRateLimited) {
			n++ // counted by the bus as rate-limited
		}
		b.evs, b.pos = b.evs[n:], b.pos[n:]
		if !errors.Is(err, pipeline.ErrRateLimited) {
			return err
		}
	}
	b.Reset()
	return nil
}

func (b *Batcher) reject(ctx context.Context, raw []byte, pos Pos, err error) {
	if len(raw) > 4096 {
		raw = raw[:4096]
	}
	b.p.Reject(ctx, pipeline.Rejected{
		Source: b.name, Offset: pos.String(),
		Raw: append([]byte(nil), raw...), Reason: err.Error(), Time: time.Now().UTC(),
	})
}

// decodeOptions are a source's: its maximum event size, and repairs
// counted by the publisher when it counts them.
func decodeOptions(p pipeline.Publisher, maxSize int) pipeline.DecodeOptions {
	opts := pipeline.DecodeOptions{MaxSize: maxSize}
	if rc, ok := p.(pipeline.RepairCounter); ok {
		opts.OnRepair = func() { rc.Repaired(1) }
	}
	return opts
}
