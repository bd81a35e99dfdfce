package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/eventpipe/eventpipe/pipeline"
)

// errAt makes an Error at the position recorded for path (or its nearest
// recorded parent).
func (c *Config) errAt(path, format string, args ...any) Error {
	e := Error{File: c.File, Path: path, Msg: fmt.Sprintf(format, args...)}
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := c.Pos[p]; ok {
			e.Line, e.Col = pos.Line, pos.Col
			break
		}
	}
	return e
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func (c *Config) set(path string) bool { _, ok := c.Pos[path]; return ok }

// Resolve returns p relative to the configuration file's directory (paths in
// a pipeline.yaml are relative to the file, like in docker-compose).
func (c *Config) Resolve(p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) || c.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

// Validate checks the sections the configuration owns — events,
// dead_letter, admin, log — and output names. Components check their own
// settings when the runner builds them (runner.Validate); together they
// are `eventpipe validate`. It returns every problem.
func (c *Config) Validate() Errors {
	var errs Errors
	add := func(e Error) { errs = append(errs, e) }
	errs = append(errs, c.ErrorsFor("events", c.Events.Validate())...)
	e := c.Events
	if e.MaxEventsPerSecond == 0 && c.set("events.burst") {
		add(c.errAt("events.burst", "has no effect without max_events_per_second"))
	}
	if e.MaxEventsPerSecond == 0 && c.set("events.rate_limit_policy") {
		add(c.errAt("events.rate_limit_policy", "has no effect without max_events_per_second"))
	}
	if e.Overflow != pipeline.Block && c.set("events.block_timeout") {
		add(c.errAt("events.block_timeout", "has no effect unless overflow is block (it is %s)", e.Overflow))
	}
	for _, o := range c.Outputs {
		if o.Type == "" {
			add(c.errAt("export."+o.Name, "missing type"))
		}
		if !validName(o.Name) {
			add(c.errAt("export."+o.Name, "output names are letters, digits, '_' and '-'"))
		}
	}
	for i, n := range c.Ingest {
		if nodeType(&n) == "" {
			add(c.errAt(fmt.Sprintf("ingest[%d]", i), "missing type"))
		}
	}
	if c.DeadLetter.Path == "" {
		add(c.errAt("dead_letter.path", "must be set: refused events must go somewhere"))
	}
	if _, err := ParseMode(c.DeadLetter.Mode); err != nil {
		add(c.errAt("dead_letter.mode", "%v", err))
	}
	if c.Admin.Listen != "" && c.Admin.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			add(c.errAt("admin.listen", "want host:port, got %q", c.Admin.Listen))
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		add(c.errAt("log.level", "want debug, info, warn or error, got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add(c.errAt("log.format", "want text or json, got %q", c.Log.Format))
	}
	return errs
}

// ErrorsFor turns an error a component (or section) at path reported into
// positioned Errors: each *pipeline.FieldError inside it (errors.Join
// trees are walked) points at its key; an error that names an absolute key
// path (KeyPath) points there; anything else at path itself.
func (c *Config) ErrorsFor(path string, err error) Errors {
	if err == nil {
		return nil
	}
	if es, ok := err.(Errors); ok {
		return es
	}
	if e, ok := err.(Error); ok {
		return Errors{e}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out Errors
		for _, e := range j.Unwrap() {
			out = append(out, c.ErrorsFor(path, e)...)
		}
		return out
	}
	var kp interface{ KeyPath() string }
	if errors.As(err, &kp) {
		return Errors{c.errAt(kp.KeyPath(), "%s", err.Error())}
	}
	var fe *pipeline.FieldError
	if errors.As(err, &fe) && fe.Field != "" {
		return c.ErrorsFor(join(path, fe.Field), fe.Err)
	}
	return Errors{c.errAt(path, "%s", err.Error())}
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// ParseMode reads an octal file mode such as "0600".
func ParseMode(s string) (os.FileMode, error) {
	if s == "" {
		return 0o600, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("want an octal file mode such as 0600, got %q", s)
	}
	return os.FileMode(m), nil
}
