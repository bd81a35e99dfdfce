package cli

import (
	"context"
	"fmt"
)

func cmdBench(_ context.Context, io IO, args []string) int {
	fmt.Fprintln(io.Stderr, "eventpipe bench: not built yet")
	return ExitRuntime
}
