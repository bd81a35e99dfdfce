package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

func defaultAdmin(io IO) string {
	if v, ok := io.Env("EVENTPIPE_ADMIN_URL"); ok && v != "" {
		return v
	}
	return "http://127.0.0.1:9090"
}

func cmdEmit(ctx context.Context, io IO, args []string) int {
	fs := newFlags(io, "emit", "emit [--to URL] TYPE [JSON]",
		"Send one event to a running instance: its admin server (POST /events) or an http ingest.\nJSON is the event's data. The default URL comes from EVENTPIPE_ADMIN_URL or is http://127.0.0.1:9090.")
	to := fs.String("to", defaultAdmin(io), "base URL of the admin server, or a full ingest URL ending in the ingest path")
	source := fs.String("source", "eventpipe-cli", "the event's source")
	corr := fs.String("correlation", "", "correlation id")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return ExitUsage
	}
	typ := fs.Arg(0)
	if !pipeline.ValidType(typ) {
		fmt.Fprintf(io.Stderr, "eventpipe emit: %q is not a dotted event type (e.g. agent.completed)\n", typ)
		return ExitUsage
	}
	ev := pipeline.Event{Type: typ, Source: *source, CorrelationID: *corr, Time: time.Now().UTC()}
	if fs.NArg() == 2 {
		if !json.Valid([]byte(fs.Arg(1))) {
			fmt.Fprintf(io.Stderr, "eventpipe emit: data is not valid JSON: %s\n", fs.Arg(1))
			return ExitUsage
		}
		ev.Data = json.RawMessage(fs.Arg(1))
	}
	target := strings.TrimRight(*to, "/")
	if u, err := url.Parse(target); err != nil || u.Host == "" {
		fmt.Fprintf(io.Stderr, "eventpipe emit: --to: not a URL: %q\n", *to)
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

func cmdTail(ctx context.Context, io IO, args []string) int {
	fs := newFlags(io, "tail", "tail [--from URL] [PATTERN]",
		"Print, as JSON lines, the events passing a running instance's stages (after\nsanitizing), live, until interrupted. PATTERN is a type pattern (default *).")
	from := fs.String("from", defaultAdmin(io), "base URL of the admin server")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	pattern := "*"
	if fs.NArg() == 1 {
		pattern = fs.Arg(0)
	} else if fs.NArg() > 1 {
		fs.Usage()
		return ExitUsage
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
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*from, "/")+"/tail?pattern="+url.QueryEscape(pattern), nil)
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

func cmdMigrate(_ context.Context, io IO, args []string) int {
	fs := newFlags(io, "migrate", "migrate [-o pipeline.yaml] llmspell.toml",
		"Turn the [events] section of an rs-llmspell configuration into an equivalent pipeline.yaml\n(written to standard output unless -o is given).")
	out := fs.String("o", "", "write the pipeline here instead of standard output")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return ExitUsage
	}
	src, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: %v\n", err)
		return ExitUsage
	}
	y, notes, err := config.Migrate(src)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: %s: %v\n", fs.Arg(0), err)
		return ExitUsage
	}
	for _, n := range notes {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: note: %s\n", n)
	}
	if *out == "" {
		_, _ = io.Stdout.Write(y)
		return ExitOK
	}
	if err := os.WriteFile(*out, y, 0o644); err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: %v\n", err)
		return ExitRuntime
	}
	fmt.Fprintf(io.Stdout, "wrote %s\n", *out)
	return ExitOK
}

func cmdDLQ(ctx context.Context, io IO, args []string) int {
	if len(args) == 0 || args[0] != "replay" {
		fmt.Fprintln(io.Stderr, "Usage: eventpipe dlq replay -c pipeline.yaml [--file deadletter.jsonl]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return ExitOK
		}
		return ExitUsage
	}
	fs := newFlags(io, "dlq replay", "dlq replay -c pipeline.yaml [--file deadletter.jsonl]",
		"Send dead-lettered events back through the pipeline's stages and outputs (not its ingest).\nThe file is first moved to FILE.replayed-TIMESTAMP (never over another archive); what fails again is\ndead-lettered anew. It refuses while a running pipeline writes the file, does nothing when the file is\nempty, and puts the records back when the replay cannot start. Raw input that never was an event is\ndecoded again and dead-lettered again if it still is not; the pipeline's max_event_size applies.")
	cpath := fs.String("c", "", "pipeline file (default pipeline.yaml; a positional FILE works too)")
	file := fs.String("file", "", "dead-letter file (default: the pipeline's dead_letter.path)")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	path, ok := configPath(io, "dlq replay", *cpath, fs.Args())
	if !ok {
		return ExitUsage
	}
	reg := registry(io)
	cfg := loadConfig(ctx, io, reg, path, false)
	if cfg == nil {
		return ExitUsage
	}
	src := *file
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
