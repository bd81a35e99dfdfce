// Differential tests: the built-in wasm plugins and the native stages run
// the same code and must give identical output on the same events.
package plugins_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/internal/bench"
	"github.com/eventpipe/eventpipe/internal/wasmbuild"
	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

var wasmDir string

// TestMain builds the plugins with standard Go for wasip1, as `make
// plugins` does.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventpipe-plugins-")
	if err != nil {
		panic(err)
	}
	wasmDir = dir
	for _, name := range []string{"filter", "sanitize"} {
		if err := buildPlugin(name, filepath.Join(dir, name+".wasm")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildPlugin(name, out string) error { return wasmbuild.Build("./"+name, out) }

func sampleEvents(t testing.TB) []pipeline.Event {
	t.Helper()
	var evs []pipeline.Event
	raw, err := os.ReadFile("../testdata/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	raw = append(raw, bench.Input(400)...)
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if ev, err := pipeline.Decode(line, pipeline.DecodeOptions{}); err == nil {
			ev.ID = fmt.Sprintf("id-%d", len(evs))
			evs = append(evs, ev)
		}
	}
	extra := []string{
		`{"type":"a.b","source":"/home/bob/x","data":{"Password":"p","nested":[{"token":"t","msg":"Bearer abcdefghijkl"}],"n":1.50,"url":"postgres://u:pw@h/db"}}`,
		`{"type":"a.b","data":"just a string with sk-ant-abcdefghijklmnopqrstuv"}`,
		`{"type":"a.b","data":[1,2,{"api_key":"k"}]}`,
		`{"type":"tool.x","data":{"level":"warn","score":9}}`,
	}
	for _, e := range extra {
		ev, err := pipeline.Decode([]byte(e), pipeline.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func load(t testing.TB, name, kind string, config any) *host.Stage {
	t.Helper()
	h, err := host.New(host.Options{CacheDir: filepath.Join(os.TempDir(), "eventpipe-test-wasm-cache")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Load(context.Background(), host.Spec{PluginConfig: host.PluginConfig{Path: filepath.Join(wasmDir, name+".wasm"), Config: config}, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()); _ = h.Close(context.Background()) })
	return p.Stage()
}

type outcome struct {
	Verdicts []pipeline.Verdict
	Events   []string
}

func run(t testing.TB, s pipeline.Stage, evs []pipeline.Event) outcome {
	t.Helper()
	var b pipeline.Batch
	b.Reset(append([]pipeline.Event(nil), evs...))
	if err := s.Process(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	o := outcome{Verdicts: b.Verdicts}
	for i := range b.Events {
		if b.Verdicts[i] == pipeline.Keep {
			o.Events = append(o.Events, string(b.Events[i].AppendJSON(nil)))
		}
	}
	return o
}

func TestSanitizePluginMatchesNative(t *testing.T) {
	cfg := stage.DefaultSanitizeConfig()
	cfg.DenyFields = append(cfg.DenyFields, "email")
	cfg.HashFields, cfg.HashKey = []string{"user"}, []byte("k3y")
	native, err := stage.NewSanitize(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wasm := load(t, "sanitize", host.KindTransform, cfg)
	evs := sampleEvents(t)
	want, got := run(t, native, evs), run(t, wasm, evs)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wasm sanitize differs from native (-native +wasm):\n%s", diff)
	}
	changed := 0
	for i, e := range want.Events {
		if e != string(evs[i].AppendJSON(nil)) {
			changed++
		}
	}
	if changed < 5 {
		t.Errorf("only %d events were sanitized: the comparison proves little", changed)
	}
}

func TestFilterPluginMatchesNative(t *testing.T) {
	cfg := stage.FilterConfig{
		ExcludeTypes: []string{"*.debug", "agent.heartbeat"},
		Conditions:   []stage.Condition{{Field: "data.score", Op: "ne", Value: 9.0}, {Field: "source", Op: "not_regex", Value: "^sandbox$"}},
	}
	native, err := stage.NewFilter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wasm := load(t, "filter", host.KindFilter, cfg)
	evs := sampleEvents(t)
	want, got := run(t, native, evs), run(t, wasm, evs)
	if diff := cmp.Diff(want.Verdicts, got.Verdicts); diff != "" {
		t.Errorf("wasm filter differs from native (-native +wasm):\n%s", diff)
	}
	drops := 0
	for _, v := range want.Verdicts {
		if v == pipeline.Drop {
			drops++
		}
	}
	if drops < 3 || drops == len(evs) {
		t.Errorf("%d of %d dropped: the comparison proves little", drops, len(evs))
	}
}

func TestPluginRejectsBadConfig(t *testing.T) {
	h, _ := host.New(host.Options{})
	defer h.Close(context.Background())
	_, err := h.Load(context.Background(), host.Spec{PluginConfig: host.PluginConfig{Path: filepath.Join(wasmDir, "filter.wasm"), Config: map[string]any{"conditions": []any{map[string]any{"field": "data.x", "op": "frobnicate"}}}}, Kind: host.KindFilter})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("frobnicate")) {
		t.Errorf("got %v", err)
	}
}

// A misspelt key in a built-in plugin's config is found by validate, with
// the position of the plugin entry.
func TestValidateRefusesUnknownKeysInABuiltInPluginConfig(t *testing.T) {
	h, _ := host.New(host.Options{})
	defer h.Close(context.Background())
	reg := runner.NewRegistry()
	if err := reg.Register(h.Factories()...); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"filter", "sanitize"} {
		yaml := fmt.Sprintf("%s:\n  plugins:\n    - path: %s\n      config: {exclude_typos: [x], secretz: true}\nroute:\n  default: [out]\nexport:\n  out:\n    type: stdout\n",
			name, filepath.Join(wasmDir, name+".wasm"))
		cfg, err := config.Parse("p.yaml", []byte(yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		err = runner.Validate(context.Background(), cfg, runner.Options{Registry: reg, Getenv: func(string) (string, bool) { return "", false }})
		if err == nil || !strings.Contains(err.Error(), "p.yaml:3:7: "+name+".plugins[0]") || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
