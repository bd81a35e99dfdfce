package config

import (
	"bytes"
	"fmt"
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
// into an equivalent pipeline.yaml. Keys eventpipe does not know are listed
// in an error; other sections of the file are ignored.
func Migrate(src []byte) ([]byte, error) {
	var in llmspellEvents
	md, err := toml.Decode(string(src), &in)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "events" {
			unknown = append(unknown, k.String())
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("migrate: keys eventpipe does not know: %s", strings.Join(unknown, ", "))
	}
	e := in.Events
	d := Default()
	if e.Enabled != nil {
		d.Events.Enabled = *e.Enabled
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
	add("sanitize", map[string]any{"enabled": true, "paths": true, "secrets": true})

	outputs := map[string]any{}
	var def []string
	if e.Export.Stdout == nil || *e.Export.Stdout {
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
		outputs["webhook"] = map[string]any{"type": "webhook", "url": e.Export.Webhook}
		def = append(def, "webhook")
	}
	if len(def) > 0 {
		add("route", map[string]any{"default": def})
		add("export", outputs)
	}
	add("dead_letter", map[string]any{"path": "deadletter.jsonl"})
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
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
