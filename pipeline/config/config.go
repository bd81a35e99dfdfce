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
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// Config is a whole pipeline definition.
//
// The events section is the bus's own pipeline.Config; dead_letter, admin
// and log belong to the runner. Every other section holds components —
// sources, stages, outputs — whose settings are kept raw here and decoded
// by the runner into the config struct of the component's own factory
// (Components, Decode), so that no component's settings are written twice.
type Config struct {
	Events   pipeline.Config      `yaml:"events"`
	Ingest   []yaml.Node          `yaml:"ingest"`
	Filter   yaml.Node            `yaml:"filter"`
	Sanitize yaml.Node            `yaml:"sanitize"`
	Route    yaml.Node            `yaml:"route"`
	Export   map[string]yaml.Node `yaml:"export"`
	// Persist is the store between the sources and the stages (a
	// component of class store; type jetstream unless it says otherwise).
	Persist    yaml.Node  `yaml:"persist"`
	DeadLetter DeadLetter `yaml:"dead_letter"`
	Admin      Admin      `yaml:"admin"`
	Log        Log        `yaml:"log"`

	// File is where the configuration was read from ("" for a string).
	File string `yaml:"-"`
	// Pos holds the position of every key that was set, by key path.
	Pos map[string]Pos `yaml:"-"`
	// Outputs are the export section's outputs in file order.
	Outputs []Output `yaml:"-"`
}

// Component is one source, stage or output of the file, with where it is.
type Component struct {
	Class component.Class
	// Type names its factory: a source's or output's type key; "filter",
	// "sanitize" and "route" for the native stages; "plugin" for a wasm
	// module (filter.plugins, sanitize.plugins, route.plugin, and outputs
	// of type plugin).
	Type string
	// ID is its key path ("export.audit", "filter.plugins[0]", "ingest[1]").
	ID string
	// Name is its name in counters, logs and dead letters.
	Name string
	// Role is what a plugin stage is used as: filter, transform or route;
	// export for outputs.
	Role string
	// Node holds its settings; Skip the keys in it that are not its own.
	Node *yaml.Node
	Skip []string
}

// DeadLetter is where refused events and input go.
type DeadLetter struct {
	Path string `yaml:"path"`
	Mode string `yaml:"mode"`
}

// Admin is the admin HTTP server; off unless Listen is set.
type Admin struct {
	Listen string `yaml:"listen"`
	// Token guards the endpoints that change the pipeline (enable,
	// disable): requests must carry "Authorization: Bearer <token>".
	// Empty: a random token is made at start and written to TokenFile.
	Token string `yaml:"token"`
	// TokenFile is where a made token is written (mode 0600), for the
	// operator and the CLI. Default .eventpipe/admin.token next to the
	// configuration.
	TokenFile string `yaml:"token_file"`
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

// DefaultStatsInterval is events.stats_interval when a file says nothing:
// the original design's health check is `tail -f events.log | grep
// event.stats`.
const DefaultStatsInterval = time.Minute

// Default returns the configuration an empty file means. The events
// section starts from the library's defaults, switched on, with the block
// overflow policy (a pipeline that ingests waits rather than drops).
func Default() *Config {
	ev := pipeline.DefaultConfig()
	ev.Enabled = true
	ev.Overflow = pipeline.Block
	ev.StatsInterval = DefaultStatsInterval
	return &Config{
		Events:     ev,
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
// env looks up environment variables (os.LookupEnv; nil for none): for the
// ${VAR} and ${VAR:-default} in values, and for the overrides.
func Parse(file string, b []byte, env func(string) (string, bool)) (*Config, error) {
	c := Default()
	c.File = file
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, Errors{yamlSyntaxError(file, err)}
	}
	expandErrs := expand(file, &root, env)
	d := newDecoder(file)
	if root.Kind != 0 {
		d.decode(&root, "", reflect.ValueOf(c).Elem())
	}
	c.Pos = d.pos
	errs := append(d.errs, expandErrs...)
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

// collect fills Outputs from the raw nodes, in file order.
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
	for _, n := range []*yaml.Node{&c.Filter, &c.Sanitize, &c.Route} {
		if n.Kind == 0 || n.Tag == "!!null" {
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
	}
}

// Components lists the file's components in flow order: sources, then
// stages (filter, filter plugins, sanitize, sanitize plugins, route or the
// route plugin), then outputs.
func (c *Config) Components() []Component {
	var out []Component
	for i := range c.Ingest {
		n := &c.Ingest[i]
		out = append(out, Component{Class: component.ClassSource, Type: nodeType(n), ID: fmt.Sprintf("ingest[%d]", i),
			Name: fmt.Sprintf("ingest[%d]", i), Node: n, Skip: []string{"type"}})
	}
	if len(c.Persist.Content) > 0 {
		typ := nodeType(&c.Persist)
		if typ == "" {
			typ = "jetstream"
		}
		out = append(out, Component{Class: component.ClassStore, Type: typ, ID: "persist", Name: "persist",
			Node: &c.Persist, Skip: []string{"type"}})
	}
	plugins := func(section, key, role string) {
		n := mapGet(sectionNode(c, section), key)
		if n == nil {
			return
		}
		items := []*yaml.Node{n}
		id := func(int) string { return section + "." + key }
		if n.Kind == yaml.SequenceNode {
			items = n.Content
			id = func(i int) string { return fmt.Sprintf("%s.%s[%d]", section, key, i) }
		}
		for i, p := range items {
			typ, name := nodeType(p), section+":"+nodeValue(p, "path")
			if typ == "" {
				typ = "plugin"
			} else if nodeValue(p, "path") == "" {
				name = section + ":" + typ
			}
			out = append(out, Component{Class: component.ClassStage, Type: typ, ID: id(i), Name: name, Role: role, Node: p, Skip: []string{"type"}})
		}
	}
	native := func(section string, skip string) {
		out = append(out, Component{Class: component.ClassStage, Type: section, ID: section, Name: section,
			Node: sectionNode(c, section), Skip: []string{skip}})
	}
	if len(c.Filter.Content) > 0 && !(len(c.Filter.Content) == 2 && c.Filter.Content[0].Value == "plugins") {
		native("filter", "plugins")
	}
	plugins("filter", "plugins", "filter")
	native("sanitize", "plugins")
	plugins("sanitize", "plugins", "transform")
	if mapGet(&c.Route, "plugin") != nil {
		plugins("route", "plugin", "route")
	} else {
		native("route", "plugin")
	}
	for _, o := range c.Outputs {
		out = append(out, Component{Class: component.ClassOutput, Type: o.Type, ID: "export." + o.Name, Name: o.Name,
			Role: "export", Node: o.Node, Skip: []string{"type", "retry", "queue"}})
	}
	return out
}

func sectionNode(c *Config, section string) *yaml.Node {
	switch section {
	case "filter":
		return &c.Filter
	case "sanitize":
		return &c.Sanitize
	}
	return &c.Route
}

// mapGet returns the value of key in a mapping node, or nil.
func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// nodeValue is the scalar value of key in a mapping node, or "".
func nodeValue(n *yaml.Node, key string) string {
	if v := mapGet(n, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// nodeType reads the "type" key of a mapping node.
func nodeType(n *yaml.Node) string { return nodeValue(n, "type") }

// OutputNames are the outputs' names in file order.
func (c *Config) OutputNames() []string {
	out := make([]string, len(c.Outputs))
	for i, o := range c.Outputs {
		out[i] = o.Name
	}
	return out
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

// Key is the component's setting key as a component of its own (an
// output's retry settings), or one with no settings when it is absent.
func (c Component) Key(key string) Component {
	return Component{Class: c.Class, ID: c.ID + "." + key, Name: c.Name, Node: mapGet(c.Node, key)}
}

// SetKeys lists the keys the file sets for the component (its own).
func (c Component) SetKeys() []string {
	var out []string
	if c.Node == nil || c.Node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(c.Node.Content); i += 2 {
		if k := c.Node.Content[i].Value; !contains(c.Skip, k) {
			out = append(out, k)
		}
	}
	return out
}

// SameIngest reports whether o defines the same sources and store as c,
// whatever lines they stand on: both are built once per process.
func (c *Config) SameIngest(o *Config) bool {
	if len(c.Ingest) != len(o.Ingest) || !sameNode(&c.Persist, &o.Persist) {
		return false
	}
	for i := range c.Ingest {
		if !sameNode(&c.Ingest[i], &o.Ingest[i]) {
			return false
		}
	}
	return true
}

// sameNode compares two nodes by content, not position.
func sameNode(x, y *yaml.Node) bool {
	if len(x.Content) == 0 && len(y.Content) == 0 {
		return true
	}
	a, errA := yaml.Marshal(x)
	b, errB := yaml.Marshal(y)
	return errA == nil && errB == nil && string(a) == string(b)
}
