package pipeline

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// TimeFormat is the layout of the "time" field: RFC 3339 with nanoseconds,
// always in UTC.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// MarshalJSON encodes the event in the eventpipe shape (docs/event-format.md).
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 256+len(e.Data))), nil
}

// UnmarshalJSON decodes any of the accepted shapes (eventpipe, rs-llmspell,
// CloudEvents) with the default DecodeOptions.
func (e *Event) UnmarshalJSON(b []byte) error {
	ev, err := Decode(b, DecodeOptions{})
	if err != nil {
		return err
	}
	*e = ev
	return nil
}

// AppendJSON appends the event's JSON encoding to dst and returns the extended
// buffer. It allocates nothing when dst has room; exporters use it to encode
// batches into one reused buffer. The field order is fixed.
func (e *Event) AppendJSON(dst []byte) []byte {
	sv := e.SchemaVersion
	if sv == "" {
		sv = SchemaVersion
	}
	dst = append(dst, `{"schema_version":`...)
	dst = appendString(dst, sv)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, TimeFormat)
	dst = append(dst, '"')
	if e.Source != "" {
		dst = append(dst, `,"source":`...)
		dst = appendString(dst, e.Source)
	}
	dst = append(dst, `,"sequence":`...)
	dst = strconv.AppendUint(dst, e.Sequence, 10)
	if e.CorrelationID != "" {
		dst = append(dst, `,"correlation_id":`...)
		dst = appendString(dst, e.CorrelationID)
	}
	if e.CausationID != "" {
		dst = append(dst, `,"causation_id":`...)
		dst = appendString(dst, e.CausationID)
	}
	if len(e.Tags) > 0 {
		dst = append(dst, `,"tags":[`...)
		for i, t := range e.Tags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, t)
		}
		dst = append(dst, ']')
	}
	if e.Language != "" {
		dst = append(dst, `,"language":`...)
		dst = appendString(dst, e.Language)
	}
	if e.Cloud != nil {
		dst = append(dst, `,"cloudevents":`...)
		dst = appendCloudObject(dst, e.Cloud)
	}
	if len(e.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = appendData(dst, e.Data)
	}
	return append(dst, '}')
}

// appendData appends a JSON value, on one line: data with a line break
// between its tokens (a pretty-printed HTTP body) is compacted, so that
// every encoding of an event stays one line of JSON lines.
func appendData(dst []byte, data []byte) []byte {
	if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		return append(dst, data...)
	}
	buf := bytes.NewBuffer(dst)
	if json.Compact(buf, data) != nil {
		return append(dst, data...) // not JSON: written as it is (never the case for decoded events)
	}
	return buf.Bytes()
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires and,
// like encoding/json, '<', '>' and '&' and invalid UTF-8.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendJSONString appends s as a JSON string (escaped as encoding/json
// does) to dst. Exporters use it to build other encodings without
// allocating.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

// AppendCloudAttributes appends c as the JSON object the eventpipe shape
// holds under "cloudevents" (and plugins of ABI 2 get in a record).
func AppendCloudAttributes(dst []byte, c *CloudAttributes) []byte { return appendCloudObject(dst, c) }

// ParseCloudAttributes reads what AppendCloudAttributes wrote; an empty
// input is no attributes (nil).
func ParseCloudAttributes(b []byte) (*CloudAttributes, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return decodeCloudObject(b)
}

// appendCloudObject appends c as the JSON object that the eventpipe shape
// holds under "cloudevents".
func appendCloudObject(dst []byte, c *CloudAttributes) []byte {
	dst = append(dst, '{')
	n := len(dst)
	sep := func() {
		if len(dst) > n {
			dst = append(dst, ',')
		}
	}
	field := func(name, v string) {
		if v != "" {
			sep()
			dst = append(dst, '"')
			dst = append(dst, name...)
			dst = append(dst, '"', ':')
			dst = appendString(dst, v)
		}
	}
	field("subject", c.Subject)
	field("datacontenttype", c.DataContentType)
	field("dataschema", c.DataSchema)
	if len(c.Extensions) > 0 {
		sep()
		dst = append(dst, `"extensions":`...)
		dst = appendData(dst, c.Extensions)
	}
	if c.DataBase64 {
		sep()
		dst = append(dst, `"data_base64":true`...)
	}
	if c.NoTime {
		sep()
		dst = append(dst, `"no_time":true`...)
	}
	return append(dst, '}')
}

// decodeCloudObject reads what appendCloudObject wrote.
func decodeCloudObject(b []byte) (*CloudAttributes, error) {
	var w wireCloud
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	return w.attributes(), nil
}
