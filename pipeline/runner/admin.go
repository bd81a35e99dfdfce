package runner

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/ingest"
)

// Health is the body of GET /health/events.
type Health struct {
	Enabled     bool                    `json:"enabled"`
	State       string                  `json:"state"`
	Healthy     bool                    `json:"healthy"`
	QueueDepth  int                     `json:"queue_depth"`
	HighWater   int                     `json:"queue_high_water"`
	Bus         pipeline.Stats          `json:"bus"`
	Dropped     map[string]uint64       `json:"dropped"`
	Rejected    uint64                  `json:"rejected_input"`
	DeadLetters uint64                  `json:"dead_lettered"`
	Outputs     map[string]OutputHealth `json:"outputs"`
}

// OutputHealth describes one output.
type OutputHealth struct {
	Exported    uint64    `json:"exported"`
	Failed      uint64    `json:"failed"`
	Batches     uint64    `json:"batches"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Queued are the events waiting for the output (or being exported);
	// ExportingFor how long the export in flight has run; Slow is true
	// while an export runs longer than 5s or the queue is nine tenths full.
	Queued       int64  `json:"queued"`
	ExportingFor string `json:"exporting_for,omitempty"`
	Slow         bool   `json:"slow"`
	Healthy      bool   `json:"healthy"`
}

// Health reports the runner's state. It is unhealthy when not running or
// when an output's most recent batch failed.
func (r *Runner) Health() Health {
	bs := r.bus.Stats()
	sum := r.Summary()
	h := Health{
		Enabled: bs.Enabled, State: r.state.Load().(string), QueueDepth: bs.QueueDepth, HighWater: bs.HighWater,
		Bus: bs, Dropped: sum.Dropped, Rejected: sum.Rejected, DeadLetters: sum.DeadLettered,
		Outputs: map[string]OutputHealth{},
	}
	h.Healthy = h.State == "running"
	r.mu.RLock()
	for _, o := range r.graph.outputs {
		st := o.stats
		st.mu.Lock()
		oh := OutputHealth{
			Exported: st.exported.Load(), Failed: st.failed.Load(), Batches: st.batches.Load(),
			LastError: st.lastErr, LastErrorAt: st.lastErrAt,
			Healthy: st.lastErrAt.IsZero() || st.lastOK.After(st.lastErrAt),
		}
		st.mu.Unlock()
		if w := o.w; w != nil {
			oh.Queued = w.queued.Load()
			if s := w.since.Load(); s != 0 {
				oh.ExportingFor = time.Since(time.Unix(0, s)).Round(time.Millisecond).String()
			}
			oh.Slow = w.slow(r.opts.SlowAfter)
			oh.Healthy = oh.Healthy && !oh.Slow
		}
		h.Healthy = h.Healthy && oh.Healthy
		h.Outputs[o.name] = oh
	}
	r.mu.RUnlock()
	return h
}

// IngestAddrs are the addresses the sources listen on (an http source's
// listen: 127.0.0.1:0 gets its port here), once AdminReady is closed.
func (r *Runner) IngestAddrs() []net.Addr {
	var out []net.Addr
	if r.sources == nil {
		return nil
	}
	for _, n := range r.sources.nodes {
		if a, ok := n.comp.(interface{ Addr() net.Addr }); ok && a.Addr() != nil {
			out = append(out, a.Addr())
		}
	}
	return out
}

// AdminAddr is the admin server's bound address once AdminReady is closed
// (nil when admin is off).
func (r *Runner) AdminAddr() net.Addr {
	a, _ := r.adminAddr.Load().(net.Addr)
	return a
}

// AdminReady is closed once the admin server listens (or is off).
func (r *Runner) AdminReady() <-chan struct{} { return r.adminReady }

func (r *Runner) adminServer(addr string) (*http.Server, net.Listener, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		addr = net.JoinHostPort("127.0.0.1", port) // loopback unless a host is named
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("admin: %w", err)
	}
	if err := r.adminToken(); err != nil {
		_ = ln.Close()
		return nil, nil, err
	}
	r.adminAddr.Store(ln.Addr())
	close(r.adminReady)
	return &http.Server{Handler: r.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}, ln, nil
}

// adminToken settles the token of the control endpoints: the configured
// one, or a random one written to the token file for the operator.
func (r *Runner) adminToken() error {
	cfg := r.config()
	if cfg.Admin.Token != "" {
		r.token = cfg.Admin.Token
		return nil
	}
	path := cfg.Admin.TokenFile
	if path == "" {
		path = filepath.Join(".eventpipe", "admin.token")
	}
	path = cfg.Resolve(path)
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	tok := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	r.token = tok
	r.log.Info("admin: enabling and disabling events needs the token in this file", "token_file", path)
	return nil
}

// guarded lets a request through only with the admin token.
func (r *Runner) guarded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || r.token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(r.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="eventpipe admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "this endpoint needs the admin token: Authorization: Bearer <token> (admin.token, or the file admin.token_file names)"})
			return
		}
		h(w, req)
	}
}

// AdminHandler serves the admin API:
//
//	GET  /health          liveness (200 while the process answers)
//	GET  /ready           readiness (200 once everything started and is bound, 503 otherwise)
//	GET  /health/events   health JSON (503 when unhealthy)
//	GET  /metrics         Prometheus metrics
//	POST /events/enable, POST /events/disable, PUT /events/enabled {"enabled":bool}
//	                      (with "Authorization: Bearer <admin token>")
//	POST /events          ingest, as the HTTP source (for eventpipe emit)
//	GET  /tail?pattern=P  JSON lines of events passing the stages, live
func (r *Runner) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/events", func(w http.ResponseWriter, _ *http.Request) {
		h := r.Health()
		status := http.StatusOK
		if !h.Healthy {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, h)
	})
	// Liveness: the process answers. Readiness: every component started
	// and bound, and the pipeline running (not starting, draining or
	// stopped): what a load balancer or an orchestrator asks.
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		state, _ := r.state.Load().(string)
		if state != "running" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "state": state})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "state": state})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.reg, promhttp.HandlerOpts{}))
	setEnabled := func(on bool) {
		r.bus.SetEnabled(on)
		r.log.Info("events toggled at run time", "enabled", on)
	}
	mux.HandleFunc("POST /events/enable", r.guarded(func(w http.ResponseWriter, _ *http.Request) {
		setEnabled(true)
		writeJSON(w, http.StatusOK, map[string]bool{"enabled": r.bus.Enabled()})
	}))
	mux.HandleFunc("POST /events/disable", r.guarded(func(w http.ResponseWriter, _ *http.Request) {
		setEnabled(false)
		writeJSON(w, http.StatusOK, map[string]bool{"enabled": r.bus.Enabled()})
	}))
	mux.HandleFunc("PUT /events/enabled", r.guarded(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Enabled *bool `json:"enabled"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil || body.Enabled == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"enabled": true|false}`})
			return
		}
		setEnabled(*body.Enabled)
		writeJSON(w, http.StatusOK, map[string]bool{"enabled": r.bus.Enabled()})
	}))
	mux.Handle("POST /events", ingest.NewHTTP(ingest.HTTPConfig{Listen: "127.0.0.1:0"}, r.config().Events.MaxEventSize).Handler(r))
	mux.HandleFunc("GET /tail", r.serveTail)
	// A web page the operator has open may send requests here: refuse
	// every cross-origin request that is not a plain read (a form or a
	// text/plain POST needs no preflight).
	var cop http.CrossOriginProtection
	return cop.Handler(mux)
}

func (r *Runner) serveTail(w http.ResponseWriter, req *http.Request) {
	pattern := req.URL.Query().Get("pattern")
	if pattern == "" {
		pattern = "*"
	}
	sub, err := r.tap.Subscribe(pattern, pipeline.SubscribeOptions{QueueSize: 1024})
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	r.tapUsers.Add(1)
	defer func() {
		r.tapUsers.Add(-1)
		sub.Unsubscribe()
	}()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	var buf []byte
	for {
		ev, err := sub.Next(req.Context())
		if err != nil {
			return
		}
		buf = append(ev.AppendJSON(buf[:0]), '\n')
		if _, err := w.Write(buf); err != nil {
			return
		}
		// Write what is queued before flushing, so a burst is one flush.
		for {
			more, ok := sub.TryNext()
			if !ok {
				break
			}
			buf = append(more.AppendJSON(buf[:0]), '\n')
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
