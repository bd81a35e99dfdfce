package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/oklog/run"

	"github.com/eventpipe/eventpipe/pipeline/component"
	"github.com/eventpipe/eventpipe/pipeline/config"
	"github.com/eventpipe/eventpipe/pipeline/export"
)

// Run starts the pipeline and runs it until ctx ends or, when every source
// is finite, until they have all reached their end; then it drains: stops
// the sources at once (a read blocked on a pipe does not hold it up),
// flushes the buffer through the stages and every output within the drain
// timeout, shuts every component down upstream first, and returns the
// summary. A component that cannot start fails the run before any event
// flows; "pipeline running" is logged only once everything is bound.
func (r *Runner) Run(ctx context.Context) (Summary, error) {
	cfg := r.config()
	r.mu.RLock()
	flow := r.graph
	r.mu.RUnlock()
	// fail releases everything when the run cannot begin.
	fail := func(err error) (Summary, error) {
		close(r.flowFailed)
		r.shutdown(r.sources, flow)
		_ = r.shutdownStore()
		_ = r.bus.Close(ctx)
		_ = r.tap.Close(ctx)
		return Summary{}, err
	}
	mode, _ := config.ParseMode(cfg.DeadLetter.Mode)
	dlq, err := export.OpenDeadLetter(cfg.Resolve(cfg.DeadLetter.Path), mode)
	if err != nil {
		return fail(err)
	}
	r.dlq = dlq
	defer dlq.Close()
	if r.store != nil {
		if err := r.store.Start(ctx); err != nil {
			return fail(err)
		}
	}
	if err := r.startGraph(ctx, flow); err != nil {
		return fail(err)
	}
	close(r.flowReady)
	if err := r.startGraph(ctx, r.sources); err != nil {
		return fail(err)
	}
	var g run.Group
	listen, byDefault := cfg.Admin.Listen, false
	switch {
	case listen == "off":
		listen = ""
	case listen == "" && r.opts.DefaultAdmin != "":
		listen, byDefault = r.opts.DefaultAdmin, true
	}
	var srv *http.Server
	var ln net.Listener
	if listen != "" {
		var err error
		if srv, ln, err = r.adminServer(listen); err != nil {
			if !byDefault {
				return fail(err)
			}
			r.log.Warn("admin: the default address is taken, so the admin API is off (set admin.listen)", "listen", listen, "err", err)
			srv = nil
		}
	}
	if srv != nil {
		g.Add(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("admin: %w", err)
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	} else {
		close(r.adminReady)
	}
	r.state.Store("running")
	r.log.Info("pipeline running", "sources", len(r.sources.nodes), "stages", len(flow.stages), "outputs", len(flow.outputs), "dead_letter", dlq.Path())
	srcCtx, srcCancel := context.WithCancel(context.Background())
	g.Add(func() error { return r.runSources(ctx, srcCtx) }, func(error) { srcCancel() })
	if iv := cfg.Events.StatsInterval; iv > 0 {
		stopStats := make(chan struct{})
		statsDone := make(chan struct{})
		g.Add(func() error {
			defer close(statsDone)
			r.emitStats(iv, stopStats)
			return nil
		}, func(error) { close(stopStats); <-statsDone })
	}
	// With a store, the stages read it on their own goroutine.
	drain := make(chan struct{})
	consumeCtx, stopConsume := context.WithCancel(context.Background())
	defer stopConsume()
	batchCtx, stopBatches := context.WithCancel(context.Background())
	defer stopBatches()
	var consumed chan error
	if r.store != nil {
		consumed = make(chan error, 1)
		go func() { consumed <- r.consume(consumeCtx, batchCtx, drain) }()
	}
	runErr := g.Run()
	srcCancel()

	r.state.Store("draining")
	dctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
	defer cancel()
	srcErr := r.shutdownGraph(r.sources)
	drainErr := r.bus.Close(dctx) // with a store: what was emitted on the bus is stored
	if r.store != nil {
		// A run whose sources ended catches up with the store; a stopped
		// one leaves what is stored for the next run.
		if err := r.drainStore(ctx.Err() == nil, drain, stopConsume, stopBatches, consumed, dctx); err != nil {
			drainErr = errors.Join(drainErr, err)
		}
	}
	_ = r.tap.Close(dctx)
	r.mu.RLock() // not Lock: a batch stuck past the deadline holds a read lock
	flow = r.graph
	r.mu.RUnlock()
	shutErr := errors.Join(r.shutdownGraph(flow), r.shutdownStore())
	r.state.Store("stopped")
	// Closing writes dead letters held while the file could not be
	// written, or counts them lost; the summary says which.
	shutErr = errors.Join(shutErr, dlq.Close())
	sum := r.Summary()
	if drainErr != nil {
		sum.Unflushed = drainErr.Error()
	}
	return sum, errors.Join(runErr, srcErr, drainErr, shutErr)
}

// runSources runs every source. It returns when ctx ends; or, if all
// sources are finite, when all have finished; a source's error is logged
// and ends the run only when no other source remains. Sources are not
// waited for once ctx ends: each returns as soon as its context does.
func (r *Runner) runSources(ctx, srcCtx context.Context) error {
	srcCtx, cancel := context.WithCancel(srcCtx)
	defer cancel()
	nodes := r.sources.nodes
	finite := len(nodes) > 0
	for _, n := range nodes {
		finite = finite && n.comp.(component.Source).Finite()
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(nodes))
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.comp.(component.Source).Run(srcCtx, r); err != nil {
				r.log.Error("ingest failed", "source", n.id, "err", err)
				errc <- fmt.Errorf("%s: %w", n.id, err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-ctx.Done():
		cancel()
		<-done
		return nil
	case <-srcCtx.Done():
		<-done
		return nil
	case <-done:
		if !finite {
			// Only long-running sources failed; wait for a stop.
			select {
			case <-ctx.Done():
			case <-srcCtx.Done():
			}
		}
		close(errc)
		var errs []error
		for err := range errc {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
}
