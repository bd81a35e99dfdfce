// Command conformance is the conformance filter (sdk/ABI.md) written with
// the Go SDK. Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter-go.wasm .
package main

import (
	"strings"

	"github.com/eventpipe/eventpipe/sdk/go/eventpipe"
)

func fnv1a(b []byte) uint32 {
	h := uint32(0x811c9dc5)
	for _, c := range b {
		h = (h ^ uint32(c)) * 0x01000193
	}
	return h
}

func init() {
	eventpipe.Register(eventpipe.Plugin{
		Name: "conformance-go", Version: "1.0.0", Kind: eventpipe.KindFilter,
		Filter: func(e *eventpipe.Event) eventpipe.Verdict {
			switch {
			case e.Source == "evil":
				return eventpipe.DeadLetter
			case strings.HasSuffix(e.Type, ".debug"):
				return eventpipe.Drop
			case fnv1a(e.Data)%7 == 0:
				return eventpipe.Drop
			}
			return eventpipe.Keep
		},
	})
}

func main() {}
