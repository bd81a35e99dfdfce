// Command cloud-subject is a transform that works on CloudEvents
// attributes (ABI 2): an event without a subject gets its source as
// subject, and every event that has attributes gets the extension
// "seenby": "eventpipe". It is the example of sdk/ABI.md ("CloudEvents
// attributes") and host's test of ABI 2.
package main

import (
	"encoding/json"

	"github.com/eventpipe/eventpipe/sdk/go/eventpipe"
)

func init() {
	eventpipe.Register(eventpipe.Plugin{
		Name: "cloud-subject", Version: "1.0.0", Kind: eventpipe.KindTransform,
		Transform: func(e *eventpipe.Event) bool {
			if len(e.Attributes) == 0 {
				return true // not a CloudEvent
			}
			var attrs map[string]json.RawMessage
			if json.Unmarshal(e.Attributes, &attrs) != nil {
				return true
			}
			if _, ok := attrs["subject"]; !ok {
				attrs["subject"], _ = json.Marshal(e.Source)
			}
			ext := map[string]json.RawMessage{}
			if raw, ok := attrs["extensions"]; ok {
				_ = json.Unmarshal(raw, &ext)
			}
			ext["seenby"] = json.RawMessage(`"eventpipe"`)
			attrs["extensions"], _ = json.Marshal(ext)
			e.Attributes, _ = json.Marshal(attrs)
			return true
		},
	})
}

func main() {}
