package jetstream

import (
	"encoding/base64"
	"strings"

	"github.com/eventpipe/eventpipe/pipeline"
)

// checkName is the check of a stream or consumer name: no spaces, dots,
// wildcards or slashes (NATS refuses them).
func checkName(field, v string) error {
	if v == "" || strings.ContainsAny(v, " \t.*>/\\") {
		return pipeline.FieldErrorf(field, "%q is not a valid name (no spaces, dots, wildcards or slashes)", v)
	}
	return nil
}

// checkSubjectPrefix is the check of a prefix events' types are appended
// to: a subject without wildcards, not starting or ending with a dot.
func checkSubjectPrefix(field, v string) error {
	if v == "" || strings.ContainsAny(v, " \t*>") || strings.HasSuffix(v, ".") || strings.HasPrefix(v, ".") {
		return pipeline.FieldErrorf(field, "%q is not a subject without wildcards", v)
	}
	return nil
}

// Subject is the subject an event type is stored (or published) under:
// <prefix>.<type>. A type that is not a run of NATS tokens (a CloudEvent's
// type may hold spaces, wildcards or empty segments) goes under
// <prefix>._enc.<the type in unpadded base64url>, so that it can never
// make an invalid subject or match as a wildcard.
func Subject(prefix, typ string) string {
	if subjectTokens(typ) {
		return prefix + "." + typ
	}
	return prefix + "." + EncodedTypeToken + "." + base64.RawURLEncoding.EncodeToString([]byte(typ))
}

// EncodedTypeToken is the token under which types that are not NATS
// tokens are stored (Subject).
const EncodedTypeToken = "_enc"

// subjectTokens reports whether typ is dot-separated non-empty tokens of
// letters, digits, '_' and '-' (every eventpipe type is), and does not
// start with the token Subject uses for the others.
func subjectTokens(typ string) bool {
	if typ == "" || typ == EncodedTypeToken || strings.HasPrefix(typ, EncodedTypeToken+".") {
		return false
	}
	seg := 0
	for i := 0; i < len(typ); i++ {
		switch c := typ[i]; {
		case c == '.':
			if seg == 0 {
				return false
			}
			seg = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			seg++
		default:
			return false
		}
	}
	return seg > 0
}

// FilterSubject maps a type pattern (pipeline.Pattern syntax) to the NATS
// subject filter that selects a superset of the types it matches, and
// reports whether that superset is exact (the filter alone answers the
// query) or whether events must still be matched on our side.
//
//	pattern            filter                 exact
//	agent.started      <prefix>.agent.started yes
//	agent.*            <prefix>.agent.*       yes   (whole segment)
//	agent.**           <prefix>.agent.>       no    (matched again on our side)
//	*, **              <prefix>.>             yes
//	agent.step_*       <prefix>.agent.*       no    (part of a segment)
//	agent.{a,b}        <prefix>.agent.*       no
//	**.failed          <prefix>.>             no    (** before the end)
func FilterSubject(prefix, pattern string) (string, bool) {
	if pattern == "*" || pattern == "**" || pattern == "" {
		return prefix + ".>", true
	}
	segs := strings.Split(pattern, ".")
	exact := true
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		switch {
		case s == "**" && i == len(segs)-1:
			out = append(out, ">")
			exact = false
			return prefix + "." + strings.Join(out, "."), exact
		case strings.Contains(s, "**") || strings.ContainsAny(s, "{}"):
			// ** inside or before the end spans segments, and an
			// alternative may hold dots: no subject can say it.
			out = append(out, ">")
			return prefix + "." + strings.Join(out, "."), false
		case s == "*":
			out = append(out, "*")
		case strings.ContainsAny(s, `*?[]\`):
			out = append(out, "*")
			exact = false
		default:
			out = append(out, s)
		}
	}
	return prefix + "." + strings.Join(out, "."), exact
}
