package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	stdio "io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// testFile is a config unit test file (docs/cli.md, "test").
type testFile struct {
	// Pipeline is the pipeline file, relative to the test file.
	Pipeline string `yaml:"pipeline"`
	// Env are the environment variables the pipeline sees (for ${VAR}).
	Env   map[string]string `yaml:"env"`
	Tests []testCase        `yaml:"tests"`
}

type testCase struct {
	Name string `yaml:"name"`
	// Input are the events fed to the stages, in any accepted shape: a
	// mapping, or a string holding one JSON line (which may be refused).
	Input []yaml.Node `yaml:"input"`
	// Expect maps each output's name, or "dead_letter", to the events it
	// must receive, in order. Each expected event is matched on the
	// fields it names (a field the event lacks fails it; data is
	// compared key by key, down to the values named). Outputs not named
	// are not checked.
	Expect map[string][]yaml.Node `yaml:"expect"`
}

func testVerb() verb {
	return verb{
		use:   "test [-c pipeline.yaml] [FILE_test.yaml | DIR]...",
		short: "run config unit tests: input events and what each output must receive",
		long: "Run config unit tests: each test file names a pipeline, input events and what each output\n" +
			"(and the dead-letter file) must receive. The stages run for real, wasm plugins too; outputs\n" +
			"are replaced by recorders. Without arguments, every *_test.yaml under the current directory.\n" +
			"With -c, every test runs against that pipeline instead of the one its file names (try a\n" +
			"changed pipeline against the tests of the old one).\n" +
			"Exit 0: every test passed; 1: a test failed (a diff says how); 2: a test file or pipeline is broken.",
		example: "  eventpipe test                                  # every *_test.yaml below .\n" +
			"  eventpipe test examples/audit-trail/pipeline_test.yaml\n" +
			"  eventpipe test -c candidate.yaml pipeline_test.yaml",
		complete: []string{"yaml", "yml"},
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			cpath := configFlag(fs, "", "run every test against this pipeline instead of the one its file names")
			return func(ctx context.Context, args []string) int {
				return runTests(ctx, io, *cpath, args)
			}
		},
	}
}

func runTests(ctx context.Context, io IO, pipelineOverride string, paths []string) int {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(io.Stderr, "eventpipe test: %v\n", err)
			return ExitUsage
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		_ = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, "_test.yaml") {
				files = append(files, path)
			}
			return nil
		})
	}
	if len(files) == 0 {
		fmt.Fprintln(io.Stderr, "eventpipe test: no *_test.yaml files")
		return ExitUsage
	}
	sort.Strings(files)
	reg := registry(io)
	code, passed, failed := ExitOK, 0, 0
	for _, f := range files {
		p, fl, broken := runTestFile(ctx, io, reg, f, pipelineOverride)
		passed, failed = passed+p, failed+fl
		switch {
		case broken:
			code = ExitUsage
		case fl > 0 && code == ExitOK:
			code = ExitRuntime
		}
	}
	fmt.Fprintf(io.Stdout, "%d passed, %d failed\n", passed, failed)
	return code
}

// runTestFile runs the tests of one file; broken means the file or its
// pipeline could not be run at all.
func runTestFile(ctx context.Context, io IO, reg *component.Registry, path, pipelineOverride string) (passed, failed int, broken bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(io.Stderr, "%s: %v\n", path, err)
		return 0, 0, true
	}
	var tf testFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		fmt.Fprintf(io.Stderr, "%s: %v\n", path, err)
		return 0, 0, true
	}
	if pipelineOverride != "" {
		tf.Pipeline = ""
	}
	if tf.Pipeline == "" && pipelineOverride == "" || len(tf.Tests) == 0 {
		fmt.Fprintf(io.Stderr, "%s: want a pipeline and at least one test\n", path)
		return 0, 0, true
	}
	env := func(k string) (string, bool) {
		v, ok := tf.Env[k]
		return v, ok
	}
	pipe := pipelineOverride
	if pipe == "" {
		pipe = filepath.Join(filepath.Dir(path), tf.Pipeline)
	}
	for _, tc := range tf.Tests {
		problems, err := runTestCase(ctx, reg, pipe, env, tc)
		switch {
		case err != nil:
			fmt.Fprintf(io.Stderr, "%s: %s: %v\n", path, tc.Name, err)
			return passed, failed, true
		case len(problems) > 0:
			failed++
			fmt.Fprintf(io.Stdout, "FAIL %s: %s\n", path, tc.Name)
			for _, p := range problems {
				fmt.Fprintf(io.Stdout, "    %s\n", strings.ReplaceAll(p, "\n", "\n    "))
			}
		default:
			passed++
			fmt.Fprintf(io.Stdout, "ok   %s: %s\n", path, tc.Name)
		}
	}
	return passed, failed, false
}

// recorder is an output that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	got []pipeline.Event
}

func (r *recorder) Start(context.Context) error    { return nil }
func (r *recorder) Shutdown(context.Context) error { return nil }
func (r *recorder) Export(_ context.Context, evs []pipeline.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range evs {
		r.got = append(r.got, evs[i].Clone())
	}
	return nil
}

// testSource publishes a test's input.
type testSource struct{ lines [][]byte }

func (s *testSource) Finite() bool { return true }
func (s *testSource) Run(ctx context.Context, p pipeline.Publisher) error {
	for i, l := range s.lines {
		ev, err := pipeline.Decode(l, pipeline.DecodeOptions{})
		if err != nil {
			p.Reject(ctx, pipeline.Rejected{Source: "test", Offset: fmt.Sprintf("input %d", i), Raw: l, Reason: err.Error(), Time: time.Now().UTC()})
			continue
		}
		if err := p.Publish(ctx, ev); err != nil {
			p.Reject(ctx, pipeline.Rejected{Source: "test", Offset: fmt.Sprintf("input %d", i), Raw: l, Reason: err.Error(), Time: time.Now().UTC()})
		}
	}
	return nil
}

func runTestCase(ctx context.Context, reg *component.Registry, pipe string, env func(string) (string, bool), tc testCase) ([]string, error) {
	cfg, err := config.Load(pipe, env)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "eventpipe-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg.DeadLetter.Path = filepath.Join(dir, "dead.jsonl")
	cfg.Admin.Listen = ""
	cfg.Persist = yaml.Node{} // memory mode: what reaches the outputs is what is tested
	for name := range tc.Expect {
		if name == "dead_letter" {
			continue
		}
		if !slices.Contains(cfg.OutputNames(), name) {
			return nil, fmt.Errorf("expect names %q, which the pipeline has no output called (outputs: %s)", name, strings.Join(cfg.OutputNames(), ", "))
		}
	}
	recs := map[string]*recorder{}
	outs := map[string]component.Output{}
	for _, name := range cfg.OutputNames() {
		recs[name] = &recorder{}
		outs[name] = recs[name]
	}
	var lines [][]byte
	for _, n := range tc.Input {
		if n.Kind == yaml.ScalarNode {
			lines = append(lines, []byte(n.Value))
			continue
		}
		b, err := nodeJSON(&n)
		if err != nil {
			return nil, fmt.Errorf("input at line %d: %w", n.Line, err)
		}
		lines = append(lines, b)
	}
	r, err := runner.New(ctx, cfg, runner.Options{Registry: reg, Getenv: env, SkipConfigSources: true,
		Sources: []pipeline.Source{&testSource{lines}}, Outputs: outs,
		Logger: newLogger(stdio.Discard, "error", "text")})
	if err != nil {
		return nil, err
	}
	if _, err := r.Run(ctx); err != nil {
		return nil, err
	}
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(tc.Expect)) {
		var got []map[string]any
		if name == "dead_letter" {
			raw, _ := os.ReadFile(cfg.DeadLetter.Path)
			for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
				if len(l) > 0 {
					var m map[string]any
					_ = json.Unmarshal(l, &m)
					got = append(got, m)
				}
			}
		} else {
			for i := range recs[name].got {
				var m map[string]any
				_ = json.Unmarshal(recs[name].got[i].AppendJSON(nil), &m)
				got = append(got, m)
			}
		}
		problems = append(problems, compareOutput(name, tc.Expect[name], got)...)
	}
	return problems, nil
}

// compareOutput matches what an output got against what was expected, in
// order, and describes each difference.
func compareOutput(name string, want []yaml.Node, got []map[string]any) []string {
	var problems []string
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(want):
			b, _ := json.Marshal(got[i])
			problems = append(problems, fmt.Sprintf("%s: event %d was not expected: %s", name, i+1, b))
		case i >= len(got):
			b, _ := nodeJSON(&want[i])
			problems = append(problems, fmt.Sprintf("%s: event %d expected, never received: %s", name, i+1, b))
		default:
			var w any
			b, _ := nodeJSON(&want[i])
			_ = json.Unmarshal(b, &w)
			if diffs := subset(w, got[i], ""); len(diffs) > 0 {
				gb, _ := json.Marshal(got[i])
				problems = append(problems, fmt.Sprintf("%s: event %d (line %d) differs:\n%s\n  got: %s", name, i+1, want[i].Line, strings.Join(diffs, "\n"), gb))
			}
		}
	}
	return problems
}

// subset reports where got does not hold what want names.
func subset(want, got any, at string) []string {
	if wm, ok := want.(map[string]any); ok {
		gm, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("  %s: want an object, got %v", orTop(at), got)}
		}
		var out []string
		for _, k := range slices.Sorted(maps.Keys(wm)) {
			gv, present := gm[k]
			if !present {
				if wm[k] == nil {
					continue // null: expected absent
				}
				out = append(out, fmt.Sprintf("  %s.%s: missing (want %v)", at, k, wm[k]))
				continue
			}
			out = append(out, subset(wm[k], gv, at+"."+k)...)
		}
		return out
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("  %s: want %v, got %v", orTop(at), want, got)}
	}
	return nil
}

func orTop(at string) string {
	if at == "" {
		return "event"
	}
	return at
}

// nodeJSON is a YAML value as JSON.
func nodeJSON(n *yaml.Node) ([]byte, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	v = jsonable(v)
	return json.Marshal(v)
}

// jsonable turns what yaml decodes (map[string]any, with int keys
// possible) into what json can encode.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := map[string]any{}
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}
