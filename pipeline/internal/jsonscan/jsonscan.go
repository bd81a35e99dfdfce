// Package jsonscan finds the ends of JSON tokens in raw bytes without
// decoding or validating them: the shared scanner of the fast event decoder
// and the sanitize and filter stages, which validate what they use.
package jsonscan

import (
	"math"
	"strconv"
)

// SkipWS returns the index of the first byte at or after i that is not
// JSON white space.
func SkipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// StringEnd returns the index just past the string starting at b[i] (a
// quote) and whether it holds escapes; -1 if it is unterminated.
func StringEnd(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return -1, false
}

// ValueEnd returns the index just past the value starting at b[i] (a
// string, object, array or scalar), or -1 when it does not end.
func ValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := StringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := StringEnd(b, j)
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
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if j == i {
					return -1
				}
				return j
			}
			j++
		}
		return j
	}
}

// HugeNumber reports whether the JSON value b holds a number beyond what a
// float64 holds (1e999, or hundreds of digits): valid JSON that most JSON
// readers turn into infinity or refuse. It returns the number. b is
// assumed valid JSON.
func HugeNumber(b []byte) (string, bool) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			end, _ := StringEnd(b, i)
			if end < 0 {
				return "", false
			}
			i = end - 1
		case c == '-' || c >= '0' && c <= '9':
			j, exp := i, false
			for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
				exp = exp || b[j] == 'e' || b[j] == 'E'
				j++
			}
			// Up to 308 digits without an exponent fit; test the rest.
			if exp || j-i > 308 {
				if f, err := strconv.ParseFloat(string(b[i:j]), 64); err != nil && math.IsInf(f, 0) {
					return string(b[i:j]), true
				}
			}
			i = j - 1
		}
	}
	return "", false
}
