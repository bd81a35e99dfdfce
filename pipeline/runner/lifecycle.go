package runner

import (
	"context"
	"errors"
	"fmt"
)

// startGraph starts the components downstream first — outputs, then
// stages, then sources — so that each starts into a consumer that is
// already running. If one fails, the ones started are shut down again and
// the error names the component.
func (r *Runner) startGraph(ctx context.Context, g *graph) error {
	for i := len(g.nodes) - 1; i >= 0; i-- {
		n := g.nodes[i]
		if err := n.comp.Start(ctx); err != nil {
			return fmt.Errorf("%s: start: %w", n.id, err)
		}
	}
	if len(g.outputs) > 0 {
		r.startWorkers(g)
	}
	return nil
}

// shutdownGraph shuts every component of g down, upstream first (sources,
// stages, outputs), each within the drain timeout. Every component is shut
// down, whether or not it started and whatever the others returned; the
// errors are joined.
func (r *Runner) shutdownGraph(g *graph) error {
	if g == nil {
		return nil
	}
	var errs []error
	if g.stopExports != nil {
		// The outputs' queues empty first (within the drain timeout).
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
		if err := r.stopWorkers(ctx, g); err != nil {
			errs = append(errs, err)
		}
		cancel()
		g.stopExports = nil
	}
	nodes := g.nodes
	if g.store != nil {
		nodes = append(nodes[:len(nodes):len(nodes)], *g.store) // after the sources, which append to it
	}
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
		if err := shutdownWithin(ctx, n.comp.Shutdown); err != nil {
			errs = append(errs, fmt.Errorf("%s: shutdown: %w", n.id, err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

// shutdownWithin runs a Shutdown and returns at ctx's deadline even if the
// component does not (a plugin stuck in a call it cannot be pulled out of):
// the process must be able to exit.
func shutdownWithin(ctx context.Context, shutdown func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("did not finish: %w", ctx.Err())
	}
}

// shutdownStore shuts the store down (last: the sources append to it and
// the stages read it), within the drain timeout.
func (r *Runner) shutdownStore() error {
	if r.store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
	defer cancel()
	if err := shutdownWithin(ctx, r.store.Shutdown); err != nil {
		return fmt.Errorf("persist: shutdown: %w", err)
	}
	return nil
}
