// Package convert moves events between the SDK's batch view and
// pipeline.Event, so the built-in plugins run the native stage code.
package convert

import (
	"encoding/json"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/sdk/go/eventpipe"
)

// ToPipeline views e as a pipeline.Event (strings alias the batch).
func ToPipeline(e *eventpipe.Event) pipeline.Event {
	ev := pipeline.Event{
		Type: e.Type, Source: e.Source, ID: e.ID, CorrelationID: e.CorrelationID, CausationID: e.CausationID,
		Language: e.Language, Sequence: e.Sequence, Time: time.Unix(0, e.Time).UTC(), Data: e.Data,
	}
	if len(e.Tags) > 0 {
		_ = json.Unmarshal(e.Tags, &ev.Tags)
	}
	return ev
}
