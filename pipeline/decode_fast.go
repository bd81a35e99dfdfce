package pipeline

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/eventpipe/eventpipe/pipeline/internal/jsonscan"
)

// errFallback says the fast decoder met something it leaves to
// encoding/json: an escaped string is handled in place, but a wrong type,
// a syntax error or anything unusual goes to the standard decoder, so that
// errors (and edge cases) are exactly encoding/json's.
var errFallback = errors.New("fallback")

// decodeFast fills w from the JSON object b in one pass, without
// reflection. Only data and unknown fields are validated as a whole
// (json.Valid); the rest is parsed and checked here. The differential fuzz
// test holds it to encoding/json's results.
func decodeFast(b []byte, w *wireEvent) error {
	_, err := decodeFastIn(b, w, false)
	return err
}

// dataScan is what the pass over data found besides its end: a number no
// float64 holds, bytes that are not ASCII (which may not be UTF-8).
type dataScan struct {
	huge     string
	nonASCII bool
}

// decodeFastIn is decodeFast; with own, b belongs to the event being
// decoded (a copy made for it, never changed after): its strings and data
// are views of b instead of copies, so that decoding allocates once.
func decodeFastIn(b []byte, w *wireEvent, own bool) (dataScan, error) {
	p := fastParser{b: b, own: own}
	var ds dataScan
	p.ws()
	err := p.members(func(key string) error {
		switch key {
		case "schema_version":
			return p.strInto(&w.SchemaVersion)
		case "id":
			var err error
			w.ID, err = p.raw()
			return err
		case "type":
			return p.strInto(&w.Type)
		case "time":
			return p.strInto(&w.Time)
		case "source":
			return p.strInto(&w.Source)
		case "sequence":
			var err error
			w.Sequence, err = p.raw()
			return err
		case "correlation_id":
			return p.strInto(&w.CorrelationID)
		case "causation_id":
			return p.strInto(&w.CausationID)
		case "tags":
			var err error
			w.Tags, err = p.strings()
			return err
		case "language":
			return p.strInto(&w.Language)
		case "data":
			var err error
			w.Data, err = p.raw()
			ds = p.scan
			return err
		case "event_type":
			return p.strInto(&w.EventType)
		case "timestamp":
			return p.strInto(&w.Timestamp)
		case "metadata":
			return p.metadata(w)
		case "specversion":
			return p.strInto(&w.SpecVersion)
		case "cloudevents":
			return errFallback // rare: encoding/json reads it
		}
		if foldsToKnown(key, wireKeys) {
			return errFallback // encoding/json matches keys without regard to case
		}
		_, err := p.raw()
		return err
	})
	if err != nil {
		return ds, err
	}
	return ds, p.end()
}

// members walks an object at the parser's position, calling fn with each
// key while the parser stands at its value; fn must consume the value.
func (p *fastParser) members(fn func(key string) error) error {
	if !p.eat('{') {
		return errFallback
	}
	p.ws()
	if p.eat('}') {
		return nil
	}
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return errFallback
		}
		p.ws()
		if !p.eat(':') {
			return errFallback
		}
		p.ws()
		if err := fn(key); err != nil {
			return err
		}
		p.ws()
		if p.eat('}') {
			return nil
		}
		if !p.eat(',') {
			return errFallback
		}
	}
}

var (
	wireKeys = []string{"schema_version", "id", "type", "time", "source", "sequence", "correlation_id", "causation_id",
		"tags", "language", "data", "event_type", "timestamp", "metadata", "specversion", "cloudevents"}
	metadataKeys = []string{"correlation_id", "source", "tags", "custom"}
)

func foldsToKnown(key string, known []string) bool {
	for _, k := range known {
		if len(k) == len(key) && strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

type fastParser struct {
	b    []byte
	i    int
	own  bool     // strings may be views of b (decodeFastIn)
	scan dataScan // what raw found in the last value
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *fastParser) end() error {
	p.ws()
	if p.i != len(p.b) {
		return errFallback
	}
	return nil
}

// str reads a string; escapes are decoded by encoding/json.
func (p *fastParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start := p.i
	esc, ascii := false, true
	for j := p.i + 1; j < len(p.b); j++ {
		c := p.b[j]
		switch {
		case c == '\\':
			esc = true
			j++
		case c == '"':
			p.i = j + 1
			body := p.b[start+1 : j]
			if esc {
				var s string
				if json.Unmarshal(p.b[start:p.i], &s) != nil {
					return "", false
				}
				return s, true
			}
			if !ascii && !utf8.Valid(body) {
				return "", false // encoding/json would substitute U+FFFD
			}
			if p.own && len(body) > 0 {
				return unsafe.String(&body[0], len(body)), true
			}
			return string(body), true
		case c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

func (p *fastParser) strInto(dst *string) error {
	if p.i < len(p.b) && p.b[p.i] == 'n' {
		if _, err := p.raw(); err != nil {
			return err
		}
		return nil // null leaves the field as it was, as encoding/json does
	}
	s, ok := p.str()
	if !ok {
		return errFallback
	}
	*dst = s
	return nil
}

func (p *fastParser) strings() ([]string, error) {
	if p.i < len(p.b) && p.b[p.i] == 'n' {
		_, err := p.raw()
		return nil, err
	}
	if !p.eat('[') {
		return nil, errFallback
	}
	out := []string{}
	p.ws()
	if p.eat(']') {
		return out, nil
	}
	for {
		p.ws()
		s, ok := p.str()
		if !ok {
			return nil, errFallback
		}
		out = append(out, s)
		p.ws()
		if p.eat(']') {
			return out, nil
		}
		if !p.eat(',') {
			return nil, errFallback
		}
	}
}

func (p *fastParser) metadata(w *wireEvent) error {
	if p.i < len(p.b) && p.b[p.i] == 'n' {
		_, err := p.raw()
		return err
	}
	m := &wireMetadata{}
	w.Metadata = m
	return p.members(func(key string) error {
		switch key {
		case "correlation_id":
			return p.strInto(&m.CorrelationID)
		case "source":
			return p.strInto(&m.Source)
		case "tags":
			var err error
			m.Tags, err = p.strings()
			return err
		case "custom":
			var err error
			m.Custom, err = p.raw()
			return err
		}
		if foldsToKnown(key, metadataKeys) {
			return errFallback
		}
		_, err := p.raw()
		return err
	})
}

// raw returns the next value's bytes, validated in the pass that finds
// their end (jsonscan.Valid, held to encoding/json's verdict).
func (p *fastParser) raw() (json.RawMessage, error) {
	start := p.i
	end, huge, nonASCII := jsonscan.Scan(p.b, p.i)
	if end < 0 {
		return nil, errFallback
	}
	p.i, p.scan = end, dataScan{huge, nonASCII}
	return p.b[start:end:end], nil
}
