package signature

import (
	"context"
	"runtime"
	"sync"
)

// forEach calls do(w, i) for i = 0 … n−1 on up to GOMAXPROCS goroutines, each with its own
// worker w from newWorker, passed to closeWorker when the goroutine ends. Indexes are handed
// out in order, and none after a failure or once ctx is done, so the error returned, that of
// the lowest failing index, is the one a sequential loop would have returned.
func forEach[W any](ctx context.Context, n int, newWorker func() W, closeWorker func(W), do func(w W, i int) error) error {
	var (
		mu      sync.Mutex // guards the fields below
		next    int
		failed  = n // the lowest failing index
		failure error
	)
	fail := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if i < failed {
			failed, failure = i, err
		}
	}
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || failure != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	var wg sync.WaitGroup
	for range min(n, max(1, runtime.GOMAXPROCS(0))) {
		wg.Go(func() {
			w := newWorker()
			defer closeWorker(w)
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := ctx.Err(); err != nil {
					fail(i, err)
					return
				}
				if err := do(w, i); err != nil {
					fail(i, err)
				}
			}
		})
	}
	wg.Wait()
	return failure
}
