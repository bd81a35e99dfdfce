package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// Condition is one test on an event. Field is "type", "source", "id",
// "language", "correlation_id", "causation_id", "tags", a CloudEvents
// attribute ("subject", "datacontenttype", "dataschema", or
// "extensions.<name>"), or "data.a.b" for a field of data ("data" alone
// is the whole payload). Op is one of ConditionOps.
type Condition struct {
	Field string `json:"field" yaml:"field"`
	Op    string `json:"op" yaml:"op"`
	Value any    `json:"value,omitempty" yaml:"value"`
}

// ConditionOps are the operators a condition may use.
var ConditionOps = []string{"eq", "ne", "gt", "gte", "lt", "lte", "exists", "not_exists", "regex", "not_regex", "in"}

// FilterConfig configures a Filter: an event is kept when its type matches
// (IncludeTypes empty: all; ExcludeTypes win) and every condition holds.
// In pipeline.yaml it is the filter section; in the runner, the type
// patterns also run on the bus's fast path, before an event is queued.
type FilterConfig struct {
	IncludeTypes []string    `json:"include_types,omitempty" yaml:"include_types"`
	ExcludeTypes []string    `json:"exclude_types,omitempty" yaml:"exclude_types"`
	Conditions   []Condition `json:"conditions,omitempty" yaml:"conditions"`
}

// Validate reports every problem at once, as *pipeline.FieldError.
func (c *FilterConfig) Validate() error {
	_, err := NewFilter(*c)
	return err
}

// Filter is the native filter stage.
type Filter struct {
	component.NoLifecycle
	include, exclude pipeline.PatternSet
	conds            []condition
	needData         bool
	types            [2][]string // as configured, for HandOverTypePatterns
}

type condition struct {
	src   Condition
	path  []string // for data fields, the keys after "data"
	field string   // for top-level fields
	re    *regexp.Regexp
	value any // normalised: float64, string, bool, nil, []any
	// numeric: gt, gte, lt or lte against a number (num), the common
	// case read without boxing.
	numeric bool
	num     float64
}

// holdsNumber is holds for a numeric condition and a number.
func (c *condition) holdsNumber(f float64) bool {
	switch c.src.Op {
	case "gt":
		return f > c.num
	case "gte":
		return f >= c.num
	case "lt":
		return f < c.num
	}
	return f <= c.num
}

// NewFilter compiles cfg. Its error joins a *pipeline.FieldError for every
// problem.
func NewFilter(cfg FilterConfig) (*Filter, error) {
	f := &Filter{types: [2][]string{cfg.IncludeTypes, cfg.ExcludeTypes}}
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, pipeline.FieldErrorf(field, format, args...))
	}
	f.include = compilePatterns("include_types", cfg.IncludeTypes, &errs)
	f.exclude = compilePatterns("exclude_types", cfg.ExcludeTypes, &errs)
	for i, c := range cfg.Conditions {
		at := fmt.Sprintf("conditions[%d]", i)
		cc := condition{src: c, value: normalize(c.Value)}
		switch {
		case c.Field == "":
			fail(at, "needs field")
		case c.Field == "data" || strings.HasPrefix(c.Field, "data."):
			f.needData = true
			if c.Field != "data" {
				cc.path = strings.Split(strings.TrimPrefix(c.Field, "data."), ".")
			} else {
				cc.path = []string{}
			}
		case c.Field == "type", c.Field == "source", c.Field == "id", c.Field == "language",
			c.Field == "correlation_id", c.Field == "causation_id", c.Field == "tags",
			c.Field == "subject", c.Field == "datacontenttype", c.Field == "dataschema":
			cc.field = c.Field
		case strings.HasPrefix(c.Field, "extensions.") && pipeline.ValidCloudName(strings.TrimPrefix(c.Field, "extensions.")):
			cc.field = c.Field
		default:
			fail(at+".field", "unknown field %q (want type, source, id, language, correlation_id, causation_id, tags, subject, datacontenttype, dataschema, extensions.<name> or data.<path>)", c.Field)
		}
		switch c.Op {
		case "eq", "ne":
			if c.Value == nil {
				fail(at+".value", "needs value")
			}
		case "exists", "not_exists":
			if c.Value != nil {
				fail(at+".value", "has no effect with op %s", c.Op)
			}
		case "gt", "gte", "lt", "lte":
			switch v := cc.value.(type) {
			case float64:
				cc.numeric, cc.num = true, v
			case string:
			default:
				fail(at+".value", "want a number or string to compare with")
			}
		case "regex", "not_regex":
			s, ok := c.Value.(string)
			if !ok {
				fail(at+".value", "want a regular expression string")
				break
			}
			var err error
			if cc.re, err = regexp.Compile(s); err != nil {
				fail(at+".value", "not a regular expression: %v", err)
			}
		case "in":
			if _, ok := cc.value.([]any); !ok {
				fail(at+".value", "want a list with op in")
			}
		default:
			fail(at+".op", "unknown op %q (want one of %s)", c.Op, strings.Join(ConditionOps, ", "))
		}
		f.conds = append(f.conds, cc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// compilePatterns compiles type patterns, adding a FieldError per bad one.
func compilePatterns(field string, pats []string, errs *[]error) pipeline.PatternSet {
	for i, p := range pats {
		if _, err := pipeline.CompilePattern(p); err != nil {
			*errs = append(*errs, pipeline.FieldErrorf(fmt.Sprintf("%s[%d]", field, i), "%v", err))
		}
	}
	ps, _ := pipeline.CompilePatterns(pats)
	return ps
}

// normalize turns YAML/JSON values into the forms decoded JSON uses.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case json.Number:
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	}
	return v
}

// Keep reports whether the filter keeps ev, and if not, why.
func (f *Filter) Keep(ev *pipeline.Event) (bool, string) {
	if f.exclude.Len() > 0 && f.exclude.Match(ev.Type) {
		return false, "type excluded"
	}
	if f.include.Len() > 0 && !f.include.Match(ev.Type) {
		return false, "type not included"
	}
	if len(f.conds) == 0 {
		return true, ""
	}
	for i := range f.conds {
		c := &f.conds[i]
		if c.numeric && c.path != nil {
			// A number against a number: read without boxing it.
			var holds bool
			if f, _, number := lookupNumber(ev.Data, c.path); number {
				holds = c.holdsNumber(f)
			} else {
				holds = c.holds(nil, false) // absent, or not a number: the comparison fails
			}
			if !holds {
				return false, fmt.Sprintf("condition %s %s failed", c.src.Field, c.src.Op)
			}
			continue
		}
		var v any
		var present bool
		if c.path != nil {
			if len(ev.Data) > 0 {
				v, present = lookupRaw(ev.Data, c.path)
			}
		} else {
			v, present = topField(ev, c.field)
		}
		if !c.holds(v, present) {
			return false, fmt.Sprintf("condition %s %s failed", c.src.Field, c.src.Op)
		}
	}
	return true, ""
}

func topField(ev *pipeline.Event, f string) (any, bool) {
	var s string
	switch f {
	case "type":
		s = ev.Type
	case "source":
		s = ev.Source
	case "id":
		s = ev.ID
	case "language":
		s = ev.Language
	case "correlation_id":
		s = ev.CorrelationID
	case "causation_id":
		s = ev.CausationID
	case "subject":
		if ev.Cloud != nil {
			s = ev.Cloud.Subject
		}
	case "datacontenttype":
		if ev.Cloud != nil {
			s = ev.Cloud.DataContentType
		}
	case "dataschema":
		if ev.Cloud != nil {
			s = ev.Cloud.DataSchema
		}
	case "tags":
		if len(ev.Tags) == 0 {
			return nil, false
		}
		out := make([]any, len(ev.Tags))
		for i, t := range ev.Tags {
			out[i] = t
		}
		return out, true
	default:
		if name, ok := strings.CutPrefix(f, "extensions."); ok && ev.Cloud != nil && len(ev.Cloud.Extensions) > 0 {
			return lookupRaw(ev.Cloud.Extensions, []string{name})
		}
	}
	return s, s != ""
}

func (c *condition) holds(v any, present bool) bool {
	switch c.src.Op {
	case "exists":
		return present
	case "not_exists":
		return !present
	}
	if !present {
		return c.src.Op == "ne" || c.src.Op == "not_regex"
	}
	switch c.src.Op {
	case "eq":
		return equal(v, c.value)
	case "ne":
		return !equal(v, c.value)
	case "in":
		// A list field is "in" when any of its items is.
		if items, ok := v.([]any); ok {
			for _, it := range items {
				if contains(c.value.([]any), it) {
					return true
				}
			}
			return false
		}
		return contains(c.value.([]any), v)
	case "regex":
		s, ok := v.(string)
		return ok && c.re.MatchString(s)
	case "not_regex":
		s, ok := v.(string)
		return !ok || !c.re.MatchString(s)
	}
	cmp, ok := compare(v, c.value)
	if !ok {
		return false
	}
	switch c.src.Op {
	case "gt":
		return cmp > 0
	case "gte":
		return cmp >= 0
	case "lt":
		return cmp < 0
	case "lte":
		return cmp <= 0
	}
	return false
}

func contains(list []any, v any) bool {
	for _, x := range list {
		if equal(x, v) {
			return true
		}
	}
	return false
}

func equal(a, b any) bool {
	switch x := a.(type) {
	case float64, string, bool, nil:
		return a == b
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	}
	return 0, false
}

// Process marks the events the filter does not keep as dropped.
func (f *Filter) Process(_ context.Context, b *pipeline.Batch) error {
	for i := range b.Events {
		if b.Verdicts[i] != pipeline.Keep {
			continue
		}
		if ok, why := f.Keep(&b.Events[i]); !ok {
			b.Mark(i, pipeline.Drop, "filter", why)
		}
	}
	return nil
}
