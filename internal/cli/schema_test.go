package cli_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite docs/pipeline.schema.json from `eventpipe schema`")

// docs/pipeline.schema.json is `eventpipe schema`'s output, never edited
// by hand: go test ./internal/cli -run Schema -update-schema rewrites it.
func TestSchemaIsGenerated(t *testing.T) {
	r := run(t, nil, "", "schema")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	path := filepath.Join("..", "..", "docs", "pipeline.schema.json")
	if *updateSchema {
		if err := os.WriteFile(path, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != r.stdout {
		t.Fatalf("docs/pipeline.schema.json is not what eventpipe schema prints: run go test ./internal/cli -run Schema -update-schema")
	}
}

// The schema accepts the pipelines this repository ships and names the
// keys a mistyped one gets wrong.
func TestSchemaChecksKeys(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal([]byte(run(t, nil, "", "schema").stdout), &schema); err != nil {
		t.Fatal(err)
	}
	check := func(text string) []string {
		var doc any
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			t.Fatal(err)
		}
		return unknownKeys(schema, doc, "")
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if bad := check(string(raw)); len(bad) > 0 {
		t.Errorf("pipeline.yaml: keys the schema does not know: %v", bad)
	}
	full := `
events: {enabled: true, buffer_size: 10, overflow: block, batch_linger: 1ms, emit_debug_events: true}
ingest:
  - {type: http, listen: "127.0.0.1:0", max_connections: 10, read_timeout: 5s}
  - {type: file, path: in.jsonl}
filter: {exclude_types: ["*.debug"], conditions: [{field: data.x, op: gt, value: 1}], plugins: [{path: f.wasm}]}
sanitize: {enabled: true, deny_fields: [password]}
route: {default: [out]}
export:
  out: {type: file, path: out.jsonl, format: cloudevents, retry: {max_attempts: 3}, queue: {size: 100, overflow: dead_letter}}
  hook: {type: webhook, url: "https://x", format: cloudevents, mode: binary, concurrency: 4}
dead_letter: {path: dead.jsonl}
admin: {listen: "127.0.0.1:0", token: t}
log: {level: info}
`
	if bad := check(full); len(bad) > 0 {
		t.Errorf("keys the schema does not know: %v", bad)
	}
	if bad := check("export:\n  out: {type: file, pathh: x}\nevents: {buffer_sise: 1}\n"); len(bad) != 2 || !strings.Contains(strings.Join(bad, " "), "pathh") {
		t.Errorf("mistyped keys found: %v", bad)
	}
}

// unknownKeys walks doc along schema and returns the paths of keys an
// object schema does not allow (oneOf is chosen by the "type" key).
func unknownKeys(schema map[string]any, doc any, at string) []string {
	if one, ok := schema["oneOf"].([]any); ok {
		m, _ := doc.(map[string]any)
		for _, alt := range one {
			a := alt.(map[string]any)
			props, _ := a["properties"].(map[string]any)
			if tc, ok := props["type"].(map[string]any); ok && m != nil && fmt.Sprint(tc["const"]) == fmt.Sprint(m["type"]) {
				return unknownKeys(a, doc, at)
			}
		}
		if len(one) > 0 && m != nil && m["type"] == nil {
			return unknownKeys(one[0].(map[string]any), doc, at)
		}
		return nil
	}
	switch d := doc.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		extra, _ := schema["additionalProperties"].(map[string]any)
		var out []string
		for k, v := range d {
			if s, ok := props[k].(map[string]any); ok {
				out = append(out, unknownKeys(s, v, at+"."+k)...)
			} else if extra != nil {
				out = append(out, unknownKeys(extra, v, at+"."+k)...)
			} else if props != nil && schema["additionalProperties"] == false {
				out = append(out, at+"."+k)
			}
		}
		return out
	case []any:
		items, _ := schema["items"].(map[string]any)
		var out []string
		for i, v := range d {
			if items != nil {
				out = append(out, unknownKeys(items, v, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
		return out
	}
	return nil
}

// The repository's examples pass their own config unit tests.
func TestExamplesPassTheirTests(t *testing.T) {
	r := run(t, nil, "", "test", filepath.Join("..", "..", "examples"))
	if r.code != 0 || !strings.Contains(r.stdout, " 0 failed") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// A failing expectation exits 1 with a diff; a broken test file exits 2.
func TestConfigTestExitCodes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pipeline.yaml", "events: {enabled: true}\nroute: {default: [out]}\nexport:\n  out: {type: file, path: out.jsonl}\n")
	failing := writeFile(t, dir, "a_test.yaml", "pipeline: pipeline.yaml\ntests:\n  - name: wrong\n    input: [{type: a.b, data: {x: 1}}]\n    expect:\n      out: [{type: a.b, data: {x: 2}}]\n")
	r := run(t, nil, "", "test", failing)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, ".data.x: want 2, got 1") {
		t.Errorf("failing test: exit %d\n%s", r.code, r.stdout)
	}
	broken := writeFile(t, dir, "b_test.yaml", "pipeline: pipeline.yaml\ntests:\n  - name: no such output\n    input: [{type: a.b}]\n    expect:\n      nope: []\n")
	if r := run(t, nil, "", "test", broken); r.code != 2 || !strings.Contains(r.stderr, `no output called`) {
		t.Errorf("broken test: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, nil, "", "test", writeFile(t, dir, "c_test.yaml", "pipelin: x\n")); r.code != 2 {
		t.Errorf("unknown key: exit %d", r.code)
	}
}
