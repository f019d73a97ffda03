package diff

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/rws-project/rws/internal/kernel"
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

// writeTyped writes tensors of seeded normal values, noise times a second normal draw added,
// stored as the given types, and returns the values as stored, decoded to float32.
func writeTyped(t *testing.T, path string, n []int, types []tensor.DType, noise float64) [][]float32 {
	t.Helper()
	base, extra := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(3, 4))
	var ts []safetensors.Tensor
	var vals [][]float32
	for i := range n {
		v := make([]float32, n[i])
		for j := range v {
			v[j] = float32(base.NormFloat64()*0.05 + noise*extra.NormFloat64())
		}
		raw := make([]byte, n[i]*types[i].Size())
		if err := tensor.EncodeFloat32(types[i], v, raw); err != nil {
			t.Fatal(err)
		}
		if err := tensor.DecodeFloat32(types[i], raw, v); err != nil {
			t.Fatal(err)
		}
		vals = append(vals, v)
		ts = append(ts, safetensors.Tensor{Name: fmt.Sprintf("layers.%d.weight", i), DType: types[i],
			Shape: []int64{int64(n[i])}, Data: raw})
	}
	if err := safetensors.WriteFile(path, ts, nil, safetensors.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return vals
}

// TestFilesMatchFloat64Loop compares tensors of several blocks, lengths that are no multiple of
// the vector width and mixed float types against a plain float64 loop, and checks that the
// report is the same bits with one core as with several.
func TestFilesMatchFloat64Loop(t *testing.T) {
	dir := t.TempDir()
	n := []int{3*kernel.BlockElems + 7, 1, 7, kernel.BlockElems, 0, 2*kernel.BlockElems - 1}
	ta := []tensor.DType{tensor.F32, tensor.F32, tensor.F16, tensor.BF16, tensor.F32, tensor.F64}
	tb := []tensor.DType{tensor.F32, tensor.F32, tensor.F32, tensor.BF16, tensor.F32, tensor.F16}
	pa, pb := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	va := writeTyped(t, pa, n, ta, 0)
	vb := writeTyped(t, pb, n, tb, 0.01)
	var reps []*Report
	for _, procs := range []int{1, 2, 3} {
		func() {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			rep, err := Files(pa, pb, Options{})
			if err != nil {
				t.Fatal(err)
			}
			reps = append(reps, rep)
		}()
	}
	for i, procs := range []int{2, 3} {
		if !reflect.DeepEqual(reps[i+1], reps[0]) {
			t.Errorf("GOMAXPROCS=%d gives another report than GOMAXPROCS=1", procs)
		}
	}
	if len(reps[0].Tensors) != len(n) {
		t.Fatalf("compared %d tensors, want %d", len(reps[0].Tensors), len(n))
	}
	for _, tt := range reps[0].Tensors {
		var i int
		if _, err := fmt.Sscanf(tt.Name, "layers.%d.weight", &i); err != nil {
			t.Fatal(err)
		}
		var aa, bb, ab, dd float64
		for j := range va[i] {
			x, y := float64(va[i][j]), float64(vb[i][j])
			aa, bb, ab, dd = aa+x*x, bb+y*y, ab+x*y, dd+(y-x)*(y-x)
		}
		tol := float64(n[i]+1) * 0x1p-52
		want := Tensor{NormA: math.Sqrt(aa), NormB: math.Sqrt(bb), L2: math.Sqrt(dd)}
		if !(math.Abs(tt.NormA-want.NormA) <= tol*want.NormA && math.Abs(tt.NormB-want.NormB) <= tol*want.NormB &&
			math.Abs(tt.L2-want.L2) <= tol*want.L2) {
			t.Errorf("%s: %+v, want norms %+v", tt.Name, tt, want)
		}
		if aa > 0 && bb > 0 && math.Abs(tt.Cosine-ab/math.Sqrt(aa*bb)) > tol {
			t.Errorf("%s: cosine %v, want %v", tt.Name, tt.Cosine, ab/math.Sqrt(aa*bb))
		}
	}
}
