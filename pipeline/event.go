package pipeline

import (
	"encoding/json"
	"time"
	"unsafe"
)

// SchemaVersion is the event schema version written by this package. Events
// decoded without a schema_version get this value.
const SchemaVersion = "1.0"

// Event is one event. Its JSON field names are a contract: see
// docs/event-format.md. Strings that are empty are left out of the JSON.
//
// An Event is a plain value; the bus copies it into its buffer, so a caller
// may reuse its Event after Emit returns. Data must be valid JSON (or empty).
type Event struct {
	SchemaVersion string          `json:"schema_version"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Time          time.Time       `json:"time"`
	Source        string          `json:"source,omitempty"`
	Sequence      uint64          `json:"sequence"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	Tags          []string        `json:"tags,omitempty"`
	Language      string          `json:"language,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
	// Cloud holds the CloudEvents attributes of an event that arrived as a
	// CloudEvent and that the fields above do not (subject, content type
	// and schema of the data, extensions); nil for other events.
	Cloud *CloudAttributes `json:"cloudevents,omitempty"`
}

// eventHeaderSize is what one Event value occupies in a buffer slot.
const eventHeaderSize = int(unsafe.Sizeof(Event{}))

// Size is the number of bytes the event holds in memory: its header plus the
// bytes of its strings and data. The bus reports the sum as bytes held, and
// compares it to the configured maximum event size.
func (e *Event) Size() int {
	n := eventHeaderSize + len(e.SchemaVersion) + len(e.ID) + len(e.Type) + len(e.Source) +
		len(e.CorrelationID) + len(e.CausationID) + len(e.Language) + len(e.Data) + e.Cloud.size()
	for _, t := range e.Tags {
		n += 16 + len(t)
	}
	return n
}

// PayloadSize is the size of the parts of the event that a producer chose:
// type, source, ids, tags and data. MaxEventSize limits it.
func (e *Event) PayloadSize() int {
	return e.Size() - eventHeaderSize
}

// Clone returns a deep copy of e whose slices share nothing with e.
func (e *Event) Clone() Event {
	c := *e
	if e.Tags != nil {
		c.Tags = append([]string(nil), e.Tags...)
	}
	if e.Data != nil {
		c.Data = append(json.RawMessage(nil), e.Data...)
	}
	if e.Cloud != nil {
		a := *e.Cloud
		a.Extensions = append(json.RawMessage(nil), a.Extensions...)
		if len(a.Extensions) == 0 {
			a.Extensions = nil
		}
		c.Cloud = &a
	}
	return c
}

// ValidType reports whether t is a dotted event type: two or more segments
// separated by '.', each made of ASCII letters, digits, '_' or '-'.
func ValidType(t string) bool {
	return typeError(t) == ""
}

// typeError returns why t is not a valid type, or "".
// typeError checks the event's type: a dotted name, or for a CloudEvent
// any non-empty type without control characters.
func (e *Event) typeError() string {
	if e.Cloud != nil {
		return cloudTypeError(e.Type)
	}
	return typeError(e.Type)
}

func typeError(t string) string {
	if t == "" {
		return "type is empty"
	}
	segStart, dots := 0, 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '.':
			if i == segStart {
				return "type " + quote(t) + " has an empty segment"
			}
			segStart = i + 1
			dots++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return "type " + quote(t) + " has a character that is not a letter, digit, '_', '-' or '.'"
		}
	}
	if segStart == len(t) {
		return "type " + quote(t) + " has an empty segment"
	}
	if dots == 0 {
		return "type " + quote(t) + " is not a dotted name (want at least two segments, e.g. agent.completed)"
	}
	return ""
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
