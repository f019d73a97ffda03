package diff

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

func write(t *testing.T, path string, ts map[string][]float32, order []string) {
	t.Helper()
	var out []safetensors.Tensor
	for _, n := range order {
		v, ok := ts[n]
		if !ok {
			continue
		}
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		out = append(out, safetensors.Tensor{Name: n, DType: tensor.F32, Shape: []int64{int64(len(v))}, Data: b})
	}
	if err := safetensors.WriteFile(path, out, nil, safetensors.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestFiles checks the numbers against hand computation: A=(3,4), B=(0,4) gives ‖B−A‖=3,
// relative 3/5, cosine 16/(5·4)=0.8.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	order := []string{"features.0.weight", "features.10.weight", "features.2.weight", "fc.weight", "only_a.weight", "only_b.weight"}
	a := map[string][]float32{"features.0.weight": {3, 4}, "features.2.weight": {1, 1}, "features.10.weight": {0, 0},
		"fc.weight": {1, 2, 3}, "only_a.weight": {1}}
	b := map[string][]float32{"features.0.weight": {0, 4}, "features.2.weight": {1, 1}, "features.10.weight": {0, 0},
		"fc.weight": {1, 2}, "only_b.weight": {1}}
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	write(t, pa, a, order)
	write(t, pb, b, order)
	rep, err := Files(pa, pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tensors) != 3 || rep.Tensors[0].Name != "features.0.weight" || rep.Tensors[1].Name != "features.2.weight" {
		t.Fatalf("tensors %+v", rep.Tensors)
	}
	f0 := rep.Tensors[0]
	if math.Abs(f0.L2-3) > 1e-12 || math.Abs(f0.Relative-0.6) > 1e-12 || math.Abs(f0.Cosine-0.8) > 1e-12 {
		t.Errorf("features.0: %+v", f0)
	}
	if z := rep.Tensors[2]; z.Cosine != 1 || z.Relative != 0 {
		t.Errorf("zero tensors: %+v", z)
	}
	if len(rep.OnlyInA) != 1 || len(rep.OnlyInB) != 1 || len(rep.Mismatched) != 1 || rep.Mismatched[0].Name != "fc.weight" {
		t.Errorf("only/mismatch: %v %v %+v", rep.OnlyInA, rep.OnlyInB, rep.Mismatched)
	}
	if rep.Layers[0].Layer != "features.0" || math.Abs(rep.Layers[0].Share-1) > 1e-12 {
		t.Errorf("layer shares %+v", rep.Layers)
	}
}
