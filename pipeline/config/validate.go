package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/eventpipe/eventpipe/pipeline"
)

// ConditionOps are the operators a filter condition may use.
var ConditionOps = []string{"eq", "ne", "gt", "gte", "lt", "lte", "exists", "not_exists", "regex", "not_regex", "in"}

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

// Validate checks the meaning of the configuration: values in range,
// patterns that compile, routes to outputs that exist, plugin files that
// exist, and settings that can have no effect. It returns every problem.
func (c *Config) Validate() Errors {
	var errs Errors
	add := func(e Error) { errs = append(errs, e) }
	e := c.Events
	if e.BufferSize <= 0 {
		add(c.errAt("events.buffer_size", "must be at least 1, got %d", e.BufferSize))
	}
	if e.BatchSize <= 0 {
		add(c.errAt("events.batch_size", "must be at least 1, got %d", e.BatchSize))
	}
	if e.MaxEventSize <= 0 {
		add(c.errAt("events.max_event_size", "must be at least 1 byte, got %d", e.MaxEventSize))
	}
	if e.MaxEventsPerSecond < 0 {
		add(c.errAt("events.max_events_per_second", "must not be negative"))
	}
	if e.BlockTimeout < 0 || e.BatchLinger < 0 {
		add(c.errAt("events", "durations must not be negative"))
	}
	if e.MaxEventsPerSecond == 0 && c.set("events.burst") {
		add(c.errAt("events.burst", "has no effect without max_events_per_second"))
	}
	if e.MaxEventsPerSecond == 0 && c.set("events.rate_limit_policy") {
		add(c.errAt("events.rate_limit_policy", "has no effect without max_events_per_second"))
	}
	if e.Overflow != pipeline.Block && c.set("events.block_timeout") {
		add(c.errAt("events.block_timeout", "has no effect unless overflow is block (it is %s)", e.Overflow))
	}

	c.checkPatterns("filter.include_types", c.Filter.IncludeTypes, add)
	c.checkPatterns("filter.exclude_types", c.Filter.ExcludeTypes, add)
	for i, cond := range c.Filter.Conditions {
		c.checkCondition(fmt.Sprintf("filter.conditions[%d]", i), cond, add)
	}
	for i, p := range c.Filter.Plugins {
		c.checkPlugin(fmt.Sprintf("filter.plugins[%d]", i), p, add)
	}

	s := c.Sanitize
	for i, p := range s.ExtraPatterns {
		if _, err := regexp.Compile(p); err != nil {
			add(c.errAt(fmt.Sprintf("sanitize.extra_patterns[%d]", i), "not a regular expression: %v", err))
		}
	}
	if !s.Enabled {
		for _, k := range []string{"paths", "secrets", "extra_patterns", "deny_fields", "allow_fields", "hash_fields"} {
			if c.set("sanitize." + k) {
				add(c.errAt("sanitize."+k, "has no effect: sanitize.enabled is false"))
			}
		}
	}
	for i, p := range s.Plugins {
		c.checkPlugin(fmt.Sprintf("sanitize.plugins[%d]", i), p, add)
	}

	names := map[string]bool{}
	for _, o := range c.Outputs {
		names[o.Name] = true
		if o.Type == "" {
			add(c.errAt("export."+o.Name, "missing type (stdout, file, webhook or plugin)"))
		}
		if !validName(o.Name) {
			add(c.errAt("export."+o.Name, "output names are letters, digits, '_' and '-'"))
		}
	}
	if len(c.Outputs) > 64 {
		add(c.errAt("export", "at most 64 outputs, got %d", len(c.Outputs)))
	}
	routed := map[string]bool{}
	checkTo := func(path string, to []string) {
		for j, name := range to {
			if !names[name] {
				add(c.errAt(fmt.Sprintf("%s[%d]", path, j), "unknown output %q (defined: %s)", name, strings.Join(sortedKeys(names), ", ")))
			}
			routed[name] = true
		}
	}
	catchAll := -1
	for i, r := range c.Route.Rules {
		path := fmt.Sprintf("route.rules[%d]", i)
		if catchAll >= 0 {
			add(c.errAt(path, "unreachable: rule %d matches every type and has no continue: true", catchAll))
		}
		if len(r.Types) == 0 {
			add(c.errAt(path, "needs types (patterns)"))
		}
		if len(r.To) == 0 {
			add(c.errAt(path, "needs to (output names)"))
		}
		c.checkPatterns(path+".types", r.Types, add)
		checkTo(path+".to", r.To)
		for _, t := range r.Types {
			if (t == "*" || t == "**") && !r.Continue && catchAll < 0 {
				catchAll = i
			}
		}
	}
	checkTo("route.default", c.Route.Default)
	if c.Route.Plugin != nil {
		c.checkPlugin("route.plugin", *c.Route.Plugin, add)
	}
	if catchAll >= 0 && len(c.Route.Default) > 0 {
		add(c.errAt("route.default", "unreachable: rule %d matches every type first", catchAll))
	}
	if c.Route.Plugin == nil {
		for _, o := range c.Outputs {
			if !routed[o.Name] {
				add(c.errAt("export."+o.Name, "output %q is never routed to: add it to route.default or to a rule", o.Name))
			}
		}
	}
	if len(c.Outputs) > 0 && len(c.Route.Rules) == 0 && len(c.Route.Default) == 0 && c.Route.Plugin == nil {
		add(c.errAt("route", "no route: set route.default"))
	}

	for _, src := range c.Sources {
		if src.Type == "" {
			add(c.errAt(src.Path, "missing type (stdin, file or http)"))
		}
	}

	if c.DeadLetter.Path == "" {
		add(c.errAt("dead_letter.path", "must be set: refused events must go somewhere"))
	}
	if _, err := ParseMode(c.DeadLetter.Mode); err != nil {
		add(c.errAt("dead_letter.mode", "%v", err))
	}
	if c.Admin.Listen != "" {
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

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
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

func (c *Config) checkPatterns(path string, pats []string, add func(Error)) {
	for i, p := range pats {
		if _, err := pipeline.CompilePattern(p); err != nil {
			add(c.errAt(fmt.Sprintf("%s[%d]", path, i), "%v", err))
		}
	}
}

func (c *Config) checkCondition(path string, cond Condition, add func(Error)) {
	if cond.Field == "" {
		add(c.errAt(path, "needs field"))
	}
	known := false
	for _, op := range ConditionOps {
		if cond.Op == op {
			known = true
		}
	}
	if !known {
		add(c.errAt(path+".op", "unknown op %q (want one of %s)", cond.Op, strings.Join(ConditionOps, ", ")))
		return
	}
	switch cond.Op {
	case "exists", "not_exists":
		if cond.Value != nil {
			add(c.errAt(path+".value", "has no effect with op %s", cond.Op))
		}
	case "regex", "not_regex":
		s, ok := cond.Value.(string)
		if !ok {
			add(c.errAt(path+".value", "want a regular expression string"))
		} else if _, err := regexp.Compile(s); err != nil {
			add(c.errAt(path+".value", "not a regular expression: %v", err))
		}
	case "in":
		if _, ok := cond.Value.([]any); !ok {
			add(c.errAt(path+".value", "want a list with op in"))
		}
	case "gt", "gte", "lt", "lte":
		switch cond.Value.(type) {
		case int, int64, float64, string:
		default:
			add(c.errAt(path+".value", "want a number or string to compare with"))
		}
	default:
		if cond.Value == nil {
			add(c.errAt(path+".value", "needs value"))
		}
	}
}

func (c *Config) checkPlugin(path string, p Plugin, add func(Error)) {
	if p.Path == "" {
		add(c.errAt(path, "needs path (a .wasm file)"))
		return
	}
	if _, err := os.Stat(c.Resolve(p.Path)); err != nil {
		add(c.errAt(path+".path", "plugin file: %v", err))
	}
	if p.SHA256 != "" {
		h := strings.TrimPrefix(p.SHA256, "sha256:")
		if len(h) != 64 {
			add(c.errAt(path+".sha256", "want sha256: and 64 hex digits"))
		}
	}
	switch p.OnError {
	case "", "fail_open", "fail_closed", "dead_letter":
	default:
		add(c.errAt(path+".on_error", "want fail_open, fail_closed or dead_letter, got %q", p.OnError))
	}
	if p.MaxMemory < 0 || p.Pool < 0 || p.Timeout < 0 {
		add(c.errAt(path, "max_memory, pool and timeout must not be negative"))
	}
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
