// Package ingest holds eventpipe's sources: JSON lines from a file or stdin,
// and an HTTP endpoint. Every source decodes each event in any accepted
// shape; input that is not an event is rejected (counted and dead-lettered
// with its position) and never stops ingest.
package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// LinesConfig is a file source: JSON lines read from Path ("-" is
// standard input).
type LinesConfig struct {
	Path string `yaml:"path"`
	// Follow keeps reading as the file grows, across rotation (rename
	// and copytruncate), like tail -F; the source then never ends.
	Follow bool `yaml:"follow"`
	// Checkpoint is where the read position is kept, so that a restart
	// resumes after the last line made safe. Default with follow:
	// .eventpipe/checkpoints/<file>-<hash>.json next to the
	// configuration; without follow, no checkpoint unless set.
	Checkpoint string `yaml:"checkpoint"`
	// PollInterval is how often a followed file is checked for growth
	// and rotation. Default 250ms.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Validate checks the configuration.
func (c *LinesConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, pipeline.FieldErrorf("path", "must be set for a file source"))
	}
	if c.Path == "-" && (c.Follow || c.Checkpoint != "") {
		errs = append(errs, pipeline.FieldErrorf("follow", "standard input cannot be followed or checkpointed"))
	}
	if c.PollInterval < 0 {
		errs = append(errs, pipeline.FieldErrorf("poll_interval", "must not be negative"))
	}
	return errors.Join(errs...)
}

// StdinConfig is a stdin source: it has no settings.
type StdinConfig struct{}

// Validate checks the configuration.
func (c *StdinConfig) Validate() error { return nil }

// Lines reads one event per line from a reader until its end. Empty lines
// are skipped. It is a finite source.
type Lines struct {
	// No Start or Shutdown work: the input is opened by Run, which
	// returns as soon as its context ends.
	component.NoLifecycle
	name    string
	open    func() (io.ReadCloser, error)
	maxSize int
}

// NewLines returns a source over a named reader opener. maxSize bounds a
// line (0: pipeline.DefaultMaxEventSize).
func NewLines(name string, open func() (io.ReadCloser, error), maxSize int) *Lines {
	if maxSize <= 0 {
		maxSize = pipeline.DefaultMaxEventSize
	}
	return &Lines{name: name, open: open, maxSize: maxSize}
}

// NewFile returns a source over a file ("-" is standard input).
func NewFile(path string, stdin io.Reader, maxSize int) *Lines {
	if path == "-" || path == "" {
		return NewLines("stdin", func() (io.ReadCloser, error) { return io.NopCloser(stdin), nil }, maxSize)
	}
	return NewLines(path, func() (io.ReadCloser, error) { return os.Open(path) }, maxSize)
}

// Name is what the source reads ("stdin" or the file path).
func (l *Lines) Name() string { return l.name }

// Finite is true: the source ends with its input.
func (l *Lines) Finite() bool { return true }

// openError is an input that could not be opened.
type openError struct{ err error }

func (e *openError) Error() string { return e.err.Error() }

// errStopped ends a read that the source's context interrupted.
var errStopped = errors.New("stopped")

// Run reads until the input ends (nil), ctx ends, or the bus refuses
// events because it closed.
//
// The input is opened and read in a goroutine of its own, through a pipe,
// so that Run returns as soon as ctx ends even when a read (or the open of
// a FIFO) is blocked waiting for a writer; a pollable input is closed to
// wake its reader, and one that cannot be woken (a terminal or a blocking
// standard input) leaves that goroutine to end with the process.
func (l *Lines) Run(ctx context.Context, p pipeline.Publisher) error {
	pr, pw := io.Pipe()
	var regular atomic.Bool
	go func() {
		rc, err := l.open()
		if err != nil {
			pw.CloseWithError(&openError{err})
			return
		}
		if f, ok := rc.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				regular.Store(true)
			}
		}
		stop := context.AfterFunc(ctx, func() { _ = rc.Close() })
		_, err = io.Copy(pw, rc)
		if !stop() {
			err = nil // closed by the stop, not failed
		} else {
			_ = rc.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.CloseWithError(errStopped) // unblocks the copier's write
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(errStopped) })
	defer stop()
	return l.read(ctx, p, pr, &regular)
}

// read decodes and publishes lines. From a regular file, whose reads never
// wait, lines are published in full batches (with persistence on, each
// batch waits for the store's acknowledgement, so fewer is faster); from
// a pipe or a terminal, whatever was read is published as soon as the
// reader would have to wait for more, so a slow trickle is not held back.
func (l *Lines) read(ctx context.Context, p pipeline.Publisher, rc io.Reader, regular *atomic.Bool) error {
	// A line may be as long as the event limit, plus some slack for the
	// envelope; longer lines are rejected without being held whole.
	r := bufio.NewReaderSize(rc, 64<<10)
	f := newFlusher(ctx, l.name, p, l.maxSize)
	defer f.close()
	b := f.next()
	publish := func(lineNo int) error {
		var err error
		b, err = f.publish(b, lineNo)
		return err
	}
	var long []byte
	// From a regular file, lines are gathered (copied: the reader's buffer
	// is reused) and a full batch decoded on several cores.
	var chunk []byte
	var lines [][]byte
	var pos []Pos
	workers := runtime.GOMAXPROCS(0)
	flushChunk := func() {
		if len(lines) == 0 {
			return
		}
		b.AddParallel(ctx, lines, pos, workers)
		chunk, lines, pos = chunk[:0], lines[:0], pos[:0]
	}
	for lineNo := 1; ; lineNo++ {
		if ctx.Err() != nil {
			return nil
		}
		line, rerr := r.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(rerr, bufio.ErrBufferFull) {
				line, rerr = r.ReadSlice('\n')
				if len(long) <= l.maxSize {
					long = append(long, line...)
				}
			}
			line = long
		}
		if regular.Load() && workers > 1 {
			if len(line) > 0 {
				start := len(chunk)
				chunk = append(chunk, line...)
				lines = append(lines, chunk[start:len(chunk):len(chunk)])
				pos = append(pos, Pos{Line: lineNo})
			}
			if len(lines) < batchLines && rerr == nil {
				continue
			}
			flushChunk()
		} else {
			b.Add(ctx, line, Pos{Line: lineNo})
		}
		// Publish a full batch, or whatever was read once the reader
		// would have to wait for more input.
		if b.full() || rerr != nil || (r.Buffered() == 0 && !regular.Load()) {
			if err := publish(lineNo); err != nil {
				return err
			}
		}
		if rerr == io.EOF || errors.Is(rerr, errStopped) {
			return f.close()
		}
		if rerr != nil && !errors.Is(rerr, bufio.ErrBufferFull) {
			var oe *openError
			if errors.As(rerr, &oe) {
				return fmt.Errorf("ingest %s: %w", l.name, oe.err)
			}
			return fmt.Errorf("ingest %s: line %d: %w", l.name, lineNo, rerr)
		}
	}
}

// flushAhead is how many batches the reader may decode ahead of the one
// being published.
const flushAhead = 2

// flusher publishes batches on a goroutine of its own while the reader
// decodes the next: with persistence on, publishing a batch waits for the
// store's acknowledgement, and decoding need not wait with it. Batchers
// take turns, so at most flushAhead batches are decoded ahead; batches are
// published in order, one at a time.
type flusher struct {
	ctx    context.Context
	name   string
	free   chan *Batcher
	full   chan *Batcher
	done   chan struct{}
	err    error // the publisher's, read after done
	closed bool
}

func newFlusher(ctx context.Context, name string, p pipeline.Publisher, maxSize int) *flusher {
	f := &flusher{ctx: ctx, name: name, free: make(chan *Batcher, flushAhead+1), full: make(chan *Batcher, flushAhead), done: make(chan struct{})}
	for range flushAhead + 1 {
		f.free <- NewBatcher(name, p, maxSize)
	}
	go func() {
		defer close(f.done)
		for b := range f.full {
			if err := b.Flush(ctx); err != nil {
				if ctx.Err() == nil {
					f.err = fmt.Errorf("ingest %s: line %d: %w", name, b.lastLine(), err)
				}
				return
			}
			f.free <- b
		}
	}()
	return f
}

// next is a batcher to decode into.
func (f *flusher) next() *Batcher { return <-f.free }

// publish hands b over and returns the batcher to decode into next, or
// the error that stopped publishing.
func (f *flusher) publish(b *Batcher, lineNo int) (*Batcher, error) {
	if b.Len() == 0 {
		return b, nil
	}
	select {
	case f.full <- b:
	case <-f.done:
		return b, f.err
	}
	select {
	case nb := <-f.free:
		return nb, nil
	case <-f.done:
		return b, f.err
	}
}

// close waits until what was handed over is published and returns the
// error that stopped publishing, if any.
func (f *flusher) close() error {
	if !f.closed {
		f.closed = true
		close(f.full)
	}
	<-f.done
	return f.err
}
