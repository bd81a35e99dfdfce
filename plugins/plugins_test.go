// Differential tests: the built-in wasm plugins and the native stages run
// the same code and must give identical output on the same events.
package plugins_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
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
	if err := buildRust("sanitize-rust/sanitize.rs", filepath.Join(dir, "sanitize-rust.wasm")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildPlugin(name, out string) error { return wasmbuild.Build("./"+name, out) }

// buildRust builds a Rust plugin as `make plugins` does (Debian's rustc;
// .ci/run installs it).
func buildRust(src, out string) error {
	cmd := exec.Command("/usr/bin/rustc", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
		"-C", "opt-level=3", "-C", "strip=symbols", "-C", "target-feature=+simd128,+bulk-memory", "-C", "lto=fat", "-C", "codegen-units=1", "-o", out, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", src, err, b)
	}
	return nil
}

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

// Both built-in sanitize plugins, the Go one (the native code compiled to
// wasm) and the Rust one (the rules written again), give what the native
// stage gives.
func TestSanitizePluginMatchesNative(t *testing.T) {
	cfg := stage.DefaultSanitizeConfig()
	cfg.DenyFields = append(cfg.DenyFields, "email")
	cfg.HashFields, cfg.HashKey = []string{"user"}, []byte("k3y")
	t.Run("defaults", func(t *testing.T) { sanitizePluginsMatchNative(t, cfg) })
	// User data opted in: wholly, or one field.
	cfg.UserData = false
	t.Run("user_data off", func(t *testing.T) { sanitizePluginsMatchNative(t, cfg) })
	cfg.UserData, cfg.AllowFields = true, []string{"Name", "ip"}
	t.Run("allow_fields", func(t *testing.T) { sanitizePluginsMatchNative(t, cfg) })
}

func sanitizePluginsMatchNative(t *testing.T, cfg stage.SanitizeConfig) {
	native, err := stage.NewSanitize(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// And an event holding every user-data field, in both cases: the Rust
	// plugin's list is a copy of stage.UserDataFields().
	every := map[string]string{}
	for _, k := range stage.UserDataFields() {
		every[k], every[strings.ToUpper(k)+"_kept"] = "x", "y"
	}
	data, _ := json.Marshal(map[string]any{"fields": every, "Upper": map[string]string{strings.ToUpper(stage.UserDataFields()[0]): "z"}})
	evs := append(sampleEvents(t), pipeline.Event{ID: "every", Type: "user.profile", Data: data})
	want := run(t, native, evs)
	changed := 0
	for i, e := range want.Events {
		if e != string(evs[i].AppendJSON(nil)) {
			changed++
		}
	}
	if changed < 5 {
		t.Errorf("only %d events were sanitized: the comparison proves little", changed)
	}
	for _, name := range []string{"sanitize", "sanitize-rust"} {
		t.Run(name, func(t *testing.T) {
			got := run(t, load(t, name, host.KindTransform, cfg), evs)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("wasm %s differs from native (-native +wasm):\n%s", name, diff)
			}
		})
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

// FuzzSanitizeRustMatchesNative holds the Rust sanitize plugin to the
// native stage on any text, as a source, a string value, a key and a
// hashed value.
func FuzzSanitizeRustMatchesNative(f *testing.F) {
	for _, s := range []string{
		"Bearer abcdefghijklmnop", "postgres://user:pa55@db/x", "eyJhbGciOi.eyJzdWIiOi.sig",
		"sk-ant-abcdefghijklmnopqrstu", "AKIAABCDEFGHIJKLMNOP", "aws_secret_access_key = 'abcdefghijklmnopqrstuvwxyz0123456789ABCD'",
		"password=hunter2&x=1", "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
		"/home/bob/../alice/./x.txt", `C:\Users\bob\file`, "~/a//b/", "/root/x", "ghp_abcdefghijklmnopqrstuvwxyz",
		"xoxb-1234567890-abc", "AIza" + strings.Repeat("a", 35), "glpat-abcdefghijklmnopqrstu", "tok\u017fen=1 be\u212aarer",
		"\xff\xfe", "a\u2028b<>&", "BEARER\t\tabcdefgh12345", "x://y:z@w", "github_pat_" + strings.Repeat("A", 22),
		// User data, Basic credentials and climbing paths (private by default).
		"mail alice.smith+x@mail.example.co.uk.", "x@1.23 a@b.c @@ q@w.er-t.yu", "card 4111 1111 1111 1111, 5500-0055-5555-5559",
		"4111111111111112 A4111111111111111 41111111111111111111", "ssn 078-05-1120; 1078-05-1120 078-05-11201",
		"Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l==", "basic\fdXNlcjpwYXNz Basic authentication", "read ../../etc/passwd",
		`..\..\win.ini`, "a ../ b../c ...//",
	} {
		f.Add(s)
	}
	cfg := stage.DefaultSanitizeConfig()
	cfg.HashFields, cfg.HashKey = []string{"user"}, []byte("k3y")
	native, err := stage.NewSanitize(cfg)
	if err != nil {
		f.Fatal(err)
	}
	rust := load(f, "sanitize-rust", host.KindTransform, cfg)
	f.Fuzz(func(t *testing.T, s string) {
		js := string(pipeline.AppendJSONString(nil, s))
		var evs []pipeline.Event
		for _, data := range []string{
			`{"msg":` + js + `,"n":[1,` + js + `]}`,
			`{` + js + `:1,"user":` + js + `}`,
			`{"user":{"b":[1.50,1e21,` + js + `],"a":null}}`,
		} {
			evs = append(evs, pipeline.Event{ID: "x", Type: "a.b", Source: s, Data: []byte(data)})
		}
		want, got := run(t, native, evs), run(t, rust, evs)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q: rust differs from native (-native +rust):\n%s", s, diff)
		}
	})
}
