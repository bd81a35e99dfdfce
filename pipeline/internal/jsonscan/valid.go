package jsonscan

// Valid returns the index just past the JSON value starting at b[i]
// (after white space), or -1 when what starts there is not one valid JSON
// value: it finds the end and validates in the same pass, with the same
// verdict as encoding/json's Valid on that value (the differential fuzz
// test holds it to that). Invalid UTF-8 inside strings is valid here, as
// there.
func Valid(b []byte, i int) int {
	v := validator{b: b}
	return v.value(SkipWS(b, i), 0)
}

// Scan is Valid that also reports, from the same pass, a number in the
// value that no float64 holds (see HugeNumber; "" when none) and whether
// its strings hold bytes that are not ASCII.
func Scan(b []byte, i int) (end int, huge string, nonASCII bool) {
	v := validator{b: b}
	end = v.value(SkipWS(b, i), 0)
	return end, v.huge, v.nonASCII
}

// maxDepth bounds nesting, as encoding/json does (10000).
const maxDepth = 10000

type validator struct {
	b        []byte
	huge     string // the first number no float64 holds
	nonASCII bool   // a string holds a byte >= 0x80
}

func (v *validator) value(i, depth int) int {
	b := v.b
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return v.str(i)
	case c == '{':
		if depth >= maxDepth {
			return -1
		}
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i = v.str(i); i < 0 {
				return -1
			}
			i = SkipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			if i = v.value(SkipWS(b, i+1), depth+1); i < 0 {
				return -1
			}
			i = SkipWS(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == '}' {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = SkipWS(b, i+1)
		}
	case c == '[':
		if depth >= maxDepth {
			return -1
		}
		i = SkipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1
		}
		for {
			if i = v.value(i, depth+1); i < 0 {
				return -1
			}
			i = SkipWS(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == ']' {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = SkipWS(b, i+1)
		}
	case c == '-' || c >= '0' && c <= '9':
		return v.number(i)
	case c == 't':
		return v.literal(i, "true")
	case c == 'f':
		return v.literal(i, "false")
	case c == 'n':
		return v.literal(i, "null")
	}
	return -1
}

func (v *validator) literal(i int, lit string) int {
	if len(v.b)-i < len(lit) || string(v.b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// str checks the string at b[i] (a quote): no control characters, valid
// escapes.
func (v *validator) str(i int) int {
	b := v.b
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1
		case c < 0x20:
			return -1
		case c >= 0x80:
			v.nonASCII = true
		case c == '\\':
			j++
			if j >= len(b) {
				return -1
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-j < 5 {
					return -1
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(b[k]) {
						return -1
					}
				}
				j += 4
			default:
				return -1
			}
		}
	}
	return -1
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (v *validator) number(i int) int {
	end := v.numberEnd(i)
	// Up to 308 digits without an exponent fit a float64; test the rest.
	if end > 0 && v.huge == "" && (end-i > 308 || hasExponent(v.b[i:end])) {
		if n, huge := HugeNumber(v.b[i:end]); huge {
			v.huge = n
		}
	}
	return end
}

func hasExponent(n []byte) bool {
	for _, c := range n {
		if c == 'e' || c == 'E' {
			return true
		}
	}
	return false
}

func (v *validator) numberEnd(i int) int {
	b := v.b
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
	}
	return i
}
