package host_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/pipeline"
)

type receiver struct {
	mu     sync.Mutex
	got    []map[string]any
	status int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	var batch []map[string]any
	_ = json.NewDecoder(req.Body).Decode(&batch)
	r.got = append(r.got, batch...)
}

func TestExportPluginThroughHTTPCapability(t *testing.T) {
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	h := newHost(t)
	spec := host.Spec{PluginConfig: host.PluginConfig{Path: webhookExporter, Capabilities: []string{"http"}, AllowedHosts: []string{"127.0.0.1"}, Config: map[string]any{"url": srv.URL + "/in"}}, Kind: host.KindExport}
	p := load(t, h, spec)
	e := p.Exporter()
	evs := testEvents()
	if err := e.Export(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != len(evs) || rec.got[2]["type"] != "tool.invoked" {
		t.Fatalf("receiver got %v", rec.got)
	}
	rec.status = 503
	if err := e.Export(context.Background(), evs); err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "retryable") {
		t.Errorf("503: %v", err)
	}
	rec.status = 400
	if err := e.Export(context.Background(), evs); !pipeline.IsPermanent(err) {
		t.Errorf("400: %v", err)
	}

	// A host not in allowed_hosts is refused by the host, whatever the plugin wants.
	spec.AllowedHosts = []string{"hooks.example.com"}
	denied := load(t, h, spec)
	err := denied.Exporter().Export(context.Background(), evs)
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "not in allowed_hosts") {
		t.Errorf("denied host: %v", err)
	}
	if st := denied.Stats(); st.Failures["host_denied"] != 1 {
		t.Errorf("stats %+v", st)
	}
	// Without the grant the plugin does not load.
	spec.Capabilities = nil
	if _, err := h.Load(context.Background(), spec); err == nil || !strings.Contains(err.Error(), `capability "http"`) {
		t.Errorf("ungranted: %v", err)
	}
	spec.Capabilities, spec.AllowedHosts = []string{"http"}, nil
	if _, err := h.Load(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "allowed_hosts") {
		t.Errorf("no hosts: %v", err)
	}
}
