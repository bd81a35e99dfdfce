package export

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// lineFile appends whole batches of lines to a file, and is what the file
// output and the dead-letter file write through. It holds three promises
// a plain buffered writer does not:
//
//   - A failed write leaves no partial line: the file is cut back to where
//     the batch began (a full disk takes part of a write).
//   - A failure does not stick: the next write tries the file again, so
//     the output recovers once space is freed (bufio.Writer keeps its first
//     error forever).
//   - It writes to the path, not to an inode: when the file was deleted,
//     renamed or replaced (by hand, by logrotate), the path is opened again
//     before the next write instead of writing on into a file nobody sees.
//
// With rotation (lumberjack) it also compresses rotated files itself,
// through a temporary name, so that a stop never leaves a truncated .gz,
// and keeps at most maxBackups of them.
type lineFile struct {
	path string
	mode os.FileMode

	f  *os.File           // without rotation
	lj *lumberjack.Logger // with rotation

	compress   bool
	maxBackups int
	wg         sync.WaitGroup // compressions in flight
	compressMu sync.Mutex

	last     os.FileInfo // the file the last write went to
	reopened int
}

// openLineFile opens path for appending (creating it with mode).
func openLineFile(path string, mode os.FileMode) (*lineFile, error) {
	l := &lineFile{path: path, mode: mode}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// rotating makes l write through lumberjack, which rotates the file at
// maxSizeMB; rotated files are compressed by l when compress is set.
func (l *lineFile) rotating(maxSizeMB, maxBackups, maxAgeDays int, compress bool) {
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	l.compress, l.maxBackups = compress, maxBackups
	l.lj = &lumberjack.Logger{Filename: l.path, MaxSize: maxSizeMB, MaxBackups: maxBackups, MaxAge: maxAgeDays}
	// What an earlier run left: temporary archives, and rotated files
	// it had no time to compress.
	if compress {
		matches, _ := filepath.Glob(l.backupGlob() + ".gz.tmp")
		for _, m := range matches {
			_ = os.Remove(m)
		}
		l.compressBackups()
	}
}

func (l *lineFile) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, l.mode)
	if err != nil {
		return err
	}
	l.f = f
	l.last, _ = f.Stat()
	return nil
}

func (l *lineFile) writer() io.Writer {
	if l.lj != nil {
		return l.lj
	}
	return l.f
}

// Reopened is how many times the path was found to name another file.
func (l *lineFile) Reopened() int { return l.reopened }

// Write appends b, which holds whole lines, or nothing.
func (l *lineFile) Write(b []byte) error {
	cur, statErr := os.Stat(l.path)
	if l.last != nil && (statErr != nil || !os.SameFile(cur, l.last)) {
		// Deleted, renamed or replaced under us: write to the path again.
		l.reopened++
		l.last = nil
		if l.lj != nil {
			_ = l.lj.Close() // its next write opens the path (or a new file)
		} else {
			_ = l.f.Close()
			if err := l.open(); err != nil {
				return err
			}
		}
		cur, statErr = os.Stat(l.path)
	}
	before := int64(-1)
	if statErr == nil {
		before = cur.Size()
	}
	_, err := l.writer().Write(b)
	after, afterErr := os.Stat(l.path)
	if err != nil {
		if afterErr == nil {
			switch {
			case before >= 0 && os.SameFile(after, cur) && after.Size() > before:
				_ = os.Truncate(l.path, before) // cut the part of the batch that was written
			case (before < 0 || !os.SameFile(after, cur)) && after.Size() <= int64(len(b)):
				_ = os.Truncate(l.path, 0) // a new file (rotation) holding part of the batch only
			}
		}
		return err
	}
	rotated := l.last != nil && afterErr == nil && !os.SameFile(after, l.last)
	if afterErr == nil {
		l.last = after
	}
	if rotated && l.compress {
		l.compressBackups()
	}
	return nil
}

// Sync flushes the file to disk.
func (l *lineFile) Sync() error {
	if l.f != nil {
		return l.f.Sync()
	}
	// lumberjack does not expose its file; fsync applies to the file
	// itself, so any descriptor of it will do.
	g, err := os.Open(l.path)
	if err != nil {
		return err
	}
	defer g.Close()
	return g.Sync()
}

// Close closes the file, waiting for compressions in flight, then keeps
// at most maxBackups rotated files.
func (l *lineFile) Close() error {
	var err error
	if l.lj != nil {
		err = l.lj.Close()
		l.wg.Wait()
		if l.maxBackups > 0 {
			l.pruneBackups()
		}
	}
	if l.f != nil {
		err = errors.Join(err, l.f.Close())
		l.f = nil
	}
	return err
}

// backupGlob matches lumberjack's rotated files of the path:
// <name>-<timestamp><ext>.
func (l *lineFile) backupGlob() string {
	ext := filepath.Ext(l.path)
	return strings.TrimSuffix(l.path, ext) + "-*" + ext
}

// compressBackups gzips, in the background, every rotated file not yet
// compressed: into <file>.gz.tmp, renamed to <file>.gz when complete, the
// rotated file removed after.
func (l *lineFile) compressBackups() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.compressMu.Lock()
		defer l.compressMu.Unlock()
		matches, _ := filepath.Glob(l.backupGlob())
		for _, m := range matches {
			if err := gzipFile(m); err == nil {
				_ = os.Remove(m)
			}
		}
		if l.maxBackups > 0 {
			l.pruneBackups()
		}
	}()
}

// pruneBackups removes the oldest rotated files (a file and its .gz count
// once) beyond maxBackups. Rotated names sort by time.
func (l *lineFile) pruneBackups() {
	plain, _ := filepath.Glob(l.backupGlob())
	gz, _ := filepath.Glob(l.backupGlob() + ".gz")
	byName := map[string][]string{}
	for _, m := range append(plain, gz...) {
		base := strings.TrimSuffix(m, ".gz")
		byName[base] = append(byName[base], m)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	for len(names) > l.maxBackups {
		for _, m := range byName[names[0]] {
			_ = os.Remove(m)
		}
		names = names[1:]
	}
}

func gzipFile(src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	tmp := src + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	err = errors.Join(err, zw.Close(), out.Sync(), out.Close())
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compressing %s: %w", src, err)
	}
	_ = os.Chtimes(tmp, time.Now(), st.ModTime())
	return os.Rename(tmp, src+".gz")
}
