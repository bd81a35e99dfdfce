package stage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unsafe"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// SanitizeConfig configures Sanitize. The zero value does nothing; see
// DefaultSanitizeConfig for what eventpipe applies without being asked.
type SanitizeConfig struct {
	// Paths cleans file paths found in strings: a home directory
	// (/home/<user>, /Users/<user>, /root, C:\Users\<user>) becomes "~",
	// "." and ".." segments are resolved, and a relative path that climbs
	// out of where it starts ("../../etc/passwd") is redacted whole: it
	// says where the sender's files are relative to one another.
	Paths bool `json:"paths" yaml:"paths"`
	// Secrets redacts API keys, bearer and JWT tokens, HTTP Basic
	// credentials, passwords in URLs, AWS keys, private key blocks and
	// key=value secrets in every string.
	Secrets bool `json:"secrets" yaml:"secrets"`
	// UserData keeps events private by default, as the original design
	// promised ("user data is not included unless explicitly
	// configured"): the fields of UserDataFields() are removed wherever they
	// appear (unless listed in AllowFields), and e-mail addresses,
	// Luhn-valid card numbers and SSN-like numbers are redacted inside
	// every string. On in DefaultSanitizeConfig; false includes user data.
	UserData bool `json:"user_data" yaml:"user_data"`
	// ExtraPatterns are more regular expressions whose matches are redacted.
	ExtraPatterns []string `json:"extra_patterns,omitempty" yaml:"extra_patterns"`
	// Replacement replaces a secret. Default "[REDACTED]".
	Replacement string `json:"replacement,omitempty" yaml:"replacement"`
	// DenyFields are data keys removed wherever they appear (matched
	// without regard to case), unless listed in AllowFields.
	DenyFields  []string `json:"deny_fields,omitempty" yaml:"deny_fields"`
	AllowFields []string `json:"allow_fields,omitempty" yaml:"allow_fields"`
	// HashFields are data keys whose values become "hmac-sha256:<hex>",
	// keyed with HashKey, so equal values stay joinable but unreadable.
	HashFields []string `json:"hash_fields,omitempty" yaml:"hash_fields"`
	HashKey    []byte   `json:"hash_key,omitempty" yaml:"-"`
	// HashKeyEnv names the environment variable that holds HashKey when
	// the stage is built from pipeline.yaml. Default EVENTPIPE_HASH_KEY.
	HashKeyEnv string `json:"-" yaml:"hash_key_env"`
	// On is pipeline.yaml's sanitize.enabled (default true there).
	On bool `json:"-" yaml:"enabled"`
}

// Enabled reports whether the stage is on (sanitize.enabled).
func (c *SanitizeConfig) Enabled() bool { return c.On }

// Validate reports every problem at once, as *pipeline.FieldError.
func (c *SanitizeConfig) Validate() error {
	var errs []error
	for i, p := range c.ExtraPatterns {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("extra_patterns[%d]", i), "not a regular expression: %v", err))
		}
	}
	if len(c.HashFields) > 0 && len(c.HashKey) == 0 && c.HashKeyEnv == "" {
		errs = append(errs, pipeline.FieldErrorf("hash_key_env", "hash_fields needs a key: name the environment variable that holds it"))
	}
	return errors.Join(errs...)
}

// UserDataFields returns the data keys SanitizeConfig.UserData removes:
// what names, reaches or locates a person. Matched without regard to
// case, at any depth; AllowFields keeps any of them. A fresh slice: the
// list itself cannot be changed from outside.
func UserDataFields() []string { return slices.Clone(userDataFields) }

var userDataFields = []string{
	"name", "first_name", "last_name", "full_name", "display_name", "username", "user_name",
	"email", "email_address", "phone", "phone_number", "mobile",
	"address", "street", "street_address", "postal_code", "zip", "zip_code",
	"ip", "ip_address", "client_ip", "remote_addr", "remote_ip", "x_forwarded_for",
	"user_agent", "useragent", "date_of_birth", "dob", "birthdate",
}

// DefaultSanitizeConfig is what the default pipeline applies: secrets
// and user data out, paths cleaned.
func DefaultSanitizeConfig() SanitizeConfig {
	return SanitizeConfig{
		Paths: true, Secrets: true, UserData: true, Replacement: "[REDACTED]",
		DenyFields: []string{"password", "passwd", "secret", "api_key", "apikey", "access_token", "refresh_token", "authorization", "cookie", "ssn", "credit_card", "card_number"},
	}
}

// Sanitize is the native sanitize stage. It rewrites the data and source of
// events in place. Data that needs no change is not parsed: a cheap scan for
// the literals every rule needs comes first.
type Sanitize struct {
	component.NoLifecycle
	cfg      SanitizeConfig
	rules    []redaction
	triggers *litSet // the built-in rules' lower-case literals, each with its rule's bit (mask)
	always   bool    // an extra pattern (no known literal): every string goes through the rules
	deny     map[string]bool
	hash     map[string]bool
	keys     *litSet   // `"key"` lower-case, for the cheap scan
	lowerStr []byte    // scratch: the string being checked
	out      []byte    // scratch: rewritten data
	hits     []int     // scratch: trigger offsets in the data
	scratch  [2][]byte // scratch: a string being rewritten, and the one before
}

type redaction struct {
	re   *regexp.Regexp // nil: fn, a hand-written rule
	fn   redactFunc
	repl string // with ${n} references (re), or as is (fn)
	bit  uint64 // the rule's bit in triggers' masks; 0: always run (extra patterns)
}

// A redactFunc appends str to dst with what it finds replaced by repl, and
// reports whether it found anything; when not, dst is returned as it was.
// Hand-written rules allocate nothing and do not backtrack.
type redactFunc func(dst []byte, str, repl string) ([]byte, bool)

// secretRules are the built-in secret patterns, most specific first. Each
// names the lower-case literals one of which every match contains, so a
// rule runs only on strings that hold one.
var secretRules = []struct {
	pattern, repl string
	fn            redactFunc // instead of pattern
	triggers      []string
}{
	{`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`, "$R", nil, []string{"private key"}},
	{`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s"]*:)[^@/\s"]+(@)`, "${1}$R${2}", nil, []string{"://"}},
	{`eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`, "$R", nil, []string{"eyj"}},
	{`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}`, "${1}$R", nil, []string{"bearer"}},
	// HTTP Basic credentials: base64 that decodes to user:password.
	{"", "", redactBasicInto, []string{"basic"}},
	{`\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[baprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,})`, "$R", nil, []string{"sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "aiza", "glpat-"}},
	{`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`, "$R", nil, []string{"akia", "asia"}},
	{`(?i)(aws_secret_access_key["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{40}`, "${1}$R", nil, []string{"aws_secret"}},
	// key=value secrets: hand-written (redactKV), the regexp equivalent
	// `(?i)\b(password|...)(\s*[=:]\s*)[^\s&,;"']+` backtracks slowly.
	{"", "", redactKVInto, kvWords},
}

// kvWords are the keys whose "key=value" or "key: value" has its value
// redacted, longest first where one is a prefix of another.
var kvWords = []string{"password", "passwd", "pwd", "secret", "token", "api_key", "api-key", "apikey"}

// redactKVInto appends str to dst with the value after each kvWord (at a
// word start, followed by optional spaces, '=' or ':', optional spaces) up
// to white space or one of &,;"' replaced with repl, and reports whether
// anything was; unchanged, dst is returned as it was.
func redactKVInto(dst []byte, str, repl string) ([]byte, bool) {
	start, changed := len(dst), false
	last := 0
	for i := 0; i < len(str); i++ {
		if i > 0 && isWordChar(str[i-1]) {
			continue
		}
		for _, w := range kvWords {
			if len(str)-i < len(w) || !hasPrefixFold(bytesOf(str[i:i+len(w)]), bytesOf(w)) {
				continue
			}
			j := i + len(w)
			for j < len(str) && isSpace(str[j]) {
				j++
			}
			if j >= len(str) || (str[j] != '=' && str[j] != ':') {
				continue
			}
			j++
			for j < len(str) && isSpace(str[j]) {
				j++
			}
			k := j
			for k < len(str) && !isSpace(str[k]) && !strings.ContainsRune("&,;\"'", rune(str[k])) {
				k++
			}
			if k == j {
				continue
			}
			dst = append(append(dst, str[last:j]...), repl...)
			last, changed = k, true
			i = k - 1
			break
		}
	}
	if !changed {
		return dst[:start], false
	}
	return append(dst, str[last:]...), true
}

func isWordChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// NewSanitize compiles cfg.
func NewSanitize(cfg SanitizeConfig) (*Sanitize, error) {
	if cfg.Replacement == "" {
		cfg.Replacement = "[REDACTED]"
	}
	s := &Sanitize{cfg: cfg, deny: map[string]bool{}, hash: map[string]bool{}}
	var all, keys [][]byte
	var bits []uint64
	if cfg.Secrets {
		for k, r := range secretRules {
			red := redaction{fn: r.fn, repl: cfg.Replacement, bit: 1 << k}
			if r.pattern != "" {
				red.re, red.repl = regexp.MustCompile(r.pattern), strings.ReplaceAll(r.repl, "$R", escapeRepl(cfg.Replacement))
			}
			for _, t := range r.triggers {
				all, bits = append(all, []byte(t)), append(bits, red.bit)
			}
			s.rules = append(s.rules, red)
		}
		s.triggers = newLitSet(all)
		s.triggers.bits = bits
	}
	for i, p := range cfg.ExtraPatterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, pipeline.FieldErrorf(fmt.Sprintf("extra_patterns[%d]", i), "not a regular expression: %v", err)
		}
		s.rules = append(s.rules, redaction{re: re, repl: escapeRepl(cfg.Replacement)})
		s.always = true
	}
	allow := map[string]bool{}
	for _, k := range cfg.AllowFields {
		allow[strings.ToLower(k)] = true
	}
	deny := cfg.DenyFields
	if cfg.UserData {
		deny = append(slices.Clip(deny), userDataFields...)
	}
	for _, k := range deny {
		if k = strings.ToLower(k); !allow[k] && !s.deny[k] {
			s.deny[k] = true
			keys = append(keys, []byte(`"`+k+`"`))
		}
	}
	for _, k := range cfg.HashFields {
		k = strings.ToLower(k)
		s.hash[k] = true
		keys = append(keys, []byte(`"`+k+`"`))
	}
	if len(keys) > 0 {
		s.keys = newLitSet(keys)
	}
	if len(cfg.HashFields) > 0 && len(cfg.HashKey) == 0 {
		return nil, fmt.Errorf("sanitize: hash_fields needs a hash key")
	}
	return s, nil
}

func escapeRepl(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// String sanitizes one string: secrets, then user data, then paths.
func (s *Sanitize) String(str string) string {
	if out := s.stringIn(str, true, true, true); out != str {
		return strings.Clone(out) // stringIn's result is a view of scratch
	}
	return str
}

// stringIn is String with the checks a caller already ruled out skipped.
// A changed string is a view of the stage's scratch, valid until the next
// call: the rewriter copies it at once. Unchanged strings cost nothing.
func (s *Sanitize) stringIn(str string, secrets, userData, paths bool) string {
	k := 0 // the scratch buffer the next rewrite writes; the other may hold str
	apply := func(fn redactFunc, repl string) {
		if out, changed := fn(s.scratch[k][:0], str, repl); changed {
			s.scratch[k], str, k = out, viewOf(out), k^1
		}
	}
	var found uint64 // the rules whose literals str holds: one scan for all of them
	if secrets && s.triggers != nil {
		found = s.triggers.mask(bytesOf(str))
	}
	if secrets && len(s.rules) > 0 && (found != 0 || s.always) {
		for _, r := range s.rules {
			if r.bit != 0 && found&r.bit == 0 {
				continue
			}
			if r.re == nil {
				apply(r.fn, r.repl)
				continue
			}
			// ReplaceAllString returns str itself when nothing matches: no
			// MatchString first.
			str = r.re.ReplaceAllString(str, r.repl)
		}
	}
	if userData && s.cfg.UserData {
		_, email, digits := scanBytes(bytesOf(str))
		if email {
			apply(redactEmailsInto, s.cfg.Replacement)
		}
		if digits {
			apply(redactSSNsInto, s.cfg.Replacement)
			apply(redactCardsInto, s.cfg.Replacement)
		}
	}
	if paths && s.cfg.Paths && strings.ContainsAny(str, "/\\") {
		apply(cleanPathsInto, s.cfg.Replacement)
	}
	return str
}

// viewOf is b as a string without a copy; b must not change while the
// string is used.
func viewOf(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// bytesOf views a string's bytes without copying; the view is only read.
func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// litSet is a set of lower-case literals (two bytes or more) searched for,
// without regard to case, in one pass: a bit set of their first two bytes
// rules out almost every position at the cost of a table lookup, and one
// of their second and third bytes most of the rest (with many literals the
// first two bytes alone, `"a` for instance, let every key starting with
// an a through to the comparisons).
type litSet struct {
	lits   [][]byte
	bigram [1 << 16 / 64]uint64
	next   [1 << 16 / 64]uint64 // bytes 1 and 2; every bit if a literal has two bytes
	short  bool                 // a literal has two bytes
	bits   []uint64             // for mask: each literal's bits (parallel to lits)
}

var lowerTable = func() (t [256]byte) {
	for i := range t {
		c := byte(i)
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		t[i] = c
	}
	return
}()

func newLitSet(lits [][]byte) *litSet {
	s := &litSet{lits: lits}
	for _, l := range lits {
		if len(l) < 2 {
			panic("litSet: literal shorter than two bytes")
		}
		k := uint16(l[0])<<8 | uint16(l[1])
		s.bigram[k/64] |= 1 << (k % 64)
		if len(l) == 2 {
			s.short = true
			continue
		}
		k = uint16(l[1])<<8 | uint16(l[2])
		s.next[k/64] |= 1 << (k % 64)
	}
	if s.short {
		for i := range s.next {
			s.next[i] = ^uint64(0)
		}
	}
	return s
}

// index returns the first offset i at or after from where a literal of
// set starts in b, and the index j of the first such literal; -1, -1 if
// none. The bigram test, inline, rules out almost every position;
// candidates then pass the second pair's test and a comparison.
func (set *litSet) index(b []byte, from int) (i, j int) {
	if from+1 >= len(b) {
		return -1, -1
	}
	prev := uint16(lowerTable[b[from]])
	for i = from; i+1 < len(b); i++ {
		next := uint16(lowerTable[b[i+1]])
		k := prev<<8 | next
		prev = next
		if set.bigram[k/64]&(1<<(k%64)) != 0 {
			if j = set.at(b, i); j >= 0 {
				return i, j
			}
		}
	}
	return -1, -1
}

// at returns the index of a literal of set starting at b[i:] (its first
// two bytes known to be in the bigram set), or -1.
func (set *litSet) at(b []byte, i int) int {
	if i+2 < len(b) {
		k := uint16(lowerTable[b[i+1]])<<8 | uint16(lowerTable[b[i+2]])
		if set.next[k/64]&(1<<(k%64)) == 0 {
			return -1
		}
	} else if !set.short {
		return -1
	}
	for j, l := range set.lits {
		if len(b)-i >= len(l) && hasPrefixFold(b[i:], l) {
			return j
		}
	}
	return -1
}

// appendHits appends the offsets in b where a literal of set starts.
func appendHits(dst []int, b []byte, set *litSet) []int {
	for i, _ := set.index(b, 0); i >= 0; i, _ = set.index(b, i+1) {
		dst = append(dst, i)
	}
	return dst
}

// mask returns the bits of every literal of set that b holds, ignoring
// ASCII case.
func (set *litSet) mask(b []byte) uint64 {
	var m uint64
	for i, j := set.index(b, 0); i >= 0; i, j = set.index(b, i+1) {
		for ; j < len(set.lits); j++ { // the first literal there, and any other
			if l := set.lits[j]; len(b)-i >= len(l) && hasPrefixFold(b[i:], l) {
				m |= set.bits[j]
			}
		}
	}
	return m
}

// containsAny reports whether b holds any literal of set, ignoring ASCII case.
func containsAny(b []byte, set *litSet) bool {
	if set == nil {
		return false
	}
	i, _ := set.index(b, 0)
	return i >= 0
}

// hasPrefixFold reports whether b (at least as long as lowerLit) starts
// with lowerLit, ignoring ASCII case. The last byte is compared first:
// against many literals of different lengths (the `"key"` ones end in a
// quote) it rules out almost all of them at once.
func hasPrefixFold(b, lowerLit []byte) bool {
	if n := len(lowerLit); n > 0 && lowerTable[b[n-1]] != lowerLit[n-1] {
		return false
	}
	for j, c := range lowerLit {
		if lowerTable[b[j]] != c {
			return false
		}
	}
	return true
}

// cleanPathsInto appends str to dst with home directories shortened to ~
// and . and .. resolved in its paths, and relative paths that climb ("../")
// replaced with repl, and reports whether any changed; unchanged, dst is
// returned as it was. A path is a run of characters that starts with '/',
// "~/", "../", "..\" or a drive ("C:\") after the start of the string or a
// delimiter, and ends at white space or one of "'<>|;,()[].
// Hand-written: the regexp equivalent cost ~8µs per string.
func cleanPathsInto(dst []byte, str, repl string) ([]byte, bool) {
	start, changed := len(dst), false
	last := 0
	for i := 0; i < len(str); i++ {
		if i > 0 && !isPathDelim(str[i-1]) {
			continue
		}
		c := str[i]
		isDrive := i+2 < len(str) && (c|0x20 >= 'a' && c|0x20 <= 'z') && str[i+1] == ':' && str[i+2] == '\\'
		climbs := c == '.' && i+2 < len(str) && str[i+1] == '.' && (str[i+2] == '/' || str[i+2] == '\\')
		if c != '/' && !(c == '~' && i+1 < len(str) && str[i+1] == '/') && !isDrive && !climbs {
			continue
		}
		end := i
		for end < len(str) && !isPathEnd(str[end]) {
			end++
		}
		tok := str[i:end]
		if strings.HasPrefix(tok, "//") { // a URL's authority, not a path
			i = end
			continue
		}
		if climbs {
			dst = append(append(dst, str[last:i]...), repl...)
			last, changed, i = end, true, end
			continue
		}
		// Write what comes before, then the token cleaned; keep it only
		// if it changed.
		mark := len(dst)
		dst = append(dst, str[last:i]...)
		at := len(dst)
		dst = appendCleanPath(dst, tok)
		if string(dst[at:]) != tok {
			last, changed = end, true
		} else {
			dst = dst[:mark]
		}
		i = end
	}
	if !changed {
		return dst[:start], false
	}
	return append(dst, str[last:]...), true
}

func isPathDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '=', '(', '[', ',', ':':
		return true
	}
	return false
}

func isPathEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '<', '>', '|', ';', ',', '(', ')', '[', ']':
		return true
	}
	return false
}

// appendCleanPath appends one path token cleaned to dst: "." and ".."
// resolved first, then a home directory prefix shortened, so that
// cleaning twice changes nothing. It allocates nothing when dst has room.
func appendCleanPath(dst []byte, p string) []byte {
	start := len(dst)
	if len(p) > 1 && (p[0] == '/' || strings.HasPrefix(p, "~/")) && (strings.Contains(p, "/.") || strings.Contains(p, "//")) {
		if p[0] == '~' {
			dst = appendPathClean(append(dst, '~'), p[1:]) // "~" + path.Clean("/"+rest)
		} else {
			dst = appendPathClean(dst, p)
		}
		if p[len(p)-1] == '/' && dst[len(dst)-1] != '/' {
			dst = append(dst, '/')
		}
	} else {
		dst = append(dst, p...)
	}
	if rest, ok := cutHome(viewOf(dst[start:])); ok {
		// rest is a suffix of what was just written: move it down.
		n := copy(dst[start+1:], rest)
		dst[start] = '~'
		dst = dst[:start+1+n]
	}
	return dst
}

// appendPathClean appends path.Clean(p) to dst: the same algorithm,
// writing into dst instead of a buffer of its own.
func appendPathClean(dst []byte, p string) []byte {
	if p == "" {
		return append(dst, '.')
	}
	base := len(dst)
	w := 0 // bytes written after base
	put := func(c byte) {
		dst = append(dst[:base+w], c)
		w++
	}
	rooted := p[0] == '/'
	n := len(p)
	r, dotdot := 0, 0
	if rooted {
		put('/')
		r, dotdot = 1, 1
	}
	for r < n {
		switch {
		case p[r] == '/':
			r++
		case p[r] == '.' && (r+1 == n || p[r+1] == '/'):
			r++
		case p[r] == '.' && p[r+1] == '.' && (r+2 == n || p[r+2] == '/'):
			r += 2
			switch {
			case w > dotdot:
				w--
				for w > dotdot && dst[base+w] != '/' {
					w--
				}
			case !rooted:
				if w > 0 {
					put('/')
				}
				put('.')
				put('.')
				dotdot = w
			}
		default:
			if rooted && w != 1 || !rooted && w != 0 {
				put('/')
			}
			for ; r < n && p[r] != '/'; r++ {
				put(p[r])
			}
		}
	}
	if w == 0 {
		return append(dst[:base], '.')
	}
	return dst[:base+w]
}

// cutHome strips a home directory prefix, returning what follows it.
func cutHome(p string) (string, bool) {
	for _, prefix := range []string{"/home/", "/Users/"} {
		if strings.HasPrefix(p, prefix) {
			user := p[len(prefix):]
			k := strings.IndexAny(user, "/")
			if k == 0 {
				return "", false
			}
			if k < 0 {
				return "", true
			}
			return user[k:], true
		}
	}
	if p == "/root" || strings.HasPrefix(p, "/root/") {
		return p[len("/root"):], true
	}
	if len(p) > 9 && p[1] == ':' && strings.EqualFold(p[2:9], `\Users\`) {
		user := p[9:]
		k := strings.IndexByte(user, '\\')
		if k == 0 {
			return "", false
		}
		if k < 0 {
			return "", true
		}
		return user[k:], true
	}
	return "", false
}

// Event sanitizes ev in place and reports whether it changed: its source,
// its CloudEvents subject and its data (not binary data). Data is
// walked once as raw JSON: key order and numbers are kept, and data with
// nothing to sanitize is not copied.
func (s *Sanitize) Event(ev *pipeline.Event) (bool, error) {
	changed := false
	if ev.Source != "" {
		if c := s.String(ev.Source); c != ev.Source {
			ev.Source, changed = c, true
		}
	}
	if c := ev.Cloud; c != nil && c.Subject != "" {
		if sub := s.String(c.Subject); sub != c.Subject {
			a := *c // shared by copies of the event: replaced, never changed
			a.Subject = sub
			ev.Cloud, changed = &a, true
		}
	}
	if len(ev.Data) == 0 || ev.Cloud != nil && ev.Cloud.DataBase64 {
		return changed, nil // binary data (base64) has no text to sanitize
	}
	data, dataChanged, err := s.rewriteData(ev.Data)
	if err != nil {
		return changed, err
	}
	if dataChanged {
		ev.Data = data
	}
	return changed || dataChanged, nil
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

// ---- user data and HTTP Basic credentials ---------------------------------
//
// Hand-written scanners, linear in the string and free of allocation, so
// that plugins/sanitize-rust can mirror them byte for byte (it has no
// regular expressions): the differential fuzz test holds the two equal.

// byteClass marks the bytes the cheap scans look for.
var byteClass = func() (t [256]uint8) {
	t['/'], t['\\'], t['@'] = classPathSep, classPathSep, classAt
	for c := '0'; c <= '9'; c++ {
		t[c] = classDigit
	}
	return
}()

const (
	classPathSep = 1 << iota
	classAt
	classDigit
)

// scanBytes reports, in one pass, whether b holds a path separator and
// whether it may hold user data: an e-mail address (an '@') or an
// SSN-like or card number (nine digits or more).
func scanBytes(b []byte) (pathSep, email, digits bool) {
	var seen uint8
	n := 0
	for _, c := range b {
		k := byteClass[c]
		seen |= k
		n += int(k >> 2) // classDigit is 4
	}
	return seen&classPathSep != 0, seen&classAt != 0, n >= 9
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' }

func isEmailLocal(c byte) bool {
	return isAlnum(c) || c == '_' || c == '.' || c == '%' || c == '+' || c == '-'
}

// redactEmailsInto redacts e-mail addresses: a local part of letters,
// digits and ._%+- before an '@', and a domain after it of two labels or
// more (letters, digits, hyphens) whose last, the top-level domain, is two
// letters or more. A dot ending a sentence is not part of the address.
func redactEmailsInto(dst []byte, str, repl string) ([]byte, bool) {
	start, changed, last := len(dst), false, 0
	for at := 0; at < len(str); at++ {
		if str[at] != '@' {
			continue
		}
		a := at
		for a > last && isEmailLocal(str[a-1]) {
			a--
		}
		if a == at {
			continue
		}
		e := emailDomainEnd(str, at+1)
		if e < 0 {
			continue
		}
		dst = append(append(dst, str[last:a]...), repl...)
		last, changed, at = e, true, e-1
	}
	if !changed {
		return dst[:start], false
	}
	return append(dst, str[last:]...), true
}

// emailDomainEnd returns where the domain name starting at i ends: after
// the last label, not the first, that is two letters or more; -1 if none.
func emailDomainEnd(s string, i int) int {
	end := -1
	for j := i; ; {
		k, letters := j, true
		for k < len(s) && (isAlnum(s[k]) || s[k] == '-') {
			letters = letters && !isDigit(s[k]) && s[k] != '-'
			k++
		}
		if k == j {
			return end
		}
		if j > i && letters && k-j >= 2 {
			end = k
		}
		if k >= len(s) || s[k] != '.' {
			return end
		}
		j = k + 1
	}
}

// numberBoundary reports whether c may stand next to an SSN-like number:
// not a letter, digit, '_' or '-' (which would make it part of a longer
// token).
func numberBoundary(c byte) bool { return !isWordChar(c) && c != '-' }

// redactSSNsInto redacts SSN-like numbers: ddd-dd-dddd standing alone.
func redactSSNsInto(dst []byte, str, repl string) ([]byte, bool) {
	start, changed, last := len(dst), false, 0
	for i := 0; i+11 <= len(str); i++ {
		if i > 0 && !numberBoundary(str[i-1]) || i+11 < len(str) && !numberBoundary(str[i+11]) {
			continue
		}
		t := str[i : i+11]
		if !isDigit(t[0]) || !isDigit(t[1]) || !isDigit(t[2]) || t[3] != '-' || !isDigit(t[4]) || !isDigit(t[5]) ||
			t[6] != '-' || !isDigit(t[7]) || !isDigit(t[8]) || !isDigit(t[9]) || !isDigit(t[10]) {
			continue
		}
		dst = append(append(dst, str[last:i]...), repl...)
		last, changed, i = i+11, true, i+10
	}
	if !changed {
		return dst[:start], false
	}
	return append(dst, str[last:]...), true
}

// redactCardsInto redacts card numbers: 13 to 19 digits, single spaces or
// hyphens allowed between them, not inside a longer word or number, that
// pass the Luhn check (so most other long numbers are left alone).
func redactCardsInto(dst []byte, str, repl string) ([]byte, bool) {
	start, changed, last := len(dst), false, 0
	for i := 0; i < len(str); i++ {
		if !isDigit(str[i]) || i > 0 && isWordChar(str[i-1]) {
			continue
		}
		n, end := 0, i
		for j := i; j < len(str); {
			if isDigit(str[j]) {
				n++
				j++
				end = j
				continue
			}
			if (str[j] == ' ' || str[j] == '-') && j+1 < len(str) && isDigit(str[j+1]) {
				j++
				continue
			}
			break
		}
		if n >= 13 && n <= 19 && (end == len(str) || !isWordChar(str[end])) && luhn(str[i:end]) {
			dst = append(append(dst, str[last:i]...), repl...)
			last, changed = end, true
		}
		i = end - 1
	}
	if !changed {
		return dst[:start], false
	}
	return append(dst, str[last:]...), true
}

// luhn reports whether the digits of s (other bytes skipped) pass the
// Luhn check that card numbers carry.
func luhn(s string) bool {
	sum, double := 0, false
	for k := len(s) - 1; k >= 0; k-- {
		if !isDigit(s[k]) {
			continue
		}
		d := int(s[k] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum, double = sum+d, !double
	}
	return sum%10 == 0
}

// redactBasicInto redacts HTTP Basic credentials: "basic" (any case) at a
// word start, white space, then base64 that decodes to user:password (so
// "basic authentication" is prose, not a secret). "Basic " is kept.
func redactBasicInto(dst []byte, str, repl string) ([]byte, bool) {
	start, changed, last := len(dst), false, 0
	for i := 0; i+5 < len(str); i++ {
		if i > 0 && isWordChar(str[i-1]) || !hasPrefixFold(bytesOf(str[i:i+5]), []byte("basic")) {
			continue
		}
		k := i + 5
		for k < len(str) && isRegexpSpace(str[k]) {
			k++
		}
		if k == i+5 {
			continue
		}
		e := k
		for e < len(str) && isBase64(str[e]) {
			e++
		}
		if !base64HasColon(str[k:e]) {
			continue
		}
		p := e
		for p < len(str) && p-e < 2 && str[p] == '=' {
			p++
		}
		dst = append(append(dst, str[last:k]...), repl...)
		last, changed, i = p, true, p-1
	}
	if !changed {
		return dst[:start], false
	}
	return append(dst, str[last:]...), true
}

// isRegexpSpace is Go regexp's \s.
func isRegexpSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

func isBase64(c byte) bool { return isAlnum(c) || c == '+' || c == '/' }

// base64HasColon reports whether tok (standard base64, unpadded, four
// characters or more) decodes to bytes holding a ':'.
func base64HasColon(tok string) bool {
	if len(tok) < 4 || len(tok)%4 == 1 {
		return false
	}
	var acc uint32
	bits := 0
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		var v uint32
		switch {
		case c >= 'A' && c <= 'Z':
			v = uint32(c - 'A')
		case c >= 'a' && c <= 'z':
			v = uint32(c-'a') + 26
		case c >= '0' && c <= '9':
			v = uint32(c-'0') + 52
		case c == '+':
			v = 62
		default:
			v = 63
		}
		acc, bits = acc<<6|v, bits+6
		if bits >= 8 {
			bits -= 8
			if byte(acc>>bits) == ':' {
				return true
			}
			acc &= 1<<bits - 1
		}
	}
	return false
}
