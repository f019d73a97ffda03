package nn

import (
	"errors"
	"testing"

	"github.com/rws-project/rws/dataset"
)

// loadSet returns the split ("train" or "test") of a dataset spec as Images and labels, limited
// to n examples (0 = all), or skips the test when the dataset is not installed.
func loadSet(t testing.TB, spec string, split dataset.Split, n int) (Images, []int) {
	t.Helper()
	s, err := dataset.Open(spec, split)
	if errors.Is(err, dataset.ErrNotFound) {
		t.Skipf("dataset %s not available: %v", spec, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s = s.Limit(n)
	return Images{Pix: s.Images, N: s.N, H: s.H, W: s.W, C: s.C}, s.Labels
}
