package runner

import (
	"context"
	"encoding/json"
	"time"

	"github.com/eventpipe/eventpipe/pipeline"
)

// StatsEventType is the type of the events a runner emits every
// events.stats_interval.
const StatsEventType = "event.stats"

// statsData is an event.stats event's data (docs/operations.md).
type statsData struct {
	IntervalSeconds float64           `json:"interval_s"`
	Accepted        uint64            `json:"accepted"`
	AcceptedPerSec  float64           `json:"accepted_per_s"`
	QueueDepth      int               `json:"queue_depth"`
	QueueHighWater  int               `json:"queue_high_water"`
	BytesHeld       int64             `json:"bytes_held"`
	Dropped         map[string]uint64 `json:"dropped"`
	DeadLettered    uint64            `json:"dead_lettered"`
	Rejected        uint64            `json:"rejected"`
	Refused         uint64            `json:"refused"`
	ErrorRate       float64           `json:"error_rate"` // dead-lettered and rejected per accepted, this interval
}

type outputStatsData struct {
	Exported uint64 `json:"exported"`
	Failed   uint64 `json:"failed"`
	Queued   int64  `json:"queued"`
	Slow     bool   `json:"slow"`
}

// emitStats publishes an event.stats event every interval until stop is
// closed.
func (r *Runner) emitStats(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last Summary
	lastAt := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			sum := r.Summary()
			h := r.Health()
			d := statsData{
				IntervalSeconds: interval.Seconds(), Accepted: sum.Accepted,
				QueueDepth: h.QueueDepth, QueueHighWater: h.HighWater, BytesHeld: h.Bus.BytesHeld,
				Dropped: sum.Dropped, DeadLettered: sum.DeadLettered, Rejected: sum.Rejected, Refused: sum.Refused,
			}
			if secs := now.Sub(lastAt).Seconds(); secs > 0 {
				d.AcceptedPerSec = float64(sum.Accepted-last.Accepted) / secs
			}
			if acc := sum.Accepted - last.Accepted; acc > 0 {
				d.ErrorRate = float64(sum.DeadLettered-last.DeadLettered+sum.Rejected-last.Rejected) / float64(acc)
			}
			out := map[string]outputStatsData{}
			for name, o := range h.Outputs {
				out[name] = outputStatsData{Exported: o.Exported, Failed: o.Failed, Queued: o.Queued, Slow: o.Slow}
			}
			raw, err := json.Marshal(struct {
				statsData
				Outputs map[string]outputStatsData `json:"outputs"`
			}{d, out})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), interval)
				if err := r.Publish(ctx, pipeline.Event{Type: StatsEventType, Source: "eventpipe", Data: raw}); err != nil {
					r.log.Warn("event.stats not published", "err", err)
				}
				cancel()
			}
			last, lastAt = sum, now
		}
	}
}
