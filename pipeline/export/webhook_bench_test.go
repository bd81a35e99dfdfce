package export_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventpipe/eventpipe/pipeline"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// BenchmarkWebhookCloudEvents: the webhook's CloudEvents modes to a local
// receiver that reads each body, in one run: binary and structured (one
// event per request, default concurrency, kept-alive connections) and
// batch (one request per 512-event batch), with the json format as the
// baseline. Reports events/s.
func BenchmarkWebhookCloudEvents(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	evs := make([]pipeline.Event, 512)
	for i := range evs {
		evs[i] = pipeline.Event{ID: "0193a1b2-c3d4-7e5f-8a9b-" + strings.Repeat("0", 11) + string(rune('a'+i%26)), Type: "agent.completed",
			Source: "researcher", Data: json.RawMessage(`{"i":1,"pad":"` + strings.Repeat("x", 180) + `"}`),
			Cloud: &pipeline.CloudAttributes{Subject: "run/1", DataContentType: "application/json", Extensions: json.RawMessage(`{"tenant":"acme"}`)}}
	}
	for _, tc := range []struct{ name, format, mode string }{
		{"json-batch", "json", ""}, {"binary", "cloudevents", "binary"}, {"structured", "cloudevents", "structured"}, {"batch", "cloudevents", "batch"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w, err := export.NewWebhook(export.WebhookConfig{URL: srv.URL, Format: tc.format, Mode: tc.mode}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Shutdown(context.Background())
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Export(context.Background(), evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
