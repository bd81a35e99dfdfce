// Command filter is eventpipe's built-in filter plugin: type patterns and
// conditions on data (the same code as the native stage.Filter), configured
// in pipeline.yaml with the keys of stage.FilterConfig:
//
//	filter:
//	  plugins:
//	    - path: plugins/filter.wasm
//	      config:
//	        exclude_types: ["*.debug"]
//	        conditions: [{field: data.level, op: in, value: [warn, error]}]
package main

import (
	"bytes"
	"encoding/json"

	"github.com/eventpipe/eventpipe/pipeline/stage"
	"github.com/eventpipe/eventpipe/plugins/internal/convert"
	"github.com/eventpipe/eventpipe/sdk/go/eventpipe"
)

var f *stage.Filter

func init() {
	eventpipe.Register(eventpipe.Plugin{
		Name: "eventpipe-filter", Version: "1.0.0", Kind: eventpipe.KindFilter,
		Init: func(config []byte, _ []string) error {
			var c stage.FilterConfig
			if len(config) > 0 && string(config) != "null" {
				// Strict: a misspelt key is an error eventpipe_init
				// reports (and `eventpipe validate` shows), not a
				// setting silently ignored.
				d := json.NewDecoder(bytes.NewReader(config))
				d.DisallowUnknownFields()
				if err := d.Decode(&c); err != nil {
					return err
				}
			}
			var err error
			f, err = stage.NewFilter(c)
			return err
		},
		Filter: func(e *eventpipe.Event) eventpipe.Verdict {
			ev := convert.ToPipeline(e)
			if keep, _ := f.Keep(&ev); keep {
				return eventpipe.Keep
			}
			return eventpipe.Drop
		},
	})
}

func main() {}
