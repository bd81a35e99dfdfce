package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/eventpipe/eventpipe/pipeline/internal/jsonscan"
)

// DefaultMaxEventSize is the largest encoded event accepted when no limit is
// configured: 1 MiB.
const DefaultMaxEventSize = 1 << 20

// Shape names the JSON shape an event was decoded from.
type Shape uint8

const (
	ShapeEventpipe   Shape = iota // this project's own shape
	ShapeLLMSpell                 // rs-llmspell UniversalEvent
	ShapeCloudEvents              // CloudEvents 1.0 structured JSON
)

func (s Shape) String() string {
	switch s {
	case ShapeLLMSpell:
		return "llmspell"
	case ShapeCloudEvents:
		return "cloudevents"
	default:
		return "eventpipe"
	}
}

// DecodeOptions tune Decode.
type DecodeOptions struct {
	// MaxSize is the largest accepted encoded event in bytes; 0 means
	// DefaultMaxEventSize, a negative value means no limit.
	MaxSize int
	// OnRepair, if set, is called for an event that was repaired: bytes
	// that are not UTF-8 in its strings or data are replaced with U+FFFD
	// (encoding/json does the same to strings), so that every output is
	// valid JSON. The callers count them.
	OnRepair func()
}

// RepairCounter is implemented by a Publisher that counts events decoding
// repaired (DecodeOptions.OnRepair); sources hand it their repairs.
type RepairCounter interface {
	Repaired(n int)
}

// DecodeError says why an input is not an event. Field names the JSON field
// at fault, if one is.
type DecodeError struct {
	Field  string
	Reason string
	Err    error // the underlying JSON error, if any
}

func (e *DecodeError) Error() string {
	if e.Field != "" {
		return "invalid event: " + e.Field + ": " + e.Reason
	}
	return "invalid event: " + e.Reason
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrTooLarge is wrapped by errors for events over the configured size.
var ErrTooLarge = errors.New("event too large")

// wireEvent holds the fields of every accepted shape at once, so one pass of
// encoding/json reads any of them.
type wireEvent struct {
	SchemaVersion string          `json:"schema_version"`
	ID            json.RawMessage `json:"id"`
	Type          string          `json:"type"`
	Time          string          `json:"time"`
	Source        string          `json:"source"`
	Sequence      json.RawMessage `json:"sequence"` // a number; CloudEvents' sequence extension is a string
	CorrelationID string          `json:"correlation_id"`
	CausationID   string          `json:"causation_id"`
	Tags          []string        `json:"tags"`
	Language      string          `json:"language"`
	Data          json.RawMessage `json:"data"`

	// rs-llmspell
	EventType string        `json:"event_type"`
	Timestamp string        `json:"timestamp"`
	Metadata  *wireMetadata `json:"metadata"`

	// CloudEvents 1.0: an event with a specversion is read by decodeCloudJSON.
	SpecVersion string `json:"specversion"`

	// The CloudEvents attributes of an event in the eventpipe shape.
	Cloud *wireCloud `json:"cloudevents"`
}

// attributes are the CloudAttributes w holds; extensions that are not a
// non-empty JSON object are none.
func (w *wireCloud) attributes() *CloudAttributes {
	ext := bytes.TrimSpace(w.Extensions)
	if len(ext) == 0 || ext[0] != '{' || bytes.Equal(ext, []byte("{}")) {
		ext = nil
	}
	if !utf8.Valid(ext) {
		ext = bytes.ToValidUTF8(ext, []byte("\uFFFD")) // raw values: every output stays valid JSON
	}
	if ext != nil {
		ext = cleanExtensions(ext)
	}
	return &CloudAttributes{Subject: w.Subject, DataContentType: w.DataContentType, DataSchema: w.DataSchema,
		Extensions: append(json.RawMessage(nil), ext...), DataBase64: w.DataBase64, NoTime: w.NoTime}
}

// wireCloud is CloudAttributes in the eventpipe shape (AppendJSON).
type wireCloud struct {
	Subject         string          `json:"subject"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema"`
	Extensions      json.RawMessage `json:"extensions"`
	DataBase64      bool            `json:"data_base64"`
	NoTime          bool            `json:"no_time"`
}

type wireMetadata struct {
	CorrelationID string          `json:"correlation_id"`
	Source        string          `json:"source"`
	Tags          []string        `json:"tags"`
	Custom        json.RawMessage `json:"custom"`
}

// Decode reads one event in any accepted shape: eventpipe's own, the
// rs-llmspell shape (event_type, timestamp, metadata.*) or CloudEvents 1.0
// structured JSON (specversion, ...). docs/event-format.md has the mapping.
//
// The event must have a dotted type; its data, if present, must be JSON. An
// event without a time gets none here: the bus stamps it at publish.
func Decode(b []byte, opts DecodeOptions) (Event, error) {
	ev, _, err := DecodeShape(b, opts)
	return ev, err
}

// DecodeShape is Decode that also reports which shape it read.
func DecodeShape(b []byte, opts DecodeOptions) (Event, Shape, error) {
	max := opts.MaxSize
	if max == 0 {
		max = DefaultMaxEventSize
	}
	if max > 0 && len(b) > max {
		return Event{}, 0, &DecodeError{Reason: fmt.Sprintf("%d bytes is over the limit of %d", len(b), max), Err: ErrTooLarge}
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Event{}, 0, &DecodeError{Reason: "empty input"}
	}
	if b[0] != '{' {
		return Event{}, 0, &DecodeError{Reason: "not a JSON object"}
	}
	var w wireEvent
	// One allocation: the event's own copy of its line, of which its
	// strings and data are views (the fast path). The fallback copies.
	own := make([]byte, len(b))
	copy(own, b)
	ds, err := decodeFastIn(own, &w, true)
	fast := err == nil
	if err != nil {
		// Its own variable: one that encoding/json sees lives on the heap,
		// and w stays on the stack on the fast path.
		var slow wireEvent
		if err := json.Unmarshal(b, &slow); err != nil {
			if bytes.Contains(b, []byte(`"specversion"`)) {
				// A CloudEvent's extensions may have names eventpipe
				// reads with another type (tags, metadata).
				return decodeCloud(b, opts)
			}
			return Event{}, 0, jsonDecodeError(err)
		}
		w = slow
	} else if w.SpecVersion != "" {
		return decodeCloud(b, opts)
	}
	var ev Event
	var shape Shape
	var timeField, timeText string
	switch {
	case w.SpecVersion != "":
		// encoding/json read it (the fast decoder gave up): read it again
		// as a CloudEvent.
		return decodeCloud(b, opts)
	case w.Type == "" && w.EventType != "":
		shape = ShapeLLMSpell
		ev.SchemaVersion = w.SchemaVersion
		ev.Type = w.EventType
		ev.Language = strings.ToLower(w.Language)
		ev.Data = w.Data
		timeField, timeText = "timestamp", w.Timestamp
		if m := w.Metadata; m != nil {
			ev.CorrelationID, ev.Source, ev.Tags = m.CorrelationID, m.Source, m.Tags
			ev.CausationID = customCausation(m.Custom) // where AppendLLMSpell keeps it
		}
	default:
		shape = ShapeEventpipe
		ev.SchemaVersion = w.SchemaVersion
		ev.Type, ev.Source = w.Type, w.Source
		ev.CorrelationID, ev.CausationID = w.CorrelationID, w.CausationID
		ev.Tags, ev.Language, ev.Data = w.Tags, w.Language, w.Data
		timeField, timeText = "time", w.Time
		if w.Cloud != nil {
			ev.Cloud = w.Cloud.attributes()
		}
	}
	if ev.SchemaVersion == "" {
		ev.SchemaVersion = SchemaVersion
	}
	if len(w.Sequence) > 0 && string(w.Sequence) != "null" {
		seq := bytes.Trim(w.Sequence, `"`)
		n, err := strconv.ParseUint(string(seq), 10, 64)
		if err != nil {
			return Event{}, shape, &DecodeError{Field: "sequence", Reason: "want a non-negative integer, got " + string(w.Sequence)}
		}
		ev.Sequence = n
	}
	if id, err := decodeID(w.ID); err != nil {
		return Event{}, shape, err
	} else {
		ev.ID = id
	}
	if ev.Type == "" {
		field := "type"
		if shape == ShapeLLMSpell {
			field = "event_type"
		}
		return Event{}, shape, &DecodeError{Field: field, Reason: "missing: every event needs a type"}
	}
	if msg := ev.typeError(); msg != "" { // a CloudEvent's type, when written in this shape
		return Event{}, shape, &DecodeError{Field: "type", Reason: msg}
	}
	if timeText != "" {
		t, err := time.Parse(time.RFC3339Nano, timeText)
		if err != nil {
			return Event{}, shape, &DecodeError{Field: timeField, Reason: "not an RFC 3339 time: " + quote(timeText), Err: err}
		}
		ev.Time = t.UTC()
		if y := ev.Time.Year(); y < 1 || y > 9999 {
			return Event{}, shape, &DecodeError{Field: timeField, Reason: "time out of range (years 0001 to 9999 in UTC): " + quote(timeText)}
		}
	}
	if bytes.Equal(ev.Data, []byte("null")) {
		ev.Data = nil
	}
	if !fast {
		if err := checkNumbers(ev.Data); err != nil {
			return Event{}, shape, err
		}
		repairUTF8(&ev, b, opts)
		return ev, shape, nil
	}
	// The fast path found these in its one pass over data; its strings
	// are valid UTF-8 (it leaves others to encoding/json).
	if ds.huge != "" {
		return Event{}, shape, hugeNumberError(ds.huge)
	}
	if ds.nonASCII && !utf8.Valid(ev.Data) {
		ev.Data = bytes.ToValidUTF8(ev.Data, []byte("\uFFFD"))
		if opts.OnRepair != nil {
			opts.OnRepair()
		}
	}
	return ev, shape, nil
}

func hugeNumberError(n string) error {
	if len(n) > 40 {
		n = n[:40] + "…"
	}
	return &DecodeError{Field: "data", Reason: "number " + n + " is out of range (beyond ±1.8e308): JSON readers cannot hold it"}
}

// checkNumbers refuses data holding a number no float64 holds: valid JSON,
// but most readers make it infinity or refuse the document.
func checkNumbers(data []byte) error {
	if n, huge := jsonscan.HugeNumber(data); huge {
		return hugeNumberError(n)
	}
	return nil
}

// repairUTF8 makes the data of an event decoded from b valid UTF-8, and
// tells opts.OnRepair when b was not. Strings were repaired by
// encoding/json (the fast path leaves them to it); data is raw. Bytes
// that are not UTF-8 can only be inside its strings, so replacing them
// keeps it JSON.
func repairUTF8(ev *Event, b []byte, opts DecodeOptions) {
	if utf8.Valid(b) {
		return
	}
	if !utf8.Valid(ev.Data) {
		ev.Data = bytes.ToValidUTF8(ev.Data, []byte("\uFFFD"))
	}
	if c := ev.Cloud; c != nil && !utf8.Valid(c.Extensions) {
		c.Extensions = bytes.ToValidUTF8(c.Extensions, []byte("\uFFFD")) // raw values, like data
	}
	if opts.OnRepair != nil {
		opts.OnRepair()
	}
}

// decodeCloud is decodeCloudJSON with the repair of what is not UTF-8.
func decodeCloud(b []byte, opts DecodeOptions) (Event, Shape, error) {
	ev, err := decodeCloudJSON(b)
	if err == nil {
		err = checkNumbers(ev.Data)
	}
	if err != nil {
		return Event{}, ShapeCloudEvents, err
	}
	repairUTF8(&ev, b, opts)
	return ev, ShapeCloudEvents, nil
}

// decodeID accepts a JSON string, or a number (some producers send one).
// A plain string is a view of raw (the event's own copy of its line).
func decodeID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		if body := raw[1 : len(raw)-1]; len(raw) >= 2 && bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
			if len(body) == 0 {
				return "", nil
			}
			return unsafe.String(&body[0], len(body)), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", &DecodeError{Field: "id", Reason: "not a string", Err: err}
		}
		return s, nil
	}
	if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
		return string(raw), nil
	}
	return "", &DecodeError{Field: "id", Reason: "must be a string"}
}

func jsonDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &DecodeError{Field: te.Field, Reason: "wrong type: got JSON " + te.Value + ", want " + te.Type.String(), Err: err}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &DecodeError{Reason: fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error()), Err: err}
	}
	return &DecodeError{Reason: err.Error(), Err: err}
}

// cleanExtensions keeps the members of an extensions object (from a file
// or a plugin) that can be written out as CloudEvents extension
// attributes: a valid name that is no attribute of its own, a string,
// number or boolean value. nil when none is left.
func cleanExtensions(ext []byte) []byte {
	var out []byte
	p := fastParser{b: ext}
	p.ws()
	err := p.members(func(key string) error {
		raw, err := p.raw()
		if err != nil {
			return err
		}
		switch {
		case !ValidCloudName(key), cloudCore(key), key == "correlationid", key == "causationid", key == "language",
			len(raw) == 0, raw[0] == '{', raw[0] == '[', raw[0] == 'n':
			return nil
		}
		if len(out) == 0 {
			out = append(out, '{')
		} else {
			out = append(out, ',')
		}
		out = appendString(out, key)
		out = append(out, ':')
		out = append(out, raw...)
		return nil
	})
	if err != nil || len(out) == 0 {
		return nil
	}
	return append(out, '}')
}

// customCausation is metadata.custom.causation_id of an rs-llmspell event,
// if custom is an object holding it as a string.
func customCausation(custom json.RawMessage) string {
	if len(custom) == 0 || custom[0] != '{' {
		return ""
	}
	var id string
	p := fastParser{b: custom}
	if p.members(func(key string) error {
		if key == "causation_id" && p.i < len(p.b) && p.b[p.i] == '"' {
			return p.strInto(&id)
		}
		_, err := p.raw()
		return err
	}) != nil {
		var c struct {
			CausationID string `json:"causation_id"`
		}
		if json.Unmarshal(custom, &c) == nil {
			return c.CausationID
		}
		return ""
	}
	return id
}
