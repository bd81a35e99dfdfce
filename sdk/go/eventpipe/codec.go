// Package eventpipe is the Go SDK for eventpipe plugins (ABI v1,
// sdk/ABI.md). A plugin is a few lines:
//
//	package main
//
//	import "github.com/eventpipe/eventpipe/sdk/go/eventpipe"
//
//	func init() {
//		eventpipe.Register(eventpipe.Plugin{
//			Name: "drop-debug", Version: "1.0.0", Kind: eventpipe.KindFilter,
//			Filter: func(e *eventpipe.Event) eventpipe.Verdict {
//				if strings.HasSuffix(e.Type, ".debug") {
//					return eventpipe.Drop
//				}
//				return eventpipe.Keep
//			},
//		})
//	}
//
//	func main() {}
//
// Build it with standard Go (1.24 or later):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o drop-debug.wasm .
//
// The SDK does the ABI: the exports, the batch decoding, one call per
// batch. Strings and slices of an Event alias the batch buffer and are
// valid only during the call that received them; copy what you keep.
package eventpipe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// Kinds of plugin.
const (
	KindFilter    = "filter"
	KindTransform = "transform"
	KindRoute     = "route"
	KindExport    = "export"
)

// Verdict is a filter's decision for one event.
type Verdict uint8

const (
	Keep       Verdict = 0
	Drop       Verdict = 1
	DeadLetter Verdict = 2
)

// Event is one event of a batch. Tags is a JSON array of strings (or
// empty); Data is the JSON payload (or empty); Attributes is a JSON object
// of the event's CloudEvents attributes (subject, datacontenttype,
// dataschema, extensions; sdk/ABI.md, ABI 2) or empty.
type Event struct {
	Time          int64 // unix nanoseconds, UTC
	Sequence      uint64
	Type          string
	Source        string
	ID            string
	CorrelationID string
	CausationID   string
	Language      string
	Tags          []byte
	Data          []byte
	Attributes    []byte
}

const (
	batchMagic   = 0x31425045
	recordHeader = 40
)

// ErrMalformed is returned for a batch that does not follow the encoding.
var ErrMalformed = errors.New("eventpipe: malformed batch")

func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// DecodeBatch calls fn for each event of an encoded batch, in order.
func DecodeBatch(buf []byte, fn func(i int, e *Event) error) error {
	le := binary.LittleEndian
	if len(buf) < 8 || le.Uint32(buf) != batchMagic {
		return ErrMalformed
	}
	n := int(le.Uint32(buf[4:]))
	o := 8
	var e Event
	for i := 0; i < n; i++ {
		if len(buf)-o < recordHeader {
			return fmt.Errorf("%w: record %d truncated", ErrMalformed, i)
		}
		size := int(le.Uint32(buf[o:]))
		if size < recordHeader || size > len(buf)-o {
			return fmt.Errorf("%w: record %d size %d", ErrMalformed, i, size)
		}
		r := buf[o : o+size]
		e.Time = int64(le.Uint64(r[4:]))
		e.Sequence = le.Uint64(r[12:])
		p := recordHeader
		var f [7][]byte
		for k := range f {
			l := int(le.Uint16(r[20+2*k:]))
			if p+l > size {
				return fmt.Errorf("%w: record %d field %d", ErrMalformed, i, k)
			}
			f[k] = r[p : p+l]
			p += l
		}
		dl := int(le.Uint32(r[36:]))
		la := int(le.Uint16(r[34:])) // ABI 2: the attributes, after data
		if p+dl+la != size {
			return fmt.Errorf("%w: record %d lengths", ErrMalformed, i)
		}
		e.Type, e.Source, e.ID, e.CorrelationID = view(f[0]), view(f[1]), view(f[2]), view(f[3])
		e.CausationID, e.Language, e.Tags = view(f[4]), view(f[5]), f[6]
		e.Data = r[p : p+dl]
		e.Attributes = r[p+dl : size]
		if err := fn(i, &e); err != nil {
			return err
		}
		o += size
	}
	return nil
}

// AppendBatchHeader starts an encoded batch of count records.
func AppendBatchHeader(dst []byte, count int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, batchMagic)
	return binary.LittleEndian.AppendUint32(dst, uint32(count))
}

// AppendRecord appends e as one record; a nil e appends a "dropped" record.
func AppendRecord(dst []byte, e *Event) []byte {
	le := binary.LittleEndian
	if e == nil {
		e = &Event{}
	}
	fields := [7]string{e.Type, e.Source, e.ID, e.CorrelationID, e.CausationID, e.Language, view(e.Tags)}
	size := recordHeader + len(e.Data) + len(e.Attributes)
	for _, f := range fields {
		size += len(f)
	}
	dst = le.AppendUint32(dst, uint32(size))
	dst = le.AppendUint64(dst, uint64(e.Time))
	dst = le.AppendUint64(dst, e.Sequence)
	for _, f := range fields {
		dst = le.AppendUint16(dst, uint16(len(f)))
	}
	dst = le.AppendUint16(dst, uint16(len(e.Attributes)))
	dst = le.AppendUint32(dst, uint32(len(e.Data)))
	for _, f := range fields {
		dst = append(dst, f...)
	}
	dst = append(dst, e.Data...)
	return append(dst, e.Attributes...)
}
