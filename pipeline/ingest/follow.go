package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Follower reads JSON lines from a file and keeps a read position
// (checkpoint) that survives restarts. With follow on it never ends: it
// waits for the file to grow and follows it across rotation — rename (the
// file is moved away and a new one created: the old one is read to its
// end first) and copytruncate (the file shrinks: it is read again from its
// start). Without follow it ends at the file's end, like Lines, but a
// restart resumes after the last line safely published.
//
// The checkpoint is saved only for lines whose events the pipeline made
// safe (pipeline.Committer): stored when persistence is on, otherwise
// exported or dead-lettered. A crash therefore re-reads at most the lines
// after the last save (saves are at most checkpointEvery apart): those
// events may arrive twice, never zero times.
type Follower struct {
	path, checkpoint string
	follow           bool
	poll             time.Duration
	maxSize          int
	log              *slog.Logger

	mu        sync.Mutex
	committed position // the last position made safe

	saveMu sync.Mutex
	saved  position
}

// checkpointEvery bounds how often the checkpoint file is written.
const checkpointEvery = 200 * time.Millisecond

// position is where a file was read to.
type position struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"` // bytes of whole lines read
	Line   int    `json:"line"`   // lines read
}

// NewFollower returns a follow-mode (or resumable) file source.
func NewFollower(path, checkpoint string, follow bool, poll time.Duration, maxSize int, log *slog.Logger) *Follower {
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	if maxSize <= 0 {
		maxSize = pipeline.DefaultMaxEventSize
	}
	if log == nil {
		log = slog.Default()
	}
	return &Follower{path: path, checkpoint: checkpoint, follow: follow, poll: poll, maxSize: maxSize, log: log}
}

// DefaultCheckpoint is where a file source keeps its position unless told
// otherwise: under dir, named after the file.
func DefaultCheckpoint(dir, path string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(path))
	base := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' {
			return '_'
		}
		return r
	}, filepath.Base(path))
	return filepath.Join(dir, fmt.Sprintf("%s-%08x.json", base, h.Sum32()))
}

// Start does nothing: Run opens the file.
func (f *Follower) Start(context.Context) error { return nil }

// Shutdown saves the last committed position.
func (f *Follower) Shutdown(context.Context) error { return f.save() }

// Finite is false when following.
func (f *Follower) Finite() bool { return !f.follow }

// Run reads until ctx ends (or, without follow, the file's end).
func (f *Follower) Run(ctx context.Context, p pipeline.Publisher) error {
	cp, err := f.load()
	if err != nil {
		return err
	}
	saver := time.NewTicker(checkpointEvery)
	defer saver.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-saver.C:
				if err := f.save(); err != nil {
					f.log.Error("checkpoint not saved", "path", f.checkpoint, "err", err)
				}
			}
		}
	}()
	// A file rotated away while we were down is finished first.
	if cp.Ino != 0 {
		if old, ok := f.rotated(cp); ok {
			f.log.Info("reading the rest of the rotated file first", "file", old)
			pos := cp
			pos.Path = old
			if _, err := f.readFile(ctx, p, pos, false); err != nil || ctx.Err() != nil {
				return err
			}
			cp = position{}
		}
	}
	pos := cp
	pos.Path = f.path
	for {
		next, err := f.readFile(ctx, p, pos, f.follow)
		if err != nil || ctx.Err() != nil || !f.follow {
			return err
		}
		pos = next // the file was replaced: start on the new one
	}
}

// readFile reads one file from pos. Following, it returns when the path
// names another file (after reading this one to its end), with the new
// file's start position.
func (f *Follower) readFile(ctx context.Context, p pipeline.Publisher, pos position, follow bool) (position, error) {
	file, err := openWait(ctx, pos.Path, follow, f.poll)
	if err != nil || file == nil {
		return position{}, err
	}
	defer file.Close()
	dev, ino := fileID(file)
	if pos.Ino != 0 && (pos.Dev != dev || pos.Ino != ino) {
		pos.Offset, pos.Line = 0, 0 // another file now: from its start
	}
	pos.Dev, pos.Ino = dev, ino
	if st, err := file.Stat(); err == nil && st.Size() < pos.Offset {
		f.log.Warn("file is shorter than the checkpoint (truncated): reading it from the start", "file", pos.Path)
		pos.Offset, pos.Line = 0, 0
	}
	if _, err := file.Seek(pos.Offset, io.SeekStart); err != nil {
		return position{}, err
	}
	// The committed position moves to this file with its first commit:
	// until then, the last file's stays, so its tail is never skipped.
	b := NewBatcher(pos.Path, p, f.maxSize)
	r := bufio.NewReaderSize(file, 64<<10)
	var partial []byte // a last line without its newline yet
	retry := backoff.NewExponentialBackOff()
	retry.MaxElapsedTime = 0
	publish := func() error {
		for {
			err := b.Flush(ctx)
			if err == nil || ctx.Err() != nil {
				retry.Reset()
				return nil
			}
			if !follow {
				return fmt.Errorf("ingest %s: line %d: %w", pos.Path, pos.Line, err)
			}
			wait := retry.NextBackOff()
			f.log.Warn("events not accepted; retrying", "file", pos.Path, "line", pos.Line, "wait", wait, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	}
	commit := func() {
		done := pos
		if c, ok := p.(pipeline.Committer); ok {
			c.Commit(func() { f.setCommitted(done) })
		}
	}
	for {
		if ctx.Err() != nil {
			return position{}, nil
		}
		line, rerr := r.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) || (rerr == io.EOF && len(line) > 0) {
			partial = append(partial, line...)
			if len(partial) > f.maxSize+4096 && rerr != io.EOF {
				// Too long to be an event: reject it and skip to its end.
				pos.Offset += int64(len(partial))
				pos.Line++
				b.reject(ctx, partial[:4096], Pos{Line: pos.Line}, fmt.Errorf("line over %d bytes", f.maxSize))
				partial = partial[:0]
				for errors.Is(rerr, bufio.ErrBufferFull) {
					line, rerr = r.ReadSlice('\n')
					pos.Offset += int64(len(line))
				}
				continue
			}
			if rerr == bufio.ErrBufferFull {
				continue
			}
		} else if rerr == nil {
			if len(partial) > 0 {
				line = append(partial, line...)
				partial = partial[:0]
			}
			pos.Offset += int64(len(line))
			pos.Line++
			b.Add(ctx, line, Pos{Line: pos.Line})
			if b.full() || r.Buffered() == 0 {
				if err := publish(); err != nil {
					return position{}, err
				}
				commit()
			}
			continue
		}
		if rerr != io.EOF {
			return position{}, fmt.Errorf("ingest %s: %w", pos.Path, rerr)
		}
		// At the end of what is written.
		if err := publish(); err != nil {
			return position{}, err
		}
		commit()
		if !follow {
			if len(partial) > 0 { // a last line without a newline
				pos.Offset += int64(len(partial))
				pos.Line++
				b.Add(ctx, partial, Pos{Line: pos.Line})
				partial = partial[:0]
				if err := publish(); err != nil {
					return position{}, err
				}
				commit()
			}
			return position{}, nil
		}
		select {
		case <-ctx.Done():
			return position{}, nil
		case <-time.After(f.poll):
		}
		st, err := os.Stat(pos.Path)
		switch {
		case err != nil:
			// Moved away and not yet replaced: keep reading the old file.
		case !sameFile(st, pos.Dev, pos.Ino):
			// Replaced (rename rotation): finish the old file, which may
			// have grown since the last read, then move on.
			if _, err := r.Peek(1); err == nil {
				continue
			}
			f.log.Info("file rotated; following the new one", "file", pos.Path)
			return position{Path: pos.Path}, nil
		case st.Size() < pos.Offset:
			f.log.Info("file truncated; reading it from the start", "file", pos.Path)
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return position{}, err
			}
			r.Reset(file)
			partial = partial[:0]
			pos.Offset, pos.Line = 0, 0
		}
	}
}

// openWait opens path; following, a file that does not exist yet is
// waited for.
func openWait(ctx context.Context, path string, follow bool, poll time.Duration) (*os.File, error) {
	for {
		file, err := os.Open(path)
		if err == nil {
			return file, nil
		}
		if !follow || !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ingest %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(poll):
		}
	}
}

func fileID(f *os.File) (dev, ino uint64) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Dev), s.Ino
	}
	return 0, 0
}

func sameFile(st os.FileInfo, dev, ino uint64) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && uint64(s.Dev) == dev && s.Ino == ino
}

// rotated finds the file the checkpoint was taken on if it is no longer at
// the path: renamed within the same directory (app.log -> app.log.1).
func (f *Follower) rotated(cp position) (string, bool) {
	if st, err := os.Stat(f.path); err == nil && sameFile(st, cp.Dev, cp.Ino) {
		return "", false
	}
	dir := filepath.Dir(f.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && sameFile(info, cp.Dev, cp.Ino) {
			return filepath.Join(dir, e.Name()), true
		}
	}
	f.log.Warn("the file of the checkpoint is gone; starting the current file from its start", "file", f.path)
	return "", false
}

func (f *Follower) setCommitted(p position) {
	f.mu.Lock()
	f.committed = p
	f.mu.Unlock()
}

// load reads the checkpoint; none means the start of the file.
func (f *Follower) load() (position, error) {
	b, err := os.ReadFile(f.checkpoint)
	if errors.Is(err, os.ErrNotExist) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("checkpoint: %w", err)
	}
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fmt.Errorf("checkpoint %s: %w (delete it to read the file from the start)", f.checkpoint, err)
	}
	f.saveMu.Lock()
	f.saved = p
	f.saveMu.Unlock()
	return p, nil
}

// save writes the committed position if it changed, atomically (write,
// then rename).
func (f *Follower) save() error {
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	f.mu.Lock()
	p := f.committed
	f.mu.Unlock()
	if p.Ino == 0 || (p.Ino == f.saved.Ino && p.Dev == f.saved.Dev && p.Offset == f.saved.Offset) {
		return nil
	}
	p.Path = f.path
	b, _ := json.Marshal(p)
	if err := os.MkdirAll(filepath.Dir(f.checkpoint), 0o755); err != nil {
		return err
	}
	tmp := f.checkpoint + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.checkpoint); err != nil {
		return err
	}
	f.saved = p
	return nil
}
