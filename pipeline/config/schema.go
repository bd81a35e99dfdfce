package config

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/eventpipe/eventpipe/pipeline/component"
)

// Schema is the JSON Schema (draft 2020-12) of pipeline.yaml, generated
// from the configuration structs of this file and of every component the
// registry holds — never kept by hand. Editors use it to complete and
// check keys (`eventpipe schema`, docs/pipeline.schema.json).
func Schema(reg *component.Registry, queue, retry any) map[string]any {
	g := schemaGen{}
	top := g.object(reflect.TypeOf(Config{}))
	props := top["properties"].(map[string]any)

	factory := func(c component.Class, typ string) map[string]any {
		f, err := reg.Lookup(c, typ)
		if err != nil {
			return map[string]any{"type": "object"}
		}
		return g.object(reflect.TypeOf(f.NewConfig()))
	}
	// One schema per type, told apart by the type key.
	byType := func(c component.Class, extra map[string]any, withType bool) []any {
		var out []any
		for _, typ := range reg.Types(c) {
			s := factory(c, typ)
			p := s["properties"].(map[string]any)
			p["type"] = map[string]any{"const": typ}
			for k, v := range extra {
				p[k] = v
			}
			if withType {
				s["required"] = []string{"type"}
			}
			out = append(out, s)
		}
		return out
	}
	props["ingest"] = map[string]any{"type": "array", "items": map[string]any{"oneOf": byType(component.ClassSource, nil, true)}}
	if stores := byType(component.ClassStore, nil, false); len(stores) > 0 {
		props["persist"] = map[string]any{"oneOf": stores}
	}
	plugin := factory(component.ClassStage, "plugin")
	if p, ok := plugin["properties"].(map[string]any); ok {
		p["type"] = map[string]any{"const": "plugin"}
	}
	withPlugins := func(section, key string, list bool) map[string]any {
		s := factory(component.ClassStage, section)
		var v any = plugin
		if list {
			v = map[string]any{"type": "array", "items": plugin}
		}
		s["properties"].(map[string]any)[key] = v
		return s
	}
	props["filter"] = withPlugins("filter", "plugins", true)
	props["sanitize"] = withPlugins("sanitize", "plugins", true)
	props["route"] = withPlugins("route", "plugin", false)
	common := map[string]any{"retry": g.object(reflect.TypeOf(retry)), "queue": g.object(reflect.TypeOf(queue))}
	props["export"] = map[string]any{"type": "object", "additionalProperties": map[string]any{"oneOf": byType(component.ClassOutput, common, true)}}
	top["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	top["title"] = "eventpipe pipeline.yaml"
	top["description"] = "Generated from eventpipe's configuration structs (docs/config.md explains every key)."
	return top
}

type schemaGen struct{}

var yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// object is the schema of a struct: its yaml keys, nothing else.
func (g schemaGen) object(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	props := map[string]any{}
	g.fields(t, props)
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

func (g schemaGen) fields(t reflect.Type, props map[string]any) {
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") || f.Anonymous && tag == "" {
			g.fields(f.Type, props)
			continue
		}
		if name == "" {
			continue // not a key of the file (yaml:"-" or untagged internals)
		}
		props[name] = g.of(f.Type)
	}
}

// of is the schema of a value of type t. Values are written as YAML, so a
// number may come as a string with a unit (sizes, durations).
func (g schemaGen) of(t reflect.Type) map[string]any {
	if t == durationType {
		return map[string]any{"type": []string{"string", "integer"}, "description": "a Go duration: 500ms, 2s, 1m"}
	}
	if t == yamlNodeType {
		return map[string]any{}
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		return map[string]any{"type": []string{"string", "integer", "number", "boolean"}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.of(t.Elem())
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": []string{"integer", "string"}}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": []string{"number", "string"}}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": g.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.of(t.Elem())}
	case reflect.Struct:
		return g.object(t)
	}
	return map[string]any{} // any value
}
