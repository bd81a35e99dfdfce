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

// encode builds the message of one group: its events as JSON lines, its
// event count, and a message id made of the first and last event ids and
// the count, so that publishing the same batch again (a retry) is
// deduplicated by the stream.
func encode(prefix string, events []pipeline.Event, g group) *nats.Msg {
	var body []byte
	for _, i := range g.idx {
		body = events[i].AppendJSON(body)
		body = append(body, '\n')
	}
	m := nats.NewMsg(Subject(prefix, g.typ))
	m.Data = body
	n := strconv.Itoa(len(g.idx))
	m.Header.Set(HeaderCount, n)
	first, last := events[g.idx[0]].ID, events[g.idx[len(g.idx)-1]].ID
	if first != "" && last != "" {
		m.Header.Set(nats.MsgIdHdr, first+"/"+last+"/"+n)
	}
	return m
}

// decodeMessage appends the events a stored message holds to dst. A line
// that is not an event is returned as an error with its position (it can
// only come from another writer to the stream).
func decodeMessage(dst []pipeline.Event, data []byte) ([]pipeline.Event, error) {
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
