package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary record format carries events between two parts of eventpipe
// (the persist store writes it and reads it back), where JSON would be
// decoded and validated a second time for nothing: encoding is a few
// copies, decoding one allocation per message. It is not a public format:
// docs/operations.md describes it, and readers of the stream get JSON
// lines from `eventpipe replay`.
//
//	record := size:u32 (of the whole record) sequence:u64 time_len:u8 time
//	          schema_len:u16 id_len:u16 type_len:u16 source_len:u16
//	          correlation_len:u16 causation_len:u16 language_len:u16
//	          tags:u16 (count) data_len:u32
//	          schema id type source correlation causation language
//	          (tag_len:u16 tag)* data [cloud]
//
// cloud, the rest of the record after data, is the event's CloudAttributes
// as the JSON object AppendJSON writes under "cloudevents" (records of
// events without them end with data, as before it existed).
// time is time.Time's binary form (its instant and zone offset).

const binaryFixed = 4 + 8 + 1 + 7*2 + 2 + 4

// AppendBinary appends the event's binary record to dst. Strings and tags
// longer than 65535 bytes cannot be written (an error).
func (e *Event) AppendBinary(dst []byte) ([]byte, error) {
	var scratch [16]byte
	tm, err := e.Time.AppendBinary(scratch[:0])
	if err != nil || len(tm) > 255 {
		return dst, fmt.Errorf("event %s: time: %v", e.ID, err)
	}
	strs := [7]string{e.SchemaVersion, e.ID, e.Type, e.Source, e.CorrelationID, e.CausationID, e.Language}
	size := binaryFixed + len(tm) + len(e.Data)
	for _, s := range strs {
		if len(s) > 0xffff {
			return dst, fmt.Errorf("event %s: a field over 65535 bytes", e.ID)
		}
		size += len(s)
	}
	if len(e.Tags) > 0xffff {
		return dst, fmt.Errorf("event %s: over 65535 tags", e.ID)
	}
	for _, t := range e.Tags {
		if len(t) > 0xffff {
			return dst, fmt.Errorf("event %s: a tag over 65535 bytes", e.ID)
		}
		size += 2 + len(t)
	}
	var cloud []byte
	if e.Cloud != nil {
		cloud = appendCloudObject(nil, e.Cloud)
		size += len(cloud)
	}
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, uint32(size))
	dst = le.AppendUint64(dst, e.Sequence)
	dst = append(dst, byte(len(tm)))
	dst = append(dst, tm...)
	for _, s := range strs {
		dst = le.AppendUint16(dst, uint16(len(s)))
	}
	dst = le.AppendUint16(dst, uint16(len(e.Tags)))
	dst = le.AppendUint32(dst, uint32(len(e.Data)))
	for _, s := range strs {
		dst = append(dst, s...)
	}
	for _, t := range e.Tags {
		dst = le.AppendUint16(dst, uint16(len(t)))
		dst = append(dst, t...)
	}
	dst = append(dst, e.Data...)
	return append(dst, cloud...), nil
}

var errBinary = errors.New("malformed binary record")

// DecodeBinary appends the events of a run of binary records to dst. The
// events' strings share one copy of data; their Data aliases data itself,
// which the caller must not change afterwards. Data is not validated as
// JSON: the format is only read where eventpipe wrote it.
func DecodeBinary(dst []Event, data []byte) ([]Event, error) {
	s := string(data) // one copy for every string of every record
	le := binary.LittleEndian
	for o, n := 0, 1; o < len(data); n++ {
		if len(data)-o < binaryFixed {
			return dst, fmt.Errorf("record %d: %w (truncated)", n, errBinary)
		}
		size := int(le.Uint32(data[o:]))
		if size < binaryFixed || size > len(data)-o {
			return dst, fmt.Errorf("record %d: %w (size %d)", n, errBinary, size)
		}
		r, base := data[o:o+size], o
		var e Event
		e.Sequence = le.Uint64(r[4:])
		tl := int(r[12])
		p := 13 + tl
		if p+7*2+2+4 > size {
			return dst, fmt.Errorf("record %d: %w (time)", n, errBinary)
		}
		if err := e.Time.UnmarshalBinary(r[13:p]); err != nil {
			return dst, fmt.Errorf("record %d: time: %w", n, err)
		}
		var lens [7]int
		for k := range lens {
			lens[k] = int(le.Uint16(r[p+2*k:]))
		}
		ntags := int(le.Uint16(r[p+14:]))
		dl := int(le.Uint32(r[p+16:]))
		p += 20
		str := func(l int) (string, bool) {
			if p+l > size {
				return "", false
			}
			v := s[base+p : base+p+l]
			p += l
			return v, true
		}
		fields := [7]*string{&e.SchemaVersion, &e.ID, &e.Type, &e.Source, &e.CorrelationID, &e.CausationID, &e.Language}
		for k, f := range fields {
			v, ok := str(lens[k])
			if !ok {
				return dst, fmt.Errorf("record %d: %w (field %d)", n, errBinary, k)
			}
			*f = v
		}
		if ntags > 0 {
			e.Tags = make([]string, ntags)
			for k := range e.Tags {
				if p+2 > size {
					return dst, fmt.Errorf("record %d: %w (tags)", n, errBinary)
				}
				l := int(le.Uint16(r[p:]))
				p += 2
				v, ok := str(l)
				if !ok {
					return dst, fmt.Errorf("record %d: %w (tags)", n, errBinary)
				}
				e.Tags[k] = v
			}
		}
		if p+dl > size {
			return dst, fmt.Errorf("record %d: %w (data)", n, errBinary)
		}
		if dl > 0 {
			e.Data = data[base+p : base+p+dl : base+p+dl]
		}
		if p += dl; p < size {
			c, err := decodeCloudObject(r[p:])
			if err != nil {
				return dst, fmt.Errorf("record %d: %w (cloudevents: %v)", n, errBinary, err)
			}
			e.Cloud = c
		}
		dst = append(dst, e)
		o += size
	}
	return dst, nil
}
