package corrupt

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// referenceBatch returns the 16 reference inputs as one batch of bytes.
func referenceBatch(t testing.TB) []uint8 {
	t.Helper()
	return readNpyU8(t, cifarTestdata("inputs_rgb32.npy")).data
}

// TestBatchWorkers checks that Batch gives the same bytes with 1, 3 and 8 workers, and the same
// as Apply image by image with the documented streams.
func TestBatchWorkers(t *testing.T) {
	s, _ := Lookup("cifar10-c")
	src := referenceBatch(t)
	for _, name := range []string{"glass_blur", "shot_noise", "snow", "frost", "elastic_transform", "jpeg_compression"} {
		t.Run(name, func(t *testing.T) {
			var outs [][]uint8
			for _, workers := range []int{1, 3, 8} {
				dst := make([]uint8, len(src))
				var done atomic.Int64
				job := Job{Corruption: name, Severity: 3, Seed: 7, Offset: 100, Workers: workers, Progress: &done}
				if err := s.Batch(context.Background(), dst, src, 32, 32, 3, job); err != nil {
					t.Fatal(err)
				}
				if done.Load() != 16 {
					t.Errorf("%d workers: progress %d, want 16", workers, done.Load())
				}
				outs = append(outs, dst)
			}
			for i := 1; i < len(outs); i++ {
				if !bytes.Equal(outs[0], outs[i]) {
					t.Errorf("results differ between 1 and %d workers", []int{1, 3, 8}[i])
				}
			}
			for i := 0; i < 16; i++ {
				img, _ := FromUint8(src[i*3072:(i+1)*3072], 32, 32, 3)
				out, err := s.Apply(name, 3, img, NewRand(7, "cifar10-c", name, 3, 100+i))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(s.Quantize()), outs[0][i*3072:(i+1)*3072]) {
					t.Fatalf("image %d: Batch differs from Apply", i)
				}
			}
		})
	}
}

// TestBatchErrors checks that bad batches are refused and cancellation is reported.
func TestBatchErrors(t *testing.T) {
	s, _ := Lookup("cifar10-c")
	src := referenceBatch(t)
	ok := Job{Corruption: "fog", Severity: 1}
	cases := []struct {
		name    string
		dst     []uint8
		src     []uint8
		h, w, c int
		job     Job
		unknown bool
	}{
		{"unknown corruption", make([]uint8, len(src)), src, 32, 32, 3, Job{Corruption: "rain", Severity: 1}, true},
		{"bad severity", make([]uint8, len(src)), src, 32, 32, 3, Job{Corruption: "fog", Severity: 6}, true},
		{"partial image", make([]uint8, 100), src[:100], 32, 32, 3, ok, false},
		{"short output", make([]uint8, 10), src, 32, 32, 3, ok, false},
		{"two channels", make([]uint8, len(src)), src, 32, 32, 2, ok, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Batch(context.Background(), tc.dst, tc.src, tc.h, tc.w, tc.c, tc.job)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrUnknown) != tc.unknown {
				t.Errorf("errors.Is(%v, ErrUnknown) = %v, want %v", err, !tc.unknown, tc.unknown)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Batch(ctx, make([]uint8, len(src)), src, 32, 32, 3, ok); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v, want context.Canceled", err)
	}
}

// BenchmarkCIFAR10CBatch times Batch over the 16 reference images for every corruption and
// severity with all cores (compare with BenchmarkCIFAR10C, one core).
func BenchmarkCIFAR10CBatch(b *testing.B) {
	s, _ := Lookup("cifar10-c")
	src := referenceBatch(b)
	src = append(append(append(src, src...), src...), src...) // 64 images
	dst := make([]uint8, len(src))
	warmUp(b, s, referenceInputs(b)[0])
	for b.Loop() {
		for _, name := range s.Corruptions() {
			for sev := 1; sev <= 5; sev++ {
				if err := s.Batch(context.Background(), dst, src, 32, 32, 3, Job{Corruption: name, Severity: sev}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N*64), "ms/image")
}
