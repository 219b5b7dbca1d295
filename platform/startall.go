package platform

import (
	"context"
	"sync"

	rtm "github.com/rosti-paas/rosti/runtime"
	"github.com/rosti-paas/rosti/store"
)

// parallelStarts bounds the containers of one app started at once: scaling
// web to 10 should not take ten container starts in a row, nor start ten
// at once on a small machine.
const parallelStarts = 4

// startAll runs the containers of specs, up to parallelStarts at a time,
// and returns those that started; on an error the others that started
// stay (the next pass counts them) and the first error is returned.
func (r *reconciler) startAll(ctx context.Context, a store.App, specs []rtm.ContainerSpec) ([]rtm.Instance, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		started  []rtm.Instance
		firstErr error
		slots    = make(chan struct{}, parallelStarts)
	)
	for _, spec := range specs {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			inst, err := r.p.containers.Run(ctx, spec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			r.noteStart(inst)
			r.p.log.Info("container started", "app", a.Name, "container", inst.Name, "ip", inst.IP)
			started = append(started, inst)
		}()
	}
	wg.Wait()
	return started, firstErr
}
