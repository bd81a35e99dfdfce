package host_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/pipeline"
)

// A plugin of ABI 2 sees and changes an event's CloudEvents attributes; a
// plugin of ABI 1 leaves them as they were.
func TestPluginsAndCloudEventsAttributes(t *testing.T) {
	h := newHost(t)
	events := func() []pipeline.Event {
		return []pipeline.Event{
			{ID: "1", Type: "com.example.done", Source: "/agents/7", Sequence: 1, Data: json.RawMessage(`{"x":1}`),
				Cloud: &pipeline.CloudAttributes{DataContentType: "application/json", Extensions: json.RawMessage(`{"tenant":"acme"}`)}},
			{ID: "2", Type: "agent.completed", Source: "a", Sequence: 2, Data: json.RawMessage(`{}`)},
		}
	}
	run := func(p *host.Plugin) []pipeline.Event {
		var b pipeline.Batch
		b.Reset(events())
		if err := p.Stage().Process(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		return b.Events
	}
	v2 := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: cloudSubject}, Kind: host.KindTransform})
	if v2.Manifest().ABI != 2 {
		t.Fatalf("the Go SDK declares abi %d", v2.Manifest().ABI)
	}
	got := run(v2)
	c := got[0].Cloud
	if c == nil || c.Subject != "/agents/7" || c.DataContentType != "application/json" {
		t.Fatalf("attributes after an ABI 2 transform: %+v", c)
	}
	var ext map[string]string
	if err := json.Unmarshal(c.Extensions, &ext); err != nil || ext["tenant"] != "acme" || ext["seenby"] != "eventpipe" {
		t.Errorf("extensions %s: %v", c.Extensions, err)
	}
	if got[1].Cloud != nil {
		t.Errorf("an event that was no CloudEvent got attributes: %+v", got[1].Cloud)
	}
	v1 := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/reseq.wasm"}, Kind: host.KindTransform})
	got = run(v1)
	if c := got[0].Cloud; c == nil || c.Subject != "" || string(c.Extensions) != `{"tenant":"acme"}` {
		t.Errorf("attributes after an ABI 1 transform: %+v", c)
	}
}

// A plugin right after a plugin transform gets that transform's output as
// it is (no decode and encode again) when nothing needs repair; when the
// transform rewrote a host-owned field, the events are encoded again from
// the host's values.
func TestTransformOutputPassesToTheNextPlugin(t *testing.T) {
	h := newHost(t)
	events := func() []pipeline.Event {
		return []pipeline.Event{
			{ID: "1", Type: "com.example.done", Source: "/agents/7", Sequence: 1, Data: json.RawMessage(`{"x":1}`),
				Cloud: &pipeline.CloudAttributes{Extensions: json.RawMessage(`{"tenant":"acme"}`)}},
			{ID: "2", Type: "agent.completed", Source: "a", Sequence: 2, Data: json.RawMessage(`{}`)},
		}
	}
	chain := func(first, second *host.Plugin) []pipeline.Event {
		a, b := first.Stage(), second.Stage()
		b.ChainAfter(a)
		var bt pipeline.Batch
		bt.Reset(events())
		for _, s := range []*host.Stage{a, b} {
			if err := s.Process(context.Background(), &bt); err != nil {
				t.Fatal(err)
			}
		}
		return bt.Events
	}
	spec := host.Spec{PluginConfig: host.PluginConfig{Path: cloudSubject}, Kind: host.KindTransform}
	first, second := load(t, h, spec), load(t, h, spec)
	got := chain(first, second)
	if n := second.Stats().PassedThrough; n != 2 {
		t.Errorf("the second plugin got %d events passed through, want 2", n)
	}
	if c := got[0].Cloud; c == nil || c.Subject != "/agents/7" || !strings.Contains(string(c.Extensions), `"seenby":"eventpipe"`) || got[1].Source != "a" {
		t.Errorf("after two passes: %+v %+v", got[0].Cloud, got[1])
	}
	// reseq rewrites sequences: its output is not passed on.
	reseq := load(t, h, host.Spec{PluginConfig: host.PluginConfig{Path: "testdata/plugins/reseq.wasm"}, Kind: host.KindTransform})
	third := load(t, h, spec)
	got = chain(reseq, third)
	if n := third.Stats().PassedThrough; n != 0 {
		t.Errorf("%d events passed on after a host-field rewrite", n)
	}
	if got[0].Sequence != 1 || got[1].Sequence != 2 {
		t.Errorf("sequences %d %d", got[0].Sequence, got[1].Sequence)
	}
}
