// Package cli is the eventpipe command: flags and verbs only. Every verb is
// a function of its arguments and streams, so tests run the real command
// without a subprocess.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/eventpipe/eventpipe/host"
	"github.com/eventpipe/eventpipe/jetstream"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// Exit codes.
const (
	ExitOK      = 0 // success
	ExitRuntime = 1 // the run failed, or the operation did
	ExitUsage   = 2 // bad usage or a bad configuration
)

// Version, Commit and BuildDate are set at build time (make build:
// -ldflags "-X github.com/eventpipe/eventpipe/internal/cli.Commit=…").
// Without them the commit comes from the build information Go records
// when it can (a build in a git work tree without -buildvcs=false).
var (
	Version   = "dev"
	Commit    = ""
	BuildDate = ""
)

// buildInfo is the commit and date of this binary, as known.
func buildInfo() (commit, date string) {
	commit, date = Commit, BuildDate
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				commit = s.Value
			case s.Key == "vcs.time" && date == "":
				date = s.Value
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	return commit, date
}

// IO is what a command reads and writes, and its environment.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Env    func(string) (string, bool)
	// Registry, if set, replaces the component registry (the native
	// components plus the wasm host's plugin factories).
	Registry func() *component.Registry
	// Signals, if set, replaces os/signal (tests send their own).
	Signals <-chan os.Signal
	// OnRunner, if set, is called with the runner before it runs.
	OnRunner func(*runner.Runner)
	// Exit, if set, replaces os.Exit for a stop that did not finish
	// within the drain timeout (tests observe it).
	Exit func(code int)
}

// DefaultAdmin is where run serves the admin API when the pipeline says
// nothing (admin.listen: off turns it off): the original design's
// `curl http://localhost:8080/health/events` works out of the box. If the
// address is taken, the run goes on without it (logged).
const DefaultAdmin = "127.0.0.1:8080"

// OS returns the process's streams and environment.
func OS() IO {
	return IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Env: os.LookupEnv}
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func registry(io IO) *component.Registry {
	if io.Registry != nil {
		return io.Registry()
	}
	reg := runner.NewRegistry()
	_ = reg.Register(jetstream.Factories()...)
	if h, err := wasmHost(io); err == nil {
		_ = reg.Register(h.Factories()...)
	} else {
		fmt.Fprintf(io.Stderr, "eventpipe: wasm plugins unavailable: %v\n", err)
	}
	return reg
}

// wasmHost starts the plugin host with its compilation cache in
// $EVENTPIPE_WASM_CACHE, or the user cache directory.
func wasmHost(io IO) (*host.Host, error) {
	dir, ok := io.Env("EVENTPIPE_WASM_CACHE")
	if !ok {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "eventpipe", "wasm")
	}
	return host.New(host.Options{CacheDir: dir})
}

// configPath is the pipeline file a verb was given: -c FILE or one
// positional FILE (the same file if both), else ./pipeline.yaml. These
// verbs take no other argument.
func configPath(io IO, verb, flagValue string, args []string) (string, bool) {
	path := flagValue
	switch {
	case len(args) > 1:
		fmt.Fprintf(io.Stderr, "eventpipe %s: unexpected argument %q\n", verb, args[1])
		return "", false
	case len(args) == 1 && path != "" && path != args[0]:
		fmt.Fprintf(io.Stderr, "eventpipe %s: two pipeline files given (-c %s and %s)\n", verb, path, args[0])
		return "", false
	case len(args) == 1:
		path = args[0]
	case path == "":
		path = "pipeline.yaml"
	}
	return path, true
}

// loadConfig loads a pipeline file; with check, it also builds every
// component once, as run would, and releases them (runner.Validate). On
// error it prints every problem, in file order, and returns nil.
func loadConfig(ctx context.Context, io IO, reg *component.Registry, path string, check bool) *config.Config {
	cfg, err := config.Load(path, io.Env)
	var errs config.Errors
	if err != nil {
		if !errors.As(err, &errs) || cfg == nil {
			fmt.Fprintln(io.Stderr, err)
			return nil
		}
	}
	if check && cfg != nil {
		verr := runner.Validate(ctx, cfg, runner.Options{Registry: reg, Getenv: io.Env, Stdin: io.Stdin, Stdout: io.Stdout,
			Logger: newLogger(io.Stderr, "error", "text")})
		if verr != nil {
			errs = append(errs, cfg.ErrorsFor("", verr)...)
		}
	}
	if err := errs.Err(); err != nil {
		fmt.Fprintln(io.Stderr, err)
		return nil
	}
	return cfg
}

// printEnvVars lists the environment overrides (docs/config.md).
func printEnvVars(w io.Writer) {
	fmt.Fprintf(w, "\nEnvironment overrides (prefix %s; the last wins):\n", strings.Join(config.EnvPrefixes, " or "))
	for _, v := range config.EnvVars() {
		fmt.Fprintf(w, "  %-26s %s\n", v.Name, v.Sets)
	}
}

func schemaVerb() verb {
	return verb{
		use:   "schema",
		short: "print the JSON Schema of pipeline.yaml, for editors",
		long: "Print the JSON Schema (draft 2020-12) of pipeline.yaml, generated from the configuration\n" +
			"of every component this binary has (docs/pipeline.schema.json is its output). Point an\n" +
			"editor at it to complete and check keys, e.g. with the YAML language server:\n" +
			"  # yaml-language-server: $schema=docs/pipeline.schema.json",
		example: "  eventpipe schema > pipeline.schema.json",
		args:    cobra.NoArgs,
		flags: func(io IO, _ *pflag.FlagSet) func(context.Context, []string) int {
			return func(context.Context, []string) int {
				b, err := json.MarshalIndent(config.Schema(registry(io), runner.QueueConfig{}, export.RetryConfig{}), "", "  ")
				if err != nil {
					fmt.Fprintln(io.Stderr, "eventpipe schema:", err)
					return ExitRuntime
				}
				fmt.Fprintln(io.Stdout, string(b))
				return ExitOK
			}
		},
	}
}

// versionLine is what `eventpipe version` prints.
func versionLine() string {
	commit, date := buildInfo()
	return fmt.Sprintf("eventpipe %s (commit %s, built %s, %s, %s/%s)", Version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionVerb() verb {
	return verb{
		use: "version", short: "print the version, commit and build date", args: cobra.NoArgs,
		example: "  eventpipe version\n  eventpipe --version",
		flags: func(io IO, _ *pflag.FlagSet) func(context.Context, []string) int {
			return func(context.Context, []string) int {
				fmt.Fprintln(io.Stdout, versionLine())
				return ExitOK
			}
		},
	}
}

func validateVerb() verb {
	return verb{
		use:   "validate [-c pipeline.yaml | pipeline.yaml]",
		short: "check a pipeline file and report every error with file:line:col",
		long: "Check a pipeline file as run would, short of starting it: YAML, keys, types, patterns,\n" +
			"routes, outputs, input files, addresses, and every plugin loaded and initialised with its\n" +
			"configuration. Every error is reported at once as file:line:col: message.\n" +
			"Environment overrides apply.\n" + envVarsHelp(),
		example: "  eventpipe validate                 # ./pipeline.yaml\n" +
			"  eventpipe validate -c examples/audit-trail/pipeline.yaml\n" +
			"  eventpipe validate pipeline.yaml && eventpipe run pipeline.yaml",
		args:     rangeArgs(0, 1, "at most one pipeline file"),
		complete: []string{"yaml", "yml"},
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			cpath := configFlag(fs, "", "")
			return func(ctx context.Context, args []string) int {
				path, ok := configPath(io, "validate", *cpath, args)
				if !ok {
					return ExitUsage
				}
				if loadConfig(ctx, io, registry(io), path, true) == nil {
					return ExitUsage
				}
				fmt.Fprintf(io.Stdout, "%s: ok\n", path)
				return ExitOK
			}
		},
	}
}

// stopGrace is how long past the drain timeout a stop may take before
// the process exits anyway.
const stopGrace = 5 * time.Second

// watchStop makes a stop finish whatever happens: a second signal, or the
// drain timeout (plus stopGrace) passing, exits the process at once. What
// can hold a stop beyond its deadline is code that does not look at its
// context: a write blocked in the kernel, an output's client that ignores
// it. (Plugins cannot: every module is metered and stopped by its batch
// timeout.)
func watchStop(io IO, log *slog.Logger, drain time.Duration, sigs <-chan os.Signal, done <-chan struct{}) {
	exit := io.Exit
	if exit == nil {
		exit = os.Exit
	}
	if drain <= 0 {
		drain = 30 * time.Second
	}
	go func() {
		t := time.NewTimer(drain + stopGrace)
		defer t.Stop()
		select {
		case <-done:
			return
		case s := <-sigs:
			log.Error("second signal: exiting without finishing the drain", "signal", s.String())
		case <-t.C:
			log.Error("the stop did not finish within the drain timeout; exiting (is an output blocked?)", "drain_timeout", drain)
		}
		exit(ExitRuntime)
	}()
}

func runVerb() verb {
	return verb{
		use:   "run [-c pipeline.yaml | pipeline.yaml] [--input FILE|-]...",
		short: "run a pipeline until stopped, or until its finite inputs end",
		long: "Run a pipeline. SIGINT/SIGTERM stop ingest, drain the buffer and flush every output\n" +
			"(a second signal, or --drain-timeout plus 5s, exits at once with status 1);\n" +
			"SIGHUP reloads the file (a bad file is refused and the old one kept).\n" +
			"When every input is finite (files, stdin) the run ends by itself after draining.\n" +
			"The admin API (health, metrics, tail) is served on 127.0.0.1:8080 unless admin.listen says\n" +
			"otherwise (off turns it off); enabling and disabling events needs the token it writes to\n" +
			".eventpipe/admin.token next to the pipeline file.\n" + envVarsHelp(),
		example: "  eventpipe run                                        # ./pipeline.yaml\n" +
			"  eventpipe run -c pipeline.yaml --input testdata/events.jsonl\n" +
			"  tail -F agent.log | eventpipe run pipeline.yaml --input -\n" +
			"  LLMSPELL_EVENTS_BUFFER_SIZE=50000 eventpipe run --drain-timeout 1m",
		args:     rangeArgs(0, 1, "at most one pipeline file"),
		complete: []string{"yaml", "yml"},
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			cpath := configFlag(fs, "", "")
			inputs := fs.StringArrayP("input", "i", nil, "add a JSON-lines input: a file, or - for stdin (repeatable)")
			drain := fs.Duration("drain-timeout", 0, "bound on the flush at shutdown (default 30s)")
			_ = fs.SetAnnotation("input", cobra.BashCompFilenameExt, []string{})
			return func(ctx context.Context, args []string) int {
				return runPipeline(ctx, io, *cpath, args, *inputs, *drain)
			}
		},
	}
}

func runPipeline(ctx context.Context, io IO, cpath string, args, inputs []string, drain time.Duration) int {
	path, ok := configPath(io, "run", cpath, args)
	if !ok {
		return ExitUsage
	}
	reg := registry(io) // one wasm host for the run and its reloads
	cfg := loadConfig(ctx, io, reg, path, false)
	if cfg == nil {
		return ExitUsage
	}
	log := newLogger(io.Stderr, cfg.Log.Level, cfg.Log.Format)
	r, err := runner.New(ctx, cfg, runner.Options{
		Registry: reg, Stdin: io.Stdin, Stdout: io.Stdout, Logger: log, Getenv: io.Env,
		Inputs: inputs, DrainTimeout: drain, DefaultAdmin: DefaultAdmin,
	})
	if err != nil {
		fmt.Fprintln(io.Stderr, err)
		return ExitUsage
	}
	if io.OnRunner != nil {
		io.OnRunner(r)
	}
	sigs := io.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan struct{})
	defer close(runDone)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				if s == syscall.SIGHUP {
					reload(ctx, io, r, path, log)
					continue
				}
				log.Info("stopping: draining the buffer and flushing outputs", "signal", s.String())
				cancel()
				watchStop(io, log, drain, sigs, runDone)
				return
			}
		}
	}()
	sum, err := r.Run(ctx)
	fmt.Fprintln(io.Stderr, sum.String())
	if err != nil {
		log.Error("run failed", "err", err)
		return ExitRuntime
	}
	if sum.Lost > 0 {
		return ExitRuntime
	}
	return ExitOK
}

func reload(ctx context.Context, io IO, r *runner.Runner, path string, log *slog.Logger) {
	cfg, err := config.Load(path, io.Env)
	if err == nil {
		err = r.Reload(ctx, cfg)
	}
	if err != nil {
		log.Error("reload refused; still running on the previous configuration", "file", path, "err", err)
		return
	}
	log.Info("configuration reloaded", "file", path)
}
