package export

import (
	"fmt"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Format is how an output that writes lines (stdout, file) encodes each
// event: one line of JSON per event in every format.
type Format string

const (
	// FormatEventpipe is eventpipe's own shape (docs/event-format.md), the
	// default.
	FormatEventpipe Format = "eventpipe"
	// FormatCloudEvents is one CloudEvent per line in the JSON format
	// (structured mode), attributes as docs/event-format.md maps them.
	FormatCloudEvents Format = "cloudevents"
)

// Validate checks f; empty is the default.
func (f Format) Validate() error {
	switch f {
	case "", FormatEventpipe, FormatCloudEvents:
		return nil
	}
	return pipeline.FieldErrorf("format", "want eventpipe or cloudevents, got %q", string(f))
}

// Append appends ev encoded in format f (no newline).
func (f Format) Append(dst []byte, ev *pipeline.Event) []byte {
	if f == FormatCloudEvents {
		return ev.AppendCloudEventLine(dst)
	}
	return ev.AppendJSON(dst)
}

var _ fmt.Stringer = Format("")

func (f Format) String() string {
	if f == "" {
		return string(FormatEventpipe)
	}
	return string(f)
}

// Encoding is the name of f's encoding among pipeline.SharedEncodings.
func (f Format) Encoding() string {
	if f == FormatCloudEvents {
		return pipeline.EncodingCloudEventLine
	}
	return pipeline.EncodingEventpipe
}
