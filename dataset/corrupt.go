package dataset

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rws-project/rws/corrupt"
)

// CorruptOptions controls Corrupt.
type CorruptOptions struct {
	// Seed is the user's seed; image i draws from corrupt.NewRand(Seed, suite, corruption,
	// severity, i), so the result does not depend on Workers.
	Seed uint64
	// Workers is the number of goroutines; 0 means GOMAXPROCS.
	Workers int
	// Progress, when set, is called now and then with the number of images done; calls never
	// overlap.
	Progress func(done int)
}

// Corrupt returns a copy of s (same labels and classes) whose images are corrupted with the
// corruption called name of suite at severity, converted to bytes with the suite's rule. It
// stops early with ctx.Err() when ctx is cancelled.
func Corrupt(ctx context.Context, s *Set, suite *corrupt.Suite, name string, severity int, opt CorruptOptions) (*Set, error) {
	out := *s
	out.Name = fmt.Sprintf("%s|%s:%s:%d", s.Name, suite.Name(), name, severity)
	out.Images = make([]byte, len(s.Images))
	if err := CorruptInto(ctx, out.Images, s, suite, name, severity, opt); err != nil {
		return nil, err
	}
	return &out, nil
}

// CorruptInto is Corrupt writing the N×H×W×C result bytes into dst, which must have the length
// of s.Images.
func CorruptInto(ctx context.Context, dst []byte, s *Set, suite *corrupt.Suite, name string, severity int, opt CorruptOptions) error {
	if len(dst) != len(s.Images) {
		return fmt.Errorf("dataset: corrupt: destination of %d bytes for %d image bytes", len(dst), len(s.Images))
	}
	if s.N == 0 {
		return nil
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, s.N)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		done     atomic.Int64
		firstErr error
		errOnce  sync.Once
		progMu   sync.Mutex
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	sz := s.ImageSize()
	q := suite.Quantize()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= s.N || ctx.Err() != nil {
					return
				}
				img, err := corrupt.FromUint8(s.Image(i), s.H, s.W, s.C)
				if err != nil {
					fail(fmt.Errorf("dataset: %s image %d: %w", s.Name, i, err))
					return
				}
				res, err := suite.Apply(name, severity, img, corrupt.NewRand(opt.Seed, suite.Name(), name, severity, i))
				if err != nil {
					fail(fmt.Errorf("dataset: %s image %d: %w", s.Name, i, err))
					return
				}
				if res.H != s.H || res.W != s.W || res.C != s.C {
					fail(fmt.Errorf("dataset: %s image %d: %s %q changed the shape %dx%dx%d to %dx%dx%d", s.Name, i, suite.Name(), name, s.H, s.W, s.C, res.H, res.W, res.C))
					return
				}
				res.Uint8(dst[i*sz:(i+1)*sz], q)
				if d := done.Add(1); opt.Progress != nil && (d%64 == 0 || int(d) == s.N) {
					if progMu.TryLock() {
						opt.Progress(int(done.Load()))
						progMu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
