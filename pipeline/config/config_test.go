package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eventpipe/eventpipe/internal/golden"
	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultPipelineFileIsValid(t *testing.T) {
	c, err := config.Load("../../pipeline.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var sc stage.SanitizeConfig
	decodeComponent(t, c, "sanitize", &sc)
	if !sc.Enabled() || !sc.Secrets || !c.Events.Enabled {
		t.Errorf("the default pipeline must sanitize: %+v", sc)
	}
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	c, err := config.Parse("empty.yaml", nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	d := config.Default()
	if !reflect.DeepEqual(c.Events, d.Events) || c.DeadLetter != d.DeadLetter {
		t.Errorf("got %+v", c.Events)
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	_, err := config.Parse("bad.yaml", []byte("events:\n  enabled: true\n bad: [\n"), noEnv)
	if err == nil || !strings.HasPrefix(err.Error(), "bad.yaml:") || !strings.Contains(err.Error(), "YAML syntax") {
		t.Errorf("got %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	src := []byte(`
export:
  out:
    type: file
    path: x.jsonl
route:
  default: [out]
`)
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *config.Config)
		err   string
	}{
		{"llmspell names", map[string]string{
			"LLMSPELL_EVENTS_ENABLED": "false", "LLMSPELL_EVENTS_BUFFER_SIZE": "42",
			"LLMSPELL_EVENTS_EMIT_TIMING_EVENTS": "false", "LLMSPELL_EVENTS_EMIT_STATE_EVENTS": "true",
			"LLMSPELL_EVENTS_EMIT_DEBUG_EVENTS": "true", "LLMSPELL_EVENTS_MAX_EVENTS_PER_SECOND": "250",
			"LLMSPELL_EVENTS_FILTERING_INCLUDE_TYPES": "agent.*, tool.*", "LLMSPELL_EVENTS_FILTERING_EXCLUDE_TYPES": "*.debug",
		}, func(t *testing.T, c *config.Config) {
			e := c.Events
			if e.Enabled || e.BufferSize != 42 || e.Filter.EmitTimingEvents || !e.Filter.EmitStateEvents || !e.Filter.EmitDebugEvents || e.MaxEventsPerSecond != 250 {
				t.Errorf("events %+v", e)
			}
			var fc stage.FilterConfig
			decodeComponent(t, c, "filter", &fc)
			if diff := cmp.Diff([]string{"agent.*", "tool.*"}, fc.IncludeTypes); diff != "" {
				t.Error(diff)
			}
			if diff := cmp.Diff([]string{"*.debug"}, fc.ExcludeTypes); diff != "" {
				t.Error(diff)
			}
		}, ""},
		{"eventpipe wins", map[string]string{"LLMSPELL_EVENTS_BUFFER_SIZE": "42", "EVENTPIPE_BUFFER_SIZE": "77"},
			func(t *testing.T, c *config.Config) {
				if c.Events.BufferSize != 77 {
					t.Errorf("buffer %d", c.Events.BufferSize)
				}
			}, ""},
		{"exports", map[string]string{
			"LLMSPELL_EVENTS_EXPORT_STDOUT": "true", "LLMSPELL_EVENTS_EXPORT_FILE": "/tmp/ev.jsonl",
			"LLMSPELL_EVENTS_EXPORT_WEBHOOK": "https://hooks.example.com/x", "LLMSPELL_EVENTS_EXPORT_PRETTY_JSON": "true",
		}, func(t *testing.T, c *config.Config) {
			var names []string
			for _, o := range c.Outputs {
				names = append(names, o.Name+":"+o.Type)
			}
			if diff := cmp.Diff([]string{"out:file", "stdout:stdout", "file:file", "webhook:webhook"}, names); diff != "" {
				t.Error(diff)
			}
			var rc stage.RouteConfig
			decodeComponent(t, c, "route", &rc)
			if diff := cmp.Diff([]string{"out", "stdout", "file", "webhook"}, rc.Default); diff != "" {
				t.Error(diff)
			}
		}, ""},
		{"stdout off removes it", map[string]string{"LLMSPELL_EVENTS_EXPORT_STDOUT": "true", "EVENTPIPE_EXPORT_STDOUT": "false"},
			func(t *testing.T, c *config.Config) {
				if c.OutputIndex("stdout") >= 0 {
					t.Error("stdout still there")
				}
			}, ""},
		{"bad bool", map[string]string{"LLMSPELL_EVENTS_ENABLED": "maybe"}, nil, `LLMSPELL_EVENTS_ENABLED="maybe": want true or false`},
		{"bad int", map[string]string{"EVENTPIPE_BUFFER_SIZE": "big"}, nil, `EVENTPIPE_BUFFER_SIZE="big"`},
		{"bad pattern", map[string]string{"LLMSPELL_EVENTS_FILTERING_INCLUDE_TYPES": "agent.["}, nil, "LLMSPELL_EVENTS_FILTERING_INCLUDE_TYPES"},
		{"bad rate", map[string]string{"LLMSPELL_EVENTS_MAX_EVENTS_PER_SECOND": "-1"}, nil, "MAX_EVENTS_PER_SECOND"},
		{"bad webhook", map[string]string{"LLMSPELL_EVENTS_EXPORT_WEBHOOK": "ftp://x"}, nil, "EXPORT_WEBHOOK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("p.yaml", src, envOf(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestEventsSection(t *testing.T) {
	c, err := config.Parse("p.yaml", []byte("events:\n  overflow: reject\n  max_events_per_second: 10\n  burst: 3\n  emit_debug_events: true\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Events
	if e.Overflow != pipeline.Reject || e.Burst != 3 || e.MaxEventsPerSecond != 10 || !e.Filter.EmitDebugEvents || e.BufferSize != pipeline.DefaultConfig().BufferSize {
		t.Errorf("%+v", e)
	}
}

func TestComponentsInFlowOrder(t *testing.T) {
	c, err := config.Parse("p.yaml", []byte(`
ingest:
  - type: stdin
filter:
  exclude_types: [x]
  plugins:
    - path: f.wasm
sanitize:
  plugins:
    - path: s.wasm
route:
  default: [out]
export:
  out:
    type: stdout
    retry: {max_attempts: 2}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, comp := range c.Components() {
		got = append(got, fmt.Sprintf("%s %s %s %s %s", comp.Class, comp.Type, comp.ID, comp.Name, comp.Role))
	}
	want := []string{
		"source stdin ingest[0] ingest[0] ",
		"stage filter filter filter ",
		"stage plugin filter.plugins[0] filter:f.wasm filter",
		"stage sanitize sanitize sanitize ",
		"stage plugin sanitize.plugins[0] sanitize:s.wasm transform",
		"stage route route route ",
		"output stdout export.out out export",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}

func TestSameIngestIgnoresPositions(t *testing.T) {
	parse := func(text string) *config.Config {
		c, err := config.Parse("p.yaml", []byte(text), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse("ingest:\n  - type: stdin\n")
	if !a.SameIngest(parse("# moved down\n\ningest:\n  - type: stdin\n")) {
		t.Error("the same source on other lines counted as a change")
	}
	if a.SameIngest(parse("ingest:\n  - type: http\n    listen: :0\n")) {
		t.Error("another source counted as the same")
	}
}

// decodeComponent decodes the component with the given ID into target.
func decodeComponent(t *testing.T, c *config.Config, id string, target any) {
	t.Helper()
	for _, comp := range c.Components() {
		if comp.ID == id {
			if errs := c.Decode(comp, target); len(errs) > 0 {
				t.Fatal(errs)
			}
			return
		}
	}
	t.Fatalf("no component %s", id)
}

func TestMigrate(t *testing.T) {
	files, _ := filepath.Glob("testdata/migrate/*.toml")
	if len(files) != 4 {
		t.Fatalf("want the 4 documented patterns, got %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			y, _, err := config.Migrate(src)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, strings.TrimSuffix(f, ".toml")+".yaml", y)
			// The result is a valid pipeline.
			if _, err := config.Parse(f+".yaml", y, noEnv); err != nil {
				t.Errorf("migrated config does not validate:\n%v", err)
			}
		})
	}
	// Faithful to the original: an unknown key is reported, not fatal;
	// enabled and stdout default to false as there; a plain http webhook
	// gives a pipeline that validates, with a note.
	y, notes, err := config.Migrate([]byte("[events]\nflavour = 3\n[events.export]\nwebhook = \"http://hooks.example.com/in\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{"events.flavour", "enabled is not set", "plain http"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
	c, err := config.Parse("m.yaml", y, noEnv)
	if err != nil {
		t.Fatalf("migrated config does not validate:\n%v\n%s", err, y)
	}
	if c.Events.Enabled || strings.Contains(string(y), "stdout") || !strings.Contains(string(y), "allow_http: true") {
		t.Errorf("not faithful:\n%s", y)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"../runner/testdata/broken.yaml", "../../pipeline.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("events: [1, 2]\nexport: 3\n"))
	f.Add([]byte("route:\n  rules:\n    - types: x\n      to: y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse("fuzz.yaml", b, noEnv)
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not config.Errors: %v", err)
			}
			return
		}
		_ = c.Components()
	})
}

func TestEnvironmentVariablesInValues(t *testing.T) {
	env := map[string]string{"SIZE": "2048", "DLQ": "/var/dead.jsonl", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := config.Parse("p.yaml", []byte(`events:
  buffer_size: ${SIZE}
  max_event_size: ${UNSET:-4096}
dead_letter:
  path: "${DLQ}"
log:
  level: ${EMPTY:-warn}
export:
  out:
    type: stdout
    note: "cost $${NOT_A_VAR}"
`), lookup)
	if err != nil && !strings.Contains(err.Error(), "note") {
		t.Fatal(err)
	}
	if c.Events.BufferSize != 2048 || c.Events.MaxEventSize != 4096 || c.DeadLetter.Path != "/var/dead.jsonl" || c.Log.Level != "warn" {
		t.Errorf("expanded: buffer %d, max %d, path %q, level %q", c.Events.BufferSize, c.Events.MaxEventSize, c.DeadLetter.Path, c.Log.Level)
	}
	var note string
	if err := c.Outputs[0].Node.Content[3].Decode(&note); err != nil || note != "cost ${NOT_A_VAR}" {
		t.Errorf("$${ is a literal ${: %q %v", note, err)
	}
	_, err = config.Parse("p.yaml", []byte("events:\n  buffer_size: 10\ndead_letter:\n  path: ${NOPE}/dead.jsonl\n"), lookup)
	if err == nil || !strings.Contains(err.Error(), "p.yaml:4:9: ${NOPE} is not set") {
		t.Errorf("unset variable: %v", err)
	}
}
