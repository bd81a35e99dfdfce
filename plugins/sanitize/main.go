// Command sanitize is eventpipe's built-in sanitize plugin: the same code
// as the native stage.Sanitize (paths, secrets, user data), configured with
// the keys of stage.SanitizeConfig; an empty config means the defaults.
package main

import (
	"bytes"
	"encoding/json"

	"github.com/eventpipe/eventpipe/pipeline/stage"
	"github.com/eventpipe/eventpipe/plugins/internal/convert"
	"github.com/eventpipe/eventpipe/sdk/go/eventpipe"
)

var s *stage.Sanitize

func init() {
	eventpipe.Register(eventpipe.Plugin{
		Name: "eventpipe-sanitize", Version: "1.0.0", Kind: eventpipe.KindTransform,
		Init: func(config []byte, _ []string) error {
			c := stage.DefaultSanitizeConfig()
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
			s, err = stage.NewSanitize(c)
			return err
		},
		Transform: func(e *eventpipe.Event) bool {
			ev := convert.ToPipeline(e)
			changed, err := s.Event(&ev)
			if err != nil {
				return false
			}
			if changed {
				e.Source, e.Data = ev.Source, ev.Data
			}
			return true
		},
	})
}

func main() {}
