package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
)

// committing is a publisher that records events and commits at once.
type committing struct {
	mu   sync.Mutex
	data []string
}

func (c *committing) Publish(_ context.Context, ev pipeline.Event) error {
	c.mu.Lock()
	c.data = append(c.data, string(ev.Data))
	c.mu.Unlock()
	return nil
}
func (c *committing) Reject(context.Context, pipeline.Rejected) {}
func (c *committing) Commit(fn func())                          { fn() }
func (c *committing) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.data...)
}

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < to; i++ {
		fmt.Fprintf(f, `{"type":"app.line","data":%d}`+"\n", i)
	}
	f.Close()
}

func waitCount(t *testing.T, p *committing, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(p.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d events, want %d", len(p.got()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantSeq checks that the events are 0..n-1 exactly once, in order.
func wantSeq(t *testing.T, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d events, want %d: %v", len(got), n, got)
	}
	for i, d := range got {
		if d != fmt.Sprint(i) {
			t.Fatalf("event %d is %s: %v", i, d, got)
		}
	}
}

func runFollower(t *testing.T, f *Follower, p pipeline.Publisher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, p) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if err := f.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

func TestFollowAcrossRenameRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, 0, 10)
	p := &committing{}
	f := NewFollower(path, filepath.Join(dir, "cp.json"), true, 10*time.Millisecond, 0, nil)
	stop := runFollower(t, f, p)
	waitCount(t, p, 10)
	appendLines(t, path, 10, 15)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path+".1", 15, 20) // written to the old file after the rename
	appendLines(t, path, 20, 30)      // the new file
	waitCount(t, p, 30)
	stop()
	wantSeq(t, p.got(), 30)
}

func TestFollowCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendLines(t, path, 0, 10)
	p := &committing{}
	f := NewFollower(path, filepath.Join(dir, "cp.json"), true, 10*time.Millisecond, 0, nil)
	stop := runFollower(t, f, p)
	waitCount(t, p, 10)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, 10, 13)
	waitCount(t, p, 13)
	stop()
	wantSeq(t, p.got(), 13)
}

// TestCheckpointResumes: a restart reads on from the checkpoint, and
// finishes a file that was rotated away while it was down.
func TestCheckpointResumes(t *testing.T) {
	dir := t.TempDir()
	path, cp := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	appendLines(t, path, 0, 10)
	p := &committing{}
	stop := runFollower(t, NewFollower(path, cp, true, 10*time.Millisecond, 0, nil), p)
	waitCount(t, p, 10)
	stop()

	appendLines(t, path, 10, 12)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, 12, 20)
	stop = runFollower(t, NewFollower(path, cp, true, 10*time.Millisecond, 0, nil), p)
	waitCount(t, p, 20)
	stop()
	wantSeq(t, p.got(), 20)
}

// TestCheckpointWithoutFollowEnds: a finite file with a checkpoint ends
// at its end, and the next run reads only what was added.
func TestCheckpointWithoutFollowEnds(t *testing.T) {
	dir := t.TempDir()
	path, cp := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	appendLines(t, path, 0, 5)
	p := &committing{}
	readOnce(t, path, cp, p)
	appendLines(t, path, 5, 8)
	readOnce(t, path, cp, p)
	wantSeq(t, p.got(), 8)
}

// TestUncommittedLinesAreReadAgain: a position is saved only once the
// publisher committed it; lines published but not committed are read
// again (and counted) after a restart.
func TestUncommittedLinesAreReadAgain(t *testing.T) {
	dir := t.TempDir()
	path, cp := filepath.Join(dir, "app.log"), filepath.Join(dir, "cp.json")
	appendLines(t, path, 0, 5)
	p := &committing{}
	readOnce(t, path, cp, p)
	appendLines(t, path, 5, 9)
	readOnce(t, path, cp, &neverCommits{})
	readOnce(t, path, cp, p)
	wantSeq(t, p.got(), 9)
}

// readOnce reads a file to its end with a checkpoint, as one run would.
func readOnce(t *testing.T, path, cp string, p pipeline.Publisher) {
	t.Helper()
	f := NewFollower(path, cp, false, 0, 0, nil)
	if err := f.Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type neverCommits struct{ committing }

func (n *neverCommits) Commit(func()) {}
