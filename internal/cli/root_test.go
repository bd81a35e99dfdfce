package cli_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Every verb that reads a pipeline takes --config/-c, and a shell
// completes it with YAML files.
func TestConfigFlagOnEveryVerbThatReadsAPipeline(t *testing.T) {
	for _, verb := range [][]string{{"run"}, {"validate"}, {"test"}, {"dlq", "replay"}, {"replay"}, {"trace"}, {"emit"}, {"tail"}, {"migrate"}} {
		r := run(t, nil, "", append(append([]string{"__complete"}, verb...), "-")...)
		if r.code != 0 || !strings.Contains(r.stdout, "--config\t") || !strings.Contains(r.stdout, "-c\t") {
			t.Errorf("%v: no --config/-c among the completions:\n%s", verb, r.stdout)
		}
		r = run(t, nil, "", append(append([]string{"__complete"}, verb...), "-c", "")...)
		want := "yaml\nyml\n:8" // 8: filter by extension
		if verb[0] == "migrate" {
			want = "toml\n:8" // rs-llmspell's configuration
		}
		if !strings.Contains(r.stdout, want) {
			t.Errorf("%v -c completes %q, want %q", verb, r.stdout, want)
		}
	}
}

// Flags go before or after the positional arguments.
func TestFlagsBeforeOrAfterArguments(t *testing.T) {
	for _, args := range [][]string{
		{"validate", "../../pipeline.yaml", "--config", "../../pipeline.yaml"},
		{"validate", "-c", "../../pipeline.yaml"},
		{"validate", "../../pipeline.yaml"},
	} {
		if r := run(t, nil, "", args...); r.code != 0 || !strings.Contains(r.stdout, "pipeline.yaml: ok") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	dir := t.TempDir()
	in := writeFile(t, dir, "in.jsonl", "{\"type\":\"a.b\"}\n{\"type\":\"a.c\"}\n")
	cfg := fileConfig(t, dir, "")
	if r := run(t, nil, "", "run", cfg, "--input", in); r.code != 0 {
		t.Fatalf("run FILE --input IN: %+v", r)
	}
	if got := readLines(t, filepath.Join(dir, "out.jsonl")); len(got) != 2 {
		t.Errorf("exported %d events, want 2", len(got))
	}
	// A trace's id after its flags, or before them.
	trace := writeFile(t, dir, "trace.jsonl", "{\"type\":\"a.b\",\"id\":\"1\",\"correlation_id\":\"c\"}\n")
	for _, args := range [][]string{{"trace", "--tree", "--file", trace, "c"}, {"trace", "c", "--file", trace, "--tree"}} {
		if r := run(t, nil, "", args...); r.code != 0 || !strings.HasPrefix(r.stdout, "a.b  1") {
			t.Errorf("%v: %+v", args, r)
		}
	}
}

// emit and tail find the admin server in the pipeline -c names.
func TestEmitFindsTheAdminInTheConfig(t *testing.T) {
	var mu sync.Mutex
	var got []pipeline.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ev, err := pipeline.Decode(b, pipeline.DecodeOptions{})
		if r.URL.Path != "/events" || err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	dir := t.TempDir()
	addr := strings.TrimPrefix(srv.URL, "http://")
	cfg := writeFile(t, dir, "pipeline.yaml", "admin:\n  listen: "+addr+"\n")
	if r := run(t, nil, "", "emit", "app.started", `{"n":1}`, "-c", cfg); r.code != 0 {
		t.Fatalf("emit -c: %+v", r)
	}
	// Without -c or --to: $EVENTPIPE_ADMIN_URL.
	if r := run(t, map[string]string{"EVENTPIPE_ADMIN_URL": srv.URL}, "", "emit", "app.stopped"); r.code != 0 {
		t.Fatalf("emit with EVENTPIPE_ADMIN_URL: %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Type != "app.started" || string(got[0].Data) != `{"n":1}` || got[1].Type != "app.stopped" {
		t.Errorf("the server got %+v", got)
	}
	off := writeFile(t, dir, "off.yaml", "admin:\n  listen: \"off\"\n")
	if r := run(t, nil, "", "tail", "-c", off); r.code != 2 || !strings.Contains(r.stderr, "admin.listen is off") {
		t.Errorf("tail -c with the admin off: %+v", r)
	}
}

// The completion scripts of bash, zsh and fish, and a real bash that
// loads one and completes a flag through this binary.
func TestShellCompletion(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "__start_eventpipe", "zsh": "#compdef eventpipe", "fish": "complete -c eventpipe"} {
		if r := run(t, nil, "", "completion", shell); r.code != 0 || !strings.Contains(r.stdout, marker) {
			t.Errorf("completion %s: exit %d, no %q", shell, r.code, marker)
		}
	}
	// cobra's bash script needs the bash-completion package (.ci/run
	// installs it), as every distribution's bash completion does.
	const bashCompletion = "/usr/share/bash-completion/bash_completion"
	bash, err := exec.LookPath("bash")
	if _, serr := os.Stat(bashCompletion); err != nil || serr != nil {
		t.Skip("no bash, or no bash-completion package")
	}
	// The script calls `eventpipe __complete …`: make this test binary
	// answer to that name (TestMain runs cli.Main in it).
	dir := t.TempDir()
	if err := os.Symlink(os.Args[0], filepath.Join(dir, "eventpipe")); err != nil {
		t.Fatal(err)
	}
	script := `source ` + bashCompletion + `
source <(eventpipe completion bash)
COMP_LINE="eventpipe run --drain"; COMP_POINT=${#COMP_LINE}
COMP_WORDS=(eventpipe run --drain); COMP_CWORD=2
__start_eventpipe
printf '%s\n' "${COMPREPLY[@]}"
COMP_LINE="eventpipe val"; COMP_POINT=${#COMP_LINE}
COMP_WORDS=(eventpipe val); COMP_CWORD=1
__start_eventpipe
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command(bash, "--norc", "-c", script)
	cmd.Env = append(os.Environ(), "EVENTPIPE_CLI_MAIN=1", "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	// stderr: bash says compopt needs a real completion call; only the
	// replies matter.
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	if lines := strings.Fields(string(out)); len(lines) != 2 || lines[0] != "--drain-timeout" || lines[1] != "validate" {
		t.Errorf("bash completed %q, want --drain-timeout and validate", out)
	}
}

// Progress bars are drawn on a terminal only: into a buffer (a pipe, a
// file, a CI log) bench writes its results and nothing else.
func TestNoProgressBarOffTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a benchmark")
	}
	r := run(t, nil, "", "bench", "-n", "20000", "--rate", "0")
	if r.code != 0 || !strings.Contains(r.stdout, "events/s") {
		t.Fatalf("bench: %+v", r)
	}
	if strings.ContainsAny(r.stderr, "\r\x1b") || strings.Contains(r.stderr, "throughput") {
		t.Errorf("a progress bar was drawn off a terminal: %q", r.stderr)
	}
}

// `eventpipe test -c` runs a file's tests against another pipeline.
func TestTestAgainstAnotherPipeline(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "events: {enabled: true, stats_interval: 0}\nroute: {default: [out]}\nexport:\n  out: {type: stdout}\n")
	other := writeFile(t, dir, "b.yaml", "events: {enabled: true, stats_interval: 0}\nfilter: {exclude_types: [\"a.*\"]}\nroute: {default: [out]}\nexport:\n  out: {type: stdout}\n")
	tf := writeFile(t, dir, "a_test.yaml", "pipeline: a.yaml\ntests:\n  - name: passes a.b\n    input: [{type: a.b}]\n    expect:\n      out: [{type: a.b}]\n")
	if r := run(t, nil, "", "test", tf); r.code != 0 || !strings.Contains(r.stdout, "1 passed") {
		t.Fatalf("test: %+v", r)
	}
	if r := run(t, nil, "", "test", tf, "-c", other); r.code != 1 || !strings.Contains(r.stdout, "FAIL") {
		t.Errorf("test -c with a pipeline that drops a.*: %+v", r)
	}
}
