package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
)

// WebhookConfig configures the webhook exporter.
type WebhookConfig struct {
	URL string `yaml:"url"`
	// Format is json (a JSON array of events in the eventpipe shape, one
	// request per batch; the default; also called eventpipe), llmspell (an
	// array in rs-llmspell's shape) or cloudevents.
	Format string `yaml:"format"`
	// Mode is how the cloudevents format is sent, as the CloudEvents HTTP
	// binding defines: binary (the default, as the SDKs: attributes in
	// ce-* headers, the data as the body, one event per request),
	// structured (application/cloudevents+json, one event per request) or
	// batch (application/cloudevents-batch+json, one request per batch).
	Mode string `yaml:"mode"`
	// Concurrency bounds the requests in flight at once in the modes that
	// send one event per request. Default 16.
	Concurrency int               `yaml:"concurrency"`
	Headers     map[string]string `yaml:"headers"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// AllowHTTP permits a plain http:// URL to a host that is not loopback.
	AllowHTTP bool `yaml:"allow_http"`
}

// DefaultWebhookConcurrency is the default of concurrency.
const DefaultWebhookConcurrency = 16

// Validate checks the configuration.
func (c *WebhookConfig) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, pipeline.FieldErrorf("url", "must be set"))
	case err != nil || u.Host == "":
		errs = append(errs, pipeline.FieldErrorf("url", "not a URL: %q", c.URL))
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !c.AllowHTTP && !isLoopback(u.Hostname()) {
			errs = append(errs, pipeline.FieldErrorf("url", "plain http to %s is refused: use https, or set allow_http: true", u.Hostname()))
		}
	default:
		errs = append(errs, pipeline.FieldErrorf("url", "want https:// (or http:// to loopback), got %q", u.Scheme))
	}
	switch c.Format {
	case "", "json", "eventpipe", "cloudevents", "llmspell":
	default:
		errs = append(errs, pipeline.FieldErrorf("format", "want json (eventpipe), cloudevents or llmspell, got %q", c.Format))
	}
	switch {
	case c.Mode == "":
	case c.Format != "cloudevents":
		errs = append(errs, pipeline.FieldErrorf("mode", "only the cloudevents format has modes (set format: cloudevents)"))
	case c.Mode != "binary" && c.Mode != "structured" && c.Mode != "batch":
		errs = append(errs, pipeline.FieldErrorf("mode", "want binary, structured or batch, got %q", c.Mode))
	}
	if c.Concurrency < 0 {
		errs = append(errs, pipeline.FieldErrorf("concurrency", "must not be negative"))
	}
	if c.Timeout < 0 {
		errs = append(errs, pipeline.FieldErrorf("timeout", "must not be negative"))
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Webhook posts events to a URL: a batch per request (the json format,
// CloudEvents batch mode) or an event per request (CloudEvents binary and
// structured modes, up to concurrency at once over kept-alive
// connections). Export returns a retryable error for network errors, 429
// and 5xx (a RetryAfterError when the server said when), and a permanent
// one for other statuses; with one event per request, a
// pipeline.PartialError names the events that failed. Retries are the
// Retry wrapper's business.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
	bufs   sync.Pool // *bytes.Buffer
}

// NewWebhook returns a webhook exporter. client may be nil: the webhook
// then keeps up to concurrency connections alive.
func NewWebhook(cfg WebhookConfig, client *http.Client) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Format == "cloudevents" && cfg.Mode == "" {
		cfg.Mode = "binary"
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultWebhookConcurrency
	}
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		tr.Proxy = nil
		client = &http.Client{Timeout: cfg.Timeout, Transport: tr}
	}
	return &Webhook{cfg: cfg, client: client, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}, nil
}

func (w *Webhook) Start(context.Context) error    { return nil }
func (w *Webhook) Shutdown(context.Context) error { w.client.CloseIdleConnections(); return nil }

// RetryAfterError is a retryable failure whose server asked for a delay.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Export delivers the events.
func (w *Webhook) Export(ctx context.Context, events []pipeline.Event) error {
	if w.cfg.Mode == "binary" || w.cfg.Mode == "structured" {
		return w.exportEach(ctx, events)
	}
	buf := w.bufs.Get().(*bytes.Buffer)
	defer w.bufs.Put(buf)
	buf.Reset()
	ctype := "application/json"
	if w.cfg.Format == "cloudevents" {
		ctype = "application/cloudevents-batch+json"
	}
	enc := (*pipeline.Event).AppendJSON
	switch w.cfg.Format {
	case "cloudevents":
		enc = (*pipeline.Event).AppendCloudEvent
	case "llmspell":
		enc = (*pipeline.Event).AppendLLMSpell
	}
	encode := func(dst []byte, ev *pipeline.Event) []byte { return enc(ev, dst) }
	shared := pipeline.SharedEncodingsFor(ctx, w.EncodingFormat(), len(events))
	b := append(buf.AvailableBuffer(), '[')
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = shared.Append(b, i, &events[i], encode)
	}
	b = append(b, ']')
	buf.Write(b)
	return w.post(ctx, ctype, nil, buf.Bytes())
}

// EncodingFormat is the encoding the webhook sends, shared with other
// outputs writing the same (binary mode sends none of them).
func (w *Webhook) EncodingFormat() string {
	switch {
	case w.cfg.Format == "llmspell":
		return string(FormatLLMSpell)
	case w.cfg.Format != "cloudevents":
		return pipeline.EncodingEventpipe
	case w.cfg.Mode == "binary":
		return ""
	}
	return pipeline.EncodingCloudEvents
}

// exportEach sends one request per event, concurrency at a time.
func (w *Webhook) exportEach(ctx context.Context, events []pipeline.Event) error {
	var (
		next    atomic.Int64
		mu      sync.Mutex
		failed  []int
		perm    []int
		lastErr error
		wg      sync.WaitGroup
	)
	send := func(i int) error {
		ev := &events[i]
		if w.cfg.Mode == "structured" {
			buf := w.bufs.Get().(*bytes.Buffer)
			defer w.bufs.Put(buf)
			buf.Reset()
			buf.Write(ev.AppendCloudEvent(buf.AvailableBuffer()))
			return w.post(ctx, "application/cloudevents+json", nil, buf.Bytes())
		}
		h := make(http.Header, 8)
		ct, data, err := ev.CloudBinary(func(name, value string) {
			h["Ce-"+headerCase(name)] = []string{headerValue(value)}
		})
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("webhook: %w", err))
		}
		if ct != "" {
			h["Content-Type"] = []string{ct}
		}
		return w.post(ctx, "", h, data)
	}
	for range min(w.cfg.Concurrency, len(events)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(events) {
					return
				}
				if err := send(i); err != nil {
					mu.Lock()
					failed = append(failed, i)
					if pipeline.IsPermanent(err) {
						perm = append(perm, i)
					}
					if lastErr == nil || !pipeline.IsPermanent(err) {
						lastErr = err // a retryable error keeps the rest retryable
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(failed) == 0 {
		return nil
	}
	slices.Sort(failed)
	slices.Sort(perm)
	return &pipeline.PartialError{Failed: failed, Permanent: perm, Err: lastErr}
}

// headerCase is name as Go's canonical header key spells what follows
// "Ce-" (first letter upper case).
func headerCase(name string) string {
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		return name
	}
	return string(name[0]-'a'+'A') + name[1:]
}

// headerValue is v as a header value: as it is (what the SDKs send), or,
// when it holds a character a header cannot carry, percent-encoded as the
// CloudEvents HTTP binding says.
func headerValue(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return percentEncode(v)
		}
	}
	return v
}

func percentEncode(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= 0x20 || c == '"' || c == '%' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// post sends one request; h, if set, are its headers besides the
// configured ones.
func (w *Webhook) post(ctx context.Context, ctype string, h http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("webhook: %w", err))
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("User-Agent", "eventpipe")
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		err := fmt.Errorf("webhook: %s: %s", resp.Status, bytes.TrimSpace(msg))
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
			return &RetryAfterError{Err: err, After: d}
		}
		return err
	default:
		return pipeline.Permanent(fmt.Errorf("webhook: %s: %s", resp.Status, bytes.TrimSpace(msg)))
	}
}

func parseRetryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}
