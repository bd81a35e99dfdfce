package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
)

// batchLines is how many lines a file source publishes at once: enough to
// pay for one store acknowledgement per batch, few enough to keep latency
// and memory small. A source also publishes whenever its reader has
// nothing more buffered, so a slow trickle is not held back.
const batchLines = 256

// batcher decodes lines into events and publishes them in batches.
// Input that is not an event is rejected at once with its line number.
type batcher struct {
	name  string
	p     pipeline.Publisher
	opts  pipeline.DecodeOptions
	evs   []pipeline.Event
	lines []int
	errs  []error
}

func newBatcher(name string, p pipeline.Publisher, maxSize int) *batcher {
	return &batcher{name: name, p: p, opts: pipeline.DecodeOptions{MaxSize: maxSize}}
}

// add decodes one line (its newline may still be on it).
func (b *batcher) add(ctx context.Context, line []byte, lineNo int) {
	line = bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	ev, err := pipeline.Decode(line, b.opts)
	if err != nil {
		b.reject(ctx, line, lineNo, err)
		return
	}
	b.evs, b.lines = append(b.evs, ev), append(b.lines, lineNo)
}

func (b *batcher) full() bool { return len(b.evs) >= batchLines }

// flush publishes what was added. Events over the rate limit are skipped
// (the bus counts them); an event the bus refuses is rejected with its
// line. An error means the rest could not be published (the buffer or
// store refused them, or ctx ended): the batch is kept, and flush may be
// called again to retry it.
func (b *batcher) flush(ctx context.Context) error {
	for len(b.evs) > 0 {
		b.errs = slices.Grow(b.errs[:0], len(b.evs))[:len(b.evs)]
		clear(b.errs)
		n, err := pipeline.PublishBatch(ctx, b.p, b.evs, b.errs)
		for i := range n {
			if b.errs[i] != nil {
				raw := b.evs[i].AppendJSON(nil)
				b.reject(ctx, raw, b.lines[i], b.errs[i])
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, pipeline.ErrRateLimited) {
			n++ // counted by the bus as rate-limited
		}
		b.evs, b.lines = b.evs[n:], b.lines[n:]
		if !errors.Is(err, pipeline.ErrRateLimited) {
			return err
		}
	}
	clear(b.evs)
	b.evs, b.lines = b.evs[:0], b.lines[:0]
	return nil
}

func (b *batcher) reject(ctx context.Context, raw []byte, lineNo int, err error) {
	if len(raw) > 4096 {
		raw = raw[:4096]
	}
	b.p.Reject(ctx, pipeline.Rejected{
		Source: b.name, Offset: fmt.Sprintf("line %d", lineNo),
		Raw: append([]byte(nil), raw...), Reason: err.Error(), Time: time.Now().UTC(),
	})
}
