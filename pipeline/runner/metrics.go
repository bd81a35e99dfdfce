package runner

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the runner's Prometheus metrics, in a registry of its own (no
// global state): GET /metrics on the admin server.
type metrics struct {
	reg            *prometheus.Registry
	ingested       prometheus.Counter
	rejected       *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	deadLettered   *prometheus.CounterVec
	exported       *prometheus.CounterVec
	exportFailures *prometheus.CounterVec
	retries        *prometheus.CounterVec
	batchSeconds   prometheus.Histogram
	components     componentMetrics
}

func newMetrics(r *Runner) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.components.reg = m.reg
	m.ingested = prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_ingested_events_total", Help: "Events accepted from sources."})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_rejected_input_total", Help: "Input that was not an event, by source."}, []string{"source"})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_dropped_events_total", Help: "Events dropped on purpose by a stage."}, []string{"stage"})
	m.deadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_dead_lettered_total", Help: "Records written to the dead-letter file, by stage."}, []string{"stage"})
	m.exported = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_exported_events_total", Help: "Events an output accepted."}, []string{"output"})
	m.exportFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_export_failed_events_total", Help: "Events an output failed to take after retries (dead-lettered)."}, []string{"output"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_export_retries_total", Help: "Export retries."}, []string{"output"})
	m.batchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eventpipe_batch_seconds", Help: "Time to run the stages and exporters on one batch.", Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10)})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.ingested, m.rejected, m.dropped, m.deadLettered, m.exported, m.exportFailures, m.retries, m.batchSeconds,
		gauge("eventpipe_queue_depth", "Events queued in the buffer.", func() float64 { return float64(r.bus.Stats().QueueDepth) }),
		gauge("eventpipe_queue_high_water", "Most events ever queued.", func() float64 { return float64(r.bus.Stats().HighWater) }),
		gauge("eventpipe_enabled", "1 when events are enabled.", func() float64 {
			if r.bus.Enabled() {
				return 1
			}
			return 0
		}),
		counter("eventpipe_buffer_dropped_total", "Events the buffer dropped on overflow.", func() float64 { return float64(r.bus.Stats().Dropped.Total()) }),
		counter("eventpipe_ingest_repaired_total", "Events accepted after bytes that were not UTF-8 were replaced with U+FFFD.", func() float64 { return float64(r.repaired.Load()) }),
		counter("eventpipe_ingest_refused_total", "Events ingest refused because the buffer stayed full (the sender was told to send them again).", func() float64 { return float64(r.bus.Stats().Refused) }),
		counter("eventpipe_rate_limited_total", "Events refused by the rate limit.", func() float64 { return float64(r.bus.Stats().RateLimited) }),
		counter("eventpipe_filtered_total", "Events the type filter passed over.", func() float64 { return float64(r.bus.Stats().Filtered) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}
