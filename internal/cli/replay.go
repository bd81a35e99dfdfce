package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/eventpipe/eventpipe/jetstream"
	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/runner"
)

// ReplayedTag marks an event sent again by `eventpipe replay`.
const ReplayedTag = "replayed"

// eventSource is where replay and trace read events: a JSON-lines file, or
// the stream of the pipeline's persist section.
type eventSource struct {
	file     string
	cfg      *config.Config
	reg      *component.Registry
	q        jetstream.Query
	progress bool // a progress bar on a terminal
	stderr   io.Writer
}

// storeConfig decodes the persist section of cfg.
func storeConfig(cfg *config.Config, reg *component.Registry) (*jetstream.StoreConfig, error) {
	for _, c := range cfg.Components() {
		if c.Class != component.ClassStore {
			continue
		}
		f, err := reg.Lookup(component.ClassStore, c.Type)
		if err != nil {
			return nil, err
		}
		sc, ok := f.NewConfig().(*jetstream.StoreConfig)
		if !ok {
			return nil, fmt.Errorf("persist: type %s cannot be read back", c.Type)
		}
		if errs := cfg.Decode(c, sc); len(errs) > 0 {
			return nil, errs.Err()
		}
		return sc, sc.Validate()
	}
	return nil, errors.New("the pipeline has no persist section: give a JSON-lines file to read instead")
}

// read calls fn with every selected event.
func (s *eventSource) read(ctx context.Context, fn func(pipeline.Event) error) error {
	if s.file != "" {
		return readFile(s.file, s.q, fn)
	}
	sc, err := storeConfig(s.cfg, s.reg)
	if err != nil {
		return err
	}
	conn, err := sc.Dial("eventpipe-replay", s.cfg.Resolve)
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	defer conn.Close()
	rd, err := jetstream.NewReader(conn, *sc)
	if err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	if f, ok := terminal(s.stderr); ok && s.progress {
		if n, err := rd.Pending(ctx); err == nil && n > 1000 {
			bar = progressbar.NewOptions64(int64(n), progressbar.OptionSetWriter(f), progressbar.OptionSetDescription("replay"),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			defer bar.Finish()
		}
	}
	return rd.Read(ctx, s.q, func(ev pipeline.Event) error {
		if bar != nil {
			_ = bar.Add(1)
		}
		return fn(ev)
	})
}

// readFile reads a JSON-lines file: events, exports, or dead-letter
// records (whose event is under "event").
func readFile(path string, q jetstream.Query, fn func(pipeline.Event) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	match, err := q.Matcher()
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev, ok, err := decodeRecord(b)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if !ok {
			continue // a dead-letter record of input that never was an event
		}
		if !match(&ev) || !q.Since.IsZero() && ev.Time.Before(q.Since) || !q.Until.IsZero() && ev.Time.After(q.Until) {
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return sc.Err()
}

// decodeRecord reads an event, or the event of a dead-letter record; ok
// is false for a dead-letter record of raw input (no event to read).
func decodeRecord(b []byte) (ev pipeline.Event, ok bool, err error) {
	var rec struct {
		Event  json.RawMessage `json:"event"`
		Stage  string          `json:"stage"`
		Reason string          `json:"reason"`
	}
	if json.Unmarshal(b, &rec) == nil && rec.Stage != "" && rec.Reason != "" {
		if len(rec.Event) == 0 {
			return ev, false, nil
		}
		b = rec.Event
	}
	ev, err = pipeline.Decode(b, pipeline.DecodeOptions{MaxSize: -1})
	return ev, err == nil, err
}

// queryFlags adds the selection flags shared by replay and trace.
type queryFlags struct {
	since, until   string
	fromSeq, toSeq uint64
	types          []string
	correlation    string
}

func (q *queryFlags) query() (jetstream.Query, error) {
	out := jetstream.Query{FromSeq: q.fromSeq, ToSeq: q.toSeq, Types: q.types, Correlation: q.correlation}
	var err error
	if out.Since, err = parseTime(q.since); err != nil {
		return out, fmt.Errorf("--since: %w", err)
	}
	if out.Until, err = parseTime(q.until); err != nil {
		return out, fmt.Errorf("--until: %w", err)
	}
	return out, nil
}

// parseTime reads RFC 3339 or a duration back from now ("2h").
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func replayVerb() verb {
	return verb{
		use:   "replay [-c pipeline.yaml] [--through other.yaml | --stdout] [filters] [FILE.jsonl]",
		short: "send stored events (or a JSON-lines file) through a pipeline or to stdout",
		long: "Read stored events (the persist section's stream, or a JSON-lines file: an export or a dead-letter file)\n" +
			"and send them through a pipeline's stages and outputs — this one, or --through another — or to stdout.\n" +
			"Replayed events keep their ids and times and carry the tag \"replayed\"; they are not stored again.\n" +
			"T is RFC 3339 or a duration back from now (2h). A progress bar is drawn on a terminal only.",
		example: "  eventpipe replay -c pipeline.yaml --since 2h --stdout\n" +
			"  eventpipe replay --type 'tool.**' --correlation run-42 --through candidate.yaml\n" +
			"  eventpipe replay --stdout out/audit.jsonl --type 'security.*'",
		args:     rangeArgs(0, 1, "at most one FILE"),
		complete: []string{"jsonl", "json", "log"},
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			cpath := configFlag(fs, "pipeline.yaml", "pipeline file whose persist section names the stream")
			through := fs.String("through", "", "send the events through this pipeline instead (e.g. one with a new filter plugin)")
			_ = fs.SetAnnotation("through", cobra.BashCompFilenameExt, []string{"yaml", "yml"})
			stdout := fs.Bool("stdout", false, "print the events as JSON lines instead of running a pipeline")
			var q queryFlags
			fs.StringVar(&q.since, "since", "", "events stored at or after T")
			fs.StringVar(&q.until, "until", "", "events stored up to T")
			fs.Uint64Var(&q.fromSeq, "from-seq", 0, "from this stream sequence")
			fs.Uint64Var(&q.toSeq, "to-seq", 0, "up to this stream sequence")
			fs.StringArrayVar(&q.types, "type", nil, "type pattern (repeatable)")
			fs.StringVar(&q.correlation, "correlation", "", "only this correlation id")
			return func(ctx context.Context, args []string) int {
				return replay(ctx, io, *cpath, *through, *stdout, q, args)
			}
		},
	}
}

func replay(ctx context.Context, io IO, cpath, through string, stdout bool, q queryFlags, args []string) int {
	query, err := q.query()
	if err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe replay: %v\n", err)
		return ExitUsage
	}
	reg := registry(io)
	src := &eventSource{reg: reg, q: query, progress: true, stderr: io.Stderr}
	if len(args) == 1 {
		src.file = args[0]
	}
	if src.file == "" || !stdout {
		if src.cfg = loadConfig(ctx, io, reg, cpath, false); src.cfg == nil {
			return ExitUsage
		}
	}
	mark := func(ev *pipeline.Event) {
		if !slices.Contains(ev.Tags, ReplayedTag) {
			ev.Tags = append(slices.Clip(ev.Tags), ReplayedTag)
		}
	}
	if stdout {
		w := bufio.NewWriter(io.Stdout)
		defer w.Flush()
		n := 0
		err := src.read(ctx, func(ev pipeline.Event) error {
			mark(&ev)
			n++
			_, err := w.Write(append(ev.AppendJSON(nil), '\n'))
			return err
		})
		w.Flush()
		fmt.Fprintf(io.Stderr, "eventpipe replay: %d events\n", n)
		if err != nil {
			fmt.Fprintf(io.Stderr, "eventpipe replay: %v\n", err)
			return ExitRuntime
		}
		return ExitOK
	}
	pcfg := src.cfg
	if through != "" {
		if pcfg = loadConfig(ctx, io, reg, through, false); pcfg == nil {
			return ExitUsage
		}
	}
	log := newLogger(io.Stderr, pcfg.Log.Level, pcfg.Log.Format)
	r, err := runner.New(ctx, pcfg, runner.Options{
		Registry: reg, Stdin: io.Stdin, Stdout: io.Stdout, Logger: log, Getenv: io.Env,
		SkipConfigSources: true, NoStore: true,
		Sources: []pipeline.Source{replayFunc(func(ctx context.Context, p pipeline.Publisher) error {
			return src.read(ctx, func(ev pipeline.Event) error {
				mark(&ev)
				if err := p.Publish(ctx, ev); err != nil {
					var de *pipeline.DecodeError
					if errors.As(err, &de) {
						p.Reject(ctx, pipeline.Rejected{Source: "replay", Raw: ev.AppendJSON(nil), Reason: err.Error(), Time: time.Now().UTC()})
						return nil
					}
					return err
				}
				return nil
			})
		})},
	})
	if err != nil {
		fmt.Fprintln(io.Stderr, err)
		return ExitUsage
	}
	sum, err := r.Run(ctx)
	fmt.Fprintln(io.Stderr, sum.String())
	if err != nil {
		log.Error("replay failed", "err", err)
		return ExitRuntime
	}
	return ExitOK
}

// replayFunc is a finite source made of a function.
type replayFunc func(ctx context.Context, p pipeline.Publisher) error

func (f replayFunc) Run(ctx context.Context, p pipeline.Publisher) error { return f(ctx, p) }
func (f replayFunc) Finite() bool                                        { return true }

func traceVerb() verb {
	return verb{
		use:   "trace [-c pipeline.yaml] [--tree] [--file FILE.jsonl] CORRELATION_ID",
		short: "print one correlation's events in causal order",
		long: "Print every event of one correlation in causal order: an event follows the event its causation_id names;\n" +
			"events with no known cause start the trace; siblings go by time. JSON lines, or an indented tree with --tree.",
		example: "  eventpipe trace --tree run-42\n  eventpipe trace --file out/audit.jsonl run-42 | jq -c '{type, id}'",
		args:    exactArgs(1, "one CORRELATION_ID"),
		flags: func(io IO, fs *pflag.FlagSet) func(context.Context, []string) int {
			cpath := configFlag(fs, "pipeline.yaml", "pipeline file whose persist section names the stream")
			file := fs.String("file", "", "read a JSON-lines file (an export or a dead-letter file) instead of the stream")
			_ = fs.SetAnnotation("file", cobra.BashCompFilenameExt, []string{})
			tree := fs.Bool("tree", false, "print an indented tree")
			return func(ctx context.Context, args []string) int {
				return trace(ctx, io, *cpath, *file, *tree, args[0])
			}
		},
	}
}

func trace(ctx context.Context, io IO, cpath, file string, tree bool, corr string) int {
	reg := registry(io)
	src := &eventSource{file: file, reg: reg, q: jetstream.Query{Correlation: corr}, stderr: io.Stderr}
	if src.file == "" {
		if src.cfg = loadConfig(ctx, io, reg, cpath, false); src.cfg == nil {
			return ExitUsage
		}
	}
	var evs []pipeline.Event
	if err := src.read(ctx, func(ev pipeline.Event) error { evs = append(evs, ev); return nil }); err != nil {
		fmt.Fprintf(io.Stderr, "eventpipe trace: %v\n", err)
		return ExitRuntime
	}
	if len(evs) == 0 {
		fmt.Fprintf(io.Stderr, "eventpipe trace: no events with correlation id %q\n", corr)
		return ExitRuntime
	}
	w := bufio.NewWriter(io.Stdout)
	defer w.Flush()
	for _, n := range CausalOrder(evs) {
		if tree {
			fmt.Fprintf(w, "%s%s  %s  %s\n", strings.Repeat("  ", n.Depth), n.Event.Type, n.Event.ID, n.Event.Time.Format(time.RFC3339Nano))
		} else {
			_, _ = w.Write(append(n.Event.AppendJSON(nil), '\n'))
		}
	}
	return ExitOK
}

// TraceNode is an event in causal order, with its depth in the tree.
type TraceNode struct {
	Event pipeline.Event
	Depth int
}

// CausalOrder orders events so that each follows its cause (the event its
// causation_id names); roots are events whose cause is not among them;
// siblings are ordered by time, then sequence, then id. Each event appears
// once, even if causation ids form a cycle.
func CausalOrder(evs []pipeline.Event) []TraceNode {
	byID := map[string]int{}
	for i := range evs {
		if evs[i].ID != "" {
			byID[evs[i].ID] = i
		}
	}
	children := map[int][]int{}
	var roots []int
	for i := range evs {
		if p, ok := byID[evs[i].CausationID]; ok && evs[i].CausationID != "" && p != i {
			children[p] = append(children[p], i)
		} else {
			roots = append(roots, i)
		}
	}
	less := func(a, b int) int {
		if c := evs[a].Time.Compare(evs[b].Time); c != 0 {
			return c
		}
		if evs[a].Sequence != evs[b].Sequence {
			return int(evs[a].Sequence) - int(evs[b].Sequence)
		}
		return strings.Compare(evs[a].ID, evs[b].ID)
	}
	slices.SortFunc(roots, less)
	out := make([]TraceNode, 0, len(evs))
	seen := make([]bool, len(evs))
	var walk func(i, depth int)
	walk = func(i, depth int) {
		if seen[i] {
			return
		}
		seen[i] = true
		out = append(out, TraceNode{evs[i], depth})
		kids := children[i]
		slices.SortFunc(kids, less)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	for i := range evs { // cycles: events no root leads to
		if !seen[i] {
			walk(i, 0)
		}
	}
	return out
}
