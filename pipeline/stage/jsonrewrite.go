package stage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/internal/jsonscan"
)

// rewriter walks raw JSON once, copying it to out, and sanitizes on the
// way: string values through Sanitize.String, denied keys dropped with their
// values, hashed keys' values replaced. Key order and number text are kept
// as they were. It allocates only for strings it changes (and escaped ones).
type rewriter struct {
	s          *Sanitize
	raw        []byte
	i          int
	out        []byte
	changed    bool
	secrets    bool  // a secret trigger occurs somewhere in raw
	hits       []int // where triggers start in raw (ascending); strings elsewhere skip the secret rules
	allStrings bool  // check every string (extra patterns without triggers, or escapes in raw)
	paths      bool  // a path separator occurs somewhere in raw
	userData   bool  // an '@' or nine digits occur somewhere in raw
	keys       bool  // a denied or hashed key may occur in raw
}

var errSyntax = errors.New("malformed JSON")

func (w *rewriter) ws() { w.i = jsonscan.SkipWS(w.raw, w.i) }

// stringEnd returns the index just past the string starting at w.i (a
// quote), and whether it holds escapes.
func (w *rewriter) stringEnd() (int, bool, error) {
	end, esc := jsonscan.StringEnd(w.raw, w.i)
	if end < 0 {
		return 0, false, errSyntax
	}
	return end, esc, nil
}

// stringValue decodes the string token raw[start:end].
//
// An unescaped string is returned without a copy: it aliases raw and must
// not outlive the call that asked for it (rewriter compares and drops it).
func stringValue(tok []byte, esc bool) (string, error) {
	if !esc {
		b := tok[1 : len(tok)-1]
		if len(b) == 0 {
			return "", nil
		}
		return unsafe.String(&b[0], len(b)), nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", errSyntax
	}
	return s, nil
}

func (w *rewriter) value() error {
	w.ws()
	if w.i >= len(w.raw) {
		return errSyntax
	}
	switch c := w.raw[w.i]; c {
	case '{':
		return w.object()
	case '[':
		return w.array()
	case '"':
		end, esc, err := w.stringEnd()
		if err != nil {
			return err
		}
		start := w.i
		tok := w.raw[start:end]
		w.i = end
		// The secret rules run on a string only if a trigger starts inside
		// it, or if it is escaped (an escape could hide a trigger from the
		// scan of the raw bytes).
		secrets := w.secrets && (esc || w.allStrings || w.hitWithin(start, end))
		var paths, userData bool
		if w.paths || w.userData {
			pathSep, email, digits := scanBytes(tok)
			paths = w.paths && pathSep
			userData = w.userData && (email || digits || esc)
		}
		if !secrets && !paths && !userData {
			w.out = append(w.out, tok...)
			return nil
		}
		str, err := stringValue(tok, esc)
		if err != nil {
			return err
		}
		if clean := w.s.stringIn(str, secrets, userData, paths); clean != str {
			w.out = pipeline.AppendJSONString(w.out, clean)
			w.changed = true
			return nil
		}
		w.out = append(w.out, tok...)
		return nil
	default:
		// number, true, false, null: copy up to the next delimiter.
		j := w.i
		for j < len(w.raw) {
			b := w.raw[j]
			if b == ',' || b == '}' || b == ']' || b == ' ' || b == '\n' || b == '\t' || b == '\r' {
				break
			}
			j++
		}
		if j == w.i {
			return errSyntax
		}
		w.out = append(w.out, w.raw[w.i:j]...)
		w.i = j
		return nil
	}
}

// hitWithin reports whether a trigger starts in raw[start:end]; hits are
// consumed in order as the walk moves forward.
func (w *rewriter) hitWithin(start, end int) bool {
	for len(w.hits) > 0 && w.hits[0] < start {
		w.hits = w.hits[1:]
	}
	return len(w.hits) > 0 && w.hits[0] < end
}

// skip passes over one value without copying it.
func (w *rewriter) skip() error {
	out, changed := w.out, w.changed
	secrets, paths, keys, userData := w.secrets, w.paths, w.keys, w.userData
	w.secrets, w.paths, w.keys, w.userData = false, false, false, false
	err := w.value()
	w.out, w.changed = out, changed
	w.secrets, w.paths, w.keys, w.userData = secrets, paths, keys, userData
	return err
}

func (w *rewriter) object() error {
	w.out = append(w.out, '{')
	w.i++
	parsed, written := 0, 0
	member := func(keyTok []byte) {
		if written > 0 {
			w.out = append(w.out, ',')
		}
		w.out = append(append(w.out, keyTok...), ':')
		written++
	}
	for ; ; parsed++ {
		w.ws()
		if w.i >= len(w.raw) {
			return errSyntax
		}
		if w.raw[w.i] == '}' {
			w.i++
			w.out = append(w.out, '}')
			return nil
		}
		if parsed > 0 {
			if w.raw[w.i] != ',' {
				return errSyntax
			}
			w.i++
			w.ws()
		}
		if w.i >= len(w.raw) || w.raw[w.i] != '"' {
			return errSyntax
		}
		end, esc, err := w.stringEnd()
		if err != nil {
			return err
		}
		keyTok := w.raw[w.i:end]
		w.i = end
		w.ws()
		if w.i >= len(w.raw) || w.raw[w.i] != ':' {
			return errSyntax
		}
		w.i++
		if w.keys {
			key, err := stringValue(keyTok, esc)
			if err != nil {
				return err
			}
			lk := strings.ToLower(key)
			if w.s.deny[lk] {
				w.changed = true
				if err := w.skip(); err != nil {
					return err
				}
				continue
			}
			if w.s.hash[lk] {
				start := w.i
				if err := w.skip(); err != nil {
					return err
				}
				var v any
				_ = json.Unmarshal(w.raw[start:w.i], &v)
				member(keyTok)
				w.out = pipeline.AppendJSONString(w.out, w.s.hashValue(v))
				w.changed = true
				continue
			}
		}
		member(keyTok)
		if err := w.value(); err != nil {
			return err
		}
	}
}

func (w *rewriter) array() error {
	w.out = append(w.out, '[')
	w.i++
	first := true
	for {
		w.ws()
		if w.i >= len(w.raw) {
			return errSyntax
		}
		if w.raw[w.i] == ']' {
			w.i++
			w.out = append(w.out, ']')
			return nil
		}
		if !first {
			if w.raw[w.i] != ',' {
				return errSyntax
			}
			w.i++
			w.out = append(w.out, ',')
		}
		if err := w.value(); err != nil {
			return err
		}
		first = false
	}
}

// rewriteData sanitizes raw JSON data, returning the new bytes (a fresh
// slice) when anything changed.
func (s *Sanitize) rewriteData(raw []byte) ([]byte, bool, error) {
	w := rewriter{s: s, raw: raw, out: s.out[:0]}
	// \u escapes can spell a trigger or a key the raw scan cannot see: then
	// every string and key is checked.
	escaped := bytes.Contains(raw, []byte(`\u`))
	if len(s.rules) > 0 {
		if s.always || escaped {
			w.secrets, w.hits = true, nil
			w.allStrings = true
		} else {
			s.hits = appendHits(s.hits[:0], raw, s.triggers)
			w.secrets, w.hits = len(s.hits) > 0, s.hits
		}
	}
	pathSep, email, digits := scanBytes(raw)
	w.paths = s.cfg.Paths && pathSep
	w.userData = s.cfg.UserData && (email || digits || escaped)
	w.keys = escaped || containsAny(raw, s.keys)
	if !w.secrets && !w.paths && !w.keys && !w.userData {
		return raw, false, nil
	}
	if err := w.value(); err != nil {
		return raw, false, fmt.Errorf("sanitize: data: %w at byte %d", err, w.i)
	}
	s.out = w.out
	if !w.changed {
		return raw, false, nil
	}
	return append([]byte(nil), w.out...), true, nil
}
