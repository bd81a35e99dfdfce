// Package export holds eventpipe's built-in exporters — stdout, file and
// webhook — the dead-letter writer, and the Retry wrapper that gives any
// pipeline.Exporter retries with exponential backoff and jitter.
//
// Each exporter kind has a config struct with Validate and a constructor;
// the runner assembles them from pipeline.yaml.
package export
