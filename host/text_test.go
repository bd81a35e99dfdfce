package host

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Plugin text reaches logs, dead-letter reasons and health output: whatever
// the bytes, what pluginText returns is valid UTF-8 on one line, holds no
// control character, line separator or bidirectional override, and is
// about max bytes at most; plain text shorter than max comes back as it is.
func FuzzPluginText(f *testing.F) {
	f.Add([]byte("ok\n\x1b[2Jtime=forged level=INFO msg=summary"), 16)
	f.Add([]byte("\u202eevil\u2028\xff\xc2\x85tab\tend"), 1024)
	f.Add([]byte("plain text"), 64)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max < 1 || max > 4096 {
			return
		}
		got := pluginText(b, max)
		if !utf8.ValidString(got) {
			t.Fatalf("not UTF-8: %q", got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029 ||
				r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
				t.Fatalf("%U left in %q", r, got)
			}
		}
		// The cut comes after the rune or escape that reaches max, and
		// says how many bytes were left out.
		if len(got) > max+len(`\ufffd`)+len("…(4294967296 more bytes)") {
			t.Fatalf("%d bytes for a maximum of %d", len(got), max)
		}
		if plain := !strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 || r >= 0x7f }); plain && len(b) < max && got != string(b) {
			t.Fatalf("plain %q came back as %q", b, got)
		}
	})
}
