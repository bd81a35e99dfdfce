//go:build wasip1

// Command extism-conformance is the conformance filter (sdk/ABI.md) written
// with the Extism Go PDK, to show that Extism plugins run on eventpipe's
// compatibility path. Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter-extism.wasm .
package main

import (
	"encoding/json"
	"strings"

	pdk "github.com/extism/go-pdk"
)

//go:wasmexport eventpipe_manifest
func manifest() int32 {
	// A test hook: with "hang_at_load" in its config the plugin never
	// finishes loading, to show that load_timeout bounds Extism plugins.
	if cfg, ok := pdk.GetConfig("eventpipe"); ok && strings.Contains(cfg, `"hang_at_load":true`) {
		for {
		}
	}
	pdk.OutputString(`{"name":"conformance-extism","version":"1.0.0","kind":"filter","capabilities":[]}`)
	return 0
}

func fnv1a(b []byte) uint32 {
	h := uint32(0x811c9dc5)
	for _, c := range b {
		h = (h ^ uint32(c)) * 0x01000193
	}
	return h
}

//go:wasmexport eventpipe_process
func process() int32 {
	// A test hook: with "hang" in its config the plugin never returns, to
	// show that Extism plugins obey the batch timeout too.
	if cfg, ok := pdk.GetConfig("eventpipe"); ok && strings.Contains(cfg, `"hang":true`) {
		for {
		}
	}
	var events []struct {
		Type   string          `json:"type"`
		Source string          `json:"source"`
		Data   json.RawMessage `json:"data"`
	}
	if err := pdk.InputJSON(&events); err != nil {
		pdk.SetError(err)
		return 1
	}
	verdicts := make([]int, len(events))
	for i, e := range events {
		switch {
		case e.Source == "evil":
			verdicts[i] = 2
		case strings.HasSuffix(e.Type, ".debug"):
			verdicts[i] = 1
		case fnv1a(e.Data)%7 == 0:
			verdicts[i] = 1
		}
	}
	if err := pdk.OutputJSON(verdicts); err != nil {
		pdk.SetError(err)
		return 1
	}
	return 0
}

func main() {}
