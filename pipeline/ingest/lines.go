// Package ingest holds eventpipe's sources: JSON lines from a file or stdin,
// and an HTTP endpoint. Every source decodes each event in any accepted
// shape; input that is not an event is rejected (counted and dead-lettered
// with its position) and never stops ingest.
package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// LinesConfig is a file source: JSON lines read from Path ("-" is
// standard input).
type LinesConfig struct {
	Path string `yaml:"path"`
}

// Validate checks the configuration.
func (c *LinesConfig) Validate() error {
	if c.Path == "" {
		return pipeline.FieldErrorf("path", "must be set for a file source")
	}
	return nil
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
	go func() {
		rc, err := l.open()
		if err != nil {
			pw.CloseWithError(&openError{err})
			return
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
	return l.read(ctx, p, pr)
}

func (l *Lines) read(ctx context.Context, p pipeline.Publisher, rc io.Reader) error {
	// A line may be as long as the event limit, plus some slack for the
	// envelope; longer lines are rejected without being held whole.
	r := bufio.NewReaderSize(rc, 64<<10)
	opts := pipeline.DecodeOptions{MaxSize: l.maxSize}
	var long []byte
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
		if len(bytes.TrimSpace(line)) > 0 {
			if err := l.one(ctx, p, line, lineNo, opts); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if errors.Is(rerr, errStopped) {
			return nil
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

func (l *Lines) one(ctx context.Context, p pipeline.Publisher, line []byte, lineNo int, opts pipeline.DecodeOptions) error {
	line = bytes.TrimRight(line, "\r\n")
	ev, err := pipeline.Decode(line, opts)
	if err == nil {
		err = p.Publish(ctx, ev)
		if err == nil {
			return nil
		}
		var de *pipeline.DecodeError
		if !errors.As(err, &de) {
			if errors.Is(err, pipeline.ErrRateLimited) {
				return nil // counted by the bus as rate-limited
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("ingest %s: line %d: %w", l.name, lineNo, err)
		}
	}
	raw := line
	if len(raw) > 4096 {
		raw = raw[:4096]
	}
	p.Reject(ctx, pipeline.Rejected{
		Source: l.name, Offset: fmt.Sprintf("line %d", lineNo),
		Raw: append([]byte(nil), raw...), Reason: err.Error(), Time: time.Now().UTC(),
	})
	return nil
}
