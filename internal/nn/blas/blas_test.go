package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// naive is the reference: a float64 triple loop over the definition of Sgemm.
func naive(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			c[i*ldc+j] = float32(float64(alpha)*s + float64(beta)*float64(c[i*ldc+j]))
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func TestSgemm(t *testing.T) {
	t.Logf("implementation: %s", Name())
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ m, n, k int }{{1, 1, 1}, {3, 5, 7}, {32, 784, 9}, {64, 33, 130}, {17, 1, 300}} {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			tA, tB := tr[0], tr[1]
			t.Run(fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v", tc.m, tc.n, tc.k, tA, tB), func(t *testing.T) {
				lda, ldb, ldc := tc.k+2, tc.n+1, tc.n+3
				ar, br := tc.m, tc.k
				if tA {
					ar, lda = tc.k, tc.m+2
				}
				if tB {
					br, ldb = tc.n, tc.k+1
				}
				a, b := randSlice(r, ar*lda), randSlice(r, br*ldb)
				c := randSlice(r, tc.m*ldc)
				want := append([]float32(nil), c...)
				Sgemm(tA, tB, tc.m, tc.n, tc.k, 0.5, a, lda, b, ldb, 0.25, c, ldc)
				naive(tA, tB, tc.m, tc.n, tc.k, 0.5, a, lda, b, ldb, 0.25, want, ldc)
				for i := range c {
					if d := math.Abs(float64(c[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("c[%d] = %g, want %g", i, c[i], want[i])
					}
				}
			})
		}
	}
}

// TestSgemmConcurrent checks that calls from several goroutines on disjoint outputs agree with
// sequential calls (the engine relies on it).
func TestSgemmConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const m, n, k, jobs = 48, 200, 96, 8
	a, b := randSlice(r, m*k), randSlice(r, k*n*jobs)
	want := make([]float32, m*n*jobs)
	for j := 0; j < jobs; j++ {
		Sgemm(false, false, m, n, k, 1, a, k, b[j*k*n:], n, 0, want[j*m*n:], n)
	}
	got := make([]float32, m*n*jobs)
	var wg sync.WaitGroup
	for j := 0; j < jobs; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Sgemm(false, false, m, n, k, 1, a, k, b[j*k*n:], n, 0, got[j*m*n:], n)
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("concurrent result differs at %d: %g vs %g", i, got[i], want[i])
		}
	}
}

func TestSgemmShortSlicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short slice")
		}
	}()
	Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
}

// BenchmarkSgemm reports GFLOP/s for the shapes of the cnn model's convolutions (per image).
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ m, n, k int }{{32, 784, 288}, {64, 196, 576}, {128, 3136, 128}} {
		b.Run(fmt.Sprintf("%dx%dx%d", tc.m, tc.n, tc.k), func(b *testing.B) {
			x, y, z := randSlice(r, tc.m*tc.k), randSlice(r, tc.k*tc.n), make([]float32, tc.m*tc.n)
			for b.Loop() {
				Sgemm(false, false, tc.m, tc.n, tc.k, 1, x, tc.k, y, tc.n, 0, z, tc.n)
			}
			b.ReportMetric(2*float64(tc.m*tc.n*tc.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
