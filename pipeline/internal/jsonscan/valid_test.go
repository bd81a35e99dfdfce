package jsonscan

import (
	"encoding/json"
	"testing"
)

// FuzzValidMatchesEncodingJSON: Valid's verdict on a whole document is
// encoding/json's, and where it accepts, the value ends where the document
// does (but for white space).
func FuzzValidMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e+3,true,false,null,"x\u00e9\n"]}`, `  "s"  `, `0`, `-0.1`, `01`, `1.`, `[1,]`, `{"a" 1}`,
		"\"\xff\"", `"\ud800"`, `{"a":{"b":[[]]}}`, `1e`, `-`, `"\x"`, "\"\x01\"", `nul`, `[1 2]`, `{}`, `[]`, `{"a":1,}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := Valid(b, 0)
		whole := end >= 0 && SkipWS(b, end) == len(b)
		if whole != json.Valid(b) {
			t.Fatalf("Valid %v (end %d), encoding/json %v: %q", whole, end, json.Valid(b), b)
		}
		if !whole {
			return
		}
		// Scan's findings are those of the separate passes.
		end2, huge, nonASCII := Scan(b, 0)
		wantHuge, _ := HugeNumber(b)
		if end2 != end || huge != wantHuge || nonASCII != hasNonASCII(b) {
			t.Fatalf("Scan %d %q %v, want %d %q %v: %q", end2, huge, nonASCII, end, wantHuge, hasNonASCII(b), b)
		}
	})
}

func hasNonASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
