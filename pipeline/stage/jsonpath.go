package stage

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/eventpipe/eventpipe/pipeline/internal/jsonscan"
)

// lookupRaw finds the value at path (object keys) in raw JSON without
// decoding the rest, and decodes only that value. It is what lets a filter
// condition on data.x cost a scan instead of a full decode.
func lookupRaw(raw []byte, path []string) (any, bool) {
	tok, ok := locate(raw, path)
	if !ok {
		return nil, false
	}
	return tokenValue(tok)
}

// lookupNumber is lookupRaw for a number, without boxing it: number is
// false when the field is there but not a number.
func lookupNumber(raw []byte, path []string) (f float64, present, number bool) {
	tok, ok := locate(raw, path)
	if !ok {
		return 0, false, false
	}
	if tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9' {
		if f, err := strconv.ParseFloat(string(tok), 64); err == nil && json.Valid(tok) {
			return f, true, true
		}
		return 0, false, false
	}
	return 0, true, false
}

// locate finds the raw token at path in raw.
func locate(raw []byte, path []string) ([]byte, bool) {
	i := 0
	for _, key := range path {
		i = jsonscan.SkipWS(raw, i)
		if i >= len(raw) || raw[i] != '{' {
			return nil, false
		}
		i++
		// The last member with the key counts, as for encoding/json: a
		// key may come twice.
		at := -1
		for {
			i = jsonscan.SkipWS(raw, i)
			if i < len(raw) && raw[i] == '}' {
				break
			}
			if i >= len(raw) {
				return nil, false
			}
			if raw[i] == ',' {
				i = jsonscan.SkipWS(raw, i+1)
			}
			if i >= len(raw) || raw[i] != '"' {
				return nil, false
			}
			end, esc := jsonscan.StringEnd(raw, i)
			if end < 0 {
				return nil, false
			}
			match := false
			if !esc && utf8.Valid(raw[i+1:end-1]) {
				match = string(raw[i+1:end-1]) == key
			} else { // escapes, or bytes encoding/json reads as U+FFFD
				var k string
				match = json.Unmarshal(raw[i:end], &k) == nil && k == key
			}
			i = jsonscan.SkipWS(raw, end)
			if i >= len(raw) || raw[i] != ':' {
				return nil, false
			}
			i = jsonscan.SkipWS(raw, i+1)
			if match {
				at = i
			}
			if i = jsonscan.ValueEnd(raw, i); i < 0 {
				return nil, false
			}
		}
		if at < 0 {
			return nil, false
		}
		i = at
	}
	end := jsonscan.ValueEnd(raw, i)
	if end < 0 {
		return nil, false
	}
	return raw[i:end], true
}

// tokenValue decodes a raw token. Scalars are read directly; only objects
// and arrays need a decoder.
func tokenValue(tok []byte) (any, bool) {
	switch {
	case tok[0] == '"':
		if s, err := stringValue(tok, bytes.IndexByte(tok, '\\') >= 0); err == nil {
			return strings.Clone(s), true
		}
		return nil, false
	case string(tok) == "true":
		return true, true
	case string(tok) == "false":
		return false, true
	case string(tok) == "null":
		return nil, true
	case tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9':
		if f, err := strconv.ParseFloat(string(tok), 64); err == nil && json.Valid(tok) {
			return f, true
		}
		return nil, false
	}
	var v any
	if err := json.Unmarshal(tok, &v); err != nil {
		return nil, false
	}
	return v, true
}
