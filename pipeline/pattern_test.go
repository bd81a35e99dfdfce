package pipeline_test

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
)

// TestPatternsDocTable checks every row of the examples table in
// docs/patterns.md, so the documentation cannot drift from the code.
func TestPatternsDocTable(t *testing.T) {
	f, err := os.Open("../docs/patterns.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := 0
	inExamples := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## Examples") {
			inExamples = true
			continue
		}
		if !inExamples || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("malformed row %q", line)
		}
		pat := strings.Trim(strings.TrimSpace(cells[0]), "`")
		typ := strings.Trim(strings.TrimSpace(cells[1]), "`")
		want := strings.TrimSpace(cells[2]) == "yes"
		p, err := pipeline.CompilePattern(pat)
		if err != nil {
			t.Errorf("CompilePattern(%q): %v", pat, err)
			continue
		}
		if got := p.Match(typ); got != want {
			t.Errorf("pattern %q on %q: got %v, want %v", pat, typ, got, want)
		}
		rows++
	}
	if rows < 30 {
		t.Fatalf("read only %d example rows from docs/patterns.md", rows)
	}
}

func TestCompilePatternErrors(t *testing.T) {
	for _, p := range []string{"", "agent.[abc", "agent.{a,b", "agent completed"} {
		if _, err := pipeline.CompilePattern(p); err == nil {
			t.Errorf("CompilePattern(%q): no error", p)
		}
	}
}

func TestPatternSet(t *testing.T) {
	set, err := pipeline.CompilePatterns([]string{"agent.*", "error.*"})
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]bool{"agent.started": true, "error.x": true, "tool.x": false} {
		if got := set.Match(typ); got != want {
			t.Errorf("%s: got %v want %v", typ, got, want)
		}
	}
	if _, err := pipeline.CompilePatterns([]string{"ok.*", "bad.[", "worse.{"}); err == nil || !strings.Contains(err.Error(), "bad.[") || !strings.Contains(err.Error(), "worse.{") {
		t.Errorf("want both errors reported, got %v", err)
	}
	var empty pipeline.PatternSet
	if empty.Match("agent.started") {
		t.Error("empty set matched")
	}
}

func FuzzCompilePattern(f *testing.F) {
	for _, s := range []string{"*", "agent.*", "**.failed", "{a,b}.[c-d]?", "[!x]*", `\*.x`, "a.{b,{c,d}}", "[", "{"} {
		f.Add(s, "agent.completed")
	}
	f.Fuzz(func(t *testing.T, pat, typ string) {
		p, err := pipeline.CompilePattern(pat)
		if err != nil {
			return
		}
		_ = p.Match(typ) // must not panic
		if p.MatchesAll() && !p.Match(typ) {
			t.Fatalf("%q matches all but not %q", pat, typ)
		}
		if !strings.ContainsAny(pat, `*?[]{}\`) && p.Match(typ) != (pat == typ) {
			t.Fatalf("literal %q on %q", pat, typ)
		}
	})
}

func BenchmarkPatternMatch(b *testing.B) {
	cases := []struct{ pat, typ string }{
		{"agent.*", "agent.completed"},
		{"*.failed", "workflow.failed"},
		{"**.debug", "agent.tool.debug"},
		{"agent.completed", "agent.completed"},
		{"{agent,tool}.*", "tool.invoked"},
		{"agent.*", "workflow.step.completed"},
	}
	for _, c := range cases {
		p := pipeline.MustCompilePattern(c.pat)
		b.Run(c.pat+"~"+c.typ, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match(c.typ)
			}
		})
	}
}
