package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a YAML file.
type Pos struct{ Line, Col int }

// decoder walks yaml.v3 nodes into Go values, strictly: unknown keys and
// wrong types are errors with positions, and every error is collected
// instead of stopping at the first. It records the position of each key it
// sets, so later checks can point at the offending line.
type decoder struct {
	file string
	errs Errors
	pos  map[string]Pos // key path -> position of its value
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]Pos{}}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	yamlNodeType        = reflect.TypeOf(yaml.Node{})
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode sets v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = Pos{n.Line, n.Column}
	if v.Type() == yamlNodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if n.Tag == "!!null" && v.Kind() != reflect.String {
		return // key: (nothing) keeps the default
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) && v.Type() != durationType {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "want a single value, got %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Map:
		d.decodeMap(n, path, v)
	case reflect.Slice:
		d.decodeSlice(n, path, v)
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.decode(n, path, nv.Elem())
		v.Set(nv)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.decodeScalar(n, path, v)
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// fieldsOf maps yaml key names to struct field index paths; the fields of
// a struct tagged ",inline" are keys of the outer struct.
func fieldsOf(t reflect.Type) (map[string][]int, []string) {
	m := map[string][]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			inner, innerNames := fieldsOf(f.Type)
			for k, idx := range inner {
				m[k] = append([]int{i}, idx...)
			}
			names = append(names, innerNames...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = []int{i}
		names = append(names, name)
	}
	sort.Strings(names)
	return m, names
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of keys, got %s", kindName(n))
		return
	}
	fields, names := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		kp := join(path, key)
		if seen[key] {
			d.errorf(k, kp, "duplicate key")
			continue
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			d.errorf(k, kp, "unknown key %q%s (known keys: %s)", key, suggest(key, names), strings.Join(names, ", "))
			continue
		}
		d.decode(val, kp, v.FieldByIndex(idx))
	}
}

func (d *decoder) decodeMap(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if v.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.errorf(k, kp, "duplicate key")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, kp, elem)
		v.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.String {
		// A single string where a list of strings is wanted: a list of one.
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(n, path+"[0]", elem)
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), elem))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "want a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) decodeScalar(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want a single value, got %s", kindName(n))
		return
	}
	s := n.Value
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(n, path, "want a duration such as 500ms or 2s, got %q", s)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, ok := parseBool(s)
		if !ok {
			d.errorf(n, path, "want true or false, got %q", s)
			return
		}
		v.SetBool(b)
	case v.CanInt():
		i, err := parseSize(s)
		if err != nil {
			d.errorf(n, path, "want a whole number, got %q", s)
			return
		}
		v.SetInt(i)
	case v.CanFloat():
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.errorf(n, path, "want a number, got %q", s)
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, path, "cannot set a %s", v.Type())
	}
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// parseSize reads an integer, allowing size suffixes KiB, MiB, GiB (and
// KB, MB, GB as powers of 1000) and underscores.
func parseSize(s string) (int64, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), "_", "")
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	i, err := strconv.ParseInt(s, 0, 64)
	return i * mult, err
}

// suggest returns ` (did you mean "x"?)` for the closest known key.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Decode decodes a component's settings (kept raw in the configuration)
// into target, a pointer to the config struct its factory made, with the
// same strictness and positions as the rest of the file. Keys the
// component does not own (comp.Skip) are left out. Positions are recorded,
// so that errors the component reports later (ErrorsFor) point at lines.
func (c *Config) Decode(comp Component, target any) Errors {
	n := comp.Node
	if n == nil || n.Kind == 0 {
		return nil
	}
	if len(comp.Skip) > 0 && n.Kind == yaml.MappingNode {
		cp := *n
		cp.Content = nil
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !contains(comp.Skip, n.Content[i].Value) {
				cp.Content = append(cp.Content, n.Content[i], n.Content[i+1])
			}
		}
		n = &cp
	}
	d := newDecoder(c.File)
	d.decode(n, comp.ID, reflect.ValueOf(target).Elem())
	for k, v := range d.pos {
		if _, ok := c.Pos[k]; !ok {
			c.Pos[k] = v
		}
	}
	return d.errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
