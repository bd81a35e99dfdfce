package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// adminURL is the admin server emit and tail talk to: --to/--from, else
// the admin.listen of the pipeline -c names, else $EVENTPIPE_ADMIN_URL,
// else where run serves it by default.
func adminURL(io IO, flagURL, cpath string) (string, error) {
	if flagURL != "" {
		return flagURL, nil
	}
	if cpath != "" {
		cfg, err := config.Load(cpath, io.Env)
		if err != nil {
			return "", err
		}
		listen := cfg.Admin.Listen
		switch listen {
		case "":
			listen = DefaultAdmin
		case "off":
			return "", fmt.Errorf("%s: admin.listen is off: the pipeline serves no admin API", cpath)
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return "", fmt.Errorf("%s: admin.listen: %w", cpath, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1" // a wildcard listener answers on loopback
		}
		return "http://" + net.JoinHostPort(host, port), nil
	}
	if v, ok := io.Env("EVENTPIPE_ADMIN_URL"); ok && v != "" {
		return v, nil
	}
	return "http://" + DefaultAdmin, nil
}

const adminURLHelp = "The admin server is --to/--from, else the admin.listen of the pipeline -c names,\n" +
	"else $EVENTPIPE_ADMIN_URL, else http://" + DefaultAdmin + " (where run serves it by default)."

func emitVerb() verb {
	return verb{
		use:   "emit [--to URL | -c pipeline.yaml] TYPE [JSON]",
		short: "send one event to a running instance (admin or http ingest)",
		long: "Send one event to a running instance: its admin server (POST /events) or an http ingest.\n" +
			"JSON is the event's data. " + adminURLHelp,
		example: "  eventpipe emit agent.completed '{\"agent\":\"a1\",\"ok\":true}'\n" +
			"  eventpipe emit -c pipeline.yaml --correlation run-42 tool.failed '{\"tool\":\"grep\"}'\n" +
			"  eventpipe emit --to http://127.0.0.1:8088/ingest app.started",
		args: rangeArgs(1, 2, "TYPE and optional JSON data"),
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			to := fs.String("to", "", "base URL of the admin server, or a full ingest URL ending in the ingest path")
			cpath := configFlag(fs, "", "pipeline file whose admin.listen is the server to send to")
			source := fs.String("source", "eventpipe-cli", "the event's source")
			corr := fs.String("correlation", "", "correlation id")
			return func(ctx context.Context, args []string) int {
				return emit(ctx, io, *to, *cpath, *source, *corr, args)
			}
		},
	}
}

func emit(ctx context.Context, io IO, to, cpath, source, corr string, args []string) int {
	base, err := adminURL(io, to, cpath)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe emit: %v\n", err)
		return ExitUsage
	}
	typ := args[0]
	if !pipeline.ValidType(typ) {
		fmt.Fprintf(io.Stderr, "eventpipe emit: %q is not a dotted event type (e.g. agent.completed)\n", typ)
		return ExitUsage
	}
	ev := pipeline.Event{Type: typ, Source: source, CorrelationID: corr, Time: time.Now().UTC()}
	if len(args) == 2 {
		if !json.Valid([]byte(args[1])) {
			fmt.Fprintf(io.Stderr, "eventpipe emit: data is not valid JSON: %s\n", args[1])
			return ExitUsage
		}
		ev.Data = json.RawMessage(args[1])
	}
	target := strings.TrimRight(base, "/")
	if u, err := url.Parse(target); err != nil || u.Host == "" {
		fmt.Fprintf(io.Stderr, "eventpipe emit: not a URL: %q\n", base)
		return ExitUsage
	} else if u.Path == "" {
		target += "/events"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(ev.AppendJSON(nil)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe emit: %v\n", err)
		return ExitRuntime
	}
	defer resp.Body.Close()
	body, _ := readAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		fmt.Fprintf(io.Stderr, "eventpipe emit: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return ExitRuntime
	}
	fmt.Fprintf(io.Stdout, "accepted %s\n", typ)
	return ExitOK
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, 1<<20)) }

func tailVerb() verb {
	return verb{
		use:   "tail [--from URL | -c pipeline.yaml] [PATTERN]",
		short: "print events passing a running instance, live",
		long: "Print, as JSON lines, the events passing a running instance's stages (after\n" +
			"sanitizing), live, until interrupted. PATTERN is a type pattern (default *).\n" + adminURLHelp,
		example: "  eventpipe tail\n  eventpipe tail 'tool.**'\n  eventpipe tail -c pipeline.yaml '*.failed' | jq .data",
		args:    rangeArgs(0, 1, "at most one PATTERN"),
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			from := fs.String("from", "", "base URL of the admin server")
			cpath := configFlag(fs, "", "pipeline file whose admin.listen is the server to tail")
			return func(ctx context.Context, args []string) int {
				return tail(ctx, io, *from, *cpath, args)
			}
		},
	}
}

func tail(ctx context.Context, io IO, from, cpath string, args []string) int {
	base, err := adminURL(io, from, cpath)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe tail: %v\n", err)
		return ExitUsage
	}
	pattern := "*"
	if len(args) == 1 {
		pattern = args[0]
	}
	if _, err := pipeline.CompilePattern(pattern); err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe tail: %v\n", err)
		return ExitUsage
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := io.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/tail?pattern="+url.QueryEscape(pattern), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe tail: %v\n", err)
		return ExitRuntime
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := readAll(resp.Body)
		fmt.Fprintf(io.Stderr, "eventpipe tail: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return ExitRuntime
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	for sc.Scan() {
		fmt.Fprintln(io.Stdout, sc.Text())
	}
	return ExitOK
}

func migrateVerb() verb {
	return verb{
		use:   "migrate [-o pipeline.yaml] [-c] llmspell.toml",
		short: "turn an rs-llmspell [events] section into a pipeline.yaml",
		long: "Turn the [events] section of an rs-llmspell configuration into an equivalent pipeline.yaml\n" +
			"(written to standard output unless -o is given). Every key is mapped or reported: what the\n" +
			"original defaulted (events off, no stdout) and what changed meaning are notes on standard error.",
		example:  "  eventpipe migrate llmspell.toml\n  eventpipe migrate -c llmspell.toml -o pipeline.yaml && eventpipe validate",
		args:     rangeArgs(0, 1, "one llmspell.toml"),
		complete: []string{"toml"},
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			out := fs.StringP("output", "o", "", "write the pipeline here instead of standard output")
			cpath := configFlag(fs, "", "the rs-llmspell configuration (a positional FILE works too)")
			_ = fs.SetAnnotation("config", cobra.BashCompFilenameExt, []string{"toml"})
			return func(_ context.Context, args []string) int {
				if len(args) == 0 && *cpath == "" {
					fmt.Fprintln(io.Stderr, "eventpipe migrate: name the rs-llmspell configuration (llmspell.toml)")
					return ExitUsage
				}
				in, ok := configPath(io, "migrate", *cpath, args)
				if !ok {
					return ExitUsage
				}
				return migrate(io, in, *out)
			}
		},
	}
}

func migrate(io IO, in, out string) int {
	src, err := os.ReadFile(in)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: %v\n", err)
		return ExitUsage
	}
	y, notes, err := config.Migrate(src)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: %s: %v\n", in, err)
		return ExitUsage
	}
	for _, n := range notes {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: note: %s\n", n)
	}
	if out == "" {
		_, _ = io.Stdout.Write(y)
		return ExitOK
	}
	if err := os.WriteFile(out, y, 0o644); err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: %v\n", err)
		return ExitRuntime
	}
	fmt.Fprintf(io.Stdout, "wrote %s\n", out)
	return ExitOK
}

func dlqVerb() verb {
	return verb{
		use: "dlq", short: "work with the dead-letter file", args: cobra.NoArgs,
		long:    "Work with the dead-letter file: what was refused or failed, each record with its reason.",
		example: "  eventpipe dlq replay -c pipeline.yaml",
		sub: []verb{{
			use:   "replay [-c pipeline.yaml | pipeline.yaml] [--file deadletter.jsonl]",
			short: "send dead-lettered events back through the pipeline",
			long: "Send dead-lettered events back through the pipeline's stages and outputs (not its ingest).\n" +
				"The file is first moved to FILE.replayed-TIMESTAMP (never over another archive); what fails again is\n" +
				"dead-lettered anew. It refuses while a running pipeline writes the file, does nothing when the file is\n" +
				"empty, and puts the records back when the replay cannot start. Raw input that never was an event is\n" +
				"decoded again and dead-lettered again if it still is not; the pipeline's max_event_size applies.",
			example: "  eventpipe dlq replay                     # ./pipeline.yaml and its dead_letter.path\n" +
				"  eventpipe dlq replay -c pipeline.yaml --file out/deadletter.jsonl.replayed-20260101T000000Z",
			args:     rangeArgs(0, 1, "at most one pipeline file"),
			complete: []string{"yaml", "yml"},
			flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
				cpath := configFlag(fs, "", "")
				file := fs.String("file", "", "dead-letter file (default: the pipeline's dead_letter.path)")
				_ = fs.SetAnnotation("file", cobra.BashCompFilenameExt, []string{})
				return func(ctx context.Context, args []string) int {
					path, ok := configPath(io, "dlq replay", *cpath, args)
					if !ok {
						return ExitUsage
					}
					return dlqReplay(ctx, io, path, *file)
				}
			},
		}},
	}
}

func dlqReplay(ctx context.Context, io IO, path, file string) int {
	reg := registry(io)
	cfg := loadConfig(ctx, io, reg, path, false)
	if cfg == nil {
		return ExitUsage
	}
	src := file
	if src == "" {
		src = cfg.Resolve(cfg.DeadLetter.Path)
	}
	// No pipeline may write the file while it is moved aside; the records
	// go to an archive of their own and come back if the replay cannot run.
	claim, err := export.ClaimDeadLetter(src)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe dlq replay: %s: %v\n", src, err)
		return ExitRuntime
	}
	defer claim.Release()
	moved, err := claim.Archive()
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe dlq replay: %v\n", err)
		return ExitRuntime
	}
	if moved == "" {
		fmt.Fprintf(io.Stderr, "eventpipe dlq replay: nothing to replay in %s\n", src)
		return ExitOK
	}
	data, err := os.ReadFile(moved)
	if err == nil {
		err = claim.Share()
	}
	var r *runner.Runner
	log := newLogger(io.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err == nil {
		r, err = runner.New(ctx, cfg, runner.Options{
			Registry: reg, Stdin: io.Stdin, Stdout: io.Stdout, Logger: log, Getenv: io.Env,
			SkipConfigSources: true, Sources: []pipeline.Source{&replaySource{name: filepath.Base(moved), data: data, maxEvent: cfg.Events.MaxEventSize}},
		})
	}
	if err != nil {
		if rerr := claim.Restore(moved); rerr != nil {
			fmt.Fprintf(io.Stderr, "eventpipe dlq replay: %v; the records are in %s (putting them back failed: %v)\n", err, moved, rerr)
		} else {
			fmt.Fprintf(io.Stderr, "eventpipe dlq replay: %v; the records are back in %s\n", err, src)
		}
		return ExitRuntime
	}
	sum, err := r.Run(ctx)
	if err != nil && sum.Accepted == 0 && sum.Rejected == 0 {
		// It failed before it took a record (an output that cannot
		// start): the records go back for the next try.
		log.Error("replay failed", "err", err)
		if rerr := claim.Restore(moved); rerr != nil {
			fmt.Fprintf(io.Stderr, "eventpipe dlq replay: the records are in %s (putting them back failed: %v)\n", moved, rerr)
		} else {
			fmt.Fprintf(io.Stderr, "eventpipe dlq replay: nothing was replayed; the records are back in %s\n", src)
		}
		return ExitRuntime
	}
	fmt.Fprintln(io.Stderr, sum.String())
	fmt.Fprintf(io.Stderr, "replayed from %s (kept as %s)\n", src, moved)
	if err != nil {
		log.Error("replay failed", "err", err)
		return ExitRuntime
	}
	return ExitOK
}

// replaySource publishes the events of dead-letter records. Lines of any
// length are read; an event over the pipeline's max_event_size is
// dead-lettered again with the reason, as any that does not decode.
type replaySource struct {
	name     string
	data     []byte
	maxEvent int
}

func (s *replaySource) Finite() bool { return true }

func (s *replaySource) Run(ctx context.Context, p pipeline.Publisher) error {
	opts := pipeline.DecodeOptions{MaxSize: s.maxEvent}
	rest := s.data
	for line := 1; len(rest) > 0; line++ {
		text := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			text, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		var rec export.DeadLetterRecord
		reject := func(reason string, raw []byte) {
			p.Reject(ctx, pipeline.Rejected{Source: s.name, Offset: fmt.Sprintf("line %d", line), Raw: raw, Reason: reason, Time: time.Now().UTC()})
		}
		if err := json.Unmarshal(text, &rec); err != nil {
			reject("not a dead-letter record: "+err.Error(), append([]byte(nil), text...))
			continue
		}
		raw := []byte(rec.Raw)
		if len(rec.Event) > 0 {
			raw = rec.Event
		}
		ev, err := pipeline.Decode(raw, opts)
		if err != nil {
			reject(err.Error(), raw)
			continue
		}
		if err := p.Publish(ctx, ev); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			reject(err.Error(), raw)
		}
	}
	return nil
}
