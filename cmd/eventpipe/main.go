// Command eventpipe runs and checks eventpipe pipelines. Run
// `eventpipe --help` for the verbs; docs/cli.md documents them.
package main

import (
	"os"

	"github.com/eventpipe/eventpipe/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.OS()))
}
