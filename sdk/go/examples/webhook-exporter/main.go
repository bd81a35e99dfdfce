// Command webhook-exporter is an export plugin written with the Go SDK: it
// posts each batch as a JSON array to the URL in its config, through the
// host's http capability (so only to hosts in allowed_hosts).
//
//	export:
//	  hook:
//	    type: plugin
//	    path: webhook-exporter.wasm
//	    capabilities: [http]
//	    allowed_hosts: [hooks.example.com]
//	    config: {url: "https://hooks.example.com/events"}
package main

import (
	"encoding/json"
	"fmt"

	"github.com/eventpipe/eventpipe/sdk/go/eventpipe"
	"github.com/eventpipe/eventpipe/sdk/go/eventpipe/http"
)

var target string

type wireEvent struct {
	Type     string          `json:"type"`
	Source   string          `json:"source,omitempty"`
	ID       string          `json:"id,omitempty"`
	Sequence uint64          `json:"sequence"`
	Data     json.RawMessage `json:"data,omitempty"`
}

func init() {
	eventpipe.Register(eventpipe.Plugin{
		Name: "webhook-exporter", Version: "1.0.0", Kind: eventpipe.KindExport, Capabilities: []string{"http"},
		Init: func(config []byte, _ []string) error {
			var c struct {
				URL string `json:"url"`
			}
			if err := json.Unmarshal(config, &c); err != nil || c.URL == "" {
				return fmt.Errorf("config needs url")
			}
			target = c.URL
			return nil
		},
		Export: func(events []eventpipe.Event) (eventpipe.Status, string) {
			batch := make([]wireEvent, len(events))
			for i, e := range events {
				batch[i] = wireEvent{Type: e.Type, Source: e.Source, ID: e.ID, Sequence: e.Sequence}
				if len(e.Data) > 0 {
					batch[i].Data = json.RawMessage(e.Data)
				}
			}
			body, _ := json.Marshal(batch)
			resp, err := http.Do(http.Request{URL: target, Body: body, Headers: map[string]string{"Content-Type": "application/json"}})
			switch {
			case err != nil:
				return eventpipe.Permanent, err.Error()
			case resp.Status >= 500 || resp.Status == 429:
				return eventpipe.Retryable, fmt.Sprintf("status %d", resp.Status)
			case resp.Status >= 300:
				return eventpipe.Permanent, fmt.Sprintf("status %d", resp.Status)
			}
			return eventpipe.Delivered, ""
		},
	})
}

func main() {}
