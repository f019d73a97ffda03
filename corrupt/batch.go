package corrupt

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Job describes one corruption pass over a batch of images.
type Job struct {
	// Corruption and Severity select the corruption.
	Corruption string
	Severity   int
	// Seed is the user's seed; image i of the batch uses the stream
	// NewRand(Seed, suite, Corruption, Severity, Offset+i).
	Seed uint64
	// Offset is the index of the batch's first image in its dataset, so that a dataset corrupted
	// in several batches gets the same result as in one.
	Offset int
	// Workers is the number of goroutines; 0 means runtime.GOMAXPROCS(0).
	Workers int
	// Progress, if not nil, is incremented once for every finished image (from several
	// goroutines), for the caller to poll.
	Progress *atomic.Int64
}

// batchChunk is the number of images a worker claims at a time.
const batchChunk = 8

// Batch corrupts the images stored back to back in src, each h×w×c bytes in HWC order, and
// writes the results, converted with the suite's Quantize rule, to dst (same length as src). Work
// is spread over job.Workers goroutines; since every image has its own random stream, the output
// does not depend on the number of workers. Batch returns the first error, or ctx.Err() if ctx is
// cancelled first; dst is then incomplete.
func (s *Suite) Batch(ctx context.Context, dst, src []uint8, h, w, c int, job Job) error {
	corr, err := s.lookup(job.Corruption, job.Severity)
	if err != nil {
		return err
	}
	if err := checkShape(h, w, c); err != nil {
		return err
	}
	if err := s.checkSize(h, w); err != nil {
		return err
	}
	size := h * w * c
	if len(src)%size != 0 {
		return fmt.Errorf("corrupt: batch of %d bytes is not a whole number of %dx%dx%d images", len(src), h, w, c)
	}
	if len(dst) != len(src) {
		return fmt.Errorf("corrupt: batch output has %d bytes, input %d: want equal lengths", len(dst), len(src))
	}
	n := len(src) / size
	opt := s.opts
	workers := job.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, (n+batchChunk-1)/batchChunk))
	var (
		next    atomic.Int64
		failed  atomic.Bool
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	fail := func(err error) {
		errOnce.Do(func() { first = err })
		failed.Store(true)
	}
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				lo := int(next.Add(batchChunk)) - batchChunk
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+batchChunk, n); i++ {
					if err := ctx.Err(); err != nil {
						fail(err)
						return
					}
					img := fromBytes8(src[i*size:(i+1)*size], h, w, c)
					rng := NewRand(job.Seed, s.name, job.Corruption, job.Severity, job.Offset+i)
					out, err := corr.Apply(img, job.Severity, rng, &opt)
					if err != nil {
						fail(fmt.Errorf("corrupt: %s %q severity %d, image %d: %w",
							s.name, job.Corruption, job.Severity, job.Offset+i, err))
						return
					}
					out.Uint8(dst[i*size:(i+1)*size], s.quantize)
					if len(out.Pix) > 0 && &out.Pix[0] != &img.Pix[0] {
						putScratch(out.Pix) // NewImage reuses it
					}
					putScratch(img.Pix)
					if job.Progress != nil {
						job.Progress.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	return first
}
