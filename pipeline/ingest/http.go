package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"github.com/eventpipe/eventpipe/pipeline"
)

// HTTPConfig configures the HTTP source.
type HTTPConfig struct {
	// Listen is host:port; a missing host means 127.0.0.1.
	Listen string `yaml:"listen"`
	// Path is where events are POSTed. Default /events.
	Path string `yaml:"path"`
	// MaxBodyBytes bounds a request body. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// PublishTimeout is how long a request waits for room in a full buffer
	// before answering 503. Default 1s.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// ReadTimeout bounds reading a whole request, headers and body: a
	// client that sends its body too slowly is cut off. Default 20s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes a kept-alive connection idle this long.
	// Default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections bounds the connections open at once; more wait to be
	// accepted, using no file descriptor of ours. Default 256.
	MaxConnections int `yaml:"max_connections"`
	// MaxBufferedBytes bounds the bytes of request bodies held at once by
	// all requests being read; a request that would pass it gets 503 with
	// Retry-After. Default 64 MiB.
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes"`
}

// Validate checks the configuration.
func (c *HTTPConfig) Validate() error {
	if c.Listen == "" {
		return pipeline.FieldErrorf("listen", "must be set (host:port)")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return pipeline.FieldErrorf("listen", "want host:port, got %q", c.Listen)
	}
	if c.MaxBodyBytes < 0 || c.PublishTimeout < 0 || c.ReadTimeout < 0 || c.IdleTimeout < 0 || c.MaxConnections < 0 || c.MaxBufferedBytes < 0 {
		return errors.New("max_body_bytes, publish_timeout, read_timeout, idle_timeout, max_connections and max_buffered_bytes must not be negative")
	}
	return nil
}

// HTTP accepts events over HTTP: POST one event, a JSON array, JSON lines
// (application/x-ndjson), or CloudEvents structured and batch content.
type HTTP struct {
	cfg      HTTPConfig
	ln       net.Listener
	addr     net.Addr
	ready    chan struct{}
	maxEvent int
	buffered atomic.Int64 // bytes of bodies held by requests being read
}

// NewHTTP returns an HTTP source.
func NewHTTP(cfg HTTPConfig, maxEvent int) *HTTP {
	if cfg.Path == "" {
		cfg.Path = "/events"
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 20 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = 256
	}
	if cfg.MaxBufferedBytes == 0 {
		cfg.MaxBufferedBytes = 64 << 20
	}
	if host, port, err := net.SplitHostPort(cfg.Listen); err == nil && host == "" {
		cfg.Listen = net.JoinHostPort("127.0.0.1", port)
	}
	return &HTTP{cfg: cfg, ready: make(chan struct{}), maxEvent: maxEvent}
}

// Finite is false: the endpoint runs until stopped.
func (h *HTTP) Finite() bool { return false }

// Addr is the bound address, once Ready is closed.
func (h *HTTP) Addr() net.Addr { return h.addr }

// Ready is closed when the listener is bound.
func (h *HTTP) Ready() <-chan struct{} { return h.ready }

// Start binds the listener, so that a port in use fails the start of the
// pipeline rather than its first request.
func (h *HTTP) Start(context.Context) error {
	if h.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", h.cfg.Listen)
	if err != nil {
		return fmt.Errorf("ingest http: %w", err)
	}
	h.ln, h.addr = netutil.LimitListener(ln, h.cfg.MaxConnections), ln.Addr()
	close(h.ready)
	return nil
}

// Shutdown closes the listener if Run never took it over.
func (h *HTTP) Shutdown(context.Context) error {
	if h.ln != nil {
		_ = h.ln.Close()
	}
	return nil
}

// Run serves until ctx ends, then shuts the server down gracefully. It
// binds the listener itself if Start was not called.
func (h *HTTP) Run(ctx context.Context, p pipeline.Publisher) error {
	if err := h.Start(ctx); err != nil {
		return err
	}
	ln := h.ln
	mux := http.NewServeMux()
	mux.Handle(h.cfg.Path, h.Handler(p))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: min(10*time.Second, h.cfg.ReadTimeout),
		ReadTimeout: h.cfg.ReadTimeout, IdleTimeout: h.cfg.IdleTimeout, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ingest http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-errc
	return nil
}

// Response is the JSON body of every answer.
type Response struct {
	Accepted int         `json:"accepted"`
	Rejected []Rejection `json:"rejected,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// Rejection says why item Index of the request was refused.
type Rejection struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
}

// Handler is the http.Handler behind the endpoint.
//
// Answers: 202 when every event was accepted; 400 when some were not
// events (each with its index and reason; the others were accepted); 413
// for a body over max_body_bytes; 415 for an unknown content type; 429 when
// the rate limit refused events and 503 when the buffer stayed full for
// publish_timeout (with Retry-After; "accepted" says how many of the items,
// in order, were taken, so a client resends the rest).
func (h *HTTP) Handler(p pipeline.Publisher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeJSON(w, http.StatusMethodNotAllowed, Response{Error: "POST events here"})
			return
		}
		if e, ok := p.(interface{ Enabled() bool }); ok && !e.Enabled() {
			// Events are off (the [events] switch or the admin endpoint):
			// the client is told, not answered 202 while they go nowhere.
			w.Header().Set("Retry-After", "60")
			writeJSON(w, http.StatusServiceUnavailable, Response{Error: "events are disabled on this eventpipe: nothing is accepted until they are enabled again"})
			return
		}
		body, held, err := h.readBody(w, r)
		defer h.buffered.Add(-held)
		if err != nil {
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				writeJSON(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("body over %d bytes", h.cfg.MaxBodyBytes)})
			case errors.Is(err, errBuffered):
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusServiceUnavailable, Response{Error: err.Error()})
			default:
				writeJSON(w, http.StatusBadRequest, Response{Error: "reading the body: " + err.Error()})
			}
			return
		}
		mode := cloudMode(r.Header)
		if mode == cloudBinary {
			ev, err := pipeline.DecodeCloudHeaders(r.Header, body, decodeOptions(p, h.maxEvent))
			if err != nil {
				p.Reject(r.Context(), pipeline.Rejected{Source: "http", Offset: "body", Raw: clip(body), Reason: "CloudEvents binary mode: " + err.Error(), Time: time.Now().UTC()})
				writeJSON(w, http.StatusBadRequest, Response{Error: "CloudEvents binary mode: " + err.Error(), Rejected: []Rejection{{Index: 0, Reason: err.Error()}}})
				return
			}
			h.publish(w, r, p, [][]byte{body}, []pipeline.Event{ev}, []int{0}, Response{})
			return
		}
		items, err := SplitBody(r.Header.Get("Content-Type"), body)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, errContentType) {
				status = http.StatusUnsupportedMediaType
			}
			p.Reject(r.Context(), pipeline.Rejected{Source: "http", Offset: "body", Raw: clip(body), Reason: err.Error(), Time: time.Now().UTC()})
			writeJSON(w, status, Response{Error: err.Error()})
			return
		}
		resp := Response{}
		opts := decodeOptions(p, h.maxEvent)
		// Decode every item, then publish the events together: with
		// persistence on, the answer waits for one acknowledgement of the
		// store for the whole request.
		evs := make([]pipeline.Event, 0, len(items))
		at := make([]int, 0, len(items)) // the item each event came from
		for i, item := range items {
			ev, shape, err := pipeline.DecodeShape(item, opts)
			if err == nil && mode != cloudNone && shape != pipeline.ShapeCloudEvents {
				err = errors.New("not a CloudEvent (no specversion), but Content-Type says CloudEvents")
			}
			if err != nil {
				rejectItem(r, p, &resp, items, i, err)
				continue
			}
			evs, at = append(evs, ev), append(at, i)
		}
		h.publish(w, r, p, items, evs, at, resp)
	})
}

// publish publishes the decoded events of a request and answers it; at[k]
// is the item evs[k] came from, resp holds the rejections so far.
func (h *HTTP) publish(w http.ResponseWriter, r *http.Request, p pipeline.Publisher, items [][]byte, evs []pipeline.Event, at []int, resp Response) {
	reject := func(i int, err error) { rejectItem(r, p, &resp, items, i, err) }
	{
		errs := make([]error, len(evs))
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.PublishTimeout)
		n, err := pipeline.PublishBatch(ctx, p, evs, errs)
		cancel()
		for k := range n {
			if errs[k] != nil {
				reject(at[k], errs[k])
			} else {
				resp.Accepted++
			}
		}
		slices.SortFunc(resp.Rejected, func(a, b Rejection) int { return a.Index - b.Index })
		if err != nil {
			switch {
			case errors.Is(err, pipeline.ErrRateLimited):
				resp.Error = fmt.Sprintf("rate limited at item %d", at[n])
				writeJSON(w, http.StatusTooManyRequests, resp)
			case errors.Is(err, context.DeadlineExceeded), errors.Is(err, pipeline.ErrClosed),
				errors.Is(err, pipeline.ErrBufferFull), errors.Is(err, pipeline.ErrBlockTimeout):
				w.Header().Set("Retry-After", strconv.Itoa(1))
				resp.Error = fmt.Sprintf("buffer full or closing at item %d: %v", at[n], err)
				writeJSON(w, http.StatusServiceUnavailable, resp)
			default:
				// The store did not acknowledge the events: none of
				// them counts as accepted; the client sends them again.
				w.Header().Set("Retry-After", strconv.Itoa(1))
				resp.Error = fmt.Sprintf("not stored at item %d: %v", at[n], err)
				writeJSON(w, http.StatusServiceUnavailable, resp)
			}
			return
		}
		status := http.StatusAccepted
		if len(resp.Rejected) > 0 {
			status = http.StatusBadRequest
		}
		writeJSON(w, status, resp)
	}
}

// rejectItem records item i of a request as refused, in the answer and
// the dead-letter file.
func rejectItem(r *http.Request, p pipeline.Publisher, resp *Response, items [][]byte, i int, err error) {
	resp.Rejected = append(resp.Rejected, Rejection{Index: i, Reason: err.Error()})
	p.Reject(r.Context(), pipeline.Rejected{Source: "http", Offset: fmt.Sprintf("item %d", i), Raw: clip(items[i]), Reason: err.Error(), Time: time.Now().UTC()})
}

type cloudModeKind int

const (
	cloudNone       cloudModeKind = iota // not CloudEvents: eventpipe's shapes
	cloudBinary                          // ce-* headers, the body is the data
	cloudStructured                      // application/cloudevents+json
	cloudBatch                           // application/cloudevents-batch+json
)

// cloudMode is how a request carries events, decided as the CloudEvents
// HTTP binding says: by Content-Type first (structured or batch), then by
// a ce-specversion header (binary).
func cloudMode(h http.Header) cloudModeKind {
	switch mt := pipeline.MediaType(h.Get("Content-Type")); {
	case mt == "application/cloudevents-batch+json":
		return cloudBatch
	case strings.HasPrefix(mt, "application/cloudevents"):
		return cloudStructured // SplitBody refuses a format other than +json
	}
	if h.Get("Ce-Specversion") != "" {
		return cloudBinary
	}
	return cloudNone
}

var errBuffered = errors.New("ingest holds max_buffered_bytes of request bodies already: send again later")

// readBody reads the request body within max_body_bytes, counting what it
// holds against max_buffered_bytes as it grows, so that many unfinished
// bodies cannot hold more than that between them. held is what the
// caller releases when done with the body.
func (h *HTTP) readBody(w http.ResponseWriter, r *http.Request) (body []byte, held int64, err error) {
	rd := http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			// Grow by doubling, in steps of at most 1 MiB; a body of
			// known length (+1, to read its end) at once.
			grow := int64(min(max(cap(buf), 4096), 1<<20))
			if len(buf) == 0 && r.ContentLength > 0 {
				grow = min(r.ContentLength+1, h.cfg.MaxBodyBytes+1, 1<<20)
			}
			if h.buffered.Add(grow) > h.cfg.MaxBufferedBytes {
				h.buffered.Add(-grow)
				return nil, held, errBuffered
			}
			held += grow
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, held, nil
		}
		if err != nil {
			return nil, held, err
		}
	}
}

func clip(b []byte) []byte {
	if len(b) > 4096 {
		b = b[:4096]
	}
	return append([]byte(nil), b...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var errContentType = errors.New("unsupported content type")

// SplitBody splits a request body into the raw events it holds, by content
// type: JSON lines for application/x-ndjson and application/jsonl; a JSON
// array or one object for application/json and the CloudEvents types.
func SplitBody(contentType string, body []byte) ([][]byte, error) {
	mt := "application/json"
	if contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, fmt.Errorf("%w: %q", errContentType, contentType)
		}
	}
	switch mt {
	case "application/x-ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines":
		var items [][]byte
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 64<<10), len(body)+1)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				items = append(items, append([]byte(nil), line...))
			}
		}
		return items, sc.Err()
	case "application/json", "application/cloudevents+json", "application/cloudevents-batch+json", "text/plain":
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 {
			return nil, errors.New("empty body")
		}
		if trimmed[0] != '[' {
			if mt == "application/cloudevents-batch+json" {
				return nil, errors.New("a CloudEvents batch must be a JSON array")
			}
			return [][]byte{trimmed}, nil
		}
		if mt == "application/cloudevents+json" {
			return nil, errors.New("a structured CloudEvent is one JSON object (send several as application/cloudevents-batch+json)")
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return nil, fmt.Errorf("body is not a JSON array of events: %w", err)
		}
		items := make([][]byte, len(raw))
		for i, r := range raw {
			items[i] = r
		}
		return items, nil
	}
	return nil, fmt.Errorf("%w %q (want application/json, application/x-ndjson, application/cloudevents+json, application/cloudevents-batch+json, or a CloudEvent in binary mode with ce-* headers)", errContentType, mt)
}
