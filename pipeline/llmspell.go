package pipeline

import (
	"strconv"
	"strings"
)

// AppendLLMSpell appends the event in rs-llmspell's UniversalEvent shape,
// so that consumers written for rs-llmspell keep working: id, event_type,
// data, language, timestamp, sequence, metadata (correlation_id, source,
// target, tags, priority, ttl, trace_id, custom) and schema_version. What
// the shape has no place for is kept where Decode finds it again: the
// causation id in metadata.custom.causation_id. docs/event-format.md has
// the mapping.
func (e *Event) AppendLLMSpell(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"event_type":`...)
	dst = appendString(dst, e.Type)
	dst = append(dst, `,"data":`...)
	if len(e.Data) > 0 {
		dst = appendData(dst, e.Data)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"language":`...)
	if e.Language != "" {
		dst = appendString(dst, llmspellLanguage(e.Language))
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"timestamp":"`...)
	dst = e.Time.UTC().AppendFormat(dst, TimeFormat)
	dst = append(dst, `","sequence":`...)
	dst = strconv.AppendUint(dst, e.Sequence, 10)
	dst = append(dst, `,"metadata":{"correlation_id":`...)
	if e.CorrelationID != "" {
		dst = appendString(dst, e.CorrelationID)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"source":`...)
	if e.Source != "" {
		dst = appendString(dst, e.Source)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"target":null,"trace_id":null,"priority":0,"ttl":null,"tags":[`...)
	for i, t := range e.Tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, t)
	}
	dst = append(dst, `],"custom":{`...)
	if e.CausationID != "" {
		dst = append(dst, `"causation_id":`...)
		dst = appendString(dst, e.CausationID)
	}
	dst = append(dst, `}},"schema_version":`...)
	sv := e.SchemaVersion
	if sv == "" {
		sv = SchemaVersion
	}
	dst = appendString(dst, sv)
	return append(dst, '}')
}

// llmspellLanguage is the spelling of rs-llmspell's language names
// ("lua" → "Lua"); others are written as they are.
func llmspellLanguage(l string) string {
	switch strings.ToLower(l) {
	case "lua":
		return "Lua"
	case "javascript", "js":
		return "JavaScript"
	case "python":
		return "Python"
	}
	return l
}
