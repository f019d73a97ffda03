package corrupt

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the CPU time (user + system) the process has used so far. Benchmarks report
// it next to wall time because the machines here are shared: with -cpu 1 the process uses one
// core, and its CPU time per image is what an idle core would take.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warmUp runs every corruption of s once on img, so that lazily built tables (frost textures,
// Poisson tables, zoom plans, kernels) are not timed.
func warmUp(b *testing.B, s *Suite, img Image) {
	b.Helper()
	for _, name := range s.Corruptions() {
		for _, sev := range s.Severities(name) {
			if _, err := s.Apply(name, sev, img, NewRand(0, s.Name(), name, sev, 0)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// referenceMsPerImage is make_cifar_c.py's time for all 19 corruptions × 5 severities on one
// 32×32 image, single thread (testdata/cifar10c/stats.json "timing", ≈ 97 ms; see its README).
const referenceMsPerImage = 97.0

// BenchmarkCIFAR10C corrupts the 16 reference images (32×32) with all 19 cifar10-c corruptions at
// all 5 severities per iteration, as a dataset run does (Batch, bytes in and out) but with one
// worker: run with -cpu 1 for one core. It reports wall and CPU ms per image (all 95 variants)
// and the speed-up of the CPU time over the Python reference's 97 ms.
func BenchmarkCIFAR10C(b *testing.B) {
	s, _ := Lookup("cifar10-c")
	src := referenceBatch(b)
	dst := make([]uint8, len(src))
	n := len(src) / 3072
	warmUp(b, s, referenceInputs(b)[0])
	names := s.Corruptions()
	c0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		for _, name := range names {
			for sev := 1; sev <= 5; sev++ {
				job := Job{Corruption: name, Severity: sev, Seed: uint64(i), Workers: 1}
				if err := s.Batch(context.Background(), dst, src, 32, 32, 3, job); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	cpu := float64((cpuTime() - c0).Nanoseconds()) / 1e6 / float64(b.N*n)
	ms := float64(b.Elapsed().Nanoseconds()) / 1e6 / float64(b.N*n)
	b.ReportMetric(ms, "ms/image")
	b.ReportMetric(cpu, "cpu-ms/image")
	b.ReportMetric(referenceMsPerImage/cpu, "x_vs_reference")
}

// BenchmarkCIFAR10CByCorruption times each corruption (all 5 severities) on one image.
func BenchmarkCIFAR10CByCorruption(b *testing.B) {
	s, _ := Lookup("cifar10-c")
	inputs := referenceInputs(b)
	warmUp(b, s, inputs[0])
	for _, name := range s.Corruptions() {
		b.Run(name, func(b *testing.B) {
			c0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				img := inputs[i%len(inputs)]
				for sev := 1; sev <= 5; sev++ {
					if _, err := s.Apply(name, sev, img, NewRand(0, "cifar10-c", name, sev, i)); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/1e6/float64(b.N), "cpu-ms/5sev")
		})
	}
}
