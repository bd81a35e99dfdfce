package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/eventpipe/eventpipe/pipeline"
)

// Environment overrides. Each setting can be given as EVENTPIPE_<NAME> or,
// for users migrating from rs-llmspell, LLMSPELL_EVENTS_<NAME>; when both
// are set EVENTPIPE_ wins. Lists are comma-separated. A bad value is an
// error naming the variable.
var envSettings = []struct {
	name  string
	doc   string
	apply func(c *Config, v string) error
}{
	{"ENABLED", "events.enabled", func(c *Config, v string) error { return setBool(&c.Events.Enabled, v) }},
	{"BUFFER_SIZE", "events.buffer_size", func(c *Config, v string) error { return setInt(&c.Events.BufferSize, v) }},
	{"BUFFER_BYTES", "events.buffer_bytes", func(c *Config, v string) error {
		i, err := parseSize(v)
		if err != nil {
			return fmt.Errorf("want a number of bytes (e.g. 64MiB)")
		}
		c.Events.BufferBytes = i
		return nil
	}},
	{"OVERFLOW", "events.overflow", func(c *Config, v string) error { return c.Events.Overflow.UnmarshalText([]byte(v)) }},
	{"EMIT_TIMING_EVENTS", "events.emit_timing_events", func(c *Config, v string) error { return setBool(&c.Events.Filter.EmitTimingEvents, v) }},
	{"EMIT_STATE_EVENTS", "events.emit_state_events", func(c *Config, v string) error { return setBool(&c.Events.Filter.EmitStateEvents, v) }},
	{"EMIT_DEBUG_EVENTS", "events.emit_debug_events", func(c *Config, v string) error { return setBool(&c.Events.Filter.EmitDebugEvents, v) }},
	{"MAX_EVENTS_PER_SECOND", "events.max_events_per_second", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("want a number of events per second (0: no limit), got %q", v)
		}
		c.Events.MaxEventsPerSecond = f
		return nil
	}},
	{"FILTERING_INCLUDE_TYPES", "filter.include_types", func(c *Config, v string) error {
		return setPatterns(&c.Filter, "include_types", v)
	}},
	{"FILTERING_EXCLUDE_TYPES", "filter.exclude_types", func(c *Config, v string) error {
		return setPatterns(&c.Filter, "exclude_types", v)
	}},
	{"EXPORT_STDOUT", "an output named stdout in route.default", func(c *Config, v string) error {
		var on bool
		if err := setBool(&on, v); err != nil {
			return err
		}
		if on {
			c.ensureOutput("stdout", "stdout", nil)
		} else {
			c.removeOutputsOfType("stdout")
		}
		return nil
	}},
	{"EXPORT_FILE", "an output named file (JSON lines at this path) in route.default", func(c *Config, v string) error {
		if v == "" {
			c.removeOutput("file")
			return nil
		}
		c.ensureOutput("file", "file", map[string]string{"path": v})
		return nil
	}},
	{"EXPORT_WEBHOOK", "an output named webhook (this URL) in route.default", func(c *Config, v string) error {
		if v == "" {
			c.removeOutput("webhook")
			return nil
		}
		if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			return fmt.Errorf("want an http:// or https:// URL, got %q", v)
		}
		c.ensureOutput("webhook", "webhook", map[string]string{"url": v})
		return nil
	}},
	{"EXPORT_PRETTY_JSON", "pretty on every stdout output", func(c *Config, v string) error {
		var on bool
		if err := setBool(&on, v); err != nil {
			return err
		}
		for _, o := range c.Outputs {
			if o.Type == "stdout" {
				setKey(o.Node, "pretty", strconv.FormatBool(on))
			}
		}
		return nil
	}},
	{"DEAD_LETTER_PATH", "dead_letter.path", func(c *Config, v string) error { c.DeadLetter.Path = v; return nil }},
	{"ADMIN_LISTEN", "admin.listen", func(c *Config, v string) error { c.Admin.Listen = v; return nil }},
	{"ADMIN_TOKEN", "admin.token", func(c *Config, v string) error { c.Admin.Token = v; return nil }},
	{"LOG_LEVEL", "log.level", func(c *Config, v string) error { c.Log.Level = v; return nil }},
	{"LOG_FORMAT", "log.format", func(c *Config, v string) error { c.Log.Format = v; return nil }},
}

// EnvPrefixes are the prefixes of override variables, weakest first.
var EnvPrefixes = []string{"LLMSPELL_EVENTS_", "EVENTPIPE_"}

// EnvVar describes one override variable for documentation and --help.
type EnvVar struct{ Name, Sets string }

// EnvVars lists the override variables (without prefix) and what they set.
func EnvVars() []EnvVar {
	out := make([]EnvVar, len(envSettings))
	for i, s := range envSettings {
		out[i] = EnvVar{s.name, s.doc}
	}
	return out
}

func (c *Config) applyEnv(env func(string) (string, bool)) Errors {
	var errs Errors
	for _, prefix := range EnvPrefixes {
		for _, s := range envSettings {
			v, ok := env(prefix + s.name)
			if !ok {
				continue
			}
			if err := s.apply(c, strings.TrimSpace(v)); err != nil {
				errs = append(errs, Error{Path: "environment", Msg: fmt.Sprintf("%s%s=%q: %v", prefix, s.name, v, err)})
			}
		}
	}
	return errs
}

func setBool(dst *bool, v string) error {
	b, ok := parseBool(v)
	if !ok {
		return fmt.Errorf("want true or false")
	}
	*dst = b
	return nil
}

func setInt(dst *int, v string) error {
	i, err := parseSize(v)
	if err != nil {
		return fmt.Errorf("want a whole number")
	}
	*dst = int(i)
	return nil
}

func setPatterns(section *yaml.Node, key, v string) error {
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := pipeline.CompilePattern(p); err != nil {
			return err
		}
		list.Content = append(list.Content, scalar(p))
	}
	mapSet(section, key, list)
	return nil
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

// setKey sets key to value in a mapping node.
func setKey(n *yaml.Node, key, value string) { mapSet(n, key, scalar(value)) }

// mapSet sets key to value in a mapping node.
func mapSet(n *yaml.Node, key string, value *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content[i+1] = value
			return
		}
	}
	n.Content = append(n.Content, scalar(key), value)
}

// ensureOutput adds (or updates) an output and routes every event to it by
// default.
func (c *Config) ensureOutput(name, typ string, settings map[string]string) {
	if i := c.OutputIndex(name); i < 0 {
		n := &yaml.Node{Kind: yaml.MappingNode}
		setKey(n, "type", typ)
		c.Outputs = append(c.Outputs, Output{Name: name, Type: typ, Node: n})
	}
	o := c.Outputs[c.OutputIndex(name)]
	for k, v := range settings {
		setKey(o.Node, k, v)
	}
	def := mapGet(&c.Route, "default")
	if def == nil || def.Kind != yaml.SequenceNode {
		def = &yaml.Node{Kind: yaml.SequenceNode}
		mapSet(&c.Route, "default", def)
	}
	for _, d := range def.Content {
		if d.Value == name {
			return
		}
	}
	def.Content = append(def.Content, scalar(name))
}

func (c *Config) removeOutputsOfType(typ string) {
	for _, o := range append([]Output(nil), c.Outputs...) {
		if o.Type == typ {
			c.removeOutput(o.Name)
		}
	}
}

// removeOutput drops an output and every route to it; a rule left with
// nowhere to go is dropped too.
func (c *Config) removeOutput(name string) {
	i := c.OutputIndex(name)
	if i < 0 {
		return
	}
	c.Outputs = append(c.Outputs[:i], c.Outputs[i+1:]...)
	drop := func(list *yaml.Node) {
		if list == nil || list.Kind != yaml.SequenceNode {
			return
		}
		kept := list.Content[:0]
		for _, x := range list.Content {
			if x.Value != name {
				kept = append(kept, x)
			}
		}
		list.Content = kept
	}
	drop(mapGet(&c.Route, "default"))
	if rules := mapGet(&c.Route, "rules"); rules != nil && rules.Kind == yaml.SequenceNode {
		kept := rules.Content[:0]
		for _, r := range rules.Content {
			to := mapGet(r, "to")
			drop(to)
			if to == nil || len(to.Content) > 0 {
				kept = append(kept, r)
			}
		}
		rules.Content = kept
	}
}
