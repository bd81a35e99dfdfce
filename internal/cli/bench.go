package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/eventpipe/eventpipe/internal/bench"
)

func benchVerb() verb {
	return verb{
		use:   "bench [-n EVENTS] [--rate N] [--duration D]",
		short: "measure throughput and latency of a native pipeline on this machine",
		long: "Measure eventpipe on this machine: throughput of JSON lines in -> native filter -> sanitize ->\n" +
			"route -> file out, then emit-to-export latency at a fixed rate with the default batching.\n" +
			"A progress bar is drawn on standard error when it is a terminal (never into a file or a pipe).",
		example: "  eventpipe bench\n  eventpipe bench -n 200000 --rate 0          # throughput only\n  eventpipe bench --rate 50000 --duration 10s",
		args:    cobra.NoArgs,
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			n := fs.IntP("events", "n", 1_000_000, "events for the throughput run")
			rate := fs.Int("rate", 100_000, "events per second for the latency run (0 skips it)")
			dur := fs.Duration("duration", 3*time.Second, "length of the latency run")
			quiet := fs.BoolP("quiet", "q", false, "no progress bar, even on a terminal")
			return func(ctx context.Context, _ []string) int {
				o := bench.Options{Events: *n, Rate: *rate, Duration: *dur, Registry: registry(io)}
				if f, ok := terminal(io.Stderr); ok && !*quiet {
					o.Progress = f
				}
				res, err := bench.Run(ctx, o)
				if err != nil {
					fmt.Fprintf(io.Stderr, "eventpipe bench: %v\n", err)
					return ExitRuntime
				}
				fmt.Fprint(io.Stdout, res.String())
				return ExitOK
			}
		},
	}
}
