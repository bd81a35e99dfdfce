package export

import (
	"bufio"
	"encoding/json"
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
// 0600 (or the given mode). Safe for concurrent use; every Write is flushed
// to the file before it returns.
type DeadLetter struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	w     *bufio.Writer
	count uint64
}

// OpenDeadLetter opens (creating as needed) the dead-letter file.
func OpenDeadLetter(path string, mode os.FileMode) (*DeadLetter, error) {
	if mode == 0 {
		mode = 0o600
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("dead letter %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, mode)
	if err != nil {
		return nil, fmt.Errorf("dead letter %s: %w", path, err)
	}
	return &DeadLetter{path: path, f: f, w: bufio.NewWriter(f)}, nil
}

// Path is the file written to.
func (d *DeadLetter) Path() string { return d.path }

// Write appends records.
func (d *DeadLetter) Write(recs ...DeadLetterRecord) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	enc := json.NewEncoder(d.w)
	enc.SetEscapeHTML(false)
	for i := range recs {
		if recs[i].Time.IsZero() {
			recs[i].Time = time.Now().UTC()
		}
		if err := enc.Encode(&recs[i]); err != nil {
			return fmt.Errorf("dead letter %s: %w", d.path, err)
		}
		d.count++
	}
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("dead letter %s: %w", d.path, err)
	}
	return nil
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

// Close flushes and closes the file.
func (d *DeadLetter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.w.Flush()
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	return err
}
