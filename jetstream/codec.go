package jetstream

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Headers of a stored message.
const (
	// HeaderCount is the number of events the message holds.
	HeaderCount = "Eventpipe-Events"
	// HeaderEncoding says how the events are written: EncodingBinary, or
	// (absent) JSON lines, which other programs may publish.
	HeaderEncoding = "Eventpipe-Encoding"
	EncodingBinary = "binary/1"
)

// group is the events of one type in a published batch.
type group struct {
	typ string
	idx []int
}

// groupByType splits events into groups of one type, in order of first
// appearance; events keep their order within a group.
func groupByType(events []pipeline.Event, scratch []group) []group {
	gs := scratch[:0]
	for i := range events {
		t := events[i].Type
		k := -1
		for j := range gs { // few types per batch: a scan beats a map
			if gs[j].typ == t {
				k = j
				break
			}
		}
		if k < 0 {
			gs = append(gs, group{typ: t})
			k = len(gs) - 1
		}
		gs[k].idx = append(gs[k].idx, i)
	}
	return gs
}

// ChunkBytes bounds a stored message: a group of events larger than this
// is stored as several messages. Small messages let runners that share a
// consumer split the work finely, and bound what one pull brings in.
const ChunkBytes = 256 << 10

// chunk is one stored message and the number of events it holds.
type chunk struct {
	msg *nats.Msg
	n   int
}

// encode appends the messages of one group to dst: its events as binary
// records (pipeline.AppendBinary; JSON lines if one of them has a field
// over 64 KiB), at most ChunkBytes each (a larger event alone), with the event count and a message id made of the first
// and last event ids and the count, so that publishing the same batch
// again (a retry) is deduplicated by the stream.
func encode(dst []chunk, prefix string, events []pipeline.Event, g group, newBuf func(int) []byte) []chunk {
	binary := true
	for _, i := range g.idx { // a field over 64 KiB has no binary form
		if !binaryFits(&events[i]) {
			binary = false
			break
		}
	}
	subject := Subject(prefix, g.typ)
	size := 0
	for _, i := range g.idx {
		size += events[i].Size() // a little more than its record
	}
	body := newBuf(min(size, ChunkBytes+ChunkBytes/4))
	first := 0
	for k, i := range g.idx {
		if binary {
			body, _ = events[i].AppendBinary(body)
		} else {
			body = append(events[i].AppendJSON(body), '\n')
		}
		if len(body) >= ChunkBytes || k == len(g.idx)-1 {
			ids := g.idx[first : k+1]
			m := nats.NewMsg(subject)
			m.Data = body
			n := strconv.Itoa(len(ids))
			m.Header.Set(HeaderCount, n)
			if binary {
				m.Header.Set(HeaderEncoding, EncodingBinary)
			}
			firstID, lastID := events[ids[0]].ID, events[ids[len(ids)-1]].ID
			if firstID != "" && lastID != "" {
				m.Header.Set(nats.MsgIdHdr, firstID+"/"+lastID+"/"+n)
			}
			dst = append(dst, chunk{m, len(ids)})
			first = k + 1
			body = newBuf(min(size, ChunkBytes+ChunkBytes/4))
		}
	}
	return dst
}

// binaryFits reports whether every string of ev fits a binary record.
func binaryFits(ev *pipeline.Event) bool {
	for _, s := range [...]string{ev.SchemaVersion, ev.ID, ev.Type, ev.Source, ev.CorrelationID, ev.CausationID, ev.Language} {
		if len(s) > 0xffff {
			return false
		}
	}
	for _, t := range ev.Tags {
		if len(t) > 0xffff {
			return false
		}
	}
	return len(ev.Tags) <= 0xffff
}

// decodeMessage appends the events a stored message holds to dst: binary
// records when its header says so, else JSON lines (another writer to the
// stream). A line that is not an event is returned as an error with its
// position.
func decodeMessage(dst []pipeline.Event, h nats.Header, data []byte) ([]pipeline.Event, error) {
	if h.Get(HeaderEncoding) == EncodingBinary {
		return pipeline.DecodeBinary(dst, data)
	}
	opts := pipeline.DecodeOptions{MaxSize: -1}
	for line := 1; len(data) > 0; line++ {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		ev, err := pipeline.Decode(l, opts)
		if err != nil {
			return dst, fmt.Errorf("stored line %d: %w", line, err)
		}
		dst = append(dst, ev)
	}
	return dst, nil
}
