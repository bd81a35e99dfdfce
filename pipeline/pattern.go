package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gobwas/glob"
)

// Pattern matches event types. It is a segment-aware glob over '.':
//
//   - any run of characters within one segment
//     **       any run of characters across segments (including none)
//     ?        one character within a segment
//     [abc]    one of a, b, c ([!abc] none of them; [a-z] a range)
//     {a,b}    either alternative (each may hold the other forms)
//
// A pattern that is exactly "*" (or "**") matches every type. Patterns are
// compiled once; Match is safe for concurrent use. docs/patterns.md has the
// full table of examples.
type Pattern struct {
	src   string
	all   bool
	exact bool            // no meta characters: compare strings
	alts  []*glob.Pattern // the pattern with its {a,b} alternatives expanded
}

// CompilePattern compiles a type pattern.
func CompilePattern(p string) (Pattern, error) {
	if p == "" {
		return Pattern{}, fmt.Errorf("pattern is empty")
	}
	if p == "*" || p == "**" {
		return Pattern{src: p, all: true}, nil
	}
	if !strings.ContainsAny(p, `*?[]{}\`) {
		if msg := typeError(p); msg != "" && strings.Contains(msg, "character") {
			return Pattern{}, fmt.Errorf("pattern %q: %s", p, strings.TrimPrefix(msg, "type "+quote(p)+" "))
		}
		return Pattern{src: p, exact: true}, nil
	}
	if _, err := glob.Compile(p, '.'); err != nil {
		return Pattern{}, &PatternError{Pattern: p, Err: err}
	}
	// Alternatives are expanded into plain globs: each matches in a few
	// nanoseconds where the library's backtracking over {a,b} takes ~150 ns.
	pt := Pattern{src: p}
	for _, e := range expandBraces(p, maxExpansions) {
		g, err := glob.Compile(e, '.')
		if err != nil {
			return Pattern{}, &PatternError{Pattern: p, Err: err}
		}
		pt.alts = append(pt.alts, g)
	}
	return pt, nil
}

// PatternError is a malformed pattern. Offset is the byte offset in the
// pattern where the problem was found, or -1.
type PatternError struct {
	Pattern string
	Err     error
}

func (e *PatternError) Error() string { return fmt.Sprintf("pattern %q: %v", e.Pattern, e.Err) }
func (e *PatternError) Unwrap() error { return e.Err }

// Offset is where in the pattern the error is, or -1.
func (e *PatternError) Offset() int {
	var se *glob.SyntaxError
	if errors.As(e.Err, &se) {
		return se.Offset
	}
	return -1
}

// maxExpansions bounds brace expansion; a pattern with more alternatives is
// matched by the library's own alternation.
const maxExpansions = 32

// expandBraces returns the patterns that p's {a,b} alternatives stand for,
// or p alone when there are none or more than limit. Escapes are kept.
func expandBraces(p string, limit int) []string {
	open := -1
	depth := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '[':
			for i++; i < len(p) && p[i] != ']'; i++ {
				if p[i] == '\\' {
					i++
				}
			}
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			depth--
			if depth == 0 {
				var out []string
				for _, alt := range splitAlternatives(p[open+1 : i]) {
					for _, rest := range expandBraces(p[:open]+alt+p[i+1:], limit) {
						out = append(out, rest)
						if len(out) > limit {
							return []string{p}
						}
					}
				}
				return out
			}
		}
	}
	return []string{p}
}

// splitAlternatives splits the inside of a {...} at its top-level commas.
func splitAlternatives(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// MustCompilePattern is CompilePattern that panics on error, for patterns
// fixed in code.
func MustCompilePattern(p string) Pattern {
	pt, err := CompilePattern(p)
	if err != nil {
		panic(err)
	}
	return pt
}

// Match reports whether the event type t matches.
func (p Pattern) Match(t string) bool {
	switch {
	case p.all:
		return true
	case p.exact:
		return p.src == t
	}
	for _, g := range p.alts {
		if g.Match(t) {
			return true
		}
	}
	return false
}

// String returns the source text of the pattern.
func (p Pattern) String() string { return p.src }

// MatchesAll reports whether the pattern is "*" or "**".
func (p Pattern) MatchesAll() bool { return p.all }

// PatternSet is a list of patterns; it matches a type that any of them
// matches. The zero PatternSet matches nothing.
type PatternSet struct {
	all      bool
	patterns []Pattern
}

// CompilePatterns compiles every pattern, reporting all errors at once.
func CompilePatterns(ps []string) (PatternSet, error) {
	var set PatternSet
	var errs []string
	for _, p := range ps {
		pt, err := CompilePattern(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if pt.all {
			set.all = true
		}
		set.patterns = append(set.patterns, pt)
	}
	if errs != nil {
		return PatternSet{}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return set, nil
}

// Match reports whether any pattern matches t.
func (s *PatternSet) Match(t string) bool {
	if s.all {
		return true
	}
	for i := range s.patterns {
		if s.patterns[i].Match(t) {
			return true
		}
	}
	return false
}

// Len is the number of patterns in the set.
func (s *PatternSet) Len() int { return len(s.patterns) }

// Strings returns the source text of the patterns.
func (s *PatternSet) Strings() []string {
	out := make([]string, len(s.patterns))
	for i, p := range s.patterns {
		out[i] = p.src
	}
	return out
}
