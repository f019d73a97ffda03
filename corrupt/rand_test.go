package corrupt

import (
	"math"
	"testing"
)

// TestNewRand checks that streams are reproducible and that every argument changes them.
func TestNewRand(t *testing.T) {
	first := func(seed uint64, suite, c string, sev, i int) uint64 { return NewRand(seed, suite, c, sev, i).Uint64() }
	base := first(1, "cifar10-c", "fog", 3, 7)
	if again := first(1, "cifar10-c", "fog", 3, 7); again != base {
		t.Fatalf("same arguments, different streams: %x, %x", base, again)
	}
	for name, v := range map[string]uint64{
		"seed":       first(2, "cifar10-c", "fog", 3, 7),
		"suite":      first(1, "imagenet-c", "fog", 3, 7),
		"corruption": first(1, "cifar10-c", "snow", 3, 7),
		"severity":   first(1, "cifar10-c", "fog", 4, 7),
		"index":      first(1, "cifar10-c", "fog", 3, 8),
		"boundary":   first(1, "cifar10-c"+"f", "og", 3, 7),
	} {
		if v == base {
			t.Errorf("changing the %s does not change the stream", name)
		}
	}
}

// TestPoissonTable checks that the alias tables reproduce the Poisson probabilities: for each
// byte value, the probability of every count below the last equals the Poisson pmf within
// 1e-8 relative (the float32 thresholds) plus 1e-15, and all sum to 1.
func TestPoissonTable(t *testing.T) {
	for _, lam := range []float64{500, 60, 3} {
		tab := poissonTableFor(lam)
		for _, k := range []int{0, 1, 17, 128, 254, 255} {
			row := &tab.row[k]
			m := len(row.col)
			got := make([]float64, m)
			for j, c := range row.col {
				got[j] += float64(c.prob) / float64(m)
				got[int(c.alias)] += (1 - float64(c.prob)) / float64(m)
			}
			mu := unitTable[k] * lam
			total := 0.0
			for j, g := range got {
				total += g
				if j == m-1 || mu == 0 {
					continue
				}
				n := row.lo + j
				want := math.Exp(float64(n)*math.Log(mu) - mu - logFactorial(n))
				if math.Abs(g-want) > 1e-8*want+1e-15+6e-8/float64(m) {
					t.Fatalf("lam %g k %d count %d: probability %g, Poisson %g", lam, k, n, g, want)
				}
			}
			if math.Abs(total-1) > 1e-12 {
				t.Errorf("lam %g k %d: probabilities sum to %g", lam, k, total)
			}
		}
	}
}

// TestPoissonSampler checks the mean and variance of poisson (the sampler for values that are not
// bytes) against λ for small and large rates, within 5 standard errors over 200000 draws.
func TestPoissonSampler(t *testing.T) {
	rng := NewRand(3, "test", "poisson", 0, 0)
	const n = 200000
	for _, lam := range []float64{0.5, 3, 9.9, 10, 37.5, 400} {
		var s, s2 float64
		for range n {
			v := float64(poisson(rng, lam))
			s += v
			s2 += v * v
		}
		mean := s / n
		vr := s2/n - mean*mean
		if se := math.Sqrt(lam / n); math.Abs(mean-lam) > 5*se {
			t.Errorf("λ %g: mean %.4f, want %g ± %.4f", lam, mean, lam, 5*se)
		}
		// The variance of the sample variance of a Poisson is about (2λ² + λ)/n.
		if se := math.Sqrt((2*lam*lam + lam) / n); math.Abs(vr-lam) > 5*se {
			t.Errorf("λ %g: variance %.4f, want %g ± %.4f", lam, vr, lam, 5*se)
		}
	}
}
