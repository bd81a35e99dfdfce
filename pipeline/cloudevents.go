package pipeline

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CloudAttributes are the CloudEvents context attributes of an event that
// arrived as a CloudEvent (HTTP binary, structured or batch mode, a NATS
// message, a structured JSON line) and that eventpipe's own fields do not
// hold. They travel with the event so that it leaves as it came:
// docs/event-format.md ("CloudEvents") has the mapping both ways.
//
// A *CloudAttributes is shared by the copies of an event: a stage that
// changes one makes a new value and points the event at it.
type CloudAttributes struct {
	Subject         string
	DataContentType string // the media type of Data; empty: JSON
	DataSchema      string
	// Extensions is a JSON object of the extension attributes eventpipe has
	// no field for, with their JSON values (a binary-mode header gives a
	// string). The attributes eventpipe maps to fields (correlationid,
	// causationid, language, tags) are not in it.
	Extensions json.RawMessage
	// DataBase64: Data is a JSON string holding the base64 of binary data
	// (the JSON format's data_base64). Otherwise data of a content type
	// that is not JSON is text, held in Data as a JSON string.
	DataBase64 bool
	// NoTime: the CloudEvent had no time attribute. The event's Time is
	// when eventpipe took it in; it is not written out as the CloudEvent's
	// time.
	NoTime bool
}

func (c *CloudAttributes) size() int {
	if c == nil {
		return 0
	}
	return len(c.Subject) + len(c.DataContentType) + len(c.DataSchema) + len(c.Extensions)
}

// CloudSpecVersion is the CloudEvents version eventpipe reads and writes.
const CloudSpecVersion = "1.0"

// IsJSONMediaType reports whether a content type says the data is JSON,
// as the official CloudEvents SDKs read it: application/json or text/json
// (parameters and case ignored), or no content type at all. Data of any
// other type, +json types included, is carried as text or bytes (the Go
// SDK writes and expects it as a string in the JSON format).
func IsJSONMediaType(ct string) bool {
	if ct == "" {
		return true
	}
	mt := ct
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || mt == "text/json"
}

// cloudCore are the attribute names with a meaning of their own; every
// other name is an extension.
func cloudCore(name string) bool {
	switch name {
	case "specversion", "id", "source", "type", "subject", "datacontenttype", "dataschema", "time", "data", "data_base64":
		return true
	}
	return false
}

// ValidCloudName reports whether name is a CloudEvents attribute name:
// lowercase ASCII letters and digits, 1 to 20 characters.
func ValidCloudName(name string) bool {
	if name == "" || len(name) > 20 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func cloudTypeError(t string) string {
	if t == "" {
		return "missing: every CloudEvent needs a type"
	}
	for _, r := range t {
		if r < 0x20 || r == 0x7f {
			return "type " + quote(t) + " has a control character"
		}
	}
	return ""
}

// cloudEvent collects a CloudEvent's attributes, from JSON members or
// binary-mode headers, into an Event.
type cloudEvent struct {
	ev          Event
	attrs       CloudAttributes
	specversion string
	timeText    string
	hasTime     bool
	ext         []byte // the Extensions object being built
	data        json.RawMessage
	dataBase64  string
	hasB64      bool
}

// set takes one attribute whose value is a string.
func (c *cloudEvent) set(name, value string) error {
	switch name {
	case "specversion":
		c.specversion = value
	case "id":
		c.ev.ID = value
	case "source":
		c.ev.Source = value
	case "type":
		c.ev.Type = value
	case "subject":
		c.attrs.Subject = value
	case "datacontenttype":
		c.attrs.DataContentType = value
	case "dataschema":
		c.attrs.DataSchema = value
	case "time":
		c.timeText, c.hasTime = value, true
	case "correlationid":
		c.ev.CorrelationID = value
	case "causationid":
		c.ev.CausationID = value
	case "language":
		c.ev.Language = value
	default:
		return c.extension(name, appendString(nil, value), value)
	}
	return nil
}

// extension adds an extension attribute with its JSON value; text is the
// value as a string (for tags).
func (c *cloudEvent) extension(name string, raw []byte, text string) error {
	if !ValidCloudName(name) {
		return &DecodeError{Field: name, Reason: "not a CloudEvents attribute name (1 to 20 lowercase letters and digits)"}
	}
	if name == "tags" && c.ev.Tags == nil && len(raw) > 0 && raw[0] == '"' {
		// eventpipe's tags, as AppendCloudEvent writes them; only a value
		// written back byte for byte becomes the field.
		var tags []string
		if json.Unmarshal([]byte(text), &tags) == nil && len(tags) > 0 {
			if again, _ := json.Marshal(tags); string(again) == text {
				c.ev.Tags = tags
				return nil
			}
		}
	}
	if len(c.ext) == 0 {
		c.ext = append(c.ext, '{')
	} else {
		c.ext = append(c.ext, ',')
	}
	c.ext = appendString(c.ext, name)
	c.ext = append(c.ext, ':')
	c.ext = append(c.ext, raw...)
	return nil
}

// finish checks the required attributes and the data, and returns the event.
func (c *cloudEvent) finish() (Event, error) {
	ev := c.ev
	switch {
	case c.specversion == "":
		return Event{}, &DecodeError{Field: "specversion", Reason: "missing"}
	case !strings.HasPrefix(c.specversion, "1."):
		return Event{}, &DecodeError{Field: "specversion", Reason: "unsupported CloudEvents version " + quote(c.specversion) + " (want 1.0)"}
	case ev.ID == "":
		return Event{}, &DecodeError{Field: "id", Reason: "missing: every CloudEvent needs an id"}
	case ev.Source == "":
		return Event{}, &DecodeError{Field: "source", Reason: "missing: every CloudEvent needs a source"}
	}
	if msg := cloudTypeError(ev.Type); msg != "" {
		return Event{}, &DecodeError{Field: "type", Reason: msg}
	}
	ev.SchemaVersion = SchemaVersion
	if c.hasTime {
		t, err := time.Parse(time.RFC3339Nano, c.timeText)
		if err != nil {
			return Event{}, &DecodeError{Field: "time", Reason: "not an RFC 3339 time: " + quote(c.timeText), Err: err}
		}
		ev.Time = t.UTC()
		if y := ev.Time.Year(); y < 1 || y > 9999 {
			return Event{}, &DecodeError{Field: "time", Reason: "time out of range (years 0001 to 9999 in UTC): " + quote(c.timeText)}
		}
	} else {
		c.attrs.NoTime = true
	}
	switch {
	case c.hasB64:
		if _, err := base64.StdEncoding.DecodeString(c.dataBase64); err != nil {
			return Event{}, &DecodeError{Field: "data_base64", Reason: "not base64", Err: err}
		}
		ev.Data = json.RawMessage(strconv.Quote(c.dataBase64))
		c.attrs.DataBase64 = true
	case c.data != nil && !bytes.Equal(c.data, []byte("null")):
		if !IsJSONMediaType(c.attrs.DataContentType) && c.data[0] != '"' {
			return Event{}, &DecodeError{Field: "data", Reason: "data of content type " + quote(c.attrs.DataContentType) + " must be a JSON string (or data_base64)"}
		}
		ev.Data = append(json.RawMessage(nil), c.data...)
	}
	if len(c.ext) > 0 {
		c.attrs.Extensions = append(c.ext, '}')
	}
	attrs := c.attrs
	ev.Cloud = &attrs
	return ev, nil
}

// decodeCloudJSON reads a CloudEvent in the JSON format (structured mode).
func decodeCloudJSON(b []byte) (Event, error) {
	var c cloudEvent
	p := fastParser{b: b}
	p.ws()
	err := p.members(func(key string) error {
		raw, err := p.raw()
		if err != nil {
			return err
		}
		return c.member(key, raw)
	})
	if err == nil {
		err = p.end()
	}
	if err == errFallback {
		// Not valid JSON: let encoding/json say why.
		var m map[string]json.RawMessage
		if jerr := json.Unmarshal(b, &m); jerr != nil {
			return Event{}, jsonDecodeError(jerr)
		}
		return Event{}, &DecodeError{Reason: "malformed JSON"}
	}
	if err != nil {
		return Event{}, err
	}
	return c.finish()
}

// member takes one member of a structured CloudEvent.
func (c *cloudEvent) member(key string, raw json.RawMessage) error {
	switch key {
	case "data":
		c.data = raw
		return nil
	case "data_base64":
		s, err := jsonString(key, raw)
		c.dataBase64, c.hasB64 = s, true
		return err
	}
	if raw[0] == '"' {
		s, err := jsonString(key, raw)
		if err != nil {
			return err
		}
		if cloudCore(key) || key == "correlationid" || key == "causationid" || key == "language" {
			return c.set(key, s)
		}
		return c.extension(key, raw, s)
	}
	if cloudCore(key) || key == "correlationid" || key == "causationid" || key == "language" {
		if string(raw) == "null" {
			return nil
		}
		return &DecodeError{Field: key, Reason: "want a string, got " + string(raw)}
	}
	switch raw[0] {
	case '{', '[':
		return &DecodeError{Field: key, Reason: "an extension attribute must be a string, number or boolean"}
	case 'n':
		return nil // null: absent
	}
	return c.extension(key, raw, "")
}

func jsonString(field string, raw json.RawMessage) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &DecodeError{Field: field, Reason: "want a string, got " + string(raw)}
	}
	return s, nil
}

// DecodeCloudBinary reads a CloudEvent in binary mode: its attributes
// (names without the ce- prefix, lowercase; values decoded), the content
// type of the data (the datacontenttype) and the data. Data of a JSON
// content type must be JSON and stays JSON; other data is kept as text
// when it is UTF-8 and as base64 otherwise, and leaves as the same bytes.
func DecodeCloudBinary(attrs map[string]string, contentType string, body []byte, opts DecodeOptions) (Event, error) {
	max := opts.MaxSize
	if max == 0 {
		max = DefaultMaxEventSize
	}
	size := len(body)
	for k, v := range attrs {
		size += len(k) + len(v)
	}
	if max > 0 && size > max {
		return Event{}, &DecodeError{Reason: fmt.Sprintf("%d bytes is over the limit of %d", size, max), Err: ErrTooLarge}
	}
	var c cloudEvent
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		if name == "data" || name == "data_base64" || name == "datacontenttype" {
			return Event{}, &DecodeError{Field: name, Reason: "not an attribute of binary mode (the body is the data, Content-Type its type)"}
		}
		if !ValidCloudName(name) {
			return Event{}, &DecodeError{Field: name, Reason: "not a CloudEvents attribute name (1 to 20 lowercase letters and digits)"}
		}
		if err := c.set(name, attrs[name]); err != nil {
			return Event{}, err
		}
	}
	c.attrs.DataContentType = contentType
	if len(body) > 0 {
		switch {
		case IsJSONMediaType(contentType) && json.Valid(body):
			if err := checkNumbers(body); err != nil {
				return Event{}, err
			}
			c.data = body
			if !utf8.Valid(body) {
				c.data = bytes.ToValidUTF8(body, []byte("\uFFFD"))
				if opts.OnRepair != nil {
					opts.OnRepair()
				}
			}
		case IsJSONMediaType(contentType) && contentType != "":
			return Event{}, &DecodeError{Field: "data", Reason: "the body is not JSON, but Content-Type says " + quote(contentType)}
		case contentType != "" && utf8.Valid(body):
			c.data = appendString(nil, string(body))
		default:
			c.dataBase64, c.hasB64 = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return c.finish()
}

// DecodeCloudHeaders reads a CloudEvent in a binding's binary mode from
// its headers (HTTP's and NATS's are both a map of canonical names to
// values): every ce-* header is an attribute (the value as sent, as the
// SDKs send it), Content-Type the datacontenttype, body the data.
func DecodeCloudHeaders(h map[string][]string, body []byte, opts DecodeOptions) (Event, error) {
	attrs := make(map[string]string, 8)
	var ct string
	for k, v := range h {
		switch {
		case len(v) == 0:
		case len(k) > 3 && strings.EqualFold(k[:3], "ce-"):
			attrs[strings.ToLower(k[3:])] = v[0]
		case strings.EqualFold(k, "Content-Type"):
			ct = v[0]
		}
	}
	return DecodeCloudBinary(attrs, ct, body, opts)
}

// cloudSource is the source written for an event that has none.
const cloudSource = "eventpipe"

// AppendCloudEvent appends the event as one CloudEvent in the JSON format
// (structured mode). Its data is written as it came, so it may hold line
// breaks: AppendCloudEventLine is the one-line form. An event that arrived as a CloudEvent is
// written with the attributes it came with; eventpipe's own fields map to
// extension attributes (docs/event-format.md).
func (e *Event) AppendCloudEvent(dst []byte) []byte {
	dst = append(dst, `{"specversion":"1.0","id":`...)
	dst = appendString(dst, e.ID)
	src := e.Source
	if src == "" {
		src = cloudSource
	}
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, src)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	c := e.Cloud
	ct := "application/json"
	if c != nil {
		ct = c.DataContentType
		if c.Subject != "" {
			dst = append(dst, `,"subject":`...)
			dst = appendString(dst, c.Subject)
		}
		if c.DataSchema != "" {
			dst = append(dst, `,"dataschema":`...)
			dst = appendString(dst, c.DataSchema)
		}
	}
	if ct != "" && (len(e.Data) > 0 || c != nil) {
		dst = append(dst, `,"datacontenttype":`...)
		dst = appendString(dst, ct)
	}
	if c == nil || !c.NoTime {
		dst = append(dst, `,"time":"`...)
		dst = e.Time.UTC().AppendFormat(dst, TimeFormat)
		dst = append(dst, '"')
	}
	dst = e.appendCloudExtensions(dst, func(dst []byte, name string, raw []byte) []byte {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
		return append(dst, raw...)
	})
	if len(e.Data) > 0 {
		if c != nil && c.DataBase64 {
			dst = append(dst, `,"data_base64":`...)
		} else {
			dst = append(dst, `,"data":`...)
		}
		dst = append(dst, e.Data...) // as it came, byte for byte
	}
	return append(dst, '}')
}

// appendCloudExtensions calls add for each extension attribute of the
// event with its JSON value, eventpipe's fields first.
func (e *Event) appendCloudExtensions(dst []byte, add func(dst []byte, name string, raw []byte) []byte) []byte {
	var scratch []byte
	str := func(name, v string) {
		scratch = appendString(scratch[:0], v)
		dst = add(dst, name, scratch)
	}
	if e.CorrelationID != "" {
		str("correlationid", e.CorrelationID)
	}
	if e.CausationID != "" {
		str("causationid", e.CausationID)
	}
	if e.Language != "" {
		str("language", e.Language)
	}
	if len(e.Tags) > 0 {
		tags, _ := json.Marshal(e.Tags)
		str("tags", string(tags))
	}
	if e.Cloud == nil {
		// The CloudEvents sequence extension: a string.
		scratch = append(scratch[:0], '"')
		scratch = strconv.AppendUint(scratch, e.Sequence, 10)
		scratch = append(scratch, '"')
		dst = add(dst, "sequence", scratch)
		return dst
	}
	if ext := e.Cloud.Extensions; len(ext) > 2 {
		p := fastParser{b: ext}
		_ = p.members(func(key string) error {
			raw, err := p.raw()
			if err == nil && !(key == "tags" && len(e.Tags) > 0) { // the event's tags win
				dst = add(dst, key, raw)
			}
			return err
		})
	}
	return dst
}

// CloudBinary is the event in binary mode: attr is called with each
// context attribute but datacontenttype (name without a prefix, value as
// text), and it returns the content type and the bytes of the data.
func (e *Event) CloudBinary(attr func(name, value string)) (contentType string, data []byte, err error) {
	attr("specversion", CloudSpecVersion)
	attr("id", e.ID)
	src := e.Source
	if src == "" {
		src = cloudSource
	}
	attr("source", src)
	attr("type", e.Type)
	c := e.Cloud
	contentType = "application/json"
	if c != nil {
		contentType = c.DataContentType
		if c.Subject != "" {
			attr("subject", c.Subject)
		}
		if c.DataSchema != "" {
			attr("dataschema", c.DataSchema)
		}
	}
	if c == nil || !c.NoTime {
		attr("time", e.Time.UTC().Format(time.RFC3339Nano))
	}
	e.appendCloudExtensions(nil, func(dst []byte, name string, raw []byte) []byte {
		v := string(raw)
		if len(raw) > 0 && raw[0] == '"' {
			v, _ = jsonString(name, raw)
		}
		attr(name, v)
		return dst
	})
	if len(e.Data) == 0 {
		return contentType, nil, nil
	}
	switch {
	case c != nil && c.DataBase64:
		s, err := jsonString("data", e.Data)
		if err != nil {
			return "", nil, err
		}
		data, err = base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", nil, fmt.Errorf("event %s: data_base64: %w", e.ID, err)
		}
		return contentType, data, nil
	case !IsJSONMediaType(contentType) && e.Data[0] == '"':
		s, err := jsonString("data", e.Data)
		return contentType, []byte(s), err
	}
	return contentType, e.Data, nil
}

// MediaType is the media type of a Content-Type value, lowercase, without
// parameters ("" when it cannot be parsed).
func MediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// AppendCloudEventLine is AppendCloudEvent on one line (JSON lines): data
// with line breaks between its tokens is compacted.
func (e *Event) AppendCloudEventLine(dst []byte) []byte {
	n := len(dst)
	dst = e.AppendCloudEvent(dst)
	if bytes.IndexByte(dst[n:], '\n') < 0 && bytes.IndexByte(dst[n:], '\r') < 0 {
		return dst
	}
	line := append([]byte(nil), dst[n:]...)
	return appendData(dst[:n], line)
}
