package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// BlockElems is the number of elements in a Block: 256 KiB of F32, small enough that a block read
// into a buffer (two, for a comparison) is still in the core's L2 cache when the loops run over
// it, large enough that handing out blocks costs nothing measurable.
const BlockElems = 1 << 16

// A Block is elements [At, At+N) of tensor T (an index into the sizes given to Blocks).
type Block struct {
	T     int
	At, N int64
}

// Blocks cuts tensors of the given element counts into consecutive blocks of BlockElems elements
// (an empty tensor is one empty block) and computes every block with a worker, on GOMAXPROCS
// goroutines. newWorker is called once per goroutine, so each worker may own its buffers. When
// the last block of tensor t is done, done(t, parts) gets the results in block order; done is
// called from the workers' goroutines, at most once per tensor and never twice at once for the
// same t. Since the blocks do not depend on the number of goroutines and parts come in block
// order, merging parts in order gives the same bits for any GOMAXPROCS.
//
// Blocks are handed out in order, and none after the first error; the error returned is the one
// of the first failing block in that order, as a sequential loop would have returned. Memory for
// results is held only for the tensors in progress.
func Blocks[R any](sizes []int64, newWorker func() func(Block) (R, error), done func(t int, parts []R)) error {
	type tensor struct {
		parts []R
		left  atomic.Int64
	}
	var (
		mu     sync.Mutex // guards the fields below
		t, k   int64      // the next block: block k of tensor t
		cur    *tensor    // results of tensor t
		failed bool
		first  error
		firstB Block
		firstK int64
	)
	// next hands out the blocks in order, with their index in the tensor and its results.
	next := func() (Block, int64, *tensor, bool) {
		mu.Lock()
		defer mu.Unlock()
		if failed || int(t) >= len(sizes) {
			return Block{}, 0, nil, false
		}
		n := sizes[t]
		nb := max(1, (n+BlockElems-1)/BlockElems)
		if k == 0 {
			cur = &tensor{parts: make([]R, nb)}
			cur.left.Store(nb)
		}
		at := k * BlockElems
		b, bk, bt := Block{T: int(t), At: at, N: min(BlockElems, n-at)}, k, cur
		if k++; k == nb {
			t, k = t+1, 0
		}
		return b, bk, bt, true
	}
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work := newWorker()
			for {
				b, k, tr, ok := next()
				if !ok {
					return
				}
				r, err := work(b)
				if err != nil {
					mu.Lock()
					if !failed || b.T < firstB.T || b.T == firstB.T && k < firstK {
						first, firstB, firstK = err, b, k
					}
					failed = true
					mu.Unlock()
					continue
				}
				tr.parts[k] = r
				if tr.left.Add(-1) == 0 {
					done(b.T, tr.parts)
					tr.parts = nil
				}
			}
		}()
	}
	wg.Wait()
	return first
}
