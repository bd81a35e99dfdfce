package host

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Batch encoding of ABI v1 (sdk/ABI.md): a header then one record per event.
const (
	batchMagic   = 0x31425045 // "EPB1"
	batchHeader  = 8
	recordHeader = 40
)

// abiTime is the ABI's time field for t: unix nanoseconds, or 0 for a time
// int64 nanoseconds cannot hold (before 1678 or after 2262; the zero time).
func abiTime(t time.Time) int64 {
	// UnixNano is defined for 1678-2262; Unix seconds bound it cheaply.
	s := t.Unix()
	if s < minABISeconds || s > maxABISeconds {
		return 0
	}
	return s*1e9 + int64(t.Nanosecond())
}

const (
	minABISeconds = -9223372036 + 1 // just inside int64 nanoseconds
	maxABISeconds = 9223372036 - 1
)

// fieldSet is the record fields a plugin reads (the manifest's reads):
// the host copies only those into guest memory, and leaves the others
// empty. The header (size, time, sequence, lengths) is always written.
type fieldSet uint16

const (
	fieldType fieldSet = 1 << iota
	fieldSource
	fieldID
	fieldCorrelation
	fieldCausation
	fieldLanguage
	fieldTags
	fieldData
	fieldAttributes
	allFields = fieldAttributes<<1 - 1
)

// fieldNames are the names the manifest's reads uses, by bit.
var fieldNames = map[string]fieldSet{
	"type": fieldType, "source": fieldSource, "id": fieldID, "correlation_id": fieldCorrelation,
	"causation_id": fieldCausation, "language": fieldLanguage, "tags": fieldTags, "data": fieldData,
	"attributes": fieldAttributes,
	// In the header of every record: listing them changes nothing.
	"time": 0, "sequence": 0,
}

// parseReads turns a manifest's reads into a field set: all fields when
// the list is absent.
func parseReads(reads []string) (fieldSet, error) {
	if reads == nil {
		return allFields, nil
	}
	var fs fieldSet
	for _, r := range reads {
		f, ok := fieldNames[r]
		if !ok {
			return 0, fmt.Errorf("manifest reads %q, which is not a record field (%s)", r, strings.Join(slices.Sorted(maps.Keys(fieldNames)), ", "))
		}
		fs |= f
	}
	return fs, nil
}

// extras are the tags and attributes JSON of e that fs includes, built in
// scratch (valid until its next use); nil when e has none.
func (fs fieldSet) extras(e *pipeline.Event, attrs bool, scratch *[]byte) (tags, cloud []byte) {
	hasTags, hasCloud := len(e.Tags) > 0 && fs&fieldTags != 0, attrs && e.Cloud != nil && fs&fieldAttributes != 0
	if !hasTags && !hasCloud {
		return nil, nil
	}
	buf := (*scratch)[:0]
	if hasTags {
		buf = appendTagsJSON(buf, e.Tags)
	}
	n := len(buf)
	if hasCloud {
		buf = pipeline.AppendCloudAttributes(buf, e.Cloud)
	}
	*scratch = buf
	return buf[:n:n], buf[n:]
}

// lengthMasks are fs as masks over field lengths (-1: the field is
// copied, 0: it is left empty), so that the encoder picks fields without
// branching per event.
type lengthMasks struct{ typ, src, id, corr, caus, lang, data int }

func (fs fieldSet) masks() lengthMasks {
	m := func(f fieldSet) int {
		if fs&f != 0 {
			return -1
		}
		return 0
	}
	return lengthMasks{m(fieldType), m(fieldSource), m(fieldID), m(fieldCorrelation), m(fieldCausation), m(fieldLanguage), m(fieldData)}
}

// encodedSize is the size of the batch encoding of events with the fields
// in fs; attrs: the records carry CloudEvents attributes (ABI 2).
func encodedSize(events []pipeline.Event, attrs bool, fs fieldSet, scratch *[]byte) int {
	m := fs.masks()
	n := batchHeader + recordHeader*len(events)
	for i := range events {
		e := &events[i]
		n += len(e.Type)&m.typ + len(e.Source)&m.src + len(e.ID)&m.id + len(e.CorrelationID)&m.corr +
			len(e.CausationID)&m.caus + len(e.Language)&m.lang + len(e.Data)&m.data
		if len(e.Tags) > 0 || attrs && e.Cloud != nil {
			tags, cloud := fs.extras(e, attrs, scratch)
			n += len(tags) + len(cloud)
		}
	}
	return n
}

// appendTagsJSON appends tags as a JSON array of strings, as json.Marshal
// writes it, without allocating for tags of plain characters.
func appendTagsJSON(dst []byte, tags []string) []byte {
	for _, t := range tags {
		for i := 0; i < len(t); i++ {
			if c := t[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				b, _ := json.Marshal(tags) // escapes as encoding/json does
				return append(dst, b...)
			}
		}
	}
	dst = append(dst, '[')
	for i, t := range tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, t...)
		dst = append(dst, '"')
	}
	return append(dst, ']')
}

var errFieldTooLong = errors.New("field over 65535 bytes")

// errShortBuffer: the batch does not fit the buffer given to encodeBatch.
var errShortBuffer = errors.New("batch larger than its buffer")

// encodeBatch writes events, with the fields in fs, into dst, straight into
// guest memory when dst is a view of it, and returns the bytes written:
// encodedSize(events, attrs, fs), or errShortBuffer when dst is shorter.
// Written for speed: it is most of the host's cost per event. The loop
// writes the fields most events have (type, source, id, data); an event
// with any other that fs includes goes to encodeRecord (a loop that
// handled every field for every event took twice the time per record).
func encodeBatch(dst []byte, events []pipeline.Event, attrs bool, fs fieldSet, scratch *[]byte) (int, error) {
	le := binary.LittleEndian
	if len(dst) < batchHeader {
		return 0, errShortBuffer
	}
	le.PutUint32(dst[0:], batchMagic)
	le.PutUint32(dst[4:], uint32(len(events)))
	if fs&^(fieldType|fieldSource|fieldData) == 0 {
		return encodeLean(dst, events, fs)
	}
	m := fs.masks()
	rare := fs & (fieldCorrelation | fieldCausation | fieldLanguage | fieldTags | fieldAttributes)
	o := batchHeader
	for i := range events {
		e := &events[i]
		if rare != 0 && (len(e.CorrelationID)|len(e.CausationID)|len(e.Language)|len(e.Tags) != 0 || attrs && e.Cloud != nil) {
			n, err := encodeRecord(dst[o:], e, attrs, fs, scratch)
			if err != nil {
				return 0, fmt.Errorf("event %d: %w", i, err)
			}
			o += n
			continue
		}
		lt, ls, li, ld := len(e.Type)&m.typ, len(e.Source)&m.src, len(e.ID)&m.id, len(e.Data)&m.data
		if (lt|ls|li)>>16 != 0 {
			return 0, fmt.Errorf("event %d: %w", i, errFieldTooLong)
		}
		size := recordHeader + lt + ls + li + ld
		if size > len(dst)-o {
			return 0, errShortBuffer
		}
		r := dst[o : o+size : o+size]
		putHeader(r, size, abiTime(e.Time), e.Sequence, uint64(lt)|uint64(ls)<<16|uint64(li)<<32, 0, ld)
		// A field the plugin does not read has length 0. Empty fields cost
		// no copy call, short ones (most types and sources) none either.
		p := recordHeader
		p += copyShort(r[p:], e.Type[:lt])
		p += copyShort(r[p:], e.Source[:ls])
		if li > 0 {
			p += copy(r[p:], e.ID[:li])
		}
		if ld > 0 {
			copy(r[p:], e.Data[:ld])
		}
		o += size
	}
	return o, nil
}

// encodeLean is encodeBatch for a plugin that reads no more than type,
// source and data (the fields filters and routes decide on, and the
// reads sdk/ABI.md recommends them): a loop that looks at nothing else.
func encodeLean(dst []byte, events []pipeline.Event, fs fieldSet) (int, error) {
	m := fs.masks()
	o := batchHeader
	for i := range events {
		e := &events[i]
		lt, ls, ld := len(e.Type)&m.typ, len(e.Source)&m.src, len(e.Data)&m.data
		if (lt|ls)>>16 != 0 {
			return 0, fmt.Errorf("event %d: %w", i, errFieldTooLong)
		}
		size := recordHeader + lt + ls + ld
		if size > len(dst)-o {
			return 0, errShortBuffer
		}
		r := dst[o : o+size : o+size]
		putHeader(r, size, abiTime(e.Time), e.Sequence, uint64(lt)|uint64(ls)<<16, 0, ld)
		p := recordHeader
		p += copyShort(r[p:], e.Type[:lt])
		p += copyShort(r[p:], e.Source[:ls])
		if ld > 0 {
			copy(r[p:], e.Data[:ld])
		}
		o += size
	}
	return o, nil
}

// encodeRecord writes e's record, with the fields in fs, at the start of
// dst and returns its size: every field, for the events encodeBatch's
// loop does not handle.
func encodeRecord(dst []byte, e *pipeline.Event, attrs bool, fs fieldSet, scratch *[]byte) (int, error) {
	m := fs.masks()
	tags, cloud := fs.extras(e, attrs, scratch)
	lt, ls, li, lc, lz, ll, lg, la := len(e.Type)&m.typ, len(e.Source)&m.src, len(e.ID)&m.id, len(e.CorrelationID)&m.corr,
		len(e.CausationID)&m.caus, len(e.Language)&m.lang, len(tags), len(cloud)
	ld := len(e.Data) & m.data
	if (lt|ls|li|lc|lz|ll|lg|la)>>16 != 0 {
		return 0, errFieldTooLong
	}
	size := recordHeader + lt + ls + li + lc + lz + ll + lg + la + ld
	if size > len(dst) {
		return 0, errShortBuffer
	}
	r := dst[:size:size]
	putHeader(r, size, abiTime(e.Time), e.Sequence, uint64(lt)|uint64(ls)<<16|uint64(li)<<32|uint64(lc)<<48, uint64(lz)|uint64(ll)<<16|uint64(lg)<<32|uint64(la)<<48, ld)
	p := recordHeader
	for _, f := range [...]string{e.Type[:lt], e.Source[:ls], e.ID[:li], e.CorrelationID[:lc], e.CausationID[:lz], e.Language[:ll]} {
		p += copy(r[p:], f)
	}
	p += copy(r[p:], tags)
	p += copy(r[p:], e.Data[:ld])
	copy(r[p:], cloud) // ABI 2: after data, so that v1 readers of data are unchanged
	return size, nil
}

// putHeader writes the 40-byte header of a record r: its size, time,
// sequence, and the field lengths packed as the ABI lays them out.
func putHeader(r []byte, size int, time int64, seq uint64, lens, moreLens uint64, dataLen int) {
	le := binary.LittleEndian
	_ = r[recordHeader-1]
	le.PutUint32(r[0:], uint32(size))
	le.PutUint64(r[4:], uint64(time))
	le.PutUint64(r[12:], seq)
	le.PutUint64(r[20:], lens)
	le.PutUint64(r[28:], moreLens)
	le.PutUint32(r[36:], uint32(dataLen))
}

// copyShort is copy(dst, s) for the short strings that most types and
// sources are, without a call: 8 to 16 bytes are two overlapping 8-byte
// moves. Other lengths go to copy.
func copyShort(dst []byte, s string) int {
	n := len(s)
	if n < 8 || n > 16 || len(dst) < n {
		return copy(dst, s)
	}
	src, d := unsafe.Pointer(unsafe.StringData(s)), unsafe.Pointer(unsafe.SliceData(dst))
	head, tail := *(*uint64)(src), *(*uint64)(unsafe.Add(src, n-8))
	*(*uint64)(d) = head
	*(*uint64)(unsafe.Add(d, n-8)) = tail
	return n
}

// decodeBatch reads a transform plugin's output: count records replacing
// events in place. A record with an empty type drops its event (the
// returned slice says which). The host-owned fields, id and sequence, keep
// the host's values whatever the record says; rewrites counts the records
// that tried. An event whose payload grew past maxSize (0: no bound) fails
// the batch, as any malformed output does.
func decodeBatch(src []byte, events []pipeline.Event, dropped []bool, maxSize int, attrs bool, scratch *[]byte) (rewrites int, err error) {
	le := binary.LittleEndian
	if len(src) < batchHeader || le.Uint32(src) != batchMagic {
		return 0, errors.New("output is not an EPB1 batch")
	}
	if n := int(le.Uint32(src[4:])); n != len(events) {
		return 0, fmt.Errorf("output has %d records for %d events", n, len(events))
	}
	o := batchHeader
	for i := range events {
		if len(src)-o < recordHeader {
			return rewrites, fmt.Errorf("record %d: truncated", i)
		}
		size := int(le.Uint32(src[o:]))
		if size < recordHeader || size > len(src)-o {
			return rewrites, fmt.Errorf("record %d: bad size %d", i, size)
		}
		r := src[o : o+size]
		w1, w2 := le.Uint64(r[20:]), le.Uint64(r[28:])
		lens := [7]int{int(w1 & 0xffff), int(w1 >> 16 & 0xffff), int(w1 >> 32 & 0xffff), int(w1 >> 48),
			int(w2 & 0xffff), int(w2 >> 16 & 0xffff), int(w2 >> 32 & 0xffff)}
		la := 0 // ABI 2: the attributes after data
		if attrs {
			la = int(w2 >> 48)
		}
		total := recordHeader + int(le.Uint32(r[36:])) + la +
			lens[0] + lens[1] + lens[2] + lens[3] + lens[4] + lens[5] + lens[6]
		if total != size {
			return rewrites, fmt.Errorf("record %d: field lengths add up to %d, size says %d", i, total, size)
		}
		if lens[0] == 0 {
			dropped[i] = true
			o += size
			continue
		}
		// The fields, in record order (each length is below 65536 and they
		// add up to the size: no slice below can be out of range).
		var f [7][]byte
		p := recordHeader
		for k := range f {
			f[k] = r[p : p+lens[k] : p+lens[k]]
			p += lens[k]
		}
		data := r[p : size-la]
		e := &events[i]
		if attrs {
			*scratch = (*scratch)[:0]
			if e.Cloud != nil {
				*scratch = pipeline.AppendCloudAttributes(*scratch, e.Cloud)
			}
			if cloud := r[size-la:]; string(cloud) != string(*scratch) {
				c, err := pipeline.ParseCloudAttributes(cloud)
				if err != nil {
					return rewrites, fmt.Errorf("record %d: attributes: %v", i, err)
				}
				e.Cloud = c
			}
		}
		// Only what the plugin changed is copied: comparing a []byte with a
		// string allocates nothing.
		if string(f[0]) != e.Type {
			if !pipeline.ValidType(string(f[0])) {
				return rewrites, fmt.Errorf("record %d: invalid type %q", i, pluginText(f[0], 256))
			}
			e.Type = string(f[0])
		}
		setIfChanged(&e.Source, f[1])
		if string(f[2]) != e.ID || le.Uint64(r[12:]) != e.Sequence {
			rewrites++ // host-owned: kept as they were
		}
		setIfChanged(&e.CorrelationID, f[3])
		setIfChanged(&e.CausationID, f[4])
		setIfChanged(&e.Language, f[5])
		if t := int64(le.Uint64(r[4:])); t != abiTime(e.Time) {
			e.Time = time.Unix(0, t).UTC() // the plugin changed it
		}
		if len(e.Tags) > 0 || len(f[6]) > 0 {
			if string(f[6]) != string(appendTagsJSON((*scratch)[:0], e.Tags)) {
				e.Tags = nil
				if len(f[6]) > 0 {
					if err := json.Unmarshal(f[6], &e.Tags); err != nil {
						return rewrites, fmt.Errorf("record %d: tags: %v", i, err)
					}
				}
			}
		}
		if string(data) != string(e.Data) {
			if len(data) > 0 && !json.Valid(data) {
				return rewrites, fmt.Errorf("record %d: data is not JSON", i)
			}
			e.Data = append(json.RawMessage(nil), data...)
			if len(data) == 0 {
				e.Data = nil
			}
		}
		if maxSize > 0 && e.PayloadSize() > maxSize {
			return rewrites, fmt.Errorf("record %d: event of %d bytes is over the maximum event size of %d", i, e.PayloadSize(), maxSize)
		}
		o += size
	}
	if o != len(src) {
		return rewrites, fmt.Errorf("output has %d trailing bytes", len(src)-o)
	}
	return rewrites, nil
}

func setIfChanged(dst *string, b []byte) {
	if string(b) != *dst {
		*dst = string(b)
	}
}

// kinds a plugin may declare.
const (
	KindFilter    = "filter"
	KindTransform = "transform"
	KindRoute     = "route"
	KindExport    = "export"
)

func validKind(k string) bool {
	switch k {
	case KindFilter, KindTransform, KindRoute, KindExport:
		return true
	}
	return false
}

// Manifest is what a plugin says about itself.
type Manifest struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Kind         string   `json:"kind"`
	Capabilities []string `json:"capabilities"`
	// ABI is the record revision the plugin reads and writes: 1 (or
	// absent) or 2, whose records carry the CloudEvents attributes.
	ABI int `json:"abi"`
	// Reads lists the record fields the plugin reads (type, source, id,
	// correlation_id, causation_id, language, tags, data, attributes;
	// time and sequence are always there). Absent: all of them. The
	// host copies only these into guest memory, the others arrive empty:
	// a filter on types skips the copy of every payload. Not for
	// transforms, whose output replaces whole events.
	Reads []string `json:"reads,omitempty"`
}

func (m Manifest) has(c string) bool {
	for _, x := range m.Capabilities {
		if strings.EqualFold(x, c) {
			return true
		}
	}
	return false
}
