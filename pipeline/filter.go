package pipeline

import "strings"

// Category is the kind of an event as the [events] switches see it, derived
// from its type (docs/event-format.md, "Categories").
type Category uint8

const (
	CategoryOther  Category = iota
	CategoryTiming          // first or last segment "timing"
	CategoryState           // first segment "state", last "state" or "state_changed"
	CategoryDebug           // first or last segment "debug"
)

// CategoryOf returns the category of an event type.
func CategoryOf(t string) Category {
	first, last := t, t
	if i := strings.IndexByte(t, '.'); i >= 0 {
		first = t[:i]
	}
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		last = t[i+1:]
	}
	switch {
	case first == "debug" || last == "debug":
		return CategoryDebug
	case first == "state" || last == "state" || last == "state_changed":
		return CategoryState
	case first == "timing" || last == "timing":
		return CategoryTiming
	}
	return CategoryOther
}

// FilterConfig is the type filter applied on the fast path: the category
// switches and include/exclude patterns of the original [events] section.
type FilterConfig struct {
	EmitTimingEvents bool `yaml:"emit_timing_events"` // default true (see DefaultConfig)
	EmitStateEvents  bool `yaml:"emit_state_events"`  // default false
	EmitDebugEvents  bool `yaml:"emit_debug_events"`  // default false
	// IncludeTypes and ExcludeTypes are type patterns; exclude wins, and
	// an empty include means all types. In pipeline.yaml they belong to the
	// filter stage, which hands them to the bus's fast path.
	IncludeTypes []string `yaml:"-"`
	ExcludeTypes []string `yaml:"-"`
}

// Filter decides on the fast path whether a type is emitted. The same Filter
// serves the bus and eventtest.Collector, so tests see what production would.
type Filter struct {
	timing, state, debug bool
	include              PatternSet
	exclude              PatternSet
	includeAll           bool
}

// NewFilter compiles a FilterConfig.
func NewFilter(c FilterConfig) (*Filter, error) {
	inc, err := CompilePatterns(c.IncludeTypes)
	if err != nil {
		return nil, err
	}
	exc, err := CompilePatterns(c.ExcludeTypes)
	if err != nil {
		return nil, err
	}
	return &Filter{
		timing: c.EmitTimingEvents, state: c.EmitStateEvents, debug: c.EmitDebugEvents,
		include: inc, exclude: exc, includeAll: inc.Len() == 0 || inc.all,
	}, nil
}

// Allow reports whether an event of type t passes. Exclude wins; an empty
// include list means every type.
func (f *Filter) Allow(t string) bool {
	if f == nil {
		return true
	}
	switch CategoryOf(t) {
	case CategoryDebug:
		if !f.debug {
			return false
		}
	case CategoryState:
		if !f.state {
			return false
		}
	case CategoryTiming:
		if !f.timing {
			return false
		}
	}
	if f.exclude.Len() > 0 && f.exclude.Match(t) {
		return false
	}
	return f.includeAll || f.include.Match(t)
}

// TimingEvents reports whether timing events (and durations) are on.
func (f *Filter) TimingEvents() bool { return f == nil || f.timing }
