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
)

// LinesConfig configures a JSON-lines source (type stdin or file).
type LinesConfig struct {
	Type string `yaml:"type"`
	// Path is the file to read; "-" (or type stdin) reads standard input.
	Path string `yaml:"path"`
}

// Validate checks the configuration.
func (c *LinesConfig) Validate() error {
	if c.Type == "file" && c.Path == "" {
		return errors.New("path: must be set for a file source")
	}
	if c.Type == "stdin" && c.Path != "" && c.Path != "-" {
		return errors.New("path: has no effect on a stdin source")
	}
	return nil
}

// Lines reads one event per line from a reader until its end. Empty lines
// are skipped. It is a finite source.
type Lines struct {
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

// Run reads until the input ends (nil), ctx ends, or the bus refuses
// events because it closed.
func (l *Lines) Run(ctx context.Context, p pipeline.Publisher) error {
	rc, err := l.open()
	if err != nil {
		return fmt.Errorf("ingest %s: %w", l.name, err)
	}
	defer rc.Close()
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
		if rerr != nil && !errors.Is(rerr, bufio.ErrBufferFull) {
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
