package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/ingest"
)

// SourceConfig is a nats source: events read from a core NATS subject
// (at most once: what arrives while eventpipe is down is gone) or from a
// JetStream stream with a durable consumer (at least once: a message is
// acknowledged only once its events are safe).
type SourceConfig struct {
	// URL of the NATS server or cluster (comma-separated). Required.
	URL         string `yaml:"url"`
	Credentials string `yaml:"credentials"`
	// Subject to subscribe to (core NATS), or to filter the stream by
	// (JetStream; empty: the whole stream). Wildcards allowed.
	Subject string `yaml:"subject"`
	// Queue, for core NATS, is a queue group: runners in one group share
	// the messages instead of each receiving all of them.
	Queue string `yaml:"queue"`
	// Stream, when set, reads the JetStream stream of that name with the
	// durable Consumer (created if missing); runners sharing the consumer
	// share the work.
	Stream   string `yaml:"stream"`
	Consumer string `yaml:"consumer"`
	// AckWait is how long a message may go unacknowledged before the
	// stream delivers it again. Default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// BatchSize bounds the messages published into the pipeline at once.
	// Default 256.
	BatchSize int `yaml:"batch_size"`
}

// NewSourceConfig returns the defaults.
func NewSourceConfig() *SourceConfig {
	return &SourceConfig{Consumer: "eventpipe", AckWait: 30 * time.Second, BatchSize: 256}
}

// Validate checks the configuration.
func (c *SourceConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, pipeline.FieldErrorf("url", "is required (a NATS server, nats://host:4222)"))
	}
	if c.Stream == "" && c.Subject == "" {
		errs = append(errs, pipeline.FieldErrorf("subject", "is required without stream"))
	}
	if c.Stream != "" {
		errs = append(errs, checkName("stream", c.Stream), checkName("consumer", c.Consumer))
		if c.Queue != "" {
			errs = append(errs, pipeline.FieldErrorf("queue", "is for core NATS; runners share a stream through its consumer"))
		}
	}
	if c.AckWait < time.Second {
		errs = append(errs, pipeline.FieldErrorf("ack_wait", "must be at least 1s, got %s", c.AckWait))
	}
	if c.BatchSize < 1 {
		errs = append(errs, pipeline.FieldErrorf("batch_size", "must be at least 1"))
	}
	return errors.Join(errs...)
}

// Source reads events from NATS. A message holds one event, or several
// as JSON lines (what the nats output writes), or binary records (what
// the persist store writes: a source may read another pipeline's stream).
type Source struct {
	cfg     SourceConfig
	set     component.Settings
	conn    *Conn
	cons    jetstream.Consumer
	sub     *nats.Subscription
	msgs    chan *nats.Msg
	dropped atomic.Uint64
}

// NewSource returns a source for cfg; Start connects.
func NewSource(set component.Settings, cfg SourceConfig) *Source {
	return &Source{cfg: cfg, set: set}
}

// Finite is false: a subscription never ends by itself.
func (s *Source) Finite() bool { return false }

// Start connects and subscribes, or creates the durable consumer, so that
// a run that starts is receiving.
func (s *Source) Start(ctx context.Context) error {
	conn, err := Dial(DialConfig{URL: s.cfg.URL, Credentials: s.cfg.Credentials, Name: "eventpipe " + s.set.Name})
	if err != nil {
		return fmt.Errorf("nats source: %w", err)
	}
	s.conn = conn
	if s.cfg.Stream == "" {
		s.msgs = make(chan *nats.Msg, 64*s.cfg.BatchSize)
		if s.sub, err = conn.NC.ChanQueueSubscribe(s.cfg.Subject, s.cfg.Queue, s.msgs); err != nil {
			return fmt.Errorf("nats source: subscribe %s: %w", s.cfg.Subject, err)
		}
		return conn.NC.Flush()
	}
	js, err := jetstream.New(conn.NC)
	if err != nil {
		return fmt.Errorf("nats source: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s.cons, err = js.CreateOrUpdateConsumer(ctx, s.cfg.Stream, jetstream.ConsumerConfig{
		Durable: s.cfg.Consumer, FilterSubject: s.cfg.Subject, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: s.cfg.AckWait, DeliverPolicy: jetstream.DeliverAllPolicy, MaxAckPending: 64 * s.cfg.BatchSize,
	})
	if err != nil {
		return fmt.Errorf("nats source: consumer %s on stream %s: %w", s.cfg.Consumer, s.cfg.Stream, err)
	}
	return nil
}

// Shutdown closes the connection; messages not yet acknowledged are
// delivered again by the stream.
func (s *Source) Shutdown(context.Context) error {
	if s.conn != nil {
		if s.sub != nil {
			if n, err := s.sub.Dropped(); err == nil && n > 0 {
				s.dropped.Add(uint64(n))
			}
		}
		s.conn.Close()
		s.conn = nil
	}
	if n := s.dropped.Load(); n > 0 {
		s.set.Logger.Warn("nats source: messages dropped by the client (slow consumer)", "messages", n)
	}
	return nil
}

// Run publishes what arrives until ctx ends.
func (s *Source) Run(ctx context.Context, p pipeline.Publisher) error {
	b := ingest.NewBatcher(s.set.Name, p, s.set.MaxEventSize)
	if s.cons != nil {
		return s.runStream(ctx, p, b)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-s.msgs:
			addMessage(ctx, b, m.Header, m.Data, m.Subject)
			for b.Len() < s.cfg.BatchSize {
				select {
				case m = <-s.msgs:
					addMessage(ctx, b, m.Header, m.Data, m.Subject)
					continue
				default:
				}
				break
			}
			// Core NATS cannot ask for a message again: on a refusal
			// (the store is unreachable) the batch is kept and retried,
			// and meanwhile the subscription's buffer fills; beyond it
			// the client drops messages and counts them (slow consumer).
			for err := b.Flush(ctx); err != nil; err = b.Flush(ctx) {
				if ctx.Err() != nil {
					return nil
				}
				s.set.Logger.Warn("nats source: events not accepted; retrying", "events", b.Len(), "err", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		}
	}
}

func (s *Source) runStream(ctx context.Context, p pipeline.Publisher, b *ingest.Batcher) error {
	it, err := s.cons.Messages(jetstream.PullMaxMessages(s.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("nats source: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	committer, _ := p.(pipeline.Committer)
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			s.set.Logger.Warn("nats source: reading the stream", "err", err)
			continue
		}
		msgs := []jetstream.Msg{m}
		addMessage(ctx, b, m.Headers(), m.Data(), m.Subject())
		for b.Len() < s.cfg.BatchSize {
			m, err = it.Next(jetstream.NextMaxWait(time.Millisecond))
			if err != nil {
				break
			}
			msgs = append(msgs, m)
			addMessage(ctx, b, m.Headers(), m.Data(), m.Subject())
		}
		if err := b.Flush(ctx); err != nil {
			b.Reset()
			// Not published (ctx ended, or the store is unreachable):
			// the stream delivers these messages again.
			for _, m := range msgs {
				_ = m.Nak()
			}
			if ctx.Err() != nil {
				return nil
			}
			s.set.Logger.Warn("nats source: events not accepted; the stream will deliver them again", "err", err)
			continue
		}
		ack := func() {
			for _, m := range msgs {
				_ = m.Ack()
			}
		}
		if committer != nil {
			committer.Commit(ack) // once stored, or exported and dead-lettered
		} else {
			ack()
		}
	}
}

// addMessage adds the events of one message: binary records when its
// header says so (decoded as the store decodes them), else JSON lines.
func addMessage(ctx context.Context, b *ingest.Batcher, h nats.Header, data []byte, subject string) {
	where := "subject " + subject
	if h.Get("ce-specversion") != "" {
		// A CloudEvent in the NATS binding's binary mode.
		ev, err := pipeline.DecodeCloudHeaders(h, data, b.DecodeOptions()) // the NATS binding's binary mode
		if err != nil {
			b.Reject(ctx, data, ingest.Pos{Where: where, Line: 1}, fmt.Errorf("CloudEvents binary mode: %w", err))
			return
		}
		b.AddEvent(ev, ingest.Pos{Where: where, Line: 1})
		return
	}
	if h.Get(HeaderEncoding) != EncodingBinary {
		b.AddLines(ctx, data, where)
		return
	}
	evs, err := decodeMessage(nil, h, data)
	for i := range evs {
		b.AddEvent(evs[i], ingest.Pos{Where: where, Line: i + 1})
	}
	if err != nil {
		b.Reject(ctx, data, ingest.Pos{Where: where, Line: len(evs) + 1}, err)
	}
}
