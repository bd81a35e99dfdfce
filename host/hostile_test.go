package host_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/eventpipe/eventpipe/host"
)

// lockedBuffer is a log destination safe for the host's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Plugin text reaches the host log as one escaped, bounded line; nothing
// is served before the manifest was checked; a forged metric name is
// refused and counted.
func TestPluginTextCannotForgeLogLines(t *testing.T) {
	h := newHost(t)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/logforge.wasm",
		Capabilities: []string{"log", "metrics"}}, Logger: logger})
	runBatch(t, p.Stage(), testEvents()[:1])
	out := logs.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), out)
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "early") {
		t.Errorf("raw escape or a log from before the capability check:\n%q", out)
	}
	if !strings.Contains(out, `ok\\n\\x1b[2Jtime=`) || !strings.Contains(out, "more bytes") || len(lines[0]) > 2*host.MaxLogText {
		t.Errorf("log line not escaped and bounded (%d bytes):\n%s", len(lines[0]), out)
	}
	st := p.Stats()
	if len(st.Custom) != 0 || st.Failures["bad_metric"] != 1 {
		t.Errorf("metrics %v, failures %v: want the forged name refused and counted", st.Custom, st.Failures)
	}
}

// A module that imports a host function the pipeline does not grant is
// refused before any of its code runs.
func TestUngrantedImportRefusedBeforeInstantiation(t *testing.T) {
	h := newHost(t)
	var logs lockedBuffer
	_, err := h.Load(t.Context(), host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/logforge.wasm",
		Capabilities: []string{"metrics"}}, Kind: host.KindFilter, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err == nil || !strings.Contains(err.Error(), `needs capability "log"`) {
		t.Fatalf("err = %v", err)
	}
	if logs.String() != "" {
		t.Errorf("the module ran: %s", logs.String())
	}
}
