package runner

import (
	"context"
	"log/slog"
	"sync"

	"github.com/eventpipe/eventpipe/pipeline/stage"
)

// scrubber takes secrets, user data and paths out of error text the
// runner puts where people read it: dead-letter reasons, an output's
// last_error in /health/events, and errors in the log. A webhook's failure
// quotes its URL (and a token in its query), a plugin's error can name a
// home directory, an exporter's can echo a credential: the same native
// sanitizer the sanitize stage runs, with its defaults, whatever the
// pipeline's sanitize section says (that section is about events). Safe
// for concurrent use.
type scrubber struct {
	mu sync.Mutex
	s  *stage.Sanitize
}

func newScrubber() *scrubber {
	s, err := stage.NewSanitize(stage.SanitizeConfig{Secrets: true, Paths: true, UserData: true})
	if err != nil {
		panic("runner: the default sanitizer does not build: " + err.Error())
	}
	return &scrubber{s: s}
}

// String returns s with secrets, user data and paths taken out.
func (c *scrubber) String(s string) string {
	if s == "" {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.String(s)
}

// scrubHandler is a slog.Handler that scrubs error values (and string
// values under the keys err, error and reason) before the handler it wraps
// sees them.
type scrubHandler struct {
	next slog.Handler
	s    *scrubber
}

func (h scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h scrubHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h scrubHandler) attr(a slog.Attr) slog.Attr {
	switch v := a.Value.Resolve(); v.Kind() {
	case slog.KindAny:
		if err, ok := v.Any().(error); ok && err != nil {
			return slog.String(a.Key, h.s.String(err.Error()))
		}
	case slog.KindString:
		switch a.Key {
		case "err", "error", "reason":
			return slog.String(a.Key, h.s.String(v.String()))
		}
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]slog.Attr, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	}
	return a
}

func (h scrubHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.attr(a)
	}
	return scrubHandler{next: h.next.WithAttrs(out), s: h.s}
}

func (h scrubHandler) WithGroup(name string) slog.Handler {
	return scrubHandler{next: h.next.WithGroup(name), s: h.s}
}
