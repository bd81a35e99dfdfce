package stage

import (
	"path"
	"strings"
	"testing"
)

// cleanPath and cleanPaths are the allocation-free rewriters as string
// functions, for the comparison.
func cleanPath(p string) string { return string(appendCleanPath(nil, p)) }

func cleanPaths(str string) string {
	if out, changed := cleanPathsInto(nil, str, "[R]"); changed {
		return string(out)
	}
	return str
}

// The reference implementations the allocation-free ones replaced, kept
// to hold them to the same results on fuzzed input.

func refCleanPath(p string) string {
	if len(p) > 1 && (p[0] == '/' || strings.HasPrefix(p, "~/")) && (strings.Contains(p, "/.") || strings.Contains(p, "//")) {
		trailing := strings.HasSuffix(p, "/")
		var c string
		if p[0] == '~' {
			c = "~" + path.Clean("/"+p[2:])
		} else {
			c = path.Clean(p)
		}
		if trailing && !strings.HasSuffix(c, "/") {
			c += "/"
		}
		p = c
	}
	if rest, ok := cutHome(p); ok {
		p = "~" + rest
	}
	return p
}

func refCleanPaths(str string) string {
	var b []byte
	last := 0
	for i := 0; i < len(str); i++ {
		if i > 0 && !isPathDelim(str[i-1]) {
			continue
		}
		c := str[i]
		isDrive := i+2 < len(str) && (c|0x20 >= 'a' && c|0x20 <= 'z') && str[i+1] == ':' && str[i+2] == '\\'
		climbs := strings.HasPrefix(str[i:], "../") || strings.HasPrefix(str[i:], `..\`)
		if c != '/' && !(c == '~' && i+1 < len(str) && str[i+1] == '/') && !isDrive && !climbs {
			continue
		}
		end := i
		for end < len(str) && !isPathEnd(str[end]) {
			end++
		}
		tok := str[i:end]
		if strings.HasPrefix(tok, "//") {
			i = end
			continue
		}
		clean := refCleanPath(tok)
		if climbs {
			clean = "[R]"
		}
		if clean != tok {
			b = append(append(b, str[last:i]...), clean...)
			last = end
		}
		i = end
	}
	if b == nil {
		return str
	}
	return string(append(b, str[last:]...))
}

func FuzzCleanPathsMatchesReference(f *testing.F) {
	for _, s := range []string{"open /home/alice/work/../notes.md: x", "~/a/./b//c/", "C:\\Users\\bob\\x", "/root/.ssh", "a=/tmp/../..", "//host/x /../", "/", ".", "/home/", "x /a/b/../../..", "see ../../etc/passwd", `..\..\x`, "a ../", "[..\\]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendPathClean(nil, s)), path.Clean(s); got != want {
			t.Fatalf("appendPathClean(%q) = %q, path.Clean %q", s, got, want)
		}
		if got, want := cleanPath(s), refCleanPath(s); got != want {
			t.Fatalf("cleanPath(%q) = %q, want %q", s, got, want)
		}
		if got, want := cleanPaths(s), refCleanPaths(s); got != want {
			t.Fatalf("cleanPaths(%q) = %q, want %q", s, got, want)
		}
		// Into a buffer that already holds something: appended after it.
		out, changed := cleanPathsInto([]byte("prefix"), s, "[R]")
		if want := refCleanPaths(s); changed != (want != s) || changed && string(out) != "prefix"+want || !changed && string(out) != "prefix" {
			t.Fatalf("cleanPathsInto(%q) = %q %v", s, out, changed)
		}
	})
}

// A changed string costs the stage nothing but the copy the rewriter makes.
func TestSanitizeStringAllocatesOnlyTheResult(t *testing.T) {
	s, err := NewSanitize(DefaultSanitizeConfig())
	if err != nil {
		t.Fatal(err)
	}
	in := "open /home/alice/work/../notes-7.md: token=abc123"
	want := s.String(in)
	if want == in || !strings.Contains(want, "~/notes-7.md") || strings.Contains(want, "abc123") {
		t.Fatalf("String = %q", want)
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.stringIn(in, true, true, true) }); n != 0 {
		t.Errorf("stringIn allocates %.0f times", n)
	}
}
