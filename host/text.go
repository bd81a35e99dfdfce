package host

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds on text a plugin hands the host. Plugin text is data, never
// formatting: it reaches logs, metrics and dead-letter records only
// through pluginText, which caps its length and escapes what could forge
// a line or drive a terminal.
const (
	MaxLogText    = 1024 // one log line's message
	MaxErrorText  = 1024 // eventpipe_error, as logged and dead-lettered
	MaxMetricName = 64
	MaxMetrics    = 64 // distinct custom metric names per plugin
)

// pluginText returns b as printable text of at most max bytes (plus a
// note of what was cut): control characters, the Unicode line and
// paragraph separators, bidirectional overrides and invalid UTF-8 are
// written as escapes (\n, \x1b, \u202e, \ufffd).
func pluginText(b []byte, max int) string { return pluginTextOf(b, len(b), max) }

// pluginTextOf is pluginText of the first bytes of a text total bytes long
// (a caller reads no more than it may print).
func pluginTextOf(b []byte, total, max int) string {
	var sb strings.Builder
	sb.Grow(min(len(b), max) + 16)
	i := 0
	for i < len(b) {
		if sb.Len() >= max {
			fmt.Fprintf(&sb, "…(%d more bytes)", total-i)
			return sb.String()
		}
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			sb.WriteString(`\ufffd`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&sb, `\x%02x`, r)
		case r == 0x2028 || r == 0x2029 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			sb.WriteRune(r)
		}
		i += n
	}
	if total > len(b) {
		fmt.Fprintf(&sb, "…(%d more bytes)", total-len(b))
	}
	return sb.String()
}

// validMetricName reports whether a plugin's metric name is one the host
// keeps: letters, digits, '_' and ':', at most MaxMetricName bytes.
func validMetricName(b []byte) bool {
	if len(b) == 0 || len(b) > MaxMetricName {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}
