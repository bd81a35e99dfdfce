package runner

import (
	"context"
	"reflect"

	"github.com/eventpipe/eventpipe/pipeline/config"
)

// Reload replaces the stages and outputs with those of cfg without losing
// queued events. The whole new graph is built and started before the
// swap; the swap waits for the batch in flight; then the old graph is shut
// down and everything it held released (plugins' wasm runtimes closed). A
// configuration whose components do not build or start is refused and the
// old graph keeps running, untouched. The bus's type filter and enabled
// switch follow the new configuration; other changes to events, and
// changes to ingest and admin, take effect after a restart (logged).
func (r *Runner) Reload(ctx context.Context, cfg *config.Config) error {
	if err := cfg.Validate().Err(); err != nil {
		return err
	}
	g, err := r.build(ctx, cfg, false)
	if err != nil {
		return err
	}
	if err := r.startGraph(ctx, g); err != nil {
		r.shutdownGraph(g)
		return err
	}
	fc := cfg.Events.Filter
	fc.IncludeTypes, fc.ExcludeTypes = g.prefilter()
	if err := r.bus.SetFilter(fc); err != nil {
		r.shutdownGraph(g)
		return err
	}
	r.mu.Lock()
	old, oldCfg := r.graph, r.cfg
	r.graph, r.cfg = g, cfg
	r.mu.Unlock()
	r.bus.SetEnabled(cfg.Events.Enabled)
	oe, ne := oldCfg.Events, cfg.Events
	oe.Enabled, oe.Filter = ne.Enabled, ne.Filter
	if !reflect.DeepEqual(oe, ne) {
		r.log.Warn("reload: changes to events.* other than enabled and the emit_* switches take effect after a restart")
	}
	if !oldCfg.SameIngest(cfg) || oldCfg.Admin != cfg.Admin || oldCfg.DeadLetter != cfg.DeadLetter {
		r.log.Warn("reload: changes to ingest, persist, admin and dead_letter take effect after a restart")
	}
	return r.shutdownGraph(old)
}
