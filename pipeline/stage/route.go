package stage

import (
	"context"
	"fmt"

	"github.com/eventpipe/eventpipe/pipeline"
)

// RouteRule sends events whose type matches any of Types to the outputs
// (by index) in To. The first matching rule decides unless Continue.
type RouteRule struct {
	Types    []string
	To       []int
	Continue bool
}

// Router is the native route stage: it sets each kept event's Routes bit
// set. An event that no rule matches goes to Default; with no default it is
// dropped, counted with reason "unrouted".
type Router struct {
	rules []compiledRule
	def   uint64
}

type compiledRule struct {
	types     pipeline.PatternSet
	to        uint64
	continue_ bool
}

// NewRouter compiles rules; output indexes must be below 64.
func NewRouter(rules []RouteRule, def []int) (*Router, error) {
	r := &Router{}
	bits := func(idx []int) (uint64, error) {
		var b uint64
		for _, i := range idx {
			if i < 0 || i >= 64 {
				return 0, fmt.Errorf("route: output index %d out of range", i)
			}
			b |= 1 << uint(i)
		}
		return b, nil
	}
	for i, rule := range rules {
		ps, err := pipeline.CompilePatterns(rule.Types)
		if err != nil {
			return nil, fmt.Errorf("route: rules[%d]: %w", i, err)
		}
		to, err := bits(rule.To)
		if err != nil {
			return nil, err
		}
		r.rules = append(r.rules, compiledRule{ps, to, rule.Continue})
	}
	var err error
	if r.def, err = bits(def); err != nil {
		return nil, err
	}
	return r, nil
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
