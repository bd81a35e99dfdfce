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
	"strconv"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
)

// WebhookConfig configures the webhook exporter.
type WebhookConfig struct {
	URL string `yaml:"url"`
	// Format is json (a JSON array of events, the default) or cloudevents
	// (a CloudEvents 1.0 batch, application/cloudevents-batch+json).
	Format  string            `yaml:"format"`
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// AllowHTTP permits a plain http:// URL to a host that is not loopback.
	AllowHTTP bool `yaml:"allow_http"`
}

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
	case "", "json", "cloudevents":
	default:
		errs = append(errs, pipeline.FieldErrorf("format", "want json or cloudevents, got %q", c.Format))
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

// Webhook posts batches of events to a URL. Export returns a retryable error
// for network errors, 429 and 5xx (a RetryAfterError when the server said
// when), and a permanent one for other statuses. Retries are the Retry
// wrapper's business.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
	buf    bytes.Buffer
}

// NewWebhook returns a webhook exporter. client may be nil.
func NewWebhook(cfg WebhookConfig, client *http.Client) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	return &Webhook{cfg: cfg, client: client}, nil
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

// Export posts the events as one request.
func (w *Webhook) Export(ctx context.Context, events []pipeline.Event) error {
	w.buf.Reset()
	ctype := "application/json"
	w.buf.WriteByte('[')
	var scratch []byte
	for i := range events {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if w.cfg.Format == "cloudevents" {
			scratch = AppendCloudEvent(scratch[:0], &events[i])
		} else {
			scratch = events[i].AppendJSON(scratch[:0])
		}
		w.buf.Write(scratch)
	}
	w.buf.WriteByte(']')
	if w.cfg.Format == "cloudevents" {
		ctype = "application/cloudevents-batch+json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(w.buf.Bytes()))
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("webhook: %w", err))
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "eventpipe")
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		err := fmt.Errorf("webhook: %s: %s", resp.Status, bytes.TrimSpace(body))
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
			return &RetryAfterError{Err: err, After: d}
		}
		return err
	default:
		return pipeline.Permanent(fmt.Errorf("webhook: %s: %s", resp.Status, bytes.TrimSpace(body)))
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

// AppendCloudEvent appends ev as a CloudEvents 1.0 structured JSON object.
func AppendCloudEvent(dst []byte, ev *pipeline.Event) []byte {
	dst = append(dst, `{"specversion":"1.0","id":`...)
	dst = pipeline.AppendJSONString(dst, ev.ID)
	dst = append(dst, `,"type":`...)
	dst = pipeline.AppendJSONString(dst, ev.Type)
	src := ev.Source
	if src == "" {
		src = "eventpipe"
	}
	dst = append(dst, `,"source":`...)
	dst = pipeline.AppendJSONString(dst, src)
	dst = append(dst, `,"time":"`...)
	dst = ev.Time.UTC().AppendFormat(dst, pipeline.TimeFormat)
	dst = append(dst, `","datacontenttype":"application/json","sequence":"`...)
	dst = strconv.AppendUint(dst, ev.Sequence, 10)
	dst = append(dst, '"')
	if ev.CorrelationID != "" {
		dst = append(dst, `,"correlationid":`...)
		dst = pipeline.AppendJSONString(dst, ev.CorrelationID)
	}
	if ev.CausationID != "" {
		dst = append(dst, `,"causationid":`...)
		dst = pipeline.AppendJSONString(dst, ev.CausationID)
	}
	if len(ev.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, ev.Data...)
	}
	return append(dst, '}')
}
