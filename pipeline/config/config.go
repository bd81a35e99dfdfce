// Package config loads pipeline.yaml: strict YAML decoding with file:line:col
// errors, defaults, environment overrides (EVENTPIPE_* and the original
// LLMSPELL_EVENTS_*), semantic validation that reports every problem at once,
// and migration from an rs-llmspell [events] TOML section.
//
// docs/config.md documents every key with its default.
package config

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

// Config is a whole pipeline definition.
type Config struct {
	Events     Events               `yaml:"events"`
	Ingest     []yaml.Node          `yaml:"ingest"`
	Filter     Filter               `yaml:"filter"`
	Sanitize   Sanitize             `yaml:"sanitize"`
	Route      Route                `yaml:"route"`
	Export     map[string]yaml.Node `yaml:"export"`
	DeadLetter DeadLetter           `yaml:"dead_letter"`
	Admin      Admin                `yaml:"admin"`
	Log        Log                  `yaml:"log"`

	// File is where the configuration was read from ("" for a string).
	File string `yaml:"-"`
	// Pos holds the position of every key that was set, by key path.
	Pos map[string]Pos `yaml:"-"`
	// Outputs are the export section's outputs in file order.
	Outputs []Output `yaml:"-"`
	// Sources are the ingest section's entries.
	Sources []Source `yaml:"-"`
}

// Events is the original [events] section.
type Events struct {
	Enabled            bool                     `yaml:"enabled"`
	BufferSize         int                      `yaml:"buffer_size"`
	Overflow           pipeline.Overflow        `yaml:"overflow"`
	BlockTimeout       time.Duration            `yaml:"block_timeout"`
	MaxEventsPerSecond float64                  `yaml:"max_events_per_second"`
	Burst              int                      `yaml:"burst"`
	RateLimitPolicy    pipeline.RateLimitPolicy `yaml:"rate_limit_policy"`
	EmitTimingEvents   bool                     `yaml:"emit_timing_events"`
	EmitStateEvents    bool                     `yaml:"emit_state_events"`
	EmitDebugEvents    bool                     `yaml:"emit_debug_events"`
	MaxEventSize       int                      `yaml:"max_event_size"`
	BatchSize          int                      `yaml:"batch_size"`
	BatchLinger        time.Duration            `yaml:"batch_linger"`
}

// Filter is the filter stage: type patterns (applied on the bus fast
// path), conditions on data, and filter plugins.
type Filter struct {
	IncludeTypes []string    `yaml:"include_types"`
	ExcludeTypes []string    `yaml:"exclude_types"`
	Conditions   []Condition `yaml:"conditions"`
	Plugins      []Plugin    `yaml:"plugins"`
}

// Condition keeps an event only if it holds. Field is a path into the event:
// "type", "source", "language", "tags", or "data.a.b" for a field of data.
type Condition struct {
	Field string `yaml:"field"`
	// Op is one of eq, ne, gt, gte, lt, lte, exists, not_exists, regex, in.
	Op    string `yaml:"op"`
	Value any    `yaml:"value"`
}

// Sanitize is the sanitize stage.
type Sanitize struct {
	Enabled bool `yaml:"enabled"`
	// Paths cleans file paths in strings: home directories become ~, ".."
	// is resolved.
	Paths bool `yaml:"paths"`
	// Secrets redacts API keys, bearer and JWT tokens, passwords in URLs,
	// AWS keys and private key blocks in every string.
	Secrets bool `yaml:"secrets"`
	// ExtraPatterns are more regular expressions to redact.
	ExtraPatterns []string `yaml:"extra_patterns"`
	// Replacement is what a redacted secret becomes.
	Replacement string `yaml:"replacement"`
	// DenyFields are data keys (at any depth) removed unless in AllowFields.
	DenyFields  []string `yaml:"deny_fields"`
	AllowFields []string `yaml:"allow_fields"`
	// HashFields are data keys whose values are replaced by a keyed hash
	// (HMAC-SHA256), so equal values stay joinable without being readable.
	HashFields []string `yaml:"hash_fields"`
	// HashKeyEnv names the environment variable that holds the hash key.
	HashKeyEnv string   `yaml:"hash_key_env"`
	Plugins    []Plugin `yaml:"plugins"`
}

// Route sends events to named outputs.
type Route struct {
	Rules   []RouteRule `yaml:"rules"`
	Default []string    `yaml:"default"`
	Plugin  *Plugin     `yaml:"plugin"`
}

// RouteRule sends events whose type matches any of Types to the outputs To.
// Rules are tried in order; the first match decides unless it says
// continue: true, in which case later rules may add outputs.
type RouteRule struct {
	Types    []string `yaml:"types"`
	To       []string `yaml:"to"`
	Continue bool     `yaml:"continue"`
}

// Plugin names a wasm module that runs as a stage or exporter.
type Plugin struct {
	Path         string        `yaml:"path"`
	SHA256       string        `yaml:"sha256"`
	Config       any           `yaml:"config"`
	Timeout      time.Duration `yaml:"timeout"`
	MaxMemory    int64         `yaml:"max_memory"`
	Pool         int           `yaml:"pool"`
	OnError      string        `yaml:"on_error"`
	Capabilities []string      `yaml:"capabilities"`
	AllowedHosts []string      `yaml:"allowed_hosts"`
	AllowedPaths []string      `yaml:"allowed_paths"`
	Env          []string      `yaml:"env"`
	Trusted      bool          `yaml:"trusted"`
}

// DeadLetter is where refused events and input go.
type DeadLetter struct {
	Path string `yaml:"path"`
	Mode string `yaml:"mode"`
}

// Admin is the admin HTTP server; off unless Listen is set.
type Admin struct {
	Listen string `yaml:"listen"`
}

// Log configures the process log (log/slog).
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Output is one named entry of the export section.
type Output struct {
	Name string
	Type string
	Node *yaml.Node // its settings, for the kind's own decoder
	Pos  Pos
}

// Source is one entry of the ingest section.
type Source struct {
	Type string
	Node *yaml.Node
	Path string // key path, e.g. ingest[1]
	Pos  Pos
}

// Default returns the configuration an empty file means.
func Default() *Config {
	sd := stage.DefaultSanitizeConfig() // one list of defaults, the stage's
	return &Config{
		Events: Events{
			Enabled:          true,
			BufferSize:       10000,
			Overflow:         pipeline.Block,
			BlockTimeout:     time.Second,
			EmitTimingEvents: true,
			MaxEventSize:     pipeline.DefaultMaxEventSize,
			BatchSize:        512,
			BatchLinger:      0,
		},
		Sanitize: Sanitize{
			Enabled: true, Paths: sd.Paths, Secrets: sd.Secrets,
			Replacement: sd.Replacement,
			DenyFields:  sd.DenyFields,
			HashKeyEnv:  "EVENTPIPE_HASH_KEY",
		},
		DeadLetter: DeadLetter{Path: "deadletter.jsonl", Mode: "0600"},
		Log:        Log{Level: "info", Format: "text"},
	}
}

// Load reads, decodes, overrides from the environment and validates a
// configuration file. Its error is an Errors holding every problem found.
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b, env)
}

// Parse is Load for configuration text; file names it in errors.
// env looks up environment variables (os.LookupEnv; nil for none).
func Parse(file string, b []byte, env func(string) (string, bool)) (*Config, error) {
	c := Default()
	c.File = file
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, Errors{yamlSyntaxError(file, err)}
	}
	d := newDecoder(file)
	if root.Kind != 0 {
		d.decode(&root, "", reflect.ValueOf(c).Elem())
	}
	c.Pos = d.pos
	errs := d.errs
	c.collect()
	if env != nil {
		errs = append(errs, c.applyEnv(env)...)
	}
	errs = append(errs, c.Validate()...)
	if err := errs.Err(); err != nil {
		return c, err
	}
	return c, nil
}

// collect fills Outputs and Sources from the raw nodes, in file order.
func (c *Config) collect() {
	c.Outputs = c.Outputs[:0]
	for name, n := range c.Export {
		n := n
		c.Outputs = append(c.Outputs, Output{Name: name, Type: nodeType(&n), Node: &n, Pos: Pos{n.Line, n.Column}})
	}
	sort.Slice(c.Outputs, func(i, j int) bool {
		a, b := c.Outputs[i].Pos, c.Outputs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return c.Outputs[i].Name < c.Outputs[j].Name
	})
	c.Sources = c.Sources[:0]
	for i := range c.Ingest {
		n := &c.Ingest[i]
		c.Sources = append(c.Sources, Source{Type: nodeType(n), Node: n, Path: fmt.Sprintf("ingest[%d]", i), Pos: Pos{n.Line, n.Column}})
	}
}

// nodeType reads the "type" key of a mapping node.
func nodeType(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// OutputIndex returns the index of the named output, or -1.
func (c *Config) OutputIndex(name string) int {
	for i, o := range c.Outputs {
		if o.Name == name {
			return i
		}
	}
	return -1
}

// BusConfig is the pipeline.Config the events section (and the filter's
// type patterns) stand for.
func (c *Config) BusConfig() pipeline.Config {
	e := c.Events
	return pipeline.Config{
		Enabled:            e.Enabled,
		BufferSize:         e.BufferSize,
		Overflow:           e.Overflow,
		BlockTimeout:       e.BlockTimeout,
		MaxEventsPerSecond: e.MaxEventsPerSecond,
		Burst:              e.Burst,
		RateLimitPolicy:    e.RateLimitPolicy,
		MaxEventSize:       e.MaxEventSize,
		BatchSize:          e.BatchSize,
		BatchLinger:        e.BatchLinger,
		Filter: pipeline.FilterConfig{
			EmitTimingEvents: e.EmitTimingEvents,
			EmitStateEvents:  e.EmitStateEvents,
			EmitDebugEvents:  e.EmitDebugEvents,
			IncludeTypes:     c.Filter.IncludeTypes,
			ExcludeTypes:     c.Filter.ExcludeTypes,
		},
	}
}

func yamlSyntaxError(file string, err error) Error {
	// yaml.v3 says "yaml: line 3: mapping values are not allowed in this context".
	msg := err.Error()
	line := 0
	if _, scanErr := fmt.Sscanf(msg, "yaml: line %d:", &line); scanErr == nil {
		if i := len(fmt.Sprintf("yaml: line %d: ", line)); i <= len(msg) {
			msg = msg[i:]
		}
		return Error{File: file, Line: line, Col: 1, Msg: "YAML syntax: " + msg}
	}
	return Error{File: file, Msg: "YAML syntax: " + msg}
}
