package host

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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
	if s := t.Unix(); s < minABISeconds || s > maxABISeconds {
		return 0
	}
	return t.UnixNano()
}

const (
	minABISeconds = -9223372036 + 1 // just inside int64 nanoseconds
	maxABISeconds = 9223372036 - 1
)

func tagsJSON(tags []string) []byte {
	if len(tags) == 0 {
		return nil
	}
	b, _ := json.Marshal(tags)
	return b
}

// encodedSize is the size of the batch encoding of events; attrs: the
// records carry CloudEvents attributes (ABI 2).
func encodedSize(events []pipeline.Event, attrs bool) int {
	n := batchHeader
	for i := range events {
		e := &events[i]
		n += recordHeader + len(e.Type) + len(e.Source) + len(e.ID) + len(e.CorrelationID) +
			len(e.CausationID) + len(e.Language) + len(e.Data)
		if len(e.Tags) > 0 {
			n += len(tagsJSON(e.Tags))
		}
		if attrs && e.Cloud != nil {
			n += len(cloudJSON(e))
		}
	}
	return n
}

// cloudJSON is the attributes field of ABI 2 for e (nil when none).
func cloudJSON(e *pipeline.Event) []byte {
	if e.Cloud == nil {
		return nil
	}
	return pipeline.AppendCloudAttributes(nil, e.Cloud)
}

var errFieldTooLong = errors.New("field over 65535 bytes")

// encodeBatch writes events into dst (len(dst) == encodedSize(events)),
// straight into guest memory when dst is a view of it. Written for speed:
// it is most of the host's cost per event.
func encodeBatch(dst []byte, events []pipeline.Event, attrs bool) error {
	le := binary.LittleEndian
	le.PutUint32(dst[0:], batchMagic)
	le.PutUint32(dst[4:], uint32(len(events)))
	o := batchHeader
	for i := range events {
		e := &events[i]
		var tags []byte
		if len(e.Tags) > 0 {
			tags = tagsJSON(e.Tags)
		}
		var cloud []byte
		if attrs && e.Cloud != nil {
			cloud = cloudJSON(e)
		}
		lt, ls, li, lc, lz, ll, lg, la := len(e.Type), len(e.Source), len(e.ID), len(e.CorrelationID), len(e.CausationID), len(e.Language), len(tags), len(cloud)
		if (lt|ls|li|lc|lz|ll|lg|la)>>16 != 0 {
			return fmt.Errorf("event %d: %w", i, errFieldTooLong)
		}
		size := recordHeader + lt + ls + li + lc + lz + ll + lg + la + len(e.Data)
		r := dst[o : o+size : o+size]
		_ = r[recordHeader-1]
		le.PutUint32(r[0:], uint32(size))
		le.PutUint64(r[4:], uint64(abiTime(e.Time)))
		le.PutUint64(r[12:], e.Sequence)
		le.PutUint64(r[20:], uint64(lt)|uint64(ls)<<16|uint64(li)<<32|uint64(lc)<<48)
		le.PutUint64(r[28:], uint64(lz)|uint64(ll)<<16|uint64(lg)<<32|uint64(la)<<48)
		le.PutUint32(r[36:], uint32(len(e.Data)))
		// Empty fields (most of the optional ones) cost no copy call.
		p := recordHeader
		p += copy(r[p:], e.Type)
		if ls > 0 {
			p += copy(r[p:], e.Source)
		}
		if li > 0 {
			p += copy(r[p:], e.ID)
		}
		if lc|lz|ll|lg != 0 {
			p += copy(r[p:], e.CorrelationID)
			p += copy(r[p:], e.CausationID)
			p += copy(r[p:], e.Language)
			p += copy(r[p:], tags)
		}
		p += copy(r[p:], e.Data)
		if la > 0 {
			copy(r[p:], cloud) // ABI 2: after data, so that v1 readers of data are unchanged
		}
		o += size
	}
	return nil
}

// decodeBatch reads a transform plugin's output: count records replacing
// events in place. A record with an empty type drops its event (the
// returned slice says which). The host-owned fields, id and sequence, keep
// the host's values whatever the record says; rewrites counts the records
// that tried. An event whose payload grew past maxSize (0: no bound) fails
// the batch, as any malformed output does.
func decodeBatch(src []byte, events []pipeline.Event, dropped []bool, maxSize int, attrs bool) (rewrites int, err error) {
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
		var lens [7]int
		total := recordHeader + int(le.Uint32(r[36:]))
		for k := range lens {
			lens[k] = int(le.Uint16(r[20+2*k:]))
			total += lens[k]
		}
		la := 0 // ABI 2: the attributes after data
		if attrs {
			la = int(le.Uint16(r[34:]))
			total += la
		}
		if total != size {
			return rewrites, fmt.Errorf("record %d: field lengths add up to %d, size says %d", i, total, size)
		}
		if lens[0] == 0 {
			dropped[i] = true
			o += size
			continue
		}
		p := recordHeader
		var f [7][]byte
		for k, n := range lens {
			f[k] = r[p : p+n]
			p += n
		}
		data := r[p : size-la]
		e := &events[i]
		if attrs {
			if cloud := r[size-la:]; string(cloud) != string(cloudJSON(e)) {
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
			if string(f[6]) != string(tagsJSON(e.Tags)) {
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
}

func (m Manifest) has(c string) bool {
	for _, x := range m.Capabilities {
		if strings.EqualFold(x, c) {
			return true
		}
	}
	return false
}
