package signature

import (
	"context"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rws-project/rws/layer"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// TestParityVectors compares an unquantized extraction with numpy's float64 computation of the
// formula (testdata/parity, written by scripts/gen_signature_vectors.py): every value within a
// relative 1e-6.
func TestParityVectors(t *testing.T) {
	dir := "testdata/parity"
	s := mustExtract(t, ExtractOptions{
		Init: filepath.Join(dir, "init.safetensors"), Clean: filepath.Join(dir, "clean.safetensors"),
		Robust: []string{filepath.Join(dir, "robust1.safetensors"), filepath.Join(dir, "robust2.safetensors")},
		Layers: "first:2",
	})
	exp, err := safetensors.Open(filepath.Join(dir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	if len(s.Tensors) != len(exp.Names()) {
		t.Fatalf("signature has %d tensors, expected %d (%v)", len(s.Tensors), len(exp.Names()), exp.Names())
	}
	for _, st := range s.Tensors {
		raw, err := exp.ReadRaw(st.Name)
		if err != nil {
			t.Fatalf("tensor %q: %v", st.Name, err)
		}
		want := make([]float64, st.Elements())
		if err := tensor.DecodeFloat64(tensor.F64, raw, want); err != nil {
			t.Fatal(err)
		}
		got, err := st.Values()
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i := range want {
			worst = math.Max(worst, math.Abs(float64(got[i])-want[i])/math.Abs(want[i]))
		}
		if worst > 1e-6 {
			t.Errorf("tensor %q: max relative error %g > 1e-6", st.Name, worst)
		}
	}
	if s.Variant != Projection {
		t.Errorf("variant %q, want projection", s.Variant)
	}
}

// TestProjectRandom checks Project against an exact (big.Float) evaluation of the formula on
// seeded random tensors of several sizes and scales.
func TestProjectRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	for _, n := range []int{1, 7, 1000, 50000} {
		for _, scale := range []float64{1e-4, 1, 1e3} {
			z, c, r := make([]float64, n), make([]float64, n), make([]float64, n)
			for i := range z {
				z[i] = float64(float32(rng.NormFloat64() * scale))
				c[i] = float64(float32(z[i] + rng.NormFloat64()*scale*0.01))
				r[i] = float64(float32(z[i] + rng.NormFloat64()*scale*0.02))
			}
			got := Project(r, c, z)
			want := exactProject(r, c, z)
			worst := 0.0
			for i := range got {
				// Compare the float32 values the file stores, as the issue asks.
				g := float64(float32(got[i]))
				if want[i] != 0 {
					worst = math.Max(worst, math.Abs(g-want[i])/math.Abs(want[i]))
				}
			}
			if worst > 1e-6 {
				t.Errorf("n=%d scale=%g: max relative error %g > 1e-6", n, scale, worst)
			}
		}
	}
}

// exactProject evaluates d − (⟨d,a⟩/⟨a,a⟩)·a with 256-bit floats.
func exactProject(r, c, z []float64) []float64 {
	const prec = 256
	nf := func(v float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(v) }
	da, aa := nf(0), nf(0)
	d := make([]*big.Float, len(z))
	a := make([]*big.Float, len(z))
	for i := range z {
		d[i] = nf(r[i])
		d[i].Sub(d[i], nf(z[i]))
		a[i] = nf(c[i])
		a[i].Sub(a[i], nf(z[i]))
		da.Add(da, new(big.Float).SetPrec(prec).Mul(d[i], a[i]))
		aa.Add(aa, new(big.Float).SetPrec(prec).Mul(a[i], a[i]))
	}
	coef := new(big.Float).SetPrec(prec).Quo(da, aa)
	out := make([]float64, len(z))
	for i := range z {
		v := new(big.Float).SetPrec(prec).Mul(coef, a[i])
		v.Sub(d[i], v)
		out[i], _ = v.Float64()
	}
	return out
}

func TestProjectOrthogonal(t *testing.T) {
	// The signature is orthogonal to the clean delta.
	rng := rand.New(rand.NewPCG(8, 9))
	n := 4096
	z, c, r := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range z {
		z[i], c[i], r[i] = rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
	}
	s := Project(r, c, z)
	var dot, ns, na float64
	for i := range s {
		a := c[i] - z[i]
		dot += s[i] * a
		ns += s[i] * s[i]
		na += a * a
	}
	if cos := dot / math.Sqrt(ns*na); math.Abs(cos) > 1e-12 {
		t.Errorf("cos(RWS, θ_std−θ₀) = %g, want 0", cos)
	}
	// a = 0 gives d.
	got := Project([]float64{3, 4}, []float64{1, 1}, []float64{1, 1})
	if got[0] != 2 || got[1] != 3 {
		t.Errorf("Project with a = 0 = %v, want d = [2 3]", got)
	}
}

func TestDifferenceVariant(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 2)
	s := mustExtract(t, ExtractOptions{Clean: f.clean, Robust: f.robust, Layers: "first:1"})
	if s.Variant != Difference {
		t.Fatalf("variant %q, want difference", s.Variant)
	}
	rc, _ := safetensors.Open(f.clean)
	defer rc.Close()
	c, _ := rc.ReadFloat32("features.0.weight")
	var rs [][]float32
	for _, p := range f.robust {
		r, _ := safetensors.Open(p)
		v, _ := r.ReadFloat32("features.0.weight")
		r.Close()
		rs = append(rs, v)
	}
	got, err := s.Tensor("features.0.weight").Values()
	if err != nil {
		t.Fatal(err)
	}
	for i := range c {
		want := float32((float64(rs[0][i])+float64(rs[1][i]))/2 - float64(c[i]))
		if got[i] != want {
			t.Fatalf("value %d = %v, want mean(θ_c) − θ_std = %v", i, got[i], want)
		}
	}
}

func TestSelection(t *testing.T) {
	names := make([]string, len(smallCNN))
	shapes := map[string][]int64{}
	for i, e := range smallCNN {
		names[i] = e.name
		shapes[e.name] = e.shape
	}
	// Sorted as a safetensors writer stores them: classifier first, features.10 before features.3.
	sortStrings(names)
	layers, err := layer.Order(names, nil, nil, func(n string) []int64 { return shapes[n] })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec string
		want []string
	}{
		{"first:1", []string{"features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"}},
		{"first:2", []string{"features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
			"features.3.weight", "features.3.bias", "features.4.weight", "features.4.bias"}},
		{"first:4", []string{"features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
			"features.3.weight", "features.3.bias", "features.4.weight", "features.4.bias",
			"features.7.weight", "features.7.bias", "features.10.weight", "features.10.bias"}},
		{"features.7", []string{"features.7.weight", "features.7.bias"}},
		{"features.1*", []string{"features.1.weight", "features.1.bias", "features.10.weight", "features.10.bias"}},
		{"classifier,features.0.bias", []string{"features.0.bias", "classifier.weight", "classifier.bias"}},
		// Tensor patterns skip running statistics (and the I64 num_batches_tracked).
		{"features.1.*", []string{"features.1.weight", "features.1.bias"}},
		{"features.4.*,features.3", []string{"features.3.weight", "features.3.bias", "features.4.weight", "features.4.bias"}},
	}
	for _, tc := range tests {
		c, err := selectLayers(layers, tc.spec, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.spec, err)
			continue
		}
		if strings.Join(c.Tensors, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: tensors %v, want %v", tc.spec, c.Tensors, tc.want)
		}
	}
	for _, bad := range []string{"first:5", "first:0", "first:x", "nosuch.*", "auto:2", "[", "", "*.running_mean", "features.1.num_batches_tracked"} {
		if _, err := selectLayers(layers, bad, measureEach(func(Unit) float64 { return 1 })); err == nil {
			t.Errorf("%q: selection succeeded", bad)
		}
	}
	if _, err := selectLayers(layers, "*.running_var", nil); err == nil || !strings.Contains(err.Error(), "only batch-norm running statistics") {
		t.Errorf("*.running_var: %v, want a refusal that names running statistics", err)
	}
	// auto keeps up to the last unit at or above half the largest relative difference.
	deltas := map[string]float64{"features.0": 0.2, "features.3": 0.15, "features.7": 0.02, "features.10": 0.11}
	c, err := selectLayers(layers, "auto", measureEach(func(u Unit) float64 { return deltas[u.Name] }))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Units) != 4 {
		t.Errorf("auto kept %d units, want 4 (features.10 at 0.11 ≥ 0.5·0.2)", len(c.Units))
	}
	deltas["features.10"] = 0.09
	c, err = selectLayers(layers, "auto", measureEach(func(u Unit) float64 { return deltas[u.Name] }))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Units) != 2 || !strings.Contains(c.Explanation, "features.0") {
		t.Errorf("auto kept %d units (%s), want 2", len(c.Units), c.Explanation)
	}
}

// measureEach measures units one by one with f.
func measureEach(f func(Unit) float64) func([]Unit) ([]float64, error) {
	return func(us []Unit) ([]float64, error) {
		out := make([]float64, len(us))
		for i, u := range us {
			out[i] = f(u)
		}
		return out, nil
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestAutoOnData checks that auto finds the shallow layers the test family moved most.
func TestAutoOnData(t *testing.T) {
	f := makeFamily(t, t.TempDir(), smallCNN, tensor.F32, 1)
	s, c, err := Extract(context.Background(), ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust,
		Layers: "auto", Spec: quant.Spec{Codec: quant.None}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Units) != 2 || len(c.Deltas) != 4 {
		t.Fatalf("auto kept %v of %v", c.Units, c.Deltas)
	}
	if strings.Join(s.Layers, ",") != "features.0,features.1,features.3,features.4" {
		t.Errorf("layers %v", s.Layers)
	}
}

// TestCompactnessVGG16 checks the compactness numbers on the VGG-16 CIFAR layout with the
// first 6 convolutions: ≥ 12.5× unquantized, ≥ 50× at 8 bits, ≥ 180× at 2 bits.
func TestCompactnessVGG16(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 180 MB of checkpoints")
	}
	dir := t.TempDir()
	layout := vgg16()
	var params int64
	for _, e := range layout {
		params += tensor.Elements(e.shape)
	}
	if params != 14_719_818 {
		t.Fatalf("VGG-16 CIFAR layout has %d parameters, want 14,719,818", params)
	}
	f := makeFamily(t, dir, layout, tensor.F32, 1)
	tests := []struct {
		spec quant.Spec
		gran quant.Granularity
		min  float64
	}{
		{quant.Spec{Codec: quant.None}, quant.PerTensor, 12.5},
		{quant.Spec{Codec: quant.Linear, Bits: 8}, quant.PerTensor, 50},
		{quant.Spec{Codec: quant.Linear, Bits: 8}, quant.PerChannel, 50},
		{quant.Spec{Codec: quant.Gauss, Bits: 2}, quant.PerTensor, 180},
		{quant.Spec{Codec: quant.Linear, Bits: 2}, quant.PerChannel, 180},
	}
	for _, tc := range tests {
		s := mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:6",
			Spec: tc.spec, Granularity: tc.gran, Command: "rws extract --layers first:6"})
		r := writeSig(t, s, filepath.Join(dir, "sig.rws"))
		t.Logf("%s/%s: %d bytes, model %d bytes: %.2f×", tc.spec, tc.gran, r.FileBytes, r.ModelBytes, r.Ratio())
		if r.Ratio() < tc.min {
			t.Errorf("%s/%s: ratio %.2f× < %g×", tc.spec, tc.gran, r.Ratio(), tc.min)
		}
		if len(r.Layers) != 6 {
			t.Errorf("%d layers, want 6", len(r.Layers))
		}
	}
}

func TestExtractErrors(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	// A robust model with one tensor of another shape, and one missing a tensor.
	other := append([]entry(nil), smallCNN...)
	other[0] = entry{"features.0.weight", []int64{8, 1, 3, 3}}
	bad := baseModel(other, 3).write(t, filepath.Join(dir, "shape.safetensors"), other, tensor.F32)
	short := baseModel(smallCNN[2:], 3).write(t, filepath.Join(dir, "short.safetensors"), smallCNN[2:], tensor.F32)
	tests := []struct {
		name string
		opts ExtractOptions
		want string
	}{
		{"shape", ExtractOptions{Init: f.init, Clean: f.clean, Robust: []string{bad}, Layers: "first:1"}, "[8 1 3 3]"},
		{"missing", ExtractOptions{Init: f.init, Clean: f.clean, Robust: []string{short}, Layers: "first:1"}, "missing"},
		{"no robust", ExtractOptions{Clean: f.clean}, "robust"},
		{"no file", ExtractOptions{Clean: f.clean, Robust: []string{filepath.Join(dir, "nope")}}, "nope"},
		{"bits", ExtractOptions{Clean: f.clean, Robust: f.robust, Spec: quant.Spec{Codec: quant.Log, Bits: 1}}, "bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Spec.Codec == "" {
				tc.opts.Spec = quant.Spec{Codec: quant.None}
			}
			_, _, err := Extract(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if tc.name == "shape" && !errors.Is(err, ErrMismatch) {
				t.Errorf("err = %v, want ErrMismatch", err)
			}
		})
	}
}

// TestFileRoundTrip writes and reads back every codec and checks values, metadata and ratio.
func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		f := makeFamily(t, filepath.Join(dir), smallCNN, dt, 2)
		for _, spec := range []quant.Spec{{Codec: quant.None}, {Codec: quant.Linear, Bits: 8}, {Codec: quant.Log, Bits: 4},
			{Codec: quant.Tanh, Bits: 3}, {Codec: quant.Gauss, Bits: 1}} {
			s := mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:3",
				Spec: spec, Granularity: quant.PerChannel, Name: "fog"})
			r := writeSig(t, s, filepath.Join(dir, "x.rws"))
			if r.Name != "fog" || r.Spec != s.Spec || r.Variant != Projection || len(r.Tensors) != len(s.Tensors) {
				t.Fatalf("%s %s: read back %+v", dt, spec, r)
			}
			if r.Ratio() <= 1 || r.FileBytes != s.FileBytes {
				t.Errorf("%s %s: ratio %.2f, file %d vs %d", dt, spec, r.Ratio(), r.FileBytes, s.FileBytes)
			}
			if r.FileSHA256 != s.FileSHA256 {
				t.Errorf("%s %s: Write gave file SHA-256 %s, Read %s", dt, spec, s.FileSHA256, r.FileSHA256)
			}
			for i, tt := range s.Tensors {
				a, _ := tt.Values()
				b, err := r.Tensors[i].Values()
				if err != nil {
					t.Fatal(err)
				}
				for k := range a {
					if math.Float32bits(a[k]) != math.Float32bits(b[k]) {
						t.Fatalf("%s %s: tensor %q value %d changed through the file", dt, spec, tt.Name, k)
					}
				}
				if spec.Codec == quant.None && tt.DType != dt {
					t.Errorf("codec none stored %s, want the source type %s", tt.DType, dt)
				}
			}
		}
	}
}
