package nn

import (
	"runtime"
	"sync"
)

// workers is the number of goroutines the engine splits work into: GOMAXPROCS at the call.
func workers() int { return max(1, runtime.GOMAXPROCS(0)) }

// parallel splits [0, n) into at most workers() contiguous chunks of at least minChunk items
// and calls fn(worker, lo, hi) for each, concurrently; it returns when all have returned. Worker
// indices are dense from 0, so callers may keep per-worker scratch space; parallel returns how
// many workers it used.
func parallel(n, minChunk int, fn func(w, lo, hi int)) int {
	if n <= 0 {
		return 0
	}
	p := min(workers(), max(1, n/max(1, minChunk)))
	if p == 1 {
		fn(0, 0, n)
		return 1
	}
	var wg sync.WaitGroup
	for w := 1; w < p; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, n*w/p, n*(w+1)/p)
		}()
	}
	fn(0, 0, n/p)
	wg.Wait()
	return p
}

// scratch is per-worker reusable float32 space. Call prepare before starting the workers.
type scratch struct{ bufs [][]float32 }

// prepare makes room for workers() buffers; get must not grow the list while workers run.
func (s *scratch) prepare() {
	for len(s.bufs) < workers() {
		s.bufs = append(s.bufs, nil)
	}
}

// get returns worker w's buffer of length n (contents undefined).
func (s *scratch) get(w, n int) []float32 {
	if cap(s.bufs[w]) < n {
		s.bufs[w] = make([]float32, n)
	}
	return s.bufs[w][:n]
}

// grow returns buf resized to n, reallocating only when its capacity is too small. Contents are
// undefined.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}
