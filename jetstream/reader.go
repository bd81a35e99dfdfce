package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Query selects stored events. Zero fields select everything.
type Query struct {
	Since, Until   time.Time // by the time the event was stored
	FromSeq, ToSeq uint64    // by stream sequence (of the message)
	Types          []string  // type patterns (pipeline.Pattern syntax)
	Correlation    string    // one correlation id
}

// Reader reads a store's stream from the start position a Query gives,
// without a durable consumer (nothing is acknowledged or changed).
type Reader struct {
	js     jetstream.JetStream
	stream string
	prefix string
}

// NewReader returns a reader of the stream cfg names over conn.
func NewReader(conn *Conn, cfg StoreConfig) (*Reader, error) {
	js, err := jetstream.New(conn.NC)
	if err != nil {
		return nil, err
	}
	return &Reader{js: js, stream: cfg.Stream, prefix: cfg.SubjectPrefix}, nil
}

// Pending is how many messages the stream holds now (an upper bound for a
// progress bar).
func (r *Reader) Pending(ctx context.Context) (uint64, error) {
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.Msgs, nil
}

// Read calls fn with every stored event q selects, in stream order, and
// returns at the end of what the stream held when Read began.
func (r *Reader) Read(ctx context.Context, q Query, fn func(pipeline.Event) error) error {
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", r.stream, err)
	}
	last := s.CachedInfo().State.LastSeq
	if q.ToSeq > 0 && q.ToSeq < last {
		last = q.ToSeq
	}
	if last == 0 || (q.FromSeq > last) {
		return nil
	}
	match, err := q.Matcher()
	if err != nil {
		return err
	}
	oc := jetstream.OrderedConsumerConfig{}
	for _, t := range q.Types {
		f, _ := FilterSubject(r.prefix, t) // a superset: match checks the types again
		oc.FilterSubjects = append(oc.FilterSubjects, f)
	}
	switch {
	case q.FromSeq > 0:
		oc.DeliverPolicy, oc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, q.FromSeq
	case !q.Since.IsZero():
		since := q.Since
		oc.DeliverPolicy, oc.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := r.js.OrderedConsumer(ctx, r.stream, oc)
	if err != nil {
		return fmt.Errorf("stream %s: %w", r.stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	var evs []pipeline.Event
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		if md.Sequence.Stream > last || (!q.Until.IsZero() && md.Timestamp.After(q.Until)) {
			return nil
		}
		evs, err = decodeMessage(evs[:0], msg.Headers(), msg.Data())
		if err != nil {
			return fmt.Errorf("stream %s, message %d: %w", r.stream, md.Sequence.Stream, err)
		}
		for i := range evs {
			ev := &evs[i]
			if !match(ev) {
				continue
			}
			if err := fn(*ev); err != nil {
				return err
			}
		}
		if md.NumPending == 0 || md.Sequence.Stream == last {
			return nil
		}
	}
}

// Matcher returns the test of an event against the query's correlation id
// and type patterns (the time and sequence bounds are the reader's).
func (q Query) Matcher() (func(*pipeline.Event) bool, error) {
	pats := make([]pipeline.Pattern, 0, len(q.Types))
	for _, t := range q.Types {
		p, err := pipeline.CompilePattern(t)
		if err != nil {
			return nil, err
		}
		pats = append(pats, p)
	}
	return func(ev *pipeline.Event) bool {
		if q.Correlation != "" && ev.CorrelationID != q.Correlation {
			return false
		}
		if len(pats) == 0 {
			return true
		}
		for _, p := range pats {
			if p.Match(ev.Type) {
				return true
			}
		}
		return false
	}, nil
}
