package experiment

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/rws-project/rws/internal/nn"
	"github.com/rws-project/rws/signature"
)

// sigValues is a signature decoded to float32 values per tensor, in the signature's order.
// (The signature package patches checkpoint files; the study patches models in memory with the
// same arithmetic, which the tests check against files patched by package signature.)
type sigValues struct {
	name   string
	names  []string
	values map[string][]float32
	sig    *signature.Signature
}

func decode(s *signature.Signature) (*sigValues, error) {
	v := &sigValues{name: s.Name, values: map[string][]float32{}, sig: s}
	for _, t := range s.Tensors {
		x, err := t.Values()
		if err != nil {
			return nil, err
		}
		v.names = append(v.names, t.Name)
		v.values[t.Name] = x
	}
	return v, nil
}

// term is a signature with its strength.
type term struct {
	sig   *sigValues
	alpha float64
}

// patch returns a copy of base with Σ α·RWS added to the signatures' tensors, computed as
// package signature computes it for a float32 checkpoint: per tensor, the terms in order, each
// product rounded to float32 before it is added.
func patch(base *nn.Model, terms ...term) (*nn.Model, error) {
	m := base.Clone()
	for _, tm := range terms {
		a := float32(tm.alpha)
		for _, name := range tm.sig.names {
			t, ok := m.Tensor(name)
			if !ok {
				return nil, fmt.Errorf("experiment: signature %q: tensor %q is not in the model", tm.sig.name, name)
			}
			v := tm.sig.values[name]
			if len(v) != len(t.Data) {
				return nil, fmt.Errorf("experiment: signature %q: tensor %q has %d values, the model %d", tm.sig.name, name, len(v), len(t.Data))
			}
			for i := range t.Data {
				t.Data[i] += float32(a * v[i])
			}
		}
	}
	return m, nil
}

// patchValues returns a copy of base with delta (tensor name → values) added.
func patchValues(base *nn.Model, delta map[string][]float32, scale float64) (*nn.Model, error) {
	m := base.Clone()
	a := float32(scale)
	names := make([]string, 0, len(delta))
	for n := range delta {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t, ok := m.Tensor(name)
		if !ok || len(t.Data) != len(delta[name]) {
			return nil, fmt.Errorf("experiment: tensor %q does not fit the model", name)
		}
		for i, v := range delta[name] {
			t.Data[i] += float32(a * v)
		}
	}
	return m, nil
}

// ties merges signatures as TIES-merging does (Yadav et al. 2023): per tensor, each signature
// keeps its share trim of largest-magnitude values (the rest set to zero); each value's sign is
// elected as the sign of the sum of the kept values; the merged value is the mean of the kept
// values that agree with the elected sign.
func ties(sigs []*sigValues, trim float64) map[string][]float32 {
	out := map[string][]float32{}
	for _, name := range sigs[0].names {
		n := len(sigs[0].values[name])
		kept := make([][]float32, len(sigs))
		for k, s := range sigs {
			v := s.values[name]
			mags := make([]float64, len(v))
			for i, x := range v {
				mags[i] = math.Abs(float64(x))
			}
			slices.Sort(mags)
			keep := int(math.Ceil(trim * float64(len(v))))
			thr := math.Inf(1)
			if keep > 0 {
				thr = mags[len(v)-keep]
			}
			kept[k] = make([]float32, len(v))
			for i, x := range v {
				if math.Abs(float64(x)) >= thr && x != 0 {
					kept[k][i] = x
				}
			}
		}
		merged := make([]float32, n)
		for i := range n {
			var sum float64
			for k := range sigs {
				sum += float64(kept[k][i])
			}
			if sum == 0 {
				continue
			}
			var acc float64
			cnt := 0
			for k := range sigs {
				x := float64(kept[k][i])
				if x != 0 && (x > 0) == (sum > 0) {
					acc += x
					cnt++
				}
			}
			if cnt > 0 {
				merged[i] = float32(acc / float64(cnt))
			}
		}
		out[name] = merged
	}
	return out
}

// cosine returns the cosine similarity of two signatures over the tensors of the given modules
// (all tensors when modules is nil), in float64; 0 when either is zero there.
func cosine(a, b *sigValues, modules []string) float64 {
	var dot, na, nb float64
	for _, name := range a.names {
		if modules != nil && !slices.Contains(modules, moduleOf(name)) {
			continue
		}
		x, y := a.values[name], b.values[name]
		if len(x) != len(y) {
			continue
		}
		for i := range x {
			dot += float64(x[i]) * float64(y[i])
			na += float64(x[i]) * float64(x[i])
			nb += float64(y[i]) * float64(y[i])
		}
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// moduleOf returns the module of a tensor name: "features.0" for "features.0.weight".
func moduleOf(name string) string {
	for i := len(name) - 1; i > 0; i-- {
		if name[i] == '.' {
			return name[:i]
		}
	}
	return name
}
