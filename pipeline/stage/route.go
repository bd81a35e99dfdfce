package stage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// RouteRule sends events whose type matches any of Types to the named
// outputs To. The first matching rule decides unless Continue.
type RouteRule struct {
	Types    []string `yaml:"types"`
	To       []string `yaml:"to"`
	Continue bool     `yaml:"continue"`
}

// RouteConfig configures a Router: the route section of pipeline.yaml.
// An event no rule matches goes to Default.
type RouteConfig struct {
	Rules   []RouteRule `yaml:"rules"`
	Default []string    `yaml:"default"`
}

// Validate checks what can be checked without the output names: patterns,
// rules with something to match and somewhere to go, unreachable rules.
func (c *RouteConfig) Validate() error {
	var errs []error
	catchAll := -1
	for i, r := range c.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		if catchAll >= 0 {
			errs = append(errs, pipeline.FieldErrorf(at, "unreachable: rule %d matches every type and has no continue: true", catchAll))
		}
		if len(r.Types) == 0 {
			errs = append(errs, pipeline.FieldErrorf(at, "needs types (patterns)"))
		}
		if len(r.To) == 0 {
			errs = append(errs, pipeline.FieldErrorf(at, "needs to (output names)"))
		}
		compilePatterns(at+".types", r.Types, &errs)
		for _, t := range r.Types {
			if (t == "*" || t == "**") && !r.Continue && catchAll < 0 {
				catchAll = i
			}
		}
	}
	if catchAll >= 0 && len(c.Default) > 0 {
		errs = append(errs, pipeline.FieldErrorf("default", "unreachable: rule %d matches every type first", catchAll))
	}
	return errors.Join(errs...)
}

// Router is the native route stage: it sets each kept event's Routes bit
// set. An event that no rule matches goes to Default; with no default it is
// dropped, counted with reason "unrouted".
type Router struct {
	component.NoLifecycle
	rules []compiledRule
	def   uint64
}

type compiledRule struct {
	types     pipeline.PatternSet
	to        uint64
	continue_ bool
}

// NewRouter compiles cfg against the pipeline's outputs (bit i of a route
// set is outputs[i]; at most 64). Every output must be reachable: one no
// rule or default names is an error, as is a name that is not an output.
func NewRouter(cfg RouteConfig, outputs []string) (*Router, error) {
	errs := []error{cfg.Validate()}
	if len(outputs) > 64 {
		errs = append(errs, fmt.Errorf("at most 64 outputs, got %d", len(outputs)))
	}
	index := map[string]int{}
	for i, o := range outputs {
		index[o] = i
	}
	routed := map[string]bool{}
	bits := func(at string, names []string) uint64 {
		var b uint64
		for j, name := range names {
			i, ok := index[name]
			if !ok {
				known := strings.Join(outputs, ", ")
				if known == "" {
					known = "none"
				}
				errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("%s[%d]", at, j), "unknown output %q (defined: %s)", name, known))
				continue
			}
			routed[name] = true
			b |= 1 << uint(i&63)
		}
		return b
	}
	r := &Router{}
	for i, rule := range cfg.Rules {
		ps, _ := pipeline.CompilePatterns(rule.Types)
		r.rules = append(r.rules, compiledRule{ps, bits(fmt.Sprintf("rules[%d].to", i), rule.To), rule.Continue})
	}
	r.def = bits("default", cfg.Default)
	if len(outputs) > 0 && len(cfg.Rules) == 0 && len(cfg.Default) == 0 {
		errs = append(errs, errors.New("no route: set route.default"))
	} else {
		for _, o := range outputs {
			if !routed[o] {
				errs = append(errs, &UnroutedError{Output: o})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// UnroutedError says an output is never routed to. Its position is the
// output's own definition, not the route section's.
type UnroutedError struct{ Output string }

func (e *UnroutedError) Error() string {
	return fmt.Sprintf("output %q is never routed to: add it to route.default or to a rule", e.Output)
}

// Route returns the outputs (bit set) for an event type.
func (r *Router) Route(typ string) uint64 {
	var out uint64
	matched := false
	for i := range r.rules {
		rule := &r.rules[i]
		if rule.types.Match(typ) {
			out |= rule.to
			matched = true
			if !rule.continue_ {
				break
			}
		}
	}
	if !matched {
		return r.def
	}
	return out
}

// Process sets the routes of every kept event.
func (r *Router) Process(_ context.Context, b *pipeline.Batch) error {
	for i := range b.Events {
		if b.Verdicts[i] != pipeline.Keep {
			continue
		}
		b.Routes[i] = r.Route(b.Events[i].Type)
		if b.Routes[i] == 0 {
			b.Mark(i, pipeline.Drop, "route", "unrouted: no rule matched and no default")
		}
	}
	return nil
}

// KeyPath is where the unrouted output is defined in pipeline.yaml.
func (e *UnroutedError) KeyPath() string { return "export." + e.Output }
