package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"

	"github.com/eventpipe/eventpipe/pipeline"
)

// StdoutConfig configures the stdout exporter.
type StdoutConfig struct {
	Type   string `yaml:"type"`
	Pretty bool   `yaml:"pretty"` // indented JSON instead of JSON lines
	// Format is eventpipe (default), cloudevents (one structured
	// CloudEvent per line), llmspell (rs-llmspell's shape) or pretty.
	Format Format `yaml:"format"`
}

// Validate checks the configuration.
func (c *StdoutConfig) Validate() error { return c.Format.Validate() }

// Stdout writes events as JSON lines (or indented JSON) to a writer.
type Stdout struct {
	mu     sync.Mutex
	w      *bufio.Writer
	pretty bool
	format Format
	buf    []byte
	ind    bytes.Buffer
}

// NewStdout returns a stdout exporter writing to w (os.Stdout in the CLI).
func NewStdout(cfg StdoutConfig, w io.Writer) *Stdout {
	format, pretty := cfg.Format, cfg.Pretty
	if pretty && (format == "" || format == FormatEventpipe) {
		format, pretty = FormatPretty, false // pretty: true is format: pretty
	}
	if format == FormatPretty {
		pretty = false
	}
	return &Stdout{w: bufio.NewWriterSize(w, 64<<10), pretty: pretty, format: format}
}

func (s *Stdout) Start(context.Context) error { return nil }

// Export writes the events and flushes.
func (s *Stdout) Export(ctx context.Context, events []pipeline.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	shared := pipeline.SharedEncodingsFor(ctx, s.format.Encoding(), len(events))
	for i := range events {
		s.buf = shared.Append(s.buf[:0], i, &events[i], s.format.Append)
		if s.pretty {
			s.ind.Reset()
			if err := json.Indent(&s.ind, s.buf, "", "  "); err != nil {
				return pipeline.Permanent(pipeline.FieldErrorf("stdout", "%w", err))
			}
			s.ind.WriteByte('\n')
			if _, err := s.w.Write(s.ind.Bytes()); err != nil {
				return pipeline.FieldErrorf("stdout", "%w", err)
			}
			continue
		}
		s.buf = append(s.buf, '\n')
		if _, err := s.w.Write(s.buf); err != nil {
			return pipeline.FieldErrorf("stdout", "%w", err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return pipeline.FieldErrorf("stdout", "%w", err)
	}
	return nil
}

// Shutdown flushes.
func (s *Stdout) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Flush()
}

// EncodingFormat is the encoding the output writes (see File).
func (s *Stdout) EncodingFormat() string { return s.format.Encoding() }
