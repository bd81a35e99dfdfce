package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// expand replaces ${VAR} and ${VAR:-default} in every scalar value of the
// file with the environment's values (secrets and per-host values stay
// out of the file); $${ is a literal ${. A variable that is not set and
// has no default is an error at its line and column. A plain (unquoted)
// value is typed again after expansion, so that port: ${PORT} is a
// number.
func expand(file string, n *yaml.Node, env func(string) (string, bool)) Errors {
	var errs Errors
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i]) // values only: keys are the schema's
			}
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "${") {
				return
			}
			v, err := expandString(n.Value, env)
			if err != nil {
				errs = append(errs, Error{File: file, Line: n.Line, Col: n.Column, Msg: err.Error()})
				return
			}
			n.Value = v
			if n.Style == 0 {
				n.Tag = "" // resolved again from the expanded text
			}
		}
	}
	walk(n)
	return errs
}

// expandString expands one value.
func expandString(s string, env func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // $${: a literal ${
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q: ${ without a closing }", s[i:])
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validVarName(name) {
			return "", fmt.Errorf("${%s}: not a variable name (letters, digits and _, not starting with a digit)", expr)
		}
		v, ok := "", false
		if env != nil {
			v, ok = env(name)
		}
		switch {
		case ok && (v != "" || !hasDef):
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("${%s} is not set (give it a default with ${%s:-value})", name, name)
		}
		s = s[i+end+1:]
	}
}

func validVarName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
