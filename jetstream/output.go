package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// OutputConfig is a nats output: each event published as one message on
// <subject_prefix>.<event type>.
type OutputConfig struct {
	// URL of the NATS server or cluster (comma-separated). Required.
	URL         string `yaml:"url"`
	Credentials string `yaml:"credentials"`
	// SubjectPrefix comes before the event type in the subject.
	SubjectPrefix string `yaml:"subject_prefix"`
	// JetStream (the default) waits for the stream's acknowledgement of
	// every message and sets Nats-Msg-Id to the event id, so an event
	// sent twice (a retry, a redelivery after a crash) is stored once
	// within the stream's duplicate window. A stream must capture the
	// subjects. false publishes on core NATS: at most once, no
	// acknowledgement beyond the server having read the messages.
	JetStream bool `yaml:"jetstream"`
	// Timeout bounds waiting for acknowledgements. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Format is eventpipe (the default: the event's JSON) or cloudevents,
	// as the CloudEvents NATS binding says, in Mode binary (the default:
	// attributes in ce-* headers, datacontenttype in Content-Type, the
	// data as the payload) or structured (the JSON format, Content-Type
	// application/cloudevents+json).
	Format string `yaml:"format"`
	Mode   string `yaml:"mode"`
}

// NewOutputConfig returns the defaults.
func NewOutputConfig() *OutputConfig {
	return &OutputConfig{SubjectPrefix: "events", JetStream: true, Timeout: 10 * time.Second}
}

// Validate checks the configuration.
func (c *OutputConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, pipeline.FieldErrorf("url", "is required (a NATS server, nats://host:4222)"))
	}
	errs = append(errs, checkSubjectPrefix("subject_prefix", c.SubjectPrefix))
	if c.Timeout <= 0 {
		errs = append(errs, pipeline.FieldErrorf("timeout", "must be positive"))
	}
	switch c.Format {
	case "", "eventpipe", "cloudevents", "llmspell":
	default:
		errs = append(errs, pipeline.FieldErrorf("format", "want eventpipe, cloudevents or llmspell, got %q", c.Format))
	}
	switch {
	case c.Mode == "":
	case c.Format != "cloudevents":
		errs = append(errs, pipeline.FieldErrorf("mode", "only the cloudevents format has modes (set format: cloudevents)"))
	case c.Mode != "binary" && c.Mode != "structured":
		errs = append(errs, pipeline.FieldErrorf("mode", "want binary or structured, got %q", c.Mode))
	}
	return errors.Join(errs...)
}

// Output publishes events to NATS.
type Output struct {
	cfg  OutputConfig
	set  component.Settings
	conn *Conn
	js   jetstream.JetStream
	futs []jetstream.PubAckFuture
}

// NewOutput returns an output for cfg; Start connects.
func NewOutput(set component.Settings, cfg OutputConfig) *Output {
	return &Output{cfg: cfg, set: set}
}

// Start connects.
func (o *Output) Start(context.Context) error {
	conn, err := Dial(DialConfig{URL: o.cfg.URL, Credentials: o.cfg.Credentials, Name: "eventpipe " + o.set.Name})
	if err != nil {
		return fmt.Errorf("nats output: %w", err)
	}
	o.conn = conn
	if o.cfg.JetStream {
		if o.js, err = jetstream.New(conn.NC, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
			return fmt.Errorf("nats output: %w", err)
		}
	}
	return nil
}

// Shutdown flushes and closes the connection.
func (o *Output) Shutdown(context.Context) error {
	if o.conn != nil {
		o.conn.Close()
		o.conn = nil
	}
	return nil
}

// Export publishes the events; with JetStream it returns once every one
// was acknowledged (a failure is retried by the runner, and the message
// ids make the retry safe).
func (o *Output) Export(ctx context.Context, events []pipeline.Event) error {
	if o.conn == nil {
		return errors.New("nats output: not started")
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	if o.js == nil {
		for i := range events {
			m, err := o.message(&events[i])
			if err != nil {
				return pipeline.Permanent(fmt.Errorf("nats output: %w", err))
			}
			if err := o.conn.NC.PublishMsg(m); err != nil {
				return fmt.Errorf("nats output: %w", err)
			}
		}
		if err := o.conn.NC.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("nats output: flush: %w", err)
		}
		return nil
	}
	o.futs = o.futs[:0]
	for i := range events {
		m, err := o.message(&events[i])
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("nats output: %w", err))
		}
		f, err := o.js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("nats output: publish: %w", err)
		}
		o.futs = append(o.futs, f)
	}
	for _, f := range o.futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				return fmt.Errorf("nats output: no stream captures %s (create one, or set jetstream: false): %w", f.Msg().Subject, err)
			}
			return fmt.Errorf("nats output: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("nats output: no acknowledgement: %w", ctx.Err())
		}
	}
	return nil
}

func (o *Output) message(ev *pipeline.Event) (*nats.Msg, error) {
	m := nats.NewMsg(Subject(o.cfg.SubjectPrefix, ev.Type))
	switch {
	case o.cfg.Format == "llmspell":
		m.Data = ev.AppendLLMSpell(nil)
	case o.cfg.Format != "cloudevents":
		m.Data = ev.AppendJSON(nil)
	case o.cfg.Mode == "structured":
		m.Data = ev.AppendCloudEvent(nil)
		m.Header.Set("Content-Type", "application/cloudevents+json")
	default:
		ct, data, err := ev.CloudBinary(func(name, value string) { m.Header.Set("ce-"+name, value) })
		if err != nil {
			return nil, err
		}
		if ct != "" {
			m.Header.Set("Content-Type", ct)
		}
		m.Data = data
	}
	if ev.ID != "" {
		m.Header.Set(nats.MsgIdHdr, ev.ID)
	}
	return m, nil
}
