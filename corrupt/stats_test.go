package corrupt

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"
)

// statsEntry is one (corruption, severity) record of testdata/cifar10c/stats.json.
type statsEntry struct {
	MADMean          float64 `json:"mad_mean"`
	MADStdOverSeeds  float64 `json:"mad_std_over_seeds"`
	Deterministic    bool    `json:"deterministic"`
	TextureDependent bool    `json:"texture_dependent"`
}

// readCIFARStats returns the cifar10c part of stats.json: corruption → severity → entry.
func readCIFARStats(t testing.TB) map[string]map[string]statsEntry {
	t.Helper()
	b, err := os.ReadFile(cifarTestdata("stats.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		CIFAR map[string]map[string]statsEntry `json:"cifar10c"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("stats.json: %v", err)
	}
	if len(doc.CIFAR) != 19 {
		t.Fatalf("stats.json: %d cifar10c corruptions, want 19", len(doc.CIFAR))
	}
	return doc.CIFAR
}

// meanAbsChange returns the reference's statistic for one corruption and severity: for each seed,
// the mean over images of mean |uint8(corrupted) − input| (the suite's uint8 rule), then the
// mean over seeds.
func meanAbsChange(t testing.TB, s *Suite, name string, sev int, inputs []Image, seeds int) float64 {
	t.Helper()
	total := 0.0
	for seed := 0; seed < seeds; seed++ {
		for i, img := range inputs {
			out, err := s.Apply(name, sev, img, NewRand(uint64(seed), s.Name(), name, sev, i))
			if err != nil {
				t.Fatal(err)
			}
			got := out.Bytes(s.Quantize())
			in := img.Bytes(s.Quantize())
			sum := 0.0
			for j, v := range got {
				sum += math.Abs(float64(v) - float64(in[j]))
			}
			total += sum / float64(len(got))
		}
	}
	return total / float64(seeds*len(inputs))
}

// TestCIFARRandomStats compares the mean absolute change of every random cifar10-c corruption
// with make_cifar_c.py's (testdata/cifar10c/stats.json: 16 inputs × 5 seeds, np.uint8
// truncation): within 10% of mad_mean, or within 2·mad_std_over_seeds when that is looser. The
// random streams differ from NumPy's, so only the statistics can agree. frost is reported only:
// its statistics depend on the reference's texture files, which are not used here.
func TestCIFARRandomStats(t *testing.T) {
	s, err := Lookup("cifar10-c")
	if err != nil {
		t.Fatal(err)
	}
	ref := readCIFARStats(t)
	inputs := referenceInputs(t)
	for _, name := range s.Corruptions() {
		c, _ := s.Corruption(name)
		if !c.Random {
			continue
		}
		t.Run(name, func(t *testing.T) {
			for _, sev := range c.Severities {
				e, ok := ref[name][strconv.Itoa(sev)]
				if !ok {
					t.Fatalf("stats.json has no %s severity %d", name, sev)
				}
				got := meanAbsChange(t, s, name, sev, inputs, 5)
				tol := max(0.1*e.MADMean, 2*e.MADStdOverSeeds)
				ok = math.Abs(got-e.MADMean) <= tol
				t.Logf("severity %d: mean |Δ| %.3f, reference %.3f ± %.3f (tolerance %.3f) %s",
					sev, got, e.MADMean, e.MADStdOverSeeds, tol, map[bool]string{true: "ok", false: "OUT"}[ok])
				if !ok && !e.TextureDependent {
					t.Errorf("severity %d: mean |Δ| %.3f, want %.3f ± %.3f", sev, got, e.MADMean, tol)
				}
			}
		})
	}
}
