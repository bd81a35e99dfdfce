package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

func events(n int) []pipeline.Event {
	out := make([]pipeline.Event, n)
	for i := range out {
		out[i] = pipeline.Event{ID: "id-" + string(rune('a'+i%26)), Type: "agent.step", Sequence: uint64(i + 1),
			Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Data: json.RawMessage(`{"i":` + itoa(i) + `}`)}
	}
	return out
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestStdout(t *testing.T) {
	var buf bytes.Buffer
	s := export.NewStdout(export.StdoutConfig{}, &buf)
	if err := s.Export(context.Background(), events(2)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !json.Valid([]byte(lines[0])) || !strings.Contains(lines[1], `"sequence":2`) {
		t.Errorf("got %q", buf.String())
	}
	buf.Reset()
	p := export.NewStdout(export.StdoutConfig{Pretty: true}, &buf)
	_ = p.Export(context.Background(), events(1))
	if !strings.Contains(buf.String(), "\n  \"type\": \"agent.step\",\n") {
		t.Errorf("not pretty: %s", buf.String())
	}
}

func TestFileModesAndDirectories(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "events.jsonl")
	f, err := export.NewFile(export.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Export(context.Background(), events(3)); err != nil {
		t.Fatal(err)
	}
	// Written before Export returned, not only at shutdown.
	data, _ := os.ReadFile(path)
	if n := bytes.Count(data, []byte("\n")); n != 3 {
		t.Errorf("%d lines on disk after Export", n)
	}
	_ = f.Shutdown(context.Background())
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	dst, _ := os.Stat(filepath.Dir(path))
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", dst.Mode().Perm())
	}
	g, _ := export.NewFile(export.FileConfig{Path: filepath.Join(dir, "g.jsonl"), Mode: "0640", Fsync: "batch"})
	_ = g.Start(context.Background())
	if err := g.Export(context.Background(), events(1)); err != nil {
		t.Fatal(err)
	}
	_ = g.Shutdown(context.Background())
	if st, _ := os.Stat(filepath.Join(dir, "g.jsonl")); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
}

func TestFilePermissionError(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permissions; a file where a directory must be
		// fails for everyone.
		dir := t.TempDir()
		blocker := filepath.Join(dir, "blocker")
		_ = os.WriteFile(blocker, nil, 0o600)
		f, _ := export.NewFile(export.FileConfig{Path: filepath.Join(blocker, "x.jsonl")})
		err := f.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "cannot create its directory") {
			t.Fatalf("got %v", err)
		}
		return
	}
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o500)
	f, _ := export.NewFile(export.FileConfig{Path: filepath.Join(dir, "sub", "x.jsonl")})
	if err := f.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("got %v", err)
	}
}

func TestFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.jsonl")
	f, err := export.NewFile(export.FileConfig{Path: path, MaxSizeMB: 1, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Start(context.Background())
	big := events(1)
	big[0].Data = json.RawMessage(`"` + strings.Repeat("x", 300<<10) + `"`)
	for i := 0; i < 8; i++ {
		if err := f.Export(context.Background(), big); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.Shutdown(context.Background())
	matches, _ := filepath.Glob(filepath.Join(dir, "r*.jsonl"))
	if len(matches) < 2 || len(matches) > 3 {
		t.Errorf("files after rotation: %v", matches)
	}
	for _, m := range matches {
		if st, _ := os.Stat(m); st.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over max_size_mb", m, st.Size())
		}
	}
}

func TestFileConfigValidate(t *testing.T) {
	for _, c := range []export.FileConfig{{}, {Path: "x", Mode: "rw"}, {Path: "x", MaxBackups: 3}, {Path: "x", Fsync: "always"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// flaky is a webhook receiver that fails the first n requests.
type flaky struct {
	mu       sync.Mutex
	failures int
	status   int
	retryAt  string
	got      []pipeline.Event
	requests int
	ctype    string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.ctype = r.Header.Get("Content-Type")
	if f.failures > 0 {
		f.failures--
		if f.retryAt != "" {
			w.Header().Set("Retry-After", f.retryAt)
		}
		http.Error(w, "try later", f.status)
		return
	}
	var batch []json.RawMessage
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	for _, raw := range batch {
		ev, err := pipeline.Decode(raw, pipeline.DecodeOptions{})
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.got = append(f.got, ev)
	}
	w.WriteHeader(http.StatusOK)
}

func fastRetry(n int) export.RetryConfig {
	return export.RetryConfig{MaxAttempts: n, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}
}

func TestWebhookRetriesThenSucceeds(t *testing.T) {
	rec := &flaky{failures: 3, status: 503}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	w, err := export.NewWebhook(export.WebhookConfig{URL: srv.URL}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	r := export.NewRetry(w, fastRetry(5))
	retries := 0
	r.OnRetry = func(int, error, time.Duration) { retries++ }
	if err := r.Export(context.Background(), events(10)); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 10 || rec.requests != 4 || retries != 3 || rec.ctype != "application/json" {
		t.Errorf("got %d events in %d requests, %d retries", len(rec.got), rec.requests, retries)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	rec := &flaky{failures: 100, status: 500}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	w, _ := export.NewWebhook(export.WebhookConfig{URL: srv.URL}, srv.Client())
	err := export.NewRetry(w, fastRetry(3)).Export(context.Background(), events(2))
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") || rec.requests != 3 {
		t.Errorf("err %v after %d requests", err, rec.requests)
	}
}

func TestWebhookNoRetryOn4xx(t *testing.T) {
	rec := &flaky{failures: 1, status: 422}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	w, _ := export.NewWebhook(export.WebhookConfig{URL: srv.URL}, srv.Client())
	err := export.NewRetry(w, fastRetry(5)).Export(context.Background(), events(1))
	if !pipeline.IsPermanent(err) || rec.requests != 1 {
		t.Errorf("err %v after %d requests", err, rec.requests)
	}
}

func TestWebhookHonoursRetryAfter(t *testing.T) {
	rec := &flaky{failures: 1, status: 429, retryAt: "1"}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	w, _ := export.NewWebhook(export.WebhookConfig{URL: srv.URL}, srv.Client())
	r := export.NewRetry(w, fastRetry(3))
	var waited time.Duration
	r.OnRetry = func(_ int, _ error, wait time.Duration) { waited = wait }
	if err := r.Export(context.Background(), events(1)); err != nil {
		t.Fatal(err)
	}
	if waited != time.Second {
		t.Errorf("waited %v, want the 1s Retry-After", waited)
	}
}

func TestWebhookCloudEventsBatch(t *testing.T) {
	var body []byte
	var ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		ctype = r.Header.Get("Content-Type")
	}))
	defer srv.Close()
	w, _ := export.NewWebhook(export.WebhookConfig{URL: srv.URL, Format: "cloudevents", Mode: "batch"}, srv.Client())
	if err := w.Export(context.Background(), events(2)); err != nil {
		t.Fatal(err)
	}
	var batch []map[string]any
	if err := json.Unmarshal(body, &batch); err != nil || len(batch) != 2 {
		t.Fatalf("%v: %s", err, body)
	}
	if ctype != "application/cloudevents-batch+json" || batch[0]["specversion"] != "1.0" || batch[1]["type"] != "agent.step" {
		t.Errorf("%s %v", ctype, batch[0])
	}
	// What we send as CloudEvents, we read back as the same event.
	raw, _ := json.Marshal(batch[0])
	ev, err := pipeline.Decode(raw, pipeline.DecodeOptions{})
	if err != nil || ev.Type != "agent.step" || string(ev.Data) != `{"i":0}` {
		t.Errorf("%+v %v", ev, err)
	}
}

func TestWebhookURLPolicy(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://example.com/x": true, "http://127.0.0.1:8080/x": true, "http://localhost/x": true, "http://[::1]/x": true,
		"http://example.com/x": false, "ftp://example.com": false, "": false,
	} {
		err := (&export.WebhookConfig{URL: url}).Validate()
		if (err == nil) != ok {
			t.Errorf("%q: %v", url, err)
		}
	}
	if err := (&export.WebhookConfig{URL: "http://example.com/x", AllowHTTP: true}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestDeadLetter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl", "dead.jsonl")
	d, err := export.OpenDeadLetter(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := events(1)[0]
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = d.Write(export.EventRecord(&ev, "export", "hook", "boom"), export.DeadLetterRecord{Reason: "bad", Stage: "ingest", Raw: "not json", Offset: "line 3"})
		}()
	}
	wg.Wait()
	_ = d.Close()
	f, _ := os.Open(path)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var rec export.DeadLetterRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if rec.Time.IsZero() || rec.Reason == "" {
			t.Errorf("record %+v", rec)
		}
		n++
	}
	if n != 20 || d.Count() != 20 {
		t.Errorf("%d records, count %d", n, d.Count())
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if _, err := export.OpenDeadLetter("/proc/nope/dead.jsonl", 0); err == nil || errors.Unwrap(err) == nil {
		t.Errorf("bad path: %v", err)
	}
}

func fileIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		ev, err := pipeline.Decode([]byte(l), pipeline.DecodeOptions{})
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

func uniqueEvents(from, n int) []pipeline.Event {
	evs := events(n)
	for i := range evs {
		evs[i].ID = "ev-" + itoa(from+i)
	}
	return evs
}

// After a crash the store delivers again what it had not seen
// acknowledged; with dedupe the file does not get those events twice, and
// the remains of a cut-short write never join the next line.
func TestFileDedupeAfterRestart(t *testing.T) {
	for _, dedupe := range []bool{true, false} {
		t.Run(map[bool]string{true: "dedupe", false: "plain"}[dedupe], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.jsonl")
			ctx := context.Background()
			start := func() *export.File {
				f, err := export.NewFile(export.FileConfig{Path: path, Dedupe: dedupe})
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Start(ctx); err != nil {
					t.Fatal(err)
				}
				return f
			}
			f := start()
			if err := f.Export(ctx, uniqueEvents(0, 10)); err != nil {
				t.Fatal(err)
			}
			_ = f.Shutdown(ctx)
			// A crash in the middle of writing event 10.
			w, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.WriteString(`{"id":"ev-10","type":"agent.st`)
			w.Close()

			f = start()
			if err := f.Export(ctx, uniqueEvents(5, 10)); err != nil { // 5..9 again, then 10..14
				t.Fatal(err)
			}
			_ = f.Shutdown(ctx)
			ids := fileIDs(t, path)
			want := 15
			if !dedupe {
				want = 20
			}
			if len(ids) != want {
				t.Fatalf("%d lines, want %d: %v", len(ids), want, ids)
			}
			if got := f.Skipped(); dedupe && got != 5 || !dedupe && got != 0 {
				t.Errorf("skipped %d", got)
			}
			if ids[10] != map[bool]string{true: "ev-10", false: "ev-5"}[dedupe] {
				t.Errorf("line 11 is %s", ids[10])
			}
		})
	}
}

// In binary mode each event is its own request: attributes in ce-*
// headers, the data as the body. Events that fail are retried alone and
// only they are reported failed (PartialError), at their batch indexes.
func TestWebhookBinaryModeRetriesOnlyWhatFailed(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Ce-Id")
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[id]++
		n := seen[id]
		if r.Header.Get("Ce-Specversion") != "1.0" || r.Header.Get("Ce-Type") != "agent.step" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Ce-Sequence") == "" {
			bodies = append(bodies, "bad headers: "+fmt.Sprint(r.Header))
		}
		bodies = append(bodies, string(body))
		mu.Unlock()
		switch {
		case id == "id-b" && n == 1: // fails once, then succeeds
			w.WriteHeader(http.StatusServiceUnavailable)
		case id == "id-d": // always refused
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	w, err := export.NewWebhook(export.WebhookConfig{URL: srv.URL, Format: "cloudevents", Concurrency: 3}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	err = export.NewRetry(w, fastRetry(4)).Export(context.Background(), events(5))
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Failed, []int{3}) {
		t.Fatalf("err = %v, want a PartialError for index 3", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["id-a"] != 1 || seen["id-c"] != 1 || seen["id-e"] != 1 || seen["id-b"] != 2 || seen["id-d"] != 1 {
		t.Errorf("requests per event: %v", seen)
	}
	for _, b := range bodies {
		if !strings.HasPrefix(b, `{"i":`) {
			t.Errorf("body %q", b)
		}
	}
}
