package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
)

// DeadLetterRecord is one line of the dead-letter file: the refused event
// (or the raw input that never became one) with why, where and when.
type DeadLetterRecord struct {
	Time   time.Time       `json:"time"`
	Reason string          `json:"reason"`
	Stage  string          `json:"stage"`            // ingest, filter, sanitize, route, export, plugin name…
	Output string          `json:"output,omitempty"` // for export failures
	Source string          `json:"source,omitempty"` // for ingest: stdin, a file, http
	Offset string          `json:"offset,omitempty"` // for ingest: "line 12"
	Event  json.RawMessage `json:"event,omitempty"`
	Raw    string          `json:"raw,omitempty"`
}

// DeadLetter appends records as JSON lines to a file created with mode
// 0600 (or the given mode). Safe for concurrent use; every Write is in the
// file before it returns. Like the file output it never leaves a partial
// line, recovers by itself after a failed write (a full disk), and writes
// to its path again when the file was deleted or renamed.
type DeadLetter struct {
	mu    sync.Mutex
	path  string
	lock  *os.File // a shared lock on path.lock while open (ClaimDeadLetter)
	out   *lineFile
	buf   bytes.Buffer
	count uint64
	// held are records whose write failed, written before the next ones;
	// lost, those that did not fit in DeadLetterHold or were still held
	// at Close.
	held  []byte
	heldN int
	lost  uint64
}

// DeadLetterHold bounds the records a dead-letter file holds in memory
// while it cannot be written (a full disk), to write them once it can.
const DeadLetterHold = 16 << 20

// OpenDeadLetter opens (creating as needed) the dead-letter file.
func OpenDeadLetter(path string, mode os.FileMode) (*DeadLetter, error) {
	if mode == 0 {
		mode = 0o600
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("dead letter %s: %w", path, err)
	}
	lock, err := lockFile(path+".lock", false)
	if err != nil {
		return nil, fmt.Errorf("dead letter %s: an eventpipe dlq replay is moving it (%w); try again when it has", path, err)
	}
	out, err := openLineFile(path, mode)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("dead letter %s: %w", path, err)
	}
	return &DeadLetter{path: path, lock: lock, out: out}, nil
}

// ErrDeadLetterInUse is ClaimDeadLetter's answer while a pipeline has the
// file open.
var ErrDeadLetterInUse = errors.New("a running pipeline writes this dead-letter file: stop it (or point dlq replay at a copy) first")

// DeadLetterClaim is a dead-letter file taken for replay: no pipeline
// writes it while the claim is held exclusively.
type DeadLetterClaim struct {
	path string
	lock *os.File
}

// ClaimDeadLetter takes path for a replay, or fails with
// ErrDeadLetterInUse while a pipeline has it open.
func ClaimDeadLetter(path string) (*DeadLetterClaim, error) {
	lock, err := lockFile(path+".lock", true)
	if err != nil {
		if os.IsNotExist(err) || errors.Is(err, os.ErrPermission) {
			return nil, err
		}
		return nil, ErrDeadLetterInUse
	}
	return &DeadLetterClaim{path: path, lock: lock}, nil
}

// Archive moves the file to a name of its own — path.replayed-<UTC time
// to the nanosecond>, never one that exists (a second replay in the same
// instant gets -2) — and returns it. An empty or missing file is not
// moved: "" and no error.
func (c *DeadLetterClaim) Archive() (string, error) {
	st, err := os.Stat(c.path)
	if os.IsNotExist(err) || err == nil && st.Size() == 0 {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	base := fmt.Sprintf("%s.replayed-%s", c.path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		// A link fails where a rename would replace: no archive is ever
		// overwritten.
		if err := os.Link(c.path, name); err != nil {
			if os.IsExist(err) {
				continue
			}
			return "", err
		}
		return name, os.Remove(c.path)
	}
}

// Restore puts the records of an archive back (appended to the file, which
// may have new records by then) and removes the archive: for a replay that
// could not run.
func (c *DeadLetterClaim) Restore(archive string) error {
	data, err := os.ReadFile(archive)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(c.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Remove(archive)
}

// Share lets pipelines open the file again (the replay's own, which
// dead-letters what fails anew) while the claim is held.
func (c *DeadLetterClaim) Share() error { return relock(c.lock, false) }

// Release ends the claim.
func (c *DeadLetterClaim) Release() error { return c.lock.Close() }

// Path is the file written to.
func (d *DeadLetter) Path() string { return d.path }

// Write appends records, all or none.
func (d *DeadLetter) Write(recs ...DeadLetterRecord) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out == nil {
		return fmt.Errorf("dead letter %s: closed", d.path)
	}
	d.buf.Reset()
	enc := json.NewEncoder(&d.buf)
	enc.SetEscapeHTML(false)
	for i := range recs {
		if recs[i].Time.IsZero() {
			recs[i].Time = time.Now().UTC()
		}
		if err := enc.Encode(&recs[i]); err != nil {
			return fmt.Errorf("dead letter %s: %w", d.path, err)
		}
	}
	data := d.buf.Bytes()
	if d.heldN > 0 {
		data = append(d.held, data...)
	}
	if err := d.out.Write(data); err != nil {
		switch {
		case len(data) <= DeadLetterHold:
			d.held = append(d.held[:0:0], data...)
			d.heldN += len(recs)
		default:
			d.lost += uint64(len(recs)) // the oldest stay held
		}
		return fmt.Errorf("dead letter %s: %w (%d records held to write again)", d.path, err, d.heldN)
	}
	d.count += uint64(d.heldN + len(recs))
	d.held, d.heldN = nil, 0
	return nil
}

// Lost is the number of records that could not be written and are gone:
// more than DeadLetterHold waited, or some still waited at Close.
func (d *DeadLetter) Lost() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lost
}

// EventRecord makes a record for an event.
func EventRecord(ev *pipeline.Event, stage, output, reason string) DeadLetterRecord {
	return DeadLetterRecord{Reason: reason, Stage: stage, Output: output, Event: ev.AppendJSON(nil)}
}

// Count is the number of records written since open.
func (d *DeadLetter) Count() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}

// Close closes the file.
func (d *DeadLetter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out == nil {
		return nil
	}
	var err error
	if d.heldN > 0 {
		if err = d.out.Write(d.held); err != nil {
			d.lost += uint64(d.heldN)
		} else {
			d.count += uint64(d.heldN)
		}
		d.held, d.heldN = nil, 0
	}
	err = errors.Join(err, d.out.Close(), d.lock.Close())
	d.out = nil
	return err
}
