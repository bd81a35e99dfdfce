package host

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Exporter is an export plugin as a pipeline.Exporter: one call per batch;
// the plugin answers delivered, retryable or permanent (sdk/ABI.md).
type Exporter struct {
	*Plugin
	mu sync.Mutex
}

// Exporter returns the plugin as an exporter (its kind must be export).
func (p *Plugin) Exporter() *Exporter { return &Exporter{Plugin: p} }

func (e *Exporter) Start(context.Context) error        { return nil }
func (e *Exporter) Shutdown(ctx context.Context) error { return e.Close(ctx) }

// Export hands the batch to the plugin.
func (e *Exporter) Export(ctx context.Context, events []pipeline.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	start := time.Now()
	defer func() {
		e.metrics.Batches.Add(1)
		e.metrics.EventsIn.Add(uint64(len(events)))
		e.metrics.Nanos.Add(uint64(time.Since(start)))
	}()
	in, err := e.acquire(ctx)
	if err != nil {
		e.metrics.fail(FailStart)
		return fmt.Errorf("plugin %s: %w", e.spec.Name, err)
	}
	broken := false
	defer func() { e.release(ctx, in, broken) }()
	cctx, cancel := e.callContext(ctx)
	defer cancel()
	in.arm(e.batchFuel(len(events)), e.spec.Timeout)
	defer e.disarm(in)
	attrs := e.Plugin.manifest.ABI >= 2
	ptr, size, err := in.encode(cctx, events, attrs, e.reads)
	if errors.Is(err, errFieldTooLong) {
		return pipeline.Permanent(err)
	}
	if err != nil {
		broken = true
		return e.failed(e.classify(cctx, in, err))
	}
	in.stack[0], in.stack[1] = uint64(ptr), uint64(size)
	if err := in.process.CallWithStack(cctx, in.stack[:]); err != nil {
		broken = true
		return e.failed(e.classify(cctx, in, err))
	}
	res := int64(in.stack[0])
	if res < 0 {
		return e.failed(&failure{FailError, fmt.Errorf("eventpipe_process returned %d: %s", res, in.lastError(cctx))})
	}
	out, ok := in.read(uint64(res))
	if !ok || len(out) < 4 {
		broken = true
		return e.failed(&failure{FailBadOutput, errors.New("export output must be status:u32 then a message")})
	}
	status, msg := binary.LittleEndian.Uint32(out), pluginTextOf(out[4:min(len(out), 4+MaxErrorText)], len(out)-4, MaxErrorText)
	switch status {
	case 0:
		e.metrics.EventsOut.Add(uint64(len(events)))
		return nil
	case 1:
		return fmt.Errorf("plugin %s: retryable failure: %s", e.spec.Name, msg)
	case 2:
		return pipeline.Permanent(fmt.Errorf("plugin %s: permanent failure: %s", e.spec.Name, msg))
	}
	broken = true
	return e.failed(&failure{FailBadOutput, fmt.Errorf("export status %d (want 0, 1 or 2)", status)})
}

// failed counts a plugin failure; an exporter that crashes is retried like
// any failed export (a fresh instance takes its place).
func (e *Exporter) failed(err error) error {
	var f *failure
	if errors.As(err, &f) {
		e.metrics.fail(f.kind)
	}
	return fmt.Errorf("plugin %s: %w", e.spec.Name, err)
}

// The http capability: a plugin may reach only the hosts in allowed_hosts.

type httpRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"` // base64
}

type httpResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body"` // base64
	Error   string            `json:"error,omitempty"`
}

// maxHTTPRequest bounds the request JSON a plugin hands the host (the
// body is base64 in it); responses are read up to 1 MiB.
const maxHTTPRequest = 16 << 20

// httpCall serves eventpipe.http_request: the request JSON at req, the
// response JSON written at resp (up to cap bytes). It returns the response
// length, or minus the length needed when cap is too small.
func (p *Plugin) httpCall(ctx context.Context, m api.Module, reqPtr, reqLen, respPtr, respCap uint32) int32 {
	write := func(r httpResponse) int32 {
		b, _ := json.Marshal(r)
		if uint32(len(b)) > respCap {
			return -int32(len(b))
		}
		if !m.Memory().Write(respPtr, b) {
			return -1
		}
		return int32(len(b))
	}
	if !p.allows("http") {
		return write(httpResponse{Error: "the http capability is not granted"})
	}
	if reqLen > maxHTTPRequest {
		return write(httpResponse{Error: fmt.Sprintf("request of %d bytes is over the limit of %d", reqLen, maxHTTPRequest)})
	}
	raw, ok := m.Memory().Read(reqPtr, reqLen)
	if !ok {
		return write(httpResponse{Error: "request pointer outside memory"})
	}
	var req httpRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return write(httpResponse{Error: "request is not JSON: " + err.Error()})
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return write(httpResponse{Error: "not an http(s) URL: " + req.URL})
	}
	if !hostAllowed(u.Hostname(), p.spec.AllowedHosts) {
		p.metrics.fail("host_denied")
		p.spec.Logger.Warn("plugin asked for a host not in allowed_hosts", "plugin", p.spec.Name, "host", pluginText([]byte(u.Hostname()), 256))
		return write(httpResponse{Error: fmt.Sprintf("host %q is not in allowed_hosts", u.Hostname())})
	}
	body, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return write(httpResponse{Error: "body is not base64"})
	}
	if req.Method == "" {
		req.Method = http.MethodPost
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(body))
	if err != nil {
		return write(httpResponse{Error: err.Error()})
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	resp, err := p.client.Do(hreq)
	if err != nil {
		return write(httpResponse{Error: err.Error()})
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out := httpResponse{Status: resp.StatusCode, Body: base64.StdEncoding.EncodeToString(rb), Headers: map[string]string{}}
	for k := range resp.Header {
		out.Headers[k] = resp.Header.Get(k)
	}
	return write(out)
}
