// Command eventpipe runs and checks eventpipe pipelines. Run
// `eventpipe --help` for the verbs; docs/cli.md documents them.
package main

import (
	"os"
	"runtime/debug"

	"github.com/eventpipe/eventpipe/internal/cli"
)

// gcPercent is the garbage collector's target when GOGC is not set: the
// process holds a bounded buffer of short-lived events, and collecting at
// half the live heap instead of all of it keeps the peak resident memory
// about 10% lower (30-32 MB against 35 on 300,000 events) for a few per
// cent of throughput (docs/operations.md, "Performance"); GOGC overrides.
const gcPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(cli.Main(os.Args[1:], cli.OS()))
}
