package export_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// inChild runs the calling test again in a child process of its own and
// reports whether this is that child: a limit on file sizes is the whole
// process's, and the parent test binary must keep writing its own files
// (go test's log of the files a test touched).
func inChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv("EVENTPIPE_FAULT_CHILD") == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "EVENTPIPE_FAULT_CHILD="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("in a child process: %v\n%s", err, out)
	}
	return false
}

// fileLimit makes every file of this process unable to grow past n bytes
// (RLIMIT_FSIZE: writes past it fail with EFBIG after writing what fits,
// as a full disk does) until the returned func lifts it. Only for a test
// running in a child process of its own (inChild).
func fileLimit(t *testing.T, n uint64) (lift func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: old.Max}); err != nil {
		t.Skip(err)
	}
	lifted := false
	lift = func() {
		if !lifted {
			lifted = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(lift)
	return lift
}

// checkLines fails unless path holds whole JSON lines, and returns them.
func checkLines(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		t.Fatalf("%s ends in a partial line: ...%q", path, raw[max(0, len(raw)-40):])
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("%s: not JSON: %q", path, sc.Text())
		}
		lines = append(lines, sc.Text())
	}
	return lines
}

func bigEvents(n, from int) []pipeline.Event {
	evs := events(n)
	for i := range evs {
		evs[i].ID = "ev-" + itoa(from+i)
		evs[i].Data = json.RawMessage(`{"pad":"` + strings.Repeat("x", 900) + `"}`)
	}
	return evs
}

// A write that fails part way (the disk filled up) leaves no partial line,
// and the output writes again as soon as there is room: the failure does
// not stick.
func TestFileOutputRecoversFromAFullDisk(t *testing.T) {
	if !inChild(t) {
		return
	}
	path := filepath.Join(t.TempDir(), "out.jsonl")
	f, err := export.NewFile(export.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Shutdown(context.Background())
	ctx := context.Background()
	if err := f.Export(ctx, bigEvents(10, 0)); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	lift := fileLimit(t, uint64(st.Size())+2500) // room for two and a half events
	if err := f.Export(ctx, bigEvents(10, 10)); err == nil {
		t.Fatal("a write past the limit succeeded")
	}
	if n := len(checkLines(t, path)); n != 10 {
		t.Fatalf("%d lines after the failed write, want the 10 before it", n)
	}
	lift()
	// Space again: the batch that failed and the next ones are written.
	if err := f.Export(ctx, bigEvents(10, 10)); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	if err := f.Export(ctx, bigEvents(5, 20)); err != nil {
		t.Fatal(err)
	}
	if n := len(checkLines(t, path)); n != 25 {
		t.Fatalf("%d lines, want 25", n)
	}
}

// The dead-letter file keeps, in memory, what it could not write while
// the disk was full and writes it with the next records: none is lost.
func TestDeadLetterHoldsRecordsWhileTheDiskIsFull(t *testing.T) {
	if !inChild(t) {
		return
	}
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	d, err := export.OpenDeadLetter(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(i int) export.DeadLetterRecord {
		ev := bigEvents(1, i)[0]
		return export.EventRecord(&ev, "export", "hook", "refused")
	}
	if err := d.Write(rec(0)); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	lift := fileLimit(t, uint64(st.Size())+500)
	for i := 1; i <= 20; i++ {
		if err := d.Write(rec(i)); err == nil {
			t.Fatalf("record %d written past the limit", i)
		}
	}
	if n := len(checkLines(t, path)); n != 1 {
		t.Fatalf("%d lines while full, want 1", n)
	}
	lift()
	if err := d.Write(rec(21)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(checkLines(t, path)); n != 22 || d.Lost() != 0 || d.Count() != 22 {
		t.Fatalf("%d lines, %d counted, %d lost; want 22, 22, 0", n, d.Count(), d.Lost())
	}
}

// An output file deleted or renamed while running is created again at its
// path; events are not written on into a file nobody can see.
func TestFileOutputReopensADeletedOrRenamedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	for _, rotating := range []bool{false, true} {
		cfg := export.FileConfig{Path: path}
		if rotating {
			cfg.MaxSizeMB = 100
		}
		f, err := export.NewFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := f.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.Export(ctx, bigEvents(3, 0)); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := f.Export(ctx, bigEvents(4, 3)); err != nil {
			t.Fatal(err)
		}
		if n := len(checkLines(t, path)); n != 4 {
			t.Fatalf("rotating=%v: %d lines after the file was deleted, want 4", rotating, n)
		}
		moved := filepath.Join(dir, "moved.jsonl")
		if err := os.Rename(path, moved); err != nil {
			t.Fatal(err)
		}
		if err := f.Export(ctx, bigEvents(2, 7)); err != nil {
			t.Fatal(err)
		}
		if n := len(checkLines(t, path)); n != 2 {
			t.Fatalf("rotating=%v: %d lines after the file was renamed, want 2", rotating, n)
		}
		if n := len(checkLines(t, moved)); n != 4 {
			t.Fatalf("rotating=%v: the renamed file has %d lines, want 4", rotating, n)
		}
		if err := f.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		os.Remove(path)
		os.Remove(moved)
	}
}

// Rotated files are compressed completely or not at all, and at most
// max_backups are left, even when the output stops right after rotating.
func TestFileOutputCompressesRotatedFilesCompletely(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	f, err := export.NewFile(export.FileConfig{Path: path, MaxSizeMB: 1, MaxBackups: 2, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 12 { // ~6 MB: five or six rotations
		if err := f.Export(ctx, bigEvents(500, i*500)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var gz []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == "out.jsonl":
		case strings.HasSuffix(name, ".gz"):
			gz = append(gz, name)
		default:
			t.Errorf("left behind: %s", name)
		}
	}
	if len(gz) == 0 || len(gz) > 2 {
		t.Fatalf("%d compressed backups, want 1 or 2: %v", len(gz), gz)
	}
	for _, name := range gz {
		file, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(file)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, err := io.ReadAll(zr)
		file.Close()
		if err != nil || len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("%s: truncated archive (%d bytes, %v)", name, len(data), err)
		}
	}
}
