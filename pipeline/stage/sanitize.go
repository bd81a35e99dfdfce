package stage

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/eventpipe/eventpipe/pipeline"
)

// SanitizeConfig configures Sanitize. The zero value does nothing; see
// DefaultSanitizeConfig for what eventpipe applies without being asked.
type SanitizeConfig struct {
	// Paths cleans file paths found in strings: a home directory
	// (/home/<user>, /Users/<user>, /root, C:\Users\<user>) becomes "~",
	// and "." and ".." segments are resolved.
	Paths bool `json:"paths"`
	// Secrets redacts API keys, bearer and JWT tokens, passwords in URLs,
	// AWS keys, private key blocks and key=value secrets in every string.
	Secrets bool `json:"secrets"`
	// ExtraPatterns are more regular expressions whose matches are redacted.
	ExtraPatterns []string `json:"extra_patterns,omitempty"`
	// Replacement replaces a secret. Default "[REDACTED]".
	Replacement string `json:"replacement,omitempty"`
	// DenyFields are data keys removed wherever they appear (matched
	// without regard to case), unless listed in AllowFields.
	DenyFields  []string `json:"deny_fields,omitempty"`
	AllowFields []string `json:"allow_fields,omitempty"`
	// HashFields are data keys whose values become "hmac-sha256:<hex>",
	// keyed with HashKey, so equal values stay joinable but unreadable.
	HashFields []string `json:"hash_fields,omitempty"`
	HashKey    []byte   `json:"hash_key,omitempty"`
}

// DefaultSanitizeConfig is what the default pipeline applies.
func DefaultSanitizeConfig() SanitizeConfig {
	return SanitizeConfig{
		Paths: true, Secrets: true, Replacement: "[REDACTED]",
		DenyFields: []string{"password", "passwd", "secret", "api_key", "apikey", "access_token", "refresh_token", "authorization", "cookie", "ssn", "credit_card", "card_number"},
	}
}

// Sanitize is the native sanitize stage. It rewrites the data and source of
// events in place. Data that needs no change is not parsed: a cheap scan for
// the literals every rule needs comes first.
type Sanitize struct {
	cfg      SanitizeConfig
	rules    []redaction
	triggers []string // lower-case literals; a string without any needs no secret rule
	deny     map[string]bool
	hash     map[string]bool
	keys     [][]byte // `"key"` lower-case, for the cheap scan
	lower    []byte   // scratch
}

type redaction struct {
	re   *regexp.Regexp
	repl string // with ${n} references
}

// secretRules are the built-in secret patterns, most specific first.
var secretRules = []struct{ pattern, repl string }{
	{`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`, "$R"},
	{`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s"]*:)[^@/\s"]+(@)`, "${1}$R${2}"},
	{`eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`, "$R"},
	{`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}`, "${1}$R"},
	{`\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[baprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,})`, "$R"},
	{`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`, "$R"},
	{`(?i)(aws_secret_access_key["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{40}`, "${1}$R"},
	{`(?i)\b(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)[^\s&,;"']+`, "${1}${2}$R"},
}

// secretTriggers: every built-in rule's match contains one of these (lower
// case), so a string containing none is left alone without a regex.
var secretTriggers = []string{"private key", "://", "eyj", "bearer", "sk-", "gh", "github_pat_", "xox", "aiza", "glpat-", "akia", "asia", "aws_secret", "password", "passwd", "pwd", "secret", "token", "api"}

var homeDir = regexp.MustCompile(`(^|[\s"'=(\[,:])(/home/[^/\s"']+|/Users/[^/\s"']+|/root|[A-Za-z]:\\Users\\[^\\\s"']+)([/\\\s"'),\]]|$)`)
var unixPath = regexp.MustCompile(`(?:^|[\s"'=(\[])(~?/[^\s"'<>|;,()\[\]]*)`)

// NewSanitize compiles cfg.
func NewSanitize(cfg SanitizeConfig) (*Sanitize, error) {
	if cfg.Replacement == "" {
		cfg.Replacement = "[REDACTED]"
	}
	s := &Sanitize{cfg: cfg, deny: map[string]bool{}, hash: map[string]bool{}}
	if cfg.Secrets {
		for _, r := range secretRules {
			s.rules = append(s.rules, redaction{regexp.MustCompile(r.pattern), strings.ReplaceAll(r.repl, "$R", escapeRepl(cfg.Replacement))})
		}
		s.triggers = secretTriggers
	}
	for i, p := range cfg.ExtraPatterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("sanitize: extra_patterns[%d]: %w", i, err)
		}
		s.rules = append(s.rules, redaction{re, escapeRepl(cfg.Replacement)})
		s.triggers = nil // an extra pattern has no known literal: always run
	}
	allow := map[string]bool{}
	for _, k := range cfg.AllowFields {
		allow[strings.ToLower(k)] = true
	}
	for _, k := range cfg.DenyFields {
		if k = strings.ToLower(k); !allow[k] {
			s.deny[k] = true
			s.keys = append(s.keys, []byte(`"`+k+`"`))
		}
	}
	for _, k := range cfg.HashFields {
		k = strings.ToLower(k)
		s.hash[k] = true
		s.keys = append(s.keys, []byte(`"`+k+`"`))
	}
	if len(cfg.HashFields) > 0 && len(cfg.HashKey) == 0 {
		return nil, fmt.Errorf("sanitize: hash_fields needs a hash key")
	}
	return s, nil
}

func escapeRepl(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// String sanitizes one string: secrets, then paths.
func (s *Sanitize) String(str string) string {
	if len(s.rules) > 0 && s.mayHoldSecret(str) {
		for _, r := range s.rules {
			if r.re.MatchString(str) {
				str = r.re.ReplaceAllString(str, r.repl)
			}
		}
	}
	if s.cfg.Paths && strings.ContainsAny(str, "/\\") {
		str = cleanPaths(str)
	}
	return str
}

func (s *Sanitize) mayHoldSecret(str string) bool {
	if s.triggers == nil {
		return true
	}
	s.lower = appendLower(s.lower[:0], str)
	for _, t := range s.triggers {
		if bytes.Contains(s.lower, []byte(t)) {
			return true
		}
	}
	return false
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// cleanPaths shortens home directories to ~ and resolves . and .. in the
// Unix paths of str.
func cleanPaths(str string) string {
	if homeDir.MatchString(str) {
		str = homeDir.ReplaceAllString(str, "${1}~${3}")
	}
	if !strings.Contains(str, "/.") && !strings.Contains(str, "//") {
		return str
	}
	return unixPath.ReplaceAllStringFunc(str, func(m string) string {
		i := strings.IndexAny(m, "~/")
		p := m[i:]
		if !strings.Contains(p, "/.") && !strings.Contains(p, "//") {
			return m
		}
		cleaned := path.Clean(p)
		if strings.HasPrefix(p, "~/") {
			cleaned = "~/" + strings.TrimPrefix(path.Clean("/"+p[2:]), "/")
		}
		if strings.HasSuffix(p, "/") && cleaned != "/" {
			cleaned += "/"
		}
		return m[:i] + cleaned
	})
}

// needsData reports, from the raw JSON, whether data may need a change.
func (s *Sanitize) needsData(raw []byte) bool {
	if len(s.keys) > 0 {
		s.lower = appendLower(s.lower[:0], string(raw))
		for _, k := range s.keys {
			if bytes.Contains(s.lower, k) {
				return true
			}
		}
	}
	if s.cfg.Paths && bytes.ContainsAny(raw, "/\\") {
		return true
	}
	if len(s.rules) > 0 {
		if s.triggers == nil {
			return true
		}
		s.lower = appendLower(s.lower[:0], string(raw))
		for _, t := range s.triggers {
			if bytes.Contains(s.lower, []byte(t)) {
				return true
			}
		}
	}
	return false
}

// Event sanitizes ev in place and reports whether it changed.
func (s *Sanitize) Event(ev *pipeline.Event) (bool, error) {
	changed := false
	if ev.Source != "" {
		if c := s.String(ev.Source); c != ev.Source {
			ev.Source, changed = c, true
		}
	}
	if len(ev.Data) == 0 || !s.needsData(ev.Data) {
		return changed, nil
	}
	dec := json.NewDecoder(bytes.NewReader(ev.Data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return changed, fmt.Errorf("sanitize: data is not JSON: %w", err)
	}
	nv, dataChanged := s.value(v)
	if !dataChanged {
		return changed, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(nv); err != nil {
		return changed, fmt.Errorf("sanitize: %w", err)
	}
	ev.Data = bytes.TrimRight(buf.Bytes(), "\n")
	return true, nil
}

func (s *Sanitize) value(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		c := s.String(x)
		return c, c != x
	case map[string]any:
		changed := false
		for k, e := range x {
			lk := strings.ToLower(k)
			if s.deny[lk] {
				delete(x, k)
				changed = true
				continue
			}
			if s.hash[lk] {
				x[k] = s.hashValue(e)
				changed = true
				continue
			}
			if ne, c := s.value(e); c {
				x[k] = ne
				changed = true
			}
		}
		return x, changed
	case []any:
		changed := false
		for i, e := range x {
			if ne, c := s.value(e); c {
				x[i] = ne
				changed = true
			}
		}
		return x, changed
	}
	return v, false
}

func (s *Sanitize) hashValue(v any) string {
	raw, _ := json.Marshal(v)
	if str, ok := v.(string); ok {
		raw = []byte(str)
	}
	m := hmac.New(sha256.New, s.cfg.HashKey)
	m.Write(raw)
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:32]
}

// Process sanitizes every kept event of the batch. An event whose data
// cannot be sanitized is dead-lettered rather than passed on unsanitized.
func (s *Sanitize) Process(_ context.Context, b *pipeline.Batch) error {
	for i := range b.Events {
		if b.Verdicts[i] != pipeline.Keep {
			continue
		}
		if _, err := s.Event(&b.Events[i]); err != nil {
			b.Mark(i, pipeline.DeadLetter, "sanitize", err.Error())
		}
	}
	return nil
}
