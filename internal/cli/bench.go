package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/eventpipe/eventpipe/internal/bench"
)

func cmdBench(ctx context.Context, io IO, args []string) int {
	fs := newFlags(io, "bench", "bench [-n EVENTS] [--rate N] [--duration D]",
		"Measure eventpipe on this machine: throughput of JSON lines in -> native filter -> sanitize ->\nroute -> file out, then emit-to-export latency at a fixed rate with the default batching.")
	n := fs.Int("n", 1_000_000, "events for the throughput run")
	rate := fs.Int("rate", 100_000, "events per second for the latency run (0 skips it)")
	dur := fs.Duration("duration", 3*time.Second, "length of the latency run")
	quiet := fs.Bool("q", false, "no progress bar")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	o := bench.Options{Events: *n, Rate: *rate, Duration: *dur, Registry: registry(io)}
	if !*quiet {
		o.Progress = io.Stderr
	}
	res, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe bench: %v\n", err)
		return ExitRuntime
	}
	fmt.Fprint(io.Stdout, res.String())
	return ExitOK
}
