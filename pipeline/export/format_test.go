package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// What each output format writes, eventpipe's decoder reads back as the
// same event (less what the format cannot carry, said per format).
func TestFormatsRoundTrip(t *testing.T) {
	ev := pipeline.Event{SchemaVersion: "1.0", ID: "e-1", Type: "agent.completed", Source: "agent-1", Sequence: 42,
		Time: time.Date(2026, 11, 28, 10, 0, 0, 123, time.UTC), CorrelationID: "c-1", CausationID: "e-0",
		Tags: []string{"prod", "a,b"}, Language: "lua", Data: json.RawMessage(`{"ok":true,"n":1.50}`)}
	for _, tc := range []struct {
		format export.Format
		adjust func(*pipeline.Event) // what the format does not carry
	}{
		{export.FormatEventpipe, func(*pipeline.Event) {}},
		{export.FormatPretty, func(*pipeline.Event) {}},
		{export.FormatLLMSpell, func(*pipeline.Event) {}},
		{export.FormatCloudEvents, func(e *pipeline.Event) { e.Sequence = 0 }}, // the sequence is an extension: read back as such
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out")
			f, err := export.NewFile(export.FileConfig{Path: path, Format: tc.format})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := f.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := f.Export(ctx, []pipeline.Event{ev}); err != nil {
				t.Fatal(err)
			}
			_ = f.Shutdown(ctx)
			raw, _ := os.ReadFile(path)
			if tc.format != export.FormatPretty && bytes.Count(raw, []byte("\n")) != 1 {
				t.Fatalf("not one line: %s", raw)
			}
			got, err := pipeline.Decode(bytes.TrimSpace(raw), pipeline.DecodeOptions{})
			if err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			want := ev
			tc.adjust(&want)
			if tc.format == export.FormatCloudEvents {
				got.Cloud = nil // read as a CloudEvent: its extensions are kept there
			}
			if tc.format == export.FormatPretty {
				var c bytes.Buffer
				_ = json.Compact(&c, got.Data) // the same JSON, indented
				got.Data = c.Bytes()
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s read back differs (-want +got):\n%s", raw, diff)
			}
		})
	}
}

// The llmspell format is rs-llmspell's UniversalEvent, field for field.
func TestLLMSpellFormatShape(t *testing.T) {
	ev := pipeline.Event{ID: "e-1", Type: "agent.completed", Language: "lua", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Sequence: 3}
	var m map[string]any
	if err := json.Unmarshal(ev.AppendLLMSpell(nil), &m); err != nil {
		t.Fatal(err)
	}
	md, _ := m["metadata"].(map[string]any)
	for _, k := range []string{"id", "event_type", "data", "language", "timestamp", "sequence", "metadata", "schema_version"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	for _, k := range []string{"correlation_id", "source", "target", "tags", "priority", "ttl"} {
		if _, ok := md[k]; !ok {
			t.Errorf("no metadata.%s", k)
		}
	}
	if m["language"] != "Lua" || m["event_type"] != "agent.completed" || !strings.HasPrefix(m["timestamp"].(string), "2026-01-01T00:00:00") {
		t.Errorf("%v", m)
	}
}
