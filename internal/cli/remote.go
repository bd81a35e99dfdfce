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
	y, err := config.Migrate(src)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe migrate: %s: %v\n", fs.Arg(0), err)
		return ExitUsage
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
		"Send dead-lettered events back through the pipeline's stages and outputs (not its ingest).\nThe file is first renamed to FILE.replayed-TIMESTAMP; what fails again is dead-lettered anew.\nRaw input that never was an event is decoded again and dead-lettered again if it still is not.")
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
	data, err := os.ReadFile(src)
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe dlq replay: %v\n", err)
		return ExitRuntime
	}
	moved := fmt.Sprintf("%s.replayed-%s", src, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(src, moved); err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe dlq replay: %v\n", err)
		return ExitRuntime
	}
	log := newLogger(io.Stderr, cfg.Log.Level, cfg.Log.Format)
	r, err := runner.New(ctx, cfg, runner.Options{
		Registry: reg, Stdin: io.Stdin, Stdout: io.Stdout, Logger: log, Getenv: io.Env,
		SkipConfigSources: true, Sources: []pipeline.Source{&replaySource{name: filepath.Base(moved), data: data}},
	})
	if err != nil {
		fmt.Fprintln(io.Stderr, err)
		return ExitUsage
	}
	sum, err := r.Run(ctx)
	fmt.Fprintln(io.Stderr, sum.String())
	fmt.Fprintf(io.Stderr, "replayed from %s (kept as %s)\n", src, moved)
	if err != nil {
		log.Error("replay failed", "err", err)
		return ExitRuntime
	}
	return ExitOK
}

// replaySource publishes the events of dead-letter records.
type replaySource struct {
	name string
	data []byte
}

func (s *replaySource) Finite() bool { return true }

func (s *replaySource) Run(ctx context.Context, p pipeline.Publisher) error {
	sc := bufio.NewScanner(bytes.NewReader(s.data))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var rec export.DeadLetterRecord
		reject := func(reason string, raw []byte) {
			p.Reject(ctx, pipeline.Rejected{Source: s.name, Offset: fmt.Sprintf("line %d", line), Raw: raw, Reason: reason, Time: time.Now().UTC()})
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			reject("not a dead-letter record: "+err.Error(), append([]byte(nil), sc.Bytes()...))
			continue
		}
		raw := []byte(rec.Raw)
		if len(rec.Event) > 0 {
			raw = rec.Event
		}
		ev, err := pipeline.Decode(raw, pipeline.DecodeOptions{})
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
	return sc.Err()
}
