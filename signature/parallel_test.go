package signature

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestForEach checks that forEach calls every index once, with workers made and closed in
// pairs, and returns the error a sequential loop would have.
func TestForEach(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, n := range []int{0, 1, 3, 100} {
		var made, closed atomic.Int64
		calls := make([]atomic.Int64, n)
		err := forEach(context.Background(), n, nil, func() int { made.Add(1); return 0 }, func(int) { closed.Add(1) },
			func(_ int, i int) error { calls[i].Add(1); return nil })
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		for i := range calls {
			if c := calls[i].Load(); c != 1 {
				t.Errorf("n=%d: index %d called %d times", n, i, c)
			}
		}
		if made.Load() != closed.Load() || made.Load() > int64(max(n, 1)) {
			t.Errorf("n=%d: %d workers made, %d closed", n, made.Load(), closed.Load())
		}
	}
	// Indexes 30 and 70 fail; 70, the largest, fails first, but 30's error is the one
	// returned, and every index below 30 is still done.
	size := func(i int) int64 { return int64(i % 71) }
	for range 20 {
		var calls [100]atomic.Int64
		err := forEach(context.Background(), 100, size, func() int { return 0 }, func(int) {}, func(_ int, i int) error {
			calls[i].Add(1)
			if i == 30 || i == 70 {
				return fmt.Errorf("index %d", i)
			}
			return nil
		})
		if err == nil || err.Error() != "index 30" {
			t.Fatalf("err = %v, want index 30", err)
		}
		for i := range 30 {
			if calls[i].Load() != 1 {
				t.Fatalf("index %d called %d times", i, calls[i].Load())
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := forEach(ctx, 5, nil, func() int { return 0 }, func(int) {}, func(int, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}
