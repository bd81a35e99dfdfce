package export

import (
	"context"

	"github.com/eventpipe/eventpipe/pipeline/component"
)

// Factories returns the outputs' factories: stdout, file and webhook.
// Retries are not theirs: the runner wraps every output once (Retry),
// configured by the output's retry key.
func Factories() []component.Factory {
	return []component.Factory{
		component.NewOutputFactory("stdout", func() *StdoutConfig { return &StdoutConfig{} },
			func(_ context.Context, set component.Settings, c *StdoutConfig) (component.Output, error) {
				return NewStdout(*c, set.Stdout), nil
			}),
		component.NewOutputFactory("file", func() *FileConfig { return &FileConfig{} },
			func(_ context.Context, set component.Settings, c *FileConfig) (component.Output, error) {
				cfg := *c
				if set.Resolve != nil {
					cfg.Path = set.Resolve(cfg.Path)
				}
				f, err := NewFile(cfg)
				if err != nil {
					return nil, err
				}
				f.logger = set.Logger
				return f, nil
			}),
		component.NewOutputFactory("webhook", func() *WebhookConfig { return &WebhookConfig{} },
			func(_ context.Context, set component.Settings, c *WebhookConfig) (component.Output, error) {
				return NewWebhook(*c, set.HTTPClient)
			}),
	}
}
