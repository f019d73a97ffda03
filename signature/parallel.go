package signature

import (
	"context"
	"runtime"
	"sort"
	"sync"
)

// forEach calls do(w, i) for i = 0 … n−1 on up to GOMAXPROCS goroutines, each with its own
// worker w from newWorker, passed to closeWorker when the goroutine ends. The largest items (by
// size; nil means all equal) are handed out first, so that the goroutines finish together
// rather than one working alone on a large last item. After a failure, or once ctx is done,
// only lower indexes are handed out, so the error returned, that of the lowest failing index,
// is the one a sequential loop would have returned.
func forEach[W any](ctx context.Context, n int, size func(i int) int64, newWorker func() W, closeWorker func(W), do func(w W, i int) error) error {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if size != nil {
		sort.SliceStable(order, func(a, b int) bool { return size(order[a]) > size(order[b]) })
	}
	var (
		mu      sync.Mutex // guards the fields below
		next    int        // into order
		failed  = n        // the lowest failing index
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
		for ; next < n; next++ {
			if i := order[next]; i < failed {
				next++
				return i, true
			}
		}
		return 0, false
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
				err := ctx.Err()
				if err == nil {
					err = do(w, i)
				}
				if err != nil {
					fail(i, err)
				}
			}
		})
	}
	wg.Wait()
	return failure
}

// each is forEach for work that needs no worker of its own.
func each(ctx context.Context, n int, size func(i int) int64, do func(i int) error) error {
	return forEach(ctx, n, size, func() struct{} { return struct{}{} }, func(struct{}) {},
		func(_ struct{}, i int) error { return do(i) })
}
