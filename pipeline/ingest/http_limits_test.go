package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline/ingest"
)

// serveHTTP runs an HTTP source until the test ends.
func serveHTTP(t *testing.T, cfg ingest.HTTPConfig) (addr string, rec *recorder) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	rec = &recorder{}
	h := ingest.NewHTTP(cfg, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, rec) }()
	<-h.Ready()
	t.Cleanup(func() { cancel(); <-done })
	return h.Addr().String(), rec
}

// stalled opens a connection and sends a request whose body never comes
// in full.
func stalled(t *testing.T, addr string, contentLength int, sent string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", contentLength, sent)
	return c
}

// A client that sends its body too slowly is cut off at read_timeout.
func TestHTTPSlowBodyTimesOut(t *testing.T) {
	addr, _ := serveHTTP(t, ingest.HTTPConfig{ReadTimeout: 500 * time.Millisecond})
	c := stalled(t, addr, 1000, `{"type":`)
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second)) // a generous bound for a loaded machine
	_, err := io.ReadAll(c)                                 // returns when the server closes the connection
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a stalled request open for 60s")
	}
}

// At max_connections, further connections wait to be accepted (using none
// of the server's descriptors) until one closes.
func TestHTTPConnectionLimit(t *testing.T) {
	addr, _ := serveHTTP(t, ingest.HTTPConfig{MaxConnections: 3, ReadTimeout: time.Hour})
	var held []net.Conn
	for range 3 {
		held = append(held, stalled(t, addr, 100, ""))
	}
	client := &http.Client{Timeout: 300 * time.Millisecond}
	resp, err := client.Post("http://"+addr+"/events", "application/json", strings.NewReader(`{"type":"a.b"}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a fourth connection was served (%s) with three held", resp.Status)
	}
	held[0].Close()
	client.Timeout = 60 * time.Second
	resp, err = client.Post("http://"+addr+"/events", "application/json", strings.NewReader(`{"type":"a.b"}`))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after one closed: %v %v", err, resp)
	}
	resp.Body.Close()
}

// Unfinished bodies hold at most max_buffered_bytes between them: past
// it, a request gets 503 with Retry-After before its body is read.
func TestHTTPBufferedBytesBound(t *testing.T) {
	addr, rec := serveHTTP(t, ingest.HTTPConfig{MaxBufferedBytes: 1 << 20, MaxBodyBytes: 8 << 20, ReadTimeout: time.Hour})
	big := 600 << 10
	c := stalled(t, addr, big, `{"type":"a.b","data":"`) // holds 600 KiB
	// Wait until the server has taken the first request's headers (and
	// with them its share): until then a second request may come first.
	// Expect: 100-continue: a refused request's body is never sent.
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	waitHeld := func() {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/events", bytes.NewReader(make([]byte, big)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Expect", "100-continue")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				if resp.Header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				return
			}
			time.Sleep(10 * time.Millisecond) // polling the server's state, not synchronising with it
		}
		t.Fatal("a second 600 KiB body was taken while the first held 600 KiB of a 1 MiB bound")
	}
	waitHeld()
	// The first finishes; its share is released and the next is taken.
	fmt.Fprintf(c, "%s\"}", strings.Repeat("x", big-len(`{"type":"a.b","data":"`)-2))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the first request: %v %v", err, resp)
	}
	body := `{"type":"c.d","data":"` + strings.Repeat("y", big-30) + `"}`
	r2, err := http.Post("http://"+addr+"/events", "application/json", strings.NewReader(body))
	if err != nil || r2.StatusCode != http.StatusAccepted {
		t.Fatalf("after the first finished: %v %v", err, r2)
	}
	r2.Body.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if n := len(rec.events); n != 2 {
		t.Errorf("%d events accepted, want 2", n)
	}
}

// repairCounter is a recorder that counts repairs.
type repairCounter struct {
	recorder
	repaired int
}

func (r *repairCounter) Repaired(n int) { r.mu.Lock(); r.repaired += n; r.mu.Unlock() }

// An event with bytes that are not UTF-8 is accepted repaired, and the
// repair is counted.
func TestHTTPRepairsInvalidUTF8(t *testing.T) {
	rec := &repairCounter{}
	h := ingest.NewHTTP(ingest.HTTPConfig{Listen: "127.0.0.1:0"}, 0)
	srv := httptest.NewServer(h.Handler(rec))
	defer srv.Close()
	status, _, _ := post(t, srv.URL, "application/x-ndjson", "{\"type\":\"a.b\",\"data\":\"\xff\"}\n{\"type\":\"a.c\",\"data\":\"ok\"}\n")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if status != 202 || len(rec.events) != 2 || rec.repaired != 1 || string(rec.events[0].Data) != "\"\uFFFD\"" {
		t.Fatalf("status %d, %d events, %d repaired, data %q", status, len(rec.events), rec.repaired, rec.events[0].Data)
	}
}

// A large regular file is decoded on several cores and published in
// order; refused lines keep their line numbers.
func TestLargeFileDecodedInParallelKeepsOrder(t *testing.T) {
	var b strings.Builder
	const n = 5000
	for i := 1; i <= n; i++ {
		if i%997 == 0 {
			fmt.Fprintf(&b, "not json %d\n", i)
			continue
		}
		fmt.Fprintf(&b, "{\"type\":\"a.b\",\"data\":{\"line\":%d}}\n", i)
	}
	path := filepath.Join(t.TempDir(), "big.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := ingest.NewFile(path, nil, 0).Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != n-n/997 || len(rec.rejected) != n/997 {
		t.Fatalf("%d events, %d rejected", len(rec.events), len(rec.rejected))
	}
	next := 1
	for _, ev := range rec.events {
		if next%997 == 0 {
			next++
		}
		if want := fmt.Sprintf(`{"line":%d}`, next); string(ev.Data) != want {
			t.Fatalf("event out of order: %s, want %s", ev.Data, want)
		}
		next++
	}
	for _, r := range rec.rejected {
		var line int
		if _, err := fmt.Sscanf(r.Offset, "line %d", &line); err != nil || line%997 != 0 {
			t.Errorf("rejection at %q", r.Offset)
		}
	}
}

// AddParallel gives what Add gives, in the same order.
func TestAddParallelMatchesAdd(t *testing.T) {
	var lines [][]byte
	var pos []ingest.Pos
	for i := range 2000 {
		l := fmt.Sprintf(`{"type":"a.b","data":%d}`, i)
		if i%301 == 0 {
			l = "{bad"
		}
		lines, pos = append(lines, []byte(l)), append(pos, ingest.Pos{Line: i + 1})
	}
	seq, par := &recorder{}, &recorder{}
	bs, bp := ingest.NewBatcher("t", seq, 0), ingest.NewBatcher("t", par, 0)
	for i := range lines {
		bs.Add(context.Background(), lines[i], pos[i])
	}
	bp.AddParallel(context.Background(), lines, pos, 4)
	_ = bs.Flush(context.Background())
	_ = bp.Flush(context.Background())
	if len(seq.events) != len(par.events) || len(seq.rejected) != len(par.rejected) {
		t.Fatalf("sequential %d/%d, parallel %d/%d", len(seq.events), len(seq.rejected), len(par.events), len(par.rejected))
	}
	for i := range seq.events {
		if string(seq.events[i].Data) != string(par.events[i].Data) {
			t.Fatalf("event %d: %s vs %s", i, seq.events[i].Data, par.events[i].Data)
		}
	}
}
