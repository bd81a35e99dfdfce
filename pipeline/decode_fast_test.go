package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeFastMatchesStd holds the fast decoder to encoding/json: on any
// input it accepts, the result is the same wireEvent.
func FuzzDecodeFastMatchesStd(f *testing.F) {
	for _, name := range []string{"eventpipe.json", "llmspell.json", "cloudevents.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "decode", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"type":"a.b","tags":null,"metadata":null,"source":null,"id":12,"sequence":"3","x":[1,{"y":"\u00e9"}]}`))
	f.Add([]byte(`{"type":"a\"b","type":"c.d","data":{"k":[true,false,null,-1.5e3]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast wireEvent
		if decodeFast(b, &fast) != nil {
			return // left to encoding/json
		}
		var std wireEvent
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("fast accepted what encoding/json refuses (%v): %q", err, b)
		}
		if diff := cmp.Diff(std, fast); diff != "" {
			t.Fatalf("differs on %q (-std +fast):\n%s", b, diff)
		}
	})
}
