package stage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/stage"
)

func TestFilterConditions(t *testing.T) {
	ev := pipeline.Event{Type: "agent.completed", Source: "researcher", Tags: []string{"prod", "eu"},
		Data:  json.RawMessage(`{"level":"high","score":7,"user":{"id":"u1","name":"Ann"},"ok":true,"list":[1,2]}`),
		Cloud: &pipeline.CloudAttributes{Subject: "run/7", DataContentType: "application/json", Extensions: json.RawMessage(`{"tenant":"acme","priority":3}`)}}
	tests := []struct {
		cond stage.Condition
		keep bool
	}{
		{stage.Condition{"data.level", "eq", "high"}, true},
		{stage.Condition{"data.level", "eq", "low"}, false},
		{stage.Condition{"data.level", "ne", "low"}, true},
		{stage.Condition{"data.missing", "ne", "x"}, true},
		{stage.Condition{"data.score", "gt", 5}, true},
		{stage.Condition{"data.score", "gte", 7}, true},
		{stage.Condition{"data.score", "lt", 7}, false},
		{stage.Condition{"data.score", "lte", 7.0}, true},
		{stage.Condition{"data.level", "gt", 5}, false},
		{stage.Condition{"data.user.id", "exists", nil}, true},
		{stage.Condition{"data.user.age", "exists", nil}, false},
		{stage.Condition{"data.user.age", "not_exists", nil}, true},
		{stage.Condition{"data.user.name", "regex", "^A"}, true},
		{stage.Condition{"data.user.name", "not_regex", "^A"}, false},
		{stage.Condition{"data.level", "in", []any{"low", "high"}}, true},
		{stage.Condition{"data.ok", "eq", true}, true},
		{stage.Condition{"data.list", "eq", []any{1, 2}}, true},
		{stage.Condition{"source", "eq", "researcher"}, true},
		{stage.Condition{"type", "regex", `\.completed$`}, true},
		{stage.Condition{"tags", "in", []any{"eu"}}, true},
		{stage.Condition{"tags", "in", []any{"us"}}, false},
		{stage.Condition{"language", "exists", nil}, false},
		{stage.Condition{"subject", "eq", "run/7"}, true},
		{stage.Condition{"subject", "regex", "^run/8"}, false},
		{stage.Condition{"datacontenttype", "eq", "application/json"}, true},
		{stage.Condition{"dataschema", "exists", nil}, false},
		{stage.Condition{"extensions.tenant", "eq", "acme"}, true},
		{stage.Condition{"extensions.priority", "gte", 3}, true},
		{stage.Condition{"extensions.region", "exists", nil}, false},
	}
	for _, tc := range tests {
		f, err := stage.NewFilter(stage.FilterConfig{Conditions: []stage.Condition{tc.cond}})
		if err != nil {
			t.Fatalf("%+v: %v", tc.cond, err)
		}
		if got, _ := f.Keep(&ev); got != tc.keep {
			t.Errorf("%s %s %v: keep=%v, want %v", tc.cond.Field, tc.cond.Op, tc.cond.Value, got, tc.keep)
		}
	}
	for _, bad := range []stage.Condition{{"nope", "eq", 1}, {"extensions.Bad_Name", "eq", 1}, {"data.x", "like", 1}, {"data.x", "regex", "("}, {"data.x", "in", 3}, {"data.x", "gt", true}} {
		if _, err := stage.NewFilter(stage.FilterConfig{Conditions: []stage.Condition{bad}}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestFilterProcessMarksDrops(t *testing.T) {
	f, _ := stage.NewFilter(stage.FilterConfig{ExcludeTypes: []string{"*.debug"}, Conditions: []stage.Condition{{"data.keep", "eq", true}}})
	var b pipeline.Batch
	b.Reset([]pipeline.Event{
		{Type: "a.debug", Data: json.RawMessage(`{"keep":true}`)},
		{Type: "a.b", Data: json.RawMessage(`{"keep":true}`)},
		{Type: "a.b", Data: json.RawMessage(`{"keep":false}`)},
	})
	if err := f.Process(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	want := []pipeline.Verdict{pipeline.Drop, pipeline.Keep, pipeline.Drop}
	for i, v := range want {
		if b.Verdicts[i] != v {
			t.Errorf("event %d: %v, want %v (%s)", i, b.Verdicts[i], v, b.Reasons[i])
		}
	}
	if b.Stages[0] != "filter" || !strings.Contains(b.Reasons[2], "data.keep") {
		t.Errorf("reasons %q stages %q", b.Reasons, b.Stages)
	}
}

func TestSanitizeStrings(t *testing.T) {
	s, err := stage.NewSanitize(stage.DefaultSanitizeConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"nothing to see", "nothing to see"},
		{"key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX here", "key [REDACTED] here"},
		{"Authorization: Bearer abc.def-ghi_jkl123", "Authorization: Bearer [REDACTED]"},
		{"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature", "jwt [REDACTED]"},
		{"postgres://admin:s3cr3t@db:5432/app", "postgres://admin:[REDACTED]@db:5432/app"},
		{"aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED]"},
		{"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key=[REDACTED]"},
		{"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "[REDACTED]"},
		{"login failed password=hunter2 for bob", "login failed password=[REDACTED] for bob"},
		{"Password : hunter2, next", "Password : [REDACTED], next"},
		{"api-key=abc&x=1 API_KEY: zz", "api-key=[REDACTED]&x=1 API_KEY: [REDACTED]"},
		{"tokens=5 mytoken=abc token=", "tokens=5 mytoken=abc token="},
		{`{"secret":"inline"}`, `{"secret":"inline"}`},
		{"gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh token [REDACTED]"},
		{"open /home/alice/src/app/../x.txt failed", "open ~/src/x.txt failed"},
		{"/Users/bob/Library/a", "~/Library/a"},
		{"cd /root/.ssh", "cd ~/.ssh"},
		{`C:\Users\carol\AppData\x.json`, `~\AppData\x.json`},
		{"/var/lib/./app//data/../logs", "/var/lib/app/logs"},
		{"a/b ratio and /etc/hosts", "a/b ratio and /etc/hosts"},
		// Relative paths that climb are redacted whole.
		{"read ../../etc/passwd now", "read [REDACTED] now"},
		{`open ..\..\win.ini`, "open [REDACTED]"},
		{"wait... ok ./x and a..b/c", "wait... ok ./x and a..b/c"},
		// HTTP Basic credentials (base64 of user:password), not prose.
		{"Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Authorization: Basic [REDACTED]"},
		{"basic\tdXNlcjpwYXNz== next", "basic\t[REDACTED] next"},
		{"Basic authentication failed", "Basic authentication failed"},
		{"basic aGVsbG8gd29ybGQ=", "basic aGVsbG8gd29ybGQ="}, // "hello world": no colon
		// User data inside strings.
		{"mail alice.smith+x@mail.example.co.uk.", "mail [REDACTED]."},
		{"from <bob@example.com>, cc carol@host", "from <[REDACTED]>, cc carol@host"},
		{"@handle and a@b.c and x@1.23", "@handle and a@b.c and x@1.23"},
		{"card 4111 1111 1111 1111 expires", "card [REDACTED] expires"},
		{"card 4111-1111-1111-1111, 5500005555555559", "card [REDACTED], [REDACTED]"},
		{"order 4111111111111112 is not a card", "order 4111111111111112 is not a card"},
		{"ts 1732000000000 id A4111111111111111", "ts 1732000000000 id A4111111111111111"},
		{"ssn 078-05-1120; id 1078-05-1120", "ssn [REDACTED]; id 1078-05-1120"},
		{"date 2026-11-28 10:00", "date 2026-11-28 10:00"},
	}
	for _, tc := range tests {
		if got := s.String(tc.in); got != tc.want {
			t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestSanitizeEventData(t *testing.T) {
	cfg := stage.DefaultSanitizeConfig()
	cfg.DenyFields = append(cfg.DenyFields, "email")
	cfg.AllowFields = []string{"secret"}
	cfg.HashFields = []string{"user_id"}
	cfg.HashKey = []byte("k")
	cfg.ExtraPatterns = []string{`ACME-\d{4}`}
	s, err := stage.NewSanitize(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev := pipeline.Event{Type: "a.b", Source: "/home/zed/bin/agent",
		Data: json.RawMessage(`{"Email":"a@b.c","secret":"kept","nested":[{"password":"x","note":"code ACME-1234"}],"user_id":"u-1","n":1.50}`)}
	changed, err := s.Event(&ev)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	var got map[string]any
	if err := json.Unmarshal(ev.Data, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["Email"]; ok {
		t.Error("denied field kept")
	}
	if got["secret"] != "kept" {
		t.Error("allowed field removed")
	}
	nested := got["nested"].([]any)[0].(map[string]any)
	if _, ok := nested["password"]; ok || nested["note"] != "code [REDACTED]" {
		t.Errorf("nested %v", nested)
	}
	if h, _ := got["user_id"].(string); !strings.HasPrefix(h, "hmac-sha256:") || len(h) != len("hmac-sha256:")+32 {
		t.Errorf("hash %q", got["user_id"])
	}
	if !strings.Contains(string(ev.Data), `"n":1.50`) {
		t.Errorf("number not kept exactly: %s", ev.Data)
	}
	if ev.Source != "~/bin/agent" {
		t.Errorf("source %q", ev.Source)
	}
	// Same key, same value, same hash; another key, another hash.
	ev2 := pipeline.Event{Type: "a.b", Data: json.RawMessage(`{"user_id":"u-1"}`)}
	_, _ = s.Event(&ev2)
	if !strings.Contains(string(ev2.Data), got["user_id"].(string)) {
		t.Error("hash not stable")
	}
	clean := pipeline.Event{Type: "a.b", Data: json.RawMessage(`{"tokens": 12, "ok": true}`)}
	before := string(clean.Data)
	if changed, _ := s.Event(&clean); changed || string(clean.Data) != before {
		t.Errorf("clean event rewritten: %s", clean.Data)
	}
	if _, err := stage.NewSanitize(stage.SanitizeConfig{HashFields: []string{"x"}}); err == nil {
		t.Error("hash fields without key accepted")
	}
}

func TestFilterHandsItsTypePatternsOver(t *testing.T) {
	f, err := stage.NewFilter(stage.FilterConfig{ExcludeTypes: []string{"*.debug"}, Conditions: []stage.Condition{{"data.keep", "eq", true}}})
	if err != nil {
		t.Fatal(err)
	}
	debug := pipeline.Event{Type: "x.debug", Data: []byte(`{"keep":true}`)}
	if keep, _ := f.Keep(&debug); keep {
		t.Fatal("excluded type kept before the hand-over")
	}
	inc, exc := f.HandOverTypePatterns()
	if len(inc) != 0 || len(exc) != 1 || exc[0] != "*.debug" {
		t.Errorf("handed over %v %v", inc, exc)
	}
	if keep, _ := f.Keep(&debug); !keep {
		t.Error("type still matched after the hand-over: the bus does it now")
	}
	if keep, _ := f.Keep(&pipeline.Event{Type: "x.y", Data: []byte(`{"keep":false}`)}); keep {
		t.Error("conditions must still run")
	}
}

func TestRouter(t *testing.T) {
	outs := []string{"a", "b", "c", "d"}
	r, err := stage.NewRouter(stage.RouteConfig{Rules: []stage.RouteRule{
		{Types: []string{"security.*"}, To: []string{"b"}, Continue: true},
		{Types: []string{"security.*", "error.*"}, To: []string{"c"}},
		{Types: []string{"agent.*"}, To: []string{"a"}},
	}, Default: []string{"d"}}, outs)
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]uint64{"security.x": 0b110, "error.y": 0b100, "agent.z": 0b001, "tool.q": 0b1000} {
		if got := r.Route(typ); got != want {
			t.Errorf("%s: %b, want %b", typ, got, want)
		}
	}
	noDefault, err := stage.NewRouter(stage.RouteConfig{Rules: []stage.RouteRule{{Types: []string{"a.*"}, To: []string{"a"}}}}, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	var b pipeline.Batch
	b.Reset([]pipeline.Event{{Type: "a.b"}, {Type: "c.d"}})
	_ = noDefault.Process(context.Background(), &b)
	if b.Verdicts[0] != pipeline.Keep || b.Verdicts[1] != pipeline.Drop || !strings.Contains(b.Reasons[1], "unrouted") {
		t.Errorf("verdicts %v reasons %q", b.Verdicts, b.Reasons)
	}
	for name, tc := range map[string]struct {
		cfg  stage.RouteConfig
		outs []string
		want string
	}{
		"unknown output": {stage.RouteConfig{Default: []string{"nope"}}, []string{"a"}, `default[0]: unknown output "nope"`},
		"never routed":   {stage.RouteConfig{Default: []string{"a"}}, []string{"a", "b"}, `output "b" is never routed to`},
		"no route":       {stage.RouteConfig{}, []string{"a"}, "no route"},
		"unreachable": {stage.RouteConfig{Rules: []stage.RouteRule{{Types: []string{"*"}, To: []string{"a"}}, {Types: []string{"x"}, To: []string{"a"}}}},
			[]string{"a"}, "rules[1]: unreachable"},
		"too many outputs": {stage.RouteConfig{Default: []string{"o0"}}, manyOutputs(65), "at most 64 outputs"},
	} {
		_, err := stage.NewRouter(tc.cfg, tc.outs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

func manyOutputs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("o%d", i)
	}
	return out
}

func FuzzSanitizeData(f *testing.F) {
	for _, s := range []string{`{"a":"/home/x/../y","password":"p","list":[1,"Bearer abcdefghijk",{"Email":"e"}]}`,
		`{"k":"token=abc","n":-1.5e3,"t":true,"z":null,"esc":"a\"b\\c\u00e9"}`, `"just a string /root/x"`, `[]`, `{}`} {
		f.Add([]byte(s))
	}
	cfg := stage.DefaultSanitizeConfig()
	cfg.DenyFields = append(cfg.DenyFields, "email")
	cfg.HashFields, cfg.HashKey = []string{"user"}, []byte("k")
	s, err := stage.NewSanitize(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		ev := pipeline.Event{Type: "a.b", Data: append(json.RawMessage(nil), data...)}
		changed, err := s.Event(&ev)
		if err != nil {
			t.Fatalf("valid JSON refused: %v: %s", err, data)
		}
		if !json.Valid(ev.Data) {
			t.Fatalf("sanitized data is not JSON: %s -> %s", data, ev.Data)
		}
		if !changed && string(ev.Data) != string(data) {
			t.Fatalf("unchanged but different: %s -> %s", data, ev.Data)
		}
		// Sanitizing is idempotent.
		again := ev
		again.Data = append(json.RawMessage(nil), ev.Data...)
		if _, err := s.Event(&again); err != nil || string(again.Data) != string(ev.Data) {
			t.Fatalf("not idempotent: %s -> %s -> %s", data, ev.Data, again.Data)
		}
	})
}

func FuzzLookupRaw(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,{"c":"}"}],"d\"":2},"e":"x"}`), "a.d\"")
	f.Add([]byte(`{"a":1}`), "a")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		if !json.Valid(data) || path == "" {
			return
		}
		fl, err := stage.NewFilter(stage.FilterConfig{Conditions: []stage.Condition{{Field: "data." + path, Op: "exists"}}})
		if err != nil {
			return
		}
		ev := pipeline.Event{Type: "a.b", Data: data}
		got, _ := fl.Keep(&ev)
		// Compare with a full decode.
		var v any
		_ = json.Unmarshal(data, &v)
		want := true
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				want = false
				break
			}
			if v, ok = m[k]; !ok {
				want = false
				break
			}
		}
		if got != want {
			t.Fatalf("exists %q in %s: got %v, want %v", path, data, got, want)
		}
	})
}

// Escapes cannot hide a secret or a denied key from the cheap scans.
func TestSanitizeSeesThroughEscapes(t *testing.T) {
	s, _ := stage.NewSanitize(stage.DefaultSanitizeConfig())
	ev := pipeline.Event{Type: "a.b", Data: json.RawMessage(`{"k":"\u0073k-proj-ABCDEFGHIJKLMNOPQRSTUVWX","pass\u0077ord":"x","n":"tok\u0065n=abc"}`)}
	if _, err := s.Event(&ev); err != nil {
		t.Fatal(err)
	}
	got := string(ev.Data)
	if strings.Contains(got, "ABCDEFGH") || strings.Contains(got, `"x"`) || strings.Contains(got, "abc") {
		t.Errorf("escaped secrets passed: %s", got)
	}
}

// A CloudEvent's subject is sanitized like the source (on a new attributes
// value: the old one may be shared); its binary data is left alone.
func TestSanitizeCloudEvents(t *testing.T) {
	s, err := stage.NewSanitize(stage.DefaultSanitizeConfig())
	if err != nil {
		t.Fatal(err)
	}
	shared := &pipeline.CloudAttributes{Subject: "/home/zed/runs/1", DataContentType: "application/octet-stream", DataBase64: true}
	ev := pipeline.Event{Type: "a.b", Source: "/s", Data: json.RawMessage(`"/home/zed/AAAA"`), Cloud: shared} // base64 that looks like a path
	before := string(ev.Data)
	if _, err := s.Event(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.Cloud.Subject != "~/runs/1" || shared.Subject != "/home/zed/runs/1" {
		t.Errorf("subject %q, shared %q", ev.Cloud.Subject, shared.Subject)
	}
	if string(ev.Data) != before {
		t.Errorf("binary data changed: %s", ev.Data)
	}
}

// Private by default: user-data fields go and user data inside strings is
// redacted, unless the configuration opts in, field by field or wholly.
func TestSanitizeUserDataByDefault(t *testing.T) {
	data := `{"customer":{"Name":"Alice Smith","phone":"+1 555 0100","ip":"203.0.113.7","user_agent":"Mozilla/5.0","plan":"pro"},` +
		`"note":"reach me at alice@example.com, card 4111 1111 1111 1111, ssn 078-05-1120"}`
	run := func(t *testing.T, cfg stage.SanitizeConfig) map[string]any {
		t.Helper()
		s, err := stage.NewSanitize(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ev := pipeline.Event{Type: "support.ticket", Data: json.RawMessage(data)}
		if _, err := s.Event(&ev); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(ev.Data, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := run(t, stage.DefaultSanitizeConfig())
	if c := got["customer"].(map[string]any); len(c) != 1 || c["plan"] != "pro" {
		t.Errorf("user-data fields kept: %v", c)
	}
	if note := got["note"]; note != "reach me at [REDACTED], card [REDACTED], ssn [REDACTED]" {
		t.Errorf("note = %q", note)
	}

	allow := stage.DefaultSanitizeConfig()
	allow.AllowFields = []string{"NAME"}
	if c := run(t, allow)["customer"].(map[string]any); c["Name"] != "Alice Smith" || c["ip"] != nil {
		t.Errorf("allow_fields [name]: %v", c)
	}

	off := stage.DefaultSanitizeConfig()
	off.UserData = false
	got = run(t, off)
	if c := got["customer"].(map[string]any); len(c) != 5 {
		t.Errorf("user_data: false removed fields: %v", c)
	}
	if note := got["note"].(string); !strings.Contains(note, "alice@example.com") || !strings.Contains(note, "4111 1111") {
		t.Errorf("user_data: false redacted user data: %q", note)
	}
}
