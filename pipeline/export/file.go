package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/eventpipe/eventpipe/pipeline"
)

// FileConfig configures the file exporter.
type FileConfig struct {
	Path string `yaml:"path"`
	// Mode is the octal permission of a created file. Default "0600".
	Mode string `yaml:"mode"`
	// DirMode is the permission of directories created for it. Default "0700".
	DirMode string `yaml:"dir_mode"`
	// MaxSizeMB rotates the file when it would grow past this size; 0 never
	// rotates.
	MaxSizeMB int `yaml:"max_size_mb"`
	// MaxBackups is how many rotated files are kept (0: all).
	MaxBackups int `yaml:"max_backups"`
	// MaxAgeDays removes rotated files older than this (0: never).
	MaxAgeDays int `yaml:"max_age_days"`
	// Compress gzips rotated files.
	Compress bool `yaml:"compress"`
	// Fsync is never (default; the OS flushes), or batch (fsync after every
	// batch: an exported event survives a power cut).
	Fsync string `yaml:"fsync"`
	// Dedupe skips events whose id is already in the file when the output
	// starts (its last DedupeWindow bytes): after a crash, a store or a
	// stream delivers again the events it had not seen acknowledged, and
	// some of them were written already.
	Dedupe bool `yaml:"dedupe"`
	// Format is eventpipe (default), cloudevents (one structured
	// CloudEvent per line), llmspell (rs-llmspell's shape) or pretty.
	Format Format `yaml:"format"`
}

// DedupeWindow is how much of the end of the file Dedupe reads at start.
// Redelivered events are the last ones written before a crash, so the
// tail is enough; the bound keeps the start fast and the id set small.
const DedupeWindow = 16 << 20

// Validate checks the configuration.
func (c *FileConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, pipeline.FieldErrorf("path", "must be set"))
	}
	if _, err := parseMode(c.Mode, 0o600); err != nil {
		errs = append(errs, pipeline.FieldErrorf("mode", "%w", err))
	}
	if _, err := parseMode(c.DirMode, 0o700); err != nil {
		errs = append(errs, pipeline.FieldErrorf("dir_mode", "%w", err))
	}
	if c.MaxSizeMB < 0 || c.MaxBackups < 0 || c.MaxAgeDays < 0 {
		errs = append(errs, errors.New("max_size_mb, max_backups and max_age_days must not be negative"))
	}
	if c.MaxSizeMB == 0 && (c.MaxBackups > 0 || c.MaxAgeDays > 0 || c.Compress) {
		errs = append(errs, errors.New("max_backups, max_age_days and compress have no effect without max_size_mb"))
	}
	if err := c.Format.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Fsync {
	case "", "never", "batch":
	default:
		errs = append(errs, pipeline.FieldErrorf("fsync", "want never or batch, got %q", c.Fsync))
	}
	return errors.Join(errs...)
}

func parseMode(s string, def os.FileMode) (os.FileMode, error) {
	if s == "" {
		return def, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("want an octal mode such as 0600, got %q", s)
	}
	return os.FileMode(m), nil
}

// File appends events as JSON lines to a file, rotating by size.
type File struct {
	cfg  FileConfig
	mu   sync.Mutex
	out  *lineFile
	buf  []byte
	sync bool
	// seen holds the ids found at the end of the file at start (Dedupe);
	// skipped counts the events not written again.
	seen    map[string]struct{}
	skipped int
	logger  *slog.Logger // may be nil
}

// NewFile returns a file exporter; Start opens the file.
func NewFile(cfg FileConfig) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &File{cfg: cfg, sync: cfg.Fsync == "batch"}, nil
}

// Start creates the directories and the file (with the configured modes),
// so that a permission problem is a clear error before any event flows.
func (f *File) Start(context.Context) error {
	mode, _ := parseMode(f.cfg.Mode, 0o600)
	dirMode, _ := parseMode(f.cfg.DirMode, 0o700)
	if err := os.MkdirAll(filepath.Dir(f.cfg.Path), dirMode); err != nil {
		return fmt.Errorf("file output %s: cannot create its directory: %w", f.cfg.Path, err)
	}
	file, err := os.OpenFile(f.cfg.Path, os.O_CREATE|os.O_RDWR|os.O_APPEND, mode)
	if err != nil {
		return fmt.Errorf("file output %s: %w", f.cfg.Path, err)
	}
	f.seen, err = readTail(file, f.cfg.Dedupe)
	_ = file.Close()
	if err != nil {
		return fmt.Errorf("file output %s: %w", f.cfg.Path, err)
	}
	if f.out, err = openLineFile(f.cfg.Path, mode); err != nil {
		return fmt.Errorf("file output %s: %w", f.cfg.Path, err)
	}
	if f.cfg.MaxSizeMB > 0 {
		// lumberjack reopens the file (keeping its mode) and rotates it.
		f.out.rotating(f.cfg.MaxSizeMB, f.cfg.MaxBackups, f.cfg.MaxAgeDays, f.cfg.Compress)
	}
	return nil
}

// Export appends the events in one write and returns once they are in the
// file (fsynced when configured): a nil return means the events are
// written. A failed write leaves none of them in the file, and the next
// batch tries again (a full disk recovers by itself once space is freed).
func (f *File) Export(ctx context.Context, events []pipeline.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.out == nil {
		return errors.New("file output: not started")
	}
	f.buf = f.buf[:0]
	shared := pipeline.SharedEncodingsFor(ctx, f.cfg.Format.Encoding(), len(events))
	for i := range events {
		if f.seen != nil {
			if _, ok := f.seen[events[i].ID]; ok {
				f.skipped++
				continue
			}
		}
		f.buf = append(shared.Append(f.buf, i, &events[i], f.cfg.Format.Append), '\n')
	}
	if len(f.buf) == 0 {
		return nil
	}
	reopened := f.out.Reopened()
	err := f.out.Write(f.buf)
	if f.out.Reopened() != reopened && f.logger != nil {
		f.logger.Warn("file output: the file was deleted, renamed or replaced; writing to its path again", "path", f.cfg.Path)
	}
	if err != nil {
		return fmt.Errorf("file output %s: %w", f.cfg.Path, err)
	}
	if cap(f.buf) > 16<<20 {
		f.buf = nil // one huge batch does not pin its buffer
	}
	if f.sync {
		if err := f.out.Sync(); err != nil {
			return fmt.Errorf("file output %s: fsync: %w", f.cfg.Path, err)
		}
	}
	return nil
}

// EncodingFormat is the encoding the output writes (the runner shares it
// with other outputs writing the same; pipeline.SharedEncodings).
func (f *File) EncodingFormat() string { return f.cfg.Format.Encoding() }

// Skipped is how many events Dedupe did not write again.
func (f *File) Skipped() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.skipped
}

// readTail looks at the end of the file at start. A last line without its
// newline is the remains of a write cut short by a crash: it is cut off
// (the event it held is delivered again or was dead-lettered), so that
// the next line does not run into it. With ids, it returns the ids of the
// events in the last DedupeWindow bytes.
func readTail(file *os.File, ids bool) (map[string]struct{}, error) {
	st, err := file.Stat()
	if err != nil || st.Size() == 0 {
		return nil, err
	}
	size := st.Size()
	window := int64(4096)
	if ids {
		window = DedupeWindow
	}
	off := max(size-window, 0)
	tail := make([]byte, size-off)
	if _, err := file.ReadAt(tail, off); err != nil {
		return nil, err
	}
	if tail[len(tail)-1] != '\n' {
		cut := bytes.LastIndexByte(tail, '\n') + 1 // 0 when no whole line is in the window
		if cut == 0 && off > 0 {
			return nil, fmt.Errorf("the last line is over %d bytes and has no end: not appending to it", window)
		}
		if err := file.Truncate(off + int64(cut)); err != nil {
			return nil, fmt.Errorf("cutting off a partial last line: %w", err)
		}
		tail = tail[:cut]
	}
	if !ids {
		return nil, nil
	}
	if off > 0 { // the window starts inside a line
		if i := bytes.IndexByte(tail, '\n'); i >= 0 {
			tail = tail[i+1:]
		}
	}
	seen := make(map[string]struct{})
	for len(tail) > 0 {
		line := tail
		if i := bytes.IndexByte(tail, '\n'); i >= 0 {
			line, tail = tail[:i], tail[i+1:]
		} else {
			tail = nil
		}
		if ev, err := pipeline.Decode(line, pipeline.DecodeOptions{MaxSize: -1}); err == nil && ev.ID != "" {
			seen[ev.ID] = struct{}{}
		}
	}
	return seen, nil
}

// Shutdown closes the file, after the compression of rotated files that
// is under way.
func (f *File) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.out == nil {
		return nil
	}
	if f.skipped > 0 && f.logger != nil {
		f.logger.Info("file output: events already in the file were not written again", "path", f.cfg.Path, "skipped", f.skipped)
	}
	err := f.out.Close()
	f.out = nil
	return err
}
