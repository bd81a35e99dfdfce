package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// StoreConfig is the persist section of pipeline.yaml.
type StoreConfig struct {
	// On turns persistence on (the default once the section exists).
	On bool `yaml:"enabled"`
	// URL of an external NATS server or cluster (comma-separated); empty:
	// the embedded server.
	URL         string `yaml:"url"`
	Credentials string `yaml:"credentials"`
	// DataDir is the embedded server's storage, relative to the
	// configuration file. Default .eventpipe/jetstream.
	DataDir string `yaml:"data_dir"`
	// Listen opens the embedded server to other processes (host:port).
	Listen string `yaml:"listen"`
	// SyncAlways fsyncs every write before it is acknowledged (embedded).
	SyncAlways bool `yaml:"sync_always"`
	// Stream, SubjectPrefix and Consumer name the stream, its subjects
	// (<prefix>.<event type>) and the durable consumer the pipeline reads
	// with; runners that share a consumer share the work.
	Stream        string `yaml:"stream"`
	SubjectPrefix string `yaml:"subject_prefix"`
	Consumer      string `yaml:"consumer"`
	// Replicas is the stream's replication factor in a cluster (1, 3, 5).
	Replicas int `yaml:"replicas"`
	// Retention: events older than MaxAge, or beyond MaxBytes or
	// MaxMessages, are discarded by the Discard policy: "old" drops the
	// oldest messages (counted when the pipeline had not read them yet);
	// "new" refuses new events (a source is then answered "unavailable").
	MaxAge      time.Duration `yaml:"max_age"`
	MaxBytes    int64         `yaml:"max_bytes"`
	MaxMessages int64         `yaml:"max_messages"`
	Discard     string        `yaml:"discard"`
	// DuplicateWindow is how long the stream remembers message ids to
	// drop a batch published twice. Default 2m.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// AckWait is how long a batch handed to the pipeline may go
	// unacknowledged before it is delivered again (a runner died). A
	// batch still being worked on is kept alive, so this bounds only the
	// delay after a crash. Default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// PublishTimeout bounds waiting for the stream's acknowledgement.
	// Default 10s.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// BatchSize bounds the events handed to the stages at once. Default:
	// events.batch_size.
	BatchSize int `yaml:"batch_size"`
}

// Defaults of the persist section.
const (
	DefaultDataDir       = ".eventpipe/jetstream"
	DefaultStream        = "EVENTPIPE"
	DefaultSubjectPrefix = "eventpipe.events"
	DefaultConsumer      = "eventpipe"
	DefaultMaxAge        = 7 * 24 * time.Hour
	DefaultMaxBytes      = 1 << 30
)

// NewStoreConfig returns the defaults.
func NewStoreConfig() *StoreConfig {
	return &StoreConfig{
		On: true, DataDir: DefaultDataDir, Stream: DefaultStream, SubjectPrefix: DefaultSubjectPrefix,
		Consumer: DefaultConsumer, Replicas: 1, MaxAge: DefaultMaxAge, MaxBytes: DefaultMaxBytes, MaxMessages: -1,
		Discard: "old", DuplicateWindow: 2 * time.Minute, AckWait: 30 * time.Second, PublishTimeout: 10 * time.Second,
	}
}

// Enabled reports whether persistence is on.
func (c *StoreConfig) Enabled() bool { return c.On }

// Validate checks the configuration.
func (c *StoreConfig) Validate() error {
	var errs []error
	errs = append(errs, checkName("stream", c.Stream), checkName("consumer", c.Consumer), checkSubjectPrefix("subject_prefix", c.SubjectPrefix))
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, pipeline.FieldErrorf("replicas", "must be 1 to 5, got %d", c.Replicas))
	}
	if c.URL == "" && c.Replicas > 1 {
		errs = append(errs, pipeline.FieldErrorf("replicas", "the embedded server is one node: replicas need url (a cluster)"))
	}
	if c.URL != "" && (c.Listen != "" || c.SyncAlways) {
		errs = append(errs, pipeline.FieldErrorf("url", "listen and sync_always configure the embedded server; with url they have no effect"))
	}
	if c.URL == "" && c.DataDir == "" {
		errs = append(errs, pipeline.FieldErrorf("data_dir", "must be set for the embedded server"))
	}
	if c.Discard != "old" && c.Discard != "new" {
		errs = append(errs, pipeline.FieldErrorf("discard", "want old or new, got %q", c.Discard))
	}
	for f, d := range map[string]time.Duration{"max_age": c.MaxAge, "duplicate_window": c.DuplicateWindow, "ack_wait": c.AckWait, "publish_timeout": c.PublishTimeout} {
		if d < 0 {
			errs = append(errs, pipeline.FieldErrorf(f, "must not be negative"))
		}
	}
	if c.AckWait > 0 && c.AckWait < time.Second {
		errs = append(errs, pipeline.FieldErrorf("ack_wait", "must be at least 1s, got %s", c.AckWait))
	}
	if c.BatchSize < 0 {
		errs = append(errs, pipeline.FieldErrorf("batch_size", "must not be negative"))
	}
	return errors.Join(errs...)
}

// Store is the JetStream store.
type Store struct {
	cfg  StoreConfig
	set  component.Settings
	conn *Conn
	js   jetstream.JetStream
	cons jetstream.Consumer

	// lastCon and lastStr are the consumer and stream sequences of the
	// last message first delivered here: a message that follows it in
	// the consumer but not in the stream means the messages between were
	// removed by the retention limits before anyone read them.
	lastCon, lastStr uint64

	bufs sync.Pool // *[]byte: message bodies of acknowledged batches

	redelivered atomic.Uint64 // events delivered more than once
	discarded   atomic.Uint64 // messages the retention limits removed before the pipeline read them
	duplicates  atomic.Uint64 // batches the stream deduplicated on publish
	undecodable atomic.Uint64 // stored messages that held no events
	mRedeliv    component.Counter
	mDiscarded  component.Counter
	mDup        component.Counter
	mUndecod    component.Counter
}

// NewStore returns a store for cfg; Start connects.
func NewStore(set component.Settings, cfg StoreConfig) *Store {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 512
	}
	if set.Metrics == nil {
		set.Metrics = component.NopMetrics{}
	}
	s := &Store{cfg: cfg, set: set}
	s.mRedeliv = set.Metrics.Counter("store_redelivered_events_total", "Events delivered to the pipeline again after a crash or a failed batch (possible duplicates).", nil)
	s.mDiscarded = set.Metrics.Counter("store_discarded_messages_total", "Stored messages removed by the retention limits before the pipeline read them.", nil)
	s.mDup = set.Metrics.Counter("store_duplicate_batches_total", "Batches published twice that the stream dropped by message id.", nil)
	s.mUndecod = set.Metrics.Counter("store_undecodable_messages_total", "Stored messages that held no events (written by another program).", nil)
	return s
}

// StoreStats are the store's counters.
type StoreStats struct {
	Redelivered, Discarded, Duplicates, Undecodable uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() StoreStats {
	return StoreStats{s.redelivered.Load(), s.discarded.Load(), s.duplicates.Load(), s.undecodable.Load()}
}

// StreamConfig is the stream the store keeps.
func (c *StoreConfig) StreamConfig() jetstream.StreamConfig {
	sc := jetstream.StreamConfig{
		Name: c.Stream, Subjects: []string{c.SubjectPrefix + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		MaxAge: c.MaxAge, MaxBytes: c.MaxBytes, MaxMsgs: c.MaxMessages, Replicas: c.Replicas,
		Duplicates: c.DuplicateWindow, Discard: jetstream.DiscardOld,
	}
	if c.MaxBytes == 0 {
		sc.MaxBytes = -1
	}
	if c.MaxMessages == 0 {
		sc.MaxMsgs = -1
	}
	if c.Discard == "new" {
		sc.Discard = jetstream.DiscardNew
	}
	return sc
}

// Dial connects as the configuration says (the embedded server is started
// when url is empty); resolve makes data_dir absolute.
func (c *StoreConfig) Dial(name string, resolve func(string) string) (*Conn, error) {
	dir := c.DataDir
	if resolve != nil {
		dir = resolve(dir)
	}
	return Dial(DialConfig{URL: c.URL, Credentials: c.Credentials, Name: name,
		Embedded: EmbeddedConfig{DataDir: dir, Listen: c.Listen, SyncAlways: c.SyncAlways}})
}

// Start connects, and creates (or updates) the stream and the durable
// consumer.
func (s *Store) Start(ctx context.Context) error {
	conn, err := s.cfg.Dial("eventpipe", s.set.Resolve)
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	s.conn = conn
	if err := s.open(ctx); err != nil {
		conn.Close()
		s.conn = nil
		return fmt.Errorf("persist: %w", err)
	}
	if u := conn.ClientURL(); u != "" {
		s.set.Logger.Info("embedded NATS server listening", "url", u)
	}
	return nil
}

func (s *Store) open(ctx context.Context) error {
	js, err := jetstream.New(s.conn.NC, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	s.js = js
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, s.cfg.StreamConfig()); err != nil {
		return fmt.Errorf("stream %s: %w", s.cfg.Stream, err)
	}
	s.cons, err = js.CreateOrUpdateConsumer(ctx, s.cfg.Stream, jetstream.ConsumerConfig{
		Durable: s.cfg.Consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.cfg.AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy, MaxAckPending: 10000, Replicas: 0,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", s.cfg.Consumer, err)
	}
	d := s.cons.CachedInfo().Delivered
	s.lastCon, s.lastStr = d.Consumer, d.Stream
	return nil
}

// Shutdown closes the connection and stops the embedded server.
func (s *Store) Shutdown(context.Context) error {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	return nil
}

// Append stores events, one message per event type, and waits for every
// acknowledgement.
func (s *Store) Append(ctx context.Context, events []pipeline.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	if s.js == nil {
		return 0, errors.New("persist: store not started")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	var chunks []chunk
	for _, g := range groupByType(events, nil) {
		chunks = encode(chunks, s.cfg.SubjectPrefix, events, g, s.buffer)
	}
	futs := make([]jetstream.PubAckFuture, 0, len(chunks))
	for _, c := range chunks {
		f, err := s.js.PublishMsgAsync(c.msg)
		if err != nil {
			return 0, fmt.Errorf("persist: publish: %w", err)
		}
		futs = append(futs, f)
	}
	dups := 0
	for k, f := range futs {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups += chunks[k].n
				s.duplicates.Add(1)
				s.mDup.Add(1)
			}
		case err := <-f.Err():
			return 0, fmt.Errorf("persist: stream %s refused the events: %w", s.cfg.Stream, err)
		case <-ctx.Done():
			return 0, fmt.Errorf("persist: no acknowledgement from stream %s: %w", s.cfg.Stream, ctx.Err())
		}
	}
	// Acknowledged: the bodies can serve the next batch.
	for _, c := range chunks {
		b := c.msg.Data[:0]
		s.bufs.Put(&b)
	}
	return dups, nil
}

// buffer is a message body of capacity n or more, reused from an
// acknowledged batch when one is free.
func (s *Store) buffer(n int) []byte {
	if b, ok := s.bufs.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	return make([]byte, 0, n)
}

// pullBytes bounds what the consumer brings in ahead of the pipeline: two
// of the largest messages the store writes (ChunkBytes of events and one
// more event). The bound keeps memory small and lets runners that share
// the consumer split the stream finely; a message over a pull's byte
// limit could never be delivered, so it must fit.
func pullBytes(maxEvent int) int {
	switch {
	case maxEvent == 0:
		maxEvent = pipeline.DefaultMaxEventSize
	case maxEvent < 0:
		maxEvent = 64 << 20
	}
	return 2 * (ChunkBytes + maxEvent + 4096)
}

// Redelivered counts events handed to the pipeline more than once.
func (s *Store) Redelivered() uint64 { return s.redelivered.Load() }

// Consume reads the stream with the durable consumer; see component.Store.
func (s *Store) Consume(ctx context.Context, drain <-chan struct{}, h func(context.Context, []pipeline.Event) error) error {
	return s.consume(ctx, drain, 1, func(ctx context.Context, events []pipeline.Event) func() error {
		err := h(ctx, events)
		return func() error { return err }
	})
}

// InFlight bounds what ConsumePipelined keeps with the outputs at once:
// InFlight full batches' worth of events.
const InFlight = 16

// ConsumePipelined is Consume with up to InFlight × batch_size events
// waiting for the outputs at once (component.PipelinedStore): each batch
// is acknowledged when its wait returns nil, whatever the order.
func (s *Store) ConsumePipelined(ctx context.Context, drain <-chan struct{}, h func(context.Context, []pipeline.Event) func() error) error {
	return s.consume(ctx, drain, InFlight, h)
}

func (s *Store) consume(ctx context.Context, drain <-chan struct{}, inFlight int, h func(context.Context, []pipeline.Event) func() error) error {
	if s.cons == nil {
		return errors.New("persist: store not started")
	}
	it, err := s.cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(max(s.cfg.BatchSize, 64), pullBytes(s.set.MaxEventSize)))
	if err != nil {
		return fmt.Errorf("persist: consume: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	var (
		msgs   []jetstream.Msg
		events []pipeline.Event
		bound  = int64(inFlight * max(s.cfg.BatchSize, 64))
		slots  = semaphore.NewWeighted(bound) // events waiting for the outputs
		wg     sync.WaitGroup
	)
	defer wg.Wait() // every batch handed out is acknowledged (or not) before returning
	draining := false
	for {
		if !draining {
			select {
			case <-drain:
				draining = true
			default:
			}
		}
		// Short waits: drain may close while Next waits, and a finite
		// run should end soon after it caught up.
		wait := 100 * time.Millisecond
		if draining {
			wait = 20 * time.Millisecond
		}
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				if draining && s.caughtUp(ctx) {
					return nil
				}
				continue
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			s.set.Logger.Warn("persist: reading the stream", "err", err)
			continue
		}
		if inFlight > 1 {
			msgs, events = nil, nil // a batch waiting for the outputs keeps its own
		} else {
			msgs, events = msgs[:0], events[:0]
		}
		for msg != nil {
			msgs = append(msgs, msg)
			n := len(events)
			events, err = decodeMessage(events, msg.Headers(), msg.Data())
			if err != nil || len(events) == n {
				s.undecodable.Add(1)
				s.mUndecod.Add(1)
				s.set.Logger.Error("persist: a stored message holds no events; it is terminated", "subject", msg.Subject(), "err", err)
				events = events[:n]
				_ = msg.Term()
				msgs = msgs[:len(msgs)-1]
			} else if md, err := msg.Metadata(); err == nil {
				if md.NumDelivered > 1 {
					s.redelivered.Add(uint64(len(events) - n))
					s.mRedeliv.Add(float64(len(events) - n))
				}
				if s.lastCon != 0 && md.Sequence.Consumer == s.lastCon+1 && md.Sequence.Stream > s.lastStr+1 && md.NumDelivered == 1 {
					gap := md.Sequence.Stream - s.lastStr - 1
					s.discarded.Add(gap)
					s.mDiscarded.Add(float64(gap))
					s.set.Logger.Warn("persist: retention limits removed messages the pipeline had not read", "messages", gap)
				}
				if md.NumDelivered == 1 {
					s.lastCon, s.lastStr = md.Sequence.Consumer, md.Sequence.Stream
				}
			}
			if len(events) >= s.cfg.BatchSize {
				break
			}
			msg, err = it.Next(jetstream.NextMaxWait(time.Millisecond))
			if err != nil {
				msg = nil
			}
		}
		if len(msgs) == 0 {
			continue
		}
		weight := min(int64(len(events)), bound)
		if err := slots.Acquire(ctx, weight); err != nil {
			return nil // ctx ended; the batch is delivered again
		}
		stopAlive := s.keepAlive(msgs)
		handled := h(ctx, events)
		finish := func(msgs []jetstream.Msg, n int) {
			err := handled()
			stopAlive()
			for _, m := range msgs {
				if err == nil {
					_ = m.Ack()
				} else {
					_ = m.NakWithDelay(time.Second)
				}
			}
			if err != nil {
				s.set.Logger.Error("persist: batch failed; it will be delivered again", "events", n, "err", err)
			}
			slots.Release(weight)
		}
		if inFlight == 1 {
			finish(msgs, len(events))
			continue
		}
		wg.Add(1)
		go func(msgs []jetstream.Msg, n int) {
			defer wg.Done()
			finish(msgs, n)
		}(msgs, len(events))
	}
}

// keepAlive tells the server every third of the ack wait that msgs are
// being worked on, until the returned func is called.
func (s *Store) keepAlive(msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(s.cfg.AckWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// caughtUp reports whether the consumer has nothing left to deliver.
func (s *Store) caughtUp(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := s.cons.Info(ctx)
	if err != nil {
		return false
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}
