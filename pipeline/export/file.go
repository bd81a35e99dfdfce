package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"gopkg.in/natefinch/lumberjack.v2"

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
}

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
	lj   *lumberjack.Logger
	f    *os.File // when not rotating
	w    *bufio.Writer
	buf  []byte
	sync bool
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
	file, err := os.OpenFile(f.cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, mode)
	if err != nil {
		return fmt.Errorf("file output %s: %w", f.cfg.Path, err)
	}
	if f.cfg.MaxSizeMB > 0 {
		// lumberjack reopens the file (keeping its mode) and rotates it.
		_ = file.Close()
		f.lj = &lumberjack.Logger{
			Filename: f.cfg.Path, MaxSize: f.cfg.MaxSizeMB, MaxBackups: f.cfg.MaxBackups,
			MaxAge: f.cfg.MaxAgeDays, Compress: f.cfg.Compress,
		}
		f.w = bufio.NewWriterSize(f.lj, 256<<10)
		return nil
	}
	f.f = file
	f.w = bufio.NewWriterSize(file, 256<<10)
	return nil
}

// Export appends the events and flushes them to the file (and fsyncs when
// configured) before returning: a nil return means the events are written.
func (f *File) Export(_ context.Context, events []pipeline.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.w == nil {
		return errors.New("file output: not started")
	}
	for i := range events {
		f.buf = append(events[i].AppendJSON(f.buf[:0]), '\n')
		if _, err := f.w.Write(f.buf); err != nil {
			return fmt.Errorf("file output %s: %w", f.cfg.Path, err)
		}
	}
	if err := f.w.Flush(); err != nil {
		return fmt.Errorf("file output %s: %w", f.cfg.Path, err)
	}
	if f.sync {
		if err := f.fsync(); err != nil {
			return fmt.Errorf("file output %s: fsync: %w", f.cfg.Path, err)
		}
	}
	return nil
}

func (f *File) fsync() error {
	if f.f != nil {
		return f.f.Sync()
	}
	// lumberjack does not expose its file; fsync applies to the file
	// itself, so any descriptor of it will do.
	g, err := os.Open(f.cfg.Path)
	if err != nil {
		return err
	}
	defer g.Close()
	return g.Sync()
}

// Shutdown flushes and closes the file.
func (f *File) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.w == nil {
		return nil
	}
	err := f.w.Flush()
	if f.lj != nil {
		err = errors.Join(err, f.lj.Close())
	}
	if f.f != nil {
		err = errors.Join(err, f.f.Close())
	}
	f.w = nil
	return err
}
