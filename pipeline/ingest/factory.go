package ingest

import (
	"context"
	"os"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/component"
)

// Factories returns the sources' factories: file, stdin and http.
func Factories() []component.Factory {
	return []component.Factory{
		component.NewSourceFactory("file", func() *LinesConfig { return &LinesConfig{} },
			func(_ context.Context, set component.Settings, c *LinesConfig) (component.Source, error) {
				if !c.Follow && c.Checkpoint == "" {
					return NewInput(set, c.Path)
				}
				path, cp := c.Path, c.Checkpoint
				if cp == "" {
					cp = DefaultCheckpoint(".eventpipe/checkpoints", path)
				}
				if set.Resolve != nil {
					path, cp = set.Resolve(path), set.Resolve(cp)
				}
				if !c.Follow {
					if _, err := os.Stat(path); err != nil {
						return nil, pipeline.FieldErrorf("path", "input file: %w", err)
					}
				}
				return NewFollower(path, cp, c.Follow, c.PollInterval, set.MaxEventSize, set.Logger), nil
			}),
		component.NewSourceFactory("stdin", func() *StdinConfig { return &StdinConfig{} },
			func(_ context.Context, set component.Settings, _ *StdinConfig) (component.Source, error) {
				return NewInput(set, "-")
			}),
		component.NewSourceFactory("http", func() *HTTPConfig { return &HTTPConfig{} },
			func(_ context.Context, set component.Settings, c *HTTPConfig) (component.Source, error) {
				return NewHTTP(*c, set.MaxEventSize), nil
			}),
	}
}

// NewInput returns a JSON-lines source over a file path as the
// configuration gives it ("-" is the settings' standard input). The file
// must exist now: a missing input is a configuration error, found by
// `eventpipe validate` as well as by `run`.
func NewInput(set component.Settings, path string) (*Lines, error) {
	if path != "-" {
		if set.Resolve != nil {
			path = set.Resolve(path)
		}
		if _, err := os.Stat(path); err != nil {
			return nil, pipeline.FieldErrorf("path", "input file: %w", err)
		}
	}
	return NewFile(path, set.Stdin, set.MaxEventSize), nil
}
