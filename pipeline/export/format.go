package export

import (
	"bytes"
	"encoding/json"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Format is how an output that writes lines (stdout, file) encodes each
// event.
type Format string

const (
	// FormatEventpipe is eventpipe's own shape (docs/event-format.md), the
	// default: one line per event.
	FormatEventpipe Format = "eventpipe"
	// FormatCloudEvents is one CloudEvent per line in the JSON format
	// (structured mode), attributes as docs/event-format.md maps them.
	FormatCloudEvents Format = "cloudevents"
	// FormatLLMSpell is rs-llmspell's UniversalEvent shape, one per line,
	// for consumers written for rs-llmspell.
	FormatLLMSpell Format = "llmspell"
	// FormatPretty is eventpipe's shape indented, for people: several
	// lines per event.
	FormatPretty Format = "pretty"
)

// Validate checks f; empty is the default.
func (f Format) Validate() error {
	switch f {
	case "", FormatEventpipe, FormatCloudEvents, FormatLLMSpell, FormatPretty:
		return nil
	}
	return pipeline.FieldErrorf("format", "want eventpipe, cloudevents, llmspell or pretty, got %q", string(f))
}

// Append appends ev encoded in format f (no final newline).
func (f Format) Append(dst []byte, ev *pipeline.Event) []byte {
	switch f {
	case FormatCloudEvents:
		return ev.AppendCloudEventLine(dst)
	case FormatLLMSpell:
		return ev.AppendLLMSpell(dst)
	case FormatPretty:
		var buf bytes.Buffer
		if json.Indent(&buf, ev.AppendJSON(nil), "", "  ") != nil {
			return ev.AppendJSON(dst) // never: AppendJSON writes valid JSON
		}
		return append(dst, buf.Bytes()...)
	}
	return ev.AppendJSON(dst)
}

func (f Format) String() string {
	if f == "" {
		return string(FormatEventpipe)
	}
	return string(f)
}

// Encoding is the name of f's encoding among pipeline.SharedEncodings.
func (f Format) Encoding() string {
	switch f {
	case FormatCloudEvents:
		return pipeline.EncodingCloudEventLine
	case FormatLLMSpell, FormatPretty:
		return string(f)
	}
	return pipeline.EncodingEventpipe
}
