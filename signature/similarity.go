package signature

import (
	"math"
	"strings"
)

// SimilarityReport holds cosine similarities between signatures: overall and per layer. A
// matrix entry is nil when the two signatures share no tensor there (or one is zero).
type SimilarityReport struct {
	Names   []string          `json:"names"`
	Overall [][]*float64      `json:"overall"`
	Layers  []LayerSimilarity `json:"layers"`
}

// LayerSimilarity is the cosine matrix of one layer (module).
type LayerSimilarity struct {
	Layer  string       `json:"layer"`
	Matrix [][]*float64 `json:"matrix"`
}

func moduleOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

// Similarity computes the cosine similarity of every pair of signatures over the tensors both
// hold with the same shape: per layer (tensors grouped by module) and over all of them, in
// float64. names label the signatures in the report.
func Similarity(sigs []*Signature, names []string) (*SimilarityReport, error) {
	vals := make([]map[string][]float32, len(sigs))
	var layers []string
	seen := map[string]bool{}
	for k, s := range sigs {
		vals[k] = map[string][]float32{}
		for _, t := range s.Tensors {
			v, err := t.Values()
			if err != nil {
				return nil, err
			}
			vals[k][t.Name] = v
			if m := moduleOf(t.Name); !seen[m] {
				seen[m] = true
				layers = append(layers, m)
			}
		}
	}
	n := len(sigs)
	rep := &SimilarityReport{Names: names}
	// cos returns the cosine of signatures i and j over the shared tensors accepted by keep.
	cos := func(i, j int, keep func(string) bool) *float64 {
		var dot, ni, nj float64
		shared := false
		for _, t := range sigs[i].Tensors {
			if !keep(t.Name) {
				continue
			}
			a, b := vals[i][t.Name], vals[j][t.Name]
			if b == nil || len(a) != len(b) || !sameShape(t, sigs[j].Tensor(t.Name)) {
				continue
			}
			shared = true
			for x := range a {
				ax, bx := float64(a[x]), float64(b[x])
				dot += ax * bx
				ni += ax * ax
				nj += bx * bx
			}
		}
		if !shared || ni == 0 || nj == 0 {
			return nil
		}
		c := dot / math.Sqrt(ni*nj)
		return &c
	}
	matrix := func(keep func(string) bool) [][]*float64 {
		m := make([][]*float64, n)
		for i := range n {
			m[i] = make([]*float64, n)
		}
		for i := range n {
			for j := i; j < n; j++ {
				c := cos(i, j, keep)
				m[i][j], m[j][i] = c, c
			}
		}
		return m
	}
	rep.Overall = matrix(func(string) bool { return true })
	for _, l := range layers {
		rep.Layers = append(rep.Layers, LayerSimilarity{Layer: l, Matrix: matrix(func(name string) bool { return moduleOf(name) == l })})
	}
	return rep, nil
}

func sameShape(a, b *Tensor) bool {
	if a == nil || b == nil || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}
