package config

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// llmspellEvents is the rs-llmspell [events] section.
type llmspellEvents struct {
	Events struct {
		Enabled            *bool    `toml:"enabled"`
		BufferSize         *int     `toml:"buffer_size"`
		EmitTimingEvents   *bool    `toml:"emit_timing_events"`
		EmitStateEvents    *bool    `toml:"emit_state_events"`
		EmitDebugEvents    *bool    `toml:"emit_debug_events"`
		MaxEventsPerSecond *float64 `toml:"max_events_per_second"`
		Filtering          struct {
			IncludeTypes      []string `toml:"include_types"`
			ExcludeTypes      []string `toml:"exclude_types"`
			IncludeComponents []string `toml:"include_components"`
			ExcludeComponents []string `toml:"exclude_components"`
		} `toml:"filtering"`
		Export struct {
			Stdout     *bool  `toml:"stdout"`
			File       string `toml:"file"`
			Webhook    string `toml:"webhook"`
			PrettyJSON *bool  `toml:"pretty_json"`
		} `toml:"export"`
	} `toml:"events"`
}

// Migrate turns the [events] section of an rs-llmspell TOML configuration
// into an equivalent pipeline.yaml, faithful to the original's defaults
// (events off unless enabled, nothing on stdout unless stdout = true).
// notes say what the operator should know: a default applied, a plain
// http webhook allowed, a key not mapped (every key of [events] is either
// mapped or named there). Other sections of the file are ignored.
func Migrate(src []byte) (out []byte, notes []string, err error) {
	var in llmspellEvents
	md, err := toml.Decode(string(src), &in)
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "events" {
			notes = append(notes, fmt.Sprintf("%s is not an rs-llmspell [events] key eventpipe knows: not mapped", k.String()))
		}
	}
	e := in.Events
	d := Default()
	// The original's defaults, where the file says nothing.
	d.Events.Enabled = false
	if e.Enabled != nil {
		d.Events.Enabled = *e.Enabled
	} else {
		notes = append(notes, "enabled is not set: events are off, as in rs-llmspell (set events.enabled: true to turn them on)")
	}
	if e.BufferSize != nil {
		d.Events.BufferSize = *e.BufferSize
	}
	if e.EmitTimingEvents != nil {
		d.Events.Filter.EmitTimingEvents = *e.EmitTimingEvents
	}
	if e.EmitStateEvents != nil {
		d.Events.Filter.EmitStateEvents = *e.EmitStateEvents
	}
	if e.EmitDebugEvents != nil {
		d.Events.Filter.EmitDebugEvents = *e.EmitDebugEvents
	}
	if e.MaxEventsPerSecond != nil {
		d.Events.MaxEventsPerSecond = *e.MaxEventsPerSecond
	}

	var b bytes.Buffer
	b.WriteString("# Migrated from an rs-llmspell [events] section by `eventpipe migrate`.\n")
	b.WriteString("# Every key is documented in docs/config.md.\n")
	ev := map[string]any{
		"enabled":            d.Events.Enabled,
		"buffer_size":        d.Events.BufferSize,
		"overflow":           "drop_oldest", // the original dropped rather than block the app
		"emit_timing_events": d.Events.Filter.EmitTimingEvents,
		"emit_state_events":  d.Events.Filter.EmitStateEvents,
		"emit_debug_events":  d.Events.Filter.EmitDebugEvents,
	}
	if d.Events.MaxEventsPerSecond > 0 {
		ev["max_events_per_second"] = d.Events.MaxEventsPerSecond
	}
	doc := yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v any) {
		var n yaml.Node
		_ = n.Encode(v)
		doc.Content = append(doc.Content, scalar(key), &n)
	}
	add("events", ev)
	filter := map[string]any{}
	if f := e.Filtering.IncludeTypes; len(f) > 0 {
		filter["include_types"] = f
	}
	if f := e.Filtering.ExcludeTypes; len(f) > 0 {
		filter["exclude_types"] = f
	}
	var conds []map[string]any
	if inc := nonTrivial(e.Filtering.IncludeComponents); len(inc) > 0 {
		conds = append(conds, map[string]any{"field": "source", "op": "regex", "value": globsToRegexp(inc)})
	}
	if exc := e.Filtering.ExcludeComponents; len(exc) > 0 {
		conds = append(conds, map[string]any{"field": "source", "op": "not_regex", "value": globsToRegexp(exc)})
	}
	if len(conds) > 0 {
		filter["conditions"] = conds
	}
	if len(filter) > 0 {
		add("filter", filter)
	}
	add("sanitize", map[string]any{"enabled": true, "paths": true, "secrets": true, "user_data": true})

	outputs := map[string]any{}
	var def []string
	if e.Export.Stdout != nil && *e.Export.Stdout { // rs-llmspell's default is false: audit events stay off the console
		o := map[string]any{"type": "stdout"}
		if e.Export.PrettyJSON != nil && *e.Export.PrettyJSON {
			o["pretty"] = true
		}
		outputs["stdout"] = o
		def = append(def, "stdout")
	}
	if e.Export.File != "" {
		outputs["file"] = map[string]any{"type": "file", "path": e.Export.File, "mode": "0600"}
		def = append(def, "file")
	}
	if e.Export.Webhook != "" {
		hook := map[string]any{"type": "webhook", "url": e.Export.Webhook}
		if u, err := url.Parse(e.Export.Webhook); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			hook["allow_http"] = true
			notes = append(notes, fmt.Sprintf("the webhook %s is plain http: allowed with allow_http: true, but events cross the network unencrypted; prefer https", e.Export.Webhook))
		}
		outputs["webhook"] = hook
		def = append(def, "webhook")
	}
	if len(def) == 0 {
		notes = append(notes, "no output: [events.export] sends events nowhere (stdout is off unless stdout = true)")
	}
	if len(def) > 0 {
		add("route", map[string]any{"default": def})
		add("export", outputs)
	}
	add("dead_letter", map[string]any{"path": "deadletter.jsonl"})
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), notes, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func nonTrivial(globs []string) []string {
	for _, g := range globs {
		if g == "*" {
			return nil
		}
	}
	return globs
}

// globsToRegexp turns component globs (* and ?) into one anchored RE2
// expression.
func globsToRegexp(globs []string) string {
	parts := make([]string, len(globs))
	for i, g := range globs {
		q := regexp.QuoteMeta(g)
		q = strings.ReplaceAll(q, `\*`, ".*")
		q = strings.ReplaceAll(q, `\?`, ".")
		parts[i] = q
	}
	return "^(?:" + strings.Join(parts, "|") + ")$"
}
