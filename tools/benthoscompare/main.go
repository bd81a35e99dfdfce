// Command benthoscompare runs the end-to-end benchmark's pipeline in
// eventpipe and the same work in Benthos (the MIT core of Redpanda
// Connect) side by side, on the same input on the same machine, and
// prints events per second and the ratio: `make bench-benthos`. It is a
// module of its own, so that Benthos never enters eventpipe's build.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	"github.com/eventpipe/eventpipe/internal/bench"
)

// benthosConfig is the measured pipeline's work in Benthos: JSON lines in;
// drop *.debug types and a negative data.step (the filter); home
// directories shortened, ".." resolved away and token values redacted (the
// part of sanitize the input exercises); an id and a time stamped; JSON
// lines out to a file.
const benthosConfig = `
input:
  file:
    paths: [ %q ]
    scanner:
      lines: {}
pipeline:
  threads: %d
  processors:
    - mapping: |
        root = if this.type.has_suffix(".debug") || this.data.step.or(0) < 0 { deleted() } else { this }
    - mapping: |
        root = content().string().re_replace_all("/home/[^/\"]+", "~").re_replace_all("/[^/\" ]+/\\.\\./", "/").re_replace_all("(?i)(token)=[^ \"&,;]+", "$1=[REDACTED]").parse_json()
        root.id = uuid_v4()
        root.time = now()
output:
  file:
    path: %q
    codec: lines
logger:
  level: NONE
`

func main() {
	events := flag.Int("events", 300000, "events in the input")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "benthoscompare-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)

	ep, err := bench.Throughput(ctx, bench.Options{Events: *events})
	if err != nil {
		fail(err)
	}

	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, bench.Input(*events), 0o600); err != nil {
		fail(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	b := service.NewStreamBuilder()
	if err := b.SetYAML(fmt.Sprintf(benthosConfig, in, runtime.GOMAXPROCS(0), out)); err != nil {
		fail(err)
	}
	stream, err := b.Build()
	if err != nil {
		fail(err)
	}
	start := time.Now()
	if err := stream.Run(ctx); err != nil {
		fail(err)
	}
	elapsed := time.Since(start)
	raw, _ := os.ReadFile(out)
	n := strings.Count(string(raw), "\n")
	if n != *events {
		fail(fmt.Errorf("benthos wrote %d of %d events", n, *events))
	}
	bps := float64(*events) / elapsed.Seconds()
	fmt.Printf("eventpipe: %.0f events/s (%.2f allocations/event)\n", ep.EventsPerSec, ep.AllocsPerEvent)
	fmt.Printf("benthos:   %.0f events/s (%d threads)\n", bps, runtime.GOMAXPROCS(0))
	fmt.Printf("ratio:     %.1fx\n", ep.EventsPerSec/bps)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benthoscompare:", err)
	os.Exit(1)
}
