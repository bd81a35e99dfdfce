package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// A verb is one subcommand: its help, its flags and what it does with
// them. flags defines the flags on fs and returns the action, which sees
// the parsed flags through the variables it closed over and gets the
// positional arguments; it returns the exit code. Keeping each verb a
// value (not a package-level cobra.Command) keeps the CLI free of global
// state: every Main builds its own tree, so tests run verbs side by side.
type verb struct {
	use, short, long, example string
	// args checks the positional arguments (cobra.ArbitraryArgs if nil).
	args cobra.PositionalArgs
	// complete is what a shell completes positional arguments with:
	// files with these extensions ("yaml"), any file (an empty list), or
	// nothing (nil).
	complete []string
	flags    func(io IO, fs *pflag.FlagSet) func(ctx context.Context, args []string) int
	// sub are the verb's own verbs (dlq replay); a verb with sub and no
	// flags only groups them.
	sub []verb
}

func verbs() []verb {
	return []verb{
		runVerb(), validateVerb(), testVerb(), schemaVerb(), emitVerb(), tailVerb(), migrateVerb(),
		dlqVerb(), replayVerb(), traceVerb(), benchVerb(), versionVerb(),
	}
}

// Main runs the command line args (without the program name) and returns
// the exit code: ExitOK, ExitRuntime, or ExitUsage for bad usage (an
// unknown verb or flag, a wrong number of arguments) and bad
// configurations.
func Main(args []string, io IO) int {
	if io.Env == nil {
		io.Env = func(string) (string, bool) { return "", false }
	}
	code := ExitOK
	root := newRoot(io, &code)
	if len(args) == 0 {
		root.InitDefaultHelpFlag()
		root.SetOut(io.Stderr)
		_ = root.Usage()
		return ExitUsage
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(context.Background())
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe: %v\n", err)
		if cmd != nil {
			fmt.Fprintf(io.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return ExitUsage
	}
	return code
}

func newRoot(io IO, code *int) *cobra.Command {
	root := &cobra.Command{
		Use:   "eventpipe",
		Short: "an event bus and pipeline with sandboxed wasm plugins",
		Long: "eventpipe carries events: JSON lines, HTTP and NATS in; filter, sanitize, route and wasm plugin\n" +
			"stages on batches; stdout, file, webhook, NATS and plugin outputs; a dead-letter file for what fails.\n\n" +
			"Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.",
		Example: "  eventpipe run                               # ./pipeline.yaml until stopped\n" +
			"  eventpipe run -c pipeline.yaml --input testdata/events.jsonl\n" +
			"  eventpipe validate -c pipeline.yaml\n" +
			"  source <(eventpipe completion bash)         # shell completion (also zsh, fish)",
		Version:           Version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.Flags().BoolP("version", "v", false, "print the version")
	root.SetIn(io.Stdin)
	root.SetOut(io.Stdout)
	root.SetErr(io.Stderr)
	// Flag errors are usage errors, reported by Main with the verb's path.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	for _, v := range verbs() {
		root.AddCommand(v.command(io, code))
	}
	// cobra's own verbs, made now (not on Execute) to give them examples.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "completion":
			c.Example = "  eventpipe completion bash > /etc/bash_completion.d/eventpipe\n" +
				"  source <(eventpipe completion bash)\n" +
				"  eventpipe completion zsh > \"${fpath[1]}/_eventpipe\"\n" +
				"  eventpipe completion fish > ~/.config/fish/completions/eventpipe.fish"
			for _, sh := range c.Commands() {
				sh.Example = "  eventpipe completion " + sh.Name() + " --help   # how to install it for good"
			}
		case "help":
			c.Example = "  eventpipe help run"
		}
	}
	return root
}

// command builds the cobra command of v.
func (v verb) command(io IO, code *int) *cobra.Command {
	c := &cobra.Command{Use: v.use, Short: v.short, Long: v.long, Example: v.example, Args: v.args, DisableFlagsInUseLine: true}
	if c.Args == nil {
		c.Args = cobra.ArbitraryArgs
	}
	switch {
	case v.complete == nil:
		c.ValidArgsFunction = cobra.NoFileCompletions
	case len(v.complete) > 0:
		c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return v.complete, cobra.ShellCompDirectiveFilterFileExt
		}
	}
	if v.flags != nil {
		run := v.flags(io, c.Flags())
		c.Run = func(cmd *cobra.Command, args []string) { *code = run(cmd.Context(), args) }
	}
	if v.flags == nil && len(v.sub) > 0 {
		c.Run = func(cmd *cobra.Command, _ []string) {
			cmd.SetOut(io.Stderr)
			_ = cmd.Usage()
			*code = ExitUsage
		}
	}
	if f := c.Flags().Lookup("config"); f != nil && f.Annotations[cobra.BashCompFilenameExt] == nil {
		_ = c.MarkFlagFilename("config", "yaml", "yml") // a pipeline, unless the verb said otherwise
	}
	for _, s := range v.sub {
		c.AddCommand(s.command(io, code))
	}
	return c
}

// configFlag defines --config/-c, the pipeline file, on every verb that
// reads one.
func configFlag(fs *pflag.FlagSet, def, usage string) *string {
	if usage == "" {
		usage = "pipeline file (default pipeline.yaml; a positional FILE works too)"
	}
	return fs.StringP("config", "c", def, usage)
}

// exactArgs is cobra.ExactArgs with the arguments named in the error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("want %s, got %d arguments", what, len(args))
		}
		return nil
	}
}

// rangeArgs is cobra.RangeArgs with the arguments named in the error.
func rangeArgs(lo, hi int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("want %s, got %d arguments", what, len(args))
		}
		return nil
	}
}

// terminal returns w as a terminal, if it is one: progress bars are drawn
// only there, never into a file, a pipe or a CI log.
func terminal(w io.Writer) (*os.File, bool) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	return f, true
}

// envVarsHelp lists the environment overrides (docs/config.md), for the
// help of the verbs that load a pipeline.
func envVarsHelp() string {
	var b strings.Builder
	printEnvVars(&b)
	return b.String()
}
