package stage

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// lookupRaw finds the value at path (object keys) in raw JSON without
// decoding the rest, and decodes only that value. It is what lets a filter
// condition on data.x cost a scan instead of a full decode.
func lookupRaw(raw []byte, path []string) (any, bool) {
	i := 0
	for _, key := range path {
		i = skipWS(raw, i)
		if i >= len(raw) || raw[i] != '{' {
			return nil, false
		}
		i++
		found := false
		for {
			i = skipWS(raw, i)
			if i >= len(raw) || raw[i] == '}' {
				return nil, false
			}
			if raw[i] == ',' {
				i = skipWS(raw, i+1)
			}
			if i >= len(raw) || raw[i] != '"' {
				return nil, false
			}
			end, esc := stringEndAt(raw, i)
			if end < 0 {
				return nil, false
			}
			match := false
			if !esc {
				match = string(raw[i+1:end-1]) == key
			} else {
				var k string
				match = json.Unmarshal(raw[i:end], &k) == nil && k == key
			}
			i = skipWS(raw, end)
			if i >= len(raw) || raw[i] != ':' {
				return nil, false
			}
			i = skipWS(raw, i+1)
			if match {
				found = true
				break
			}
			if i = skipValue(raw, i); i < 0 {
				return nil, false
			}
		}
		if !found {
			return nil, false
		}
	}
	end := skipValue(raw, i)
	if end < 0 {
		return nil, false
	}
	// Scalars are read directly; only objects and arrays need a decoder.
	switch tok := raw[i:end]; {
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
	if err := json.Unmarshal(raw[i:end], &v); err != nil {
		return nil, false
	}
	return v, true
}

func skipWS(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// stringEndAt returns the index past the string starting at raw[i] (a
// quote), and whether it holds escapes; -1 if unterminated.
func stringEndAt(raw []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return -1, false
}

// skipValue returns the index past the JSON value starting at raw[i], or -1.
func skipValue(raw []byte, i int) int {
	if i >= len(raw) {
		return -1
	}
	switch raw[i] {
	case '"':
		end, _ := stringEndAt(raw, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(raw); j++ {
			switch raw[j] {
			case '"':
				end, _ := stringEndAt(raw, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(raw) {
			switch raw[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}
