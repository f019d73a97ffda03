package signature

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// blockLayout has tensors of one element, of exactly one block, and across block boundaries.
var blockLayout = []entry{
	{"features.0.weight", []int64{3, blockElems/3 + 1}},
	{"features.0.bias", []int64{1}},
	{"features.1.weight", []int64{blockElems}},
	{"features.1.bias", []int64{blockElems}},
	{"features.1.running_mean", []int64{blockElems}},
	{"features.1.running_var", []int64{blockElems}},
	{"features.3.weight", []int64{7, 3, blockElems / 8}},
	{"features.3.bias", []int64{7}},
	{"classifier.weight", []int64{2, 3}},
	{"classifier.bias", []int64{2}},
}

// TestExtractMatchesWholeTensors checks that extraction, which reads blocks on several
// goroutines, gives bit for bit what one loop over whole float64 tensors gives (the
// formulas of refTensor and refMeasure, as extraction computed them before it read blocks).
func TestExtractMatchesWholeTensors(t *testing.T) {
	dir := t.TempDir()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.F64} {
		sub := filepath.Join(dir, string(dt))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		f := makeFamily(t, sub, blockLayout, dt, 2)
		for _, tc := range []struct {
			init   bool
			robust int
			spec   quant.Spec
			gran   quant.Granularity
		}{
			{true, 1, quant.Spec{Codec: quant.None}, quant.PerTensor},
			{true, 2, quant.Spec{Codec: quant.None}, quant.PerTensor},
			{false, 1, quant.Spec{Codec: quant.None}, quant.PerTensor},
			{false, 2, quant.Spec{Codec: quant.Linear, Bits: 8}, quant.PerChannel},
			{true, 1, quant.Spec{Codec: quant.Gauss, Bits: 2}, quant.PerTensor},
		} {
			name := fmt.Sprintf("%s/init=%v/robust=%d/%s/%s", dt, tc.init, tc.robust, tc.spec, tc.gran)
			t.Run(name, func(t *testing.T) {
				opts := ExtractOptions{Clean: f.clean, Robust: f.robust[:tc.robust], Layers: "auto:0.01", Spec: tc.spec, Granularity: tc.gran}
				if tc.init {
					opts.Init = f.init
				}
				s, c, err := Extract(context.Background(), opts)
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Tensors) != 6 {
					t.Fatalf("%d tensors (%v, %v), want the 6 of every unit but the head", len(s.Tensors), c.Units, c.Deltas)
				}
				for i, u := range c.Units {
					if want := refMeasure(t, opts, u); c.Deltas[i].Relative != want {
						t.Errorf("unit %s: relative difference %v, want %v", u.Name, c.Deltas[i].Relative, want)
					}
				}
				for _, got := range s.Tensors {
					want := refTensor(t, opts, got.Name)
					if got.SHA256, want.SHA256 = got.storedSHA256(), want.storedSHA256(); got.SHA256 != want.SHA256 {
						t.Errorf("tensor %q: stored bytes differ", got.Name)
					}
					if fmt.Sprint(got.Sources) != fmt.Sprint(want.Sources) {
						t.Errorf("tensor %q: fingerprints %v, want %v", got.Name, got.Sources, want.Sources)
					}
					if got.Norm != want.Norm || got.MaxError != want.MaxError || got.RelError != want.RelError || got.Groups != want.Groups {
						t.Errorf("tensor %q: norm %v, errors %v %v, groups %d; want %v, %v %v, %d", got.Name,
							got.Norm, got.MaxError, got.RelError, got.Groups, want.Norm, want.MaxError, want.RelError, want.Groups)
					}
				}
			})
		}
	}
}

// refRead returns a tensor as float64 and the SHA-256 of its bytes.
func refRead(t *testing.T, path, name string) ([]float64, string) {
	t.Helper()
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in, _ := r.Info(name)
	raw, err := r.ReadRaw(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, in.Elements())
	if err := tensor.DecodeFloat64(in.DType, raw, out); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return out, hex.EncodeToString(sum[:])
}

// refTensor computes one signature tensor over whole tensors in single loops.
func refTensor(t *testing.T, opts ExtractOptions, name string) *Tensor {
	t.Helper()
	c, fp := refRead(t, opts.Clean, name)
	r, _ := safetensors.Open(opts.Clean)
	in, _ := r.Info(name)
	r.Close()
	out := &Tensor{Name: name, Shape: in.Shape, DType: in.DType, Groups: 1}
	out.Sources.Clean = fp
	var m []float64
	for _, p := range opts.Robust {
		v, fp := refRead(t, p, name)
		out.Sources.Robust = append(out.Sources.Robust, fp)
		if m == nil {
			m = v
			continue
		}
		for i := range m {
			m[i] += v[i]
		}
	}
	for i := range m {
		m[i] /= float64(len(opts.Robust))
	}
	vals := make([]float64, len(c))
	if opts.Init != "" {
		var z []float64
		z, out.Sources.Init = refRead(t, opts.Init, name)
		var da, aa float64
		for i := range z {
			d, a := m[i]-z[i], c[i]-z[i]
			da += d * a
			aa += a * a
		}
		coef := 0.0
		if aa > 0 {
			coef = da / aa
		}
		for i := range z {
			d, a := m[i]-z[i], c[i]-z[i]
			vals[i] = d - float64(coef*a)
		}
	} else {
		for i := range c {
			vals[i] = m[i] - c[i]
		}
	}
	f32 := make([]float32, len(vals))
	var norm float64
	for i, v := range vals {
		f32[i] = float32(v)
		norm += v * v
	}
	out.Norm = math.Sqrt(norm)
	if opts.Spec.Codec == quant.None {
		out.raw = make([]byte, len(vals)*in.DType.Size())
		if in.DType == tensor.F64 {
			for i, v := range vals {
				putFloat64(out.raw[8*i:], v)
			}
		} else if err := tensor.EncodeFloat64(in.DType, vals, out.raw); err != nil { // rounded once
			t.Fatal(err)
		}
	} else {
		if opts.Granularity == quant.PerChannel && len(in.Shape) >= 2 && in.Shape[0] > 0 {
			out.Groups = int(in.Shape[0])
		}
		q, err := quant.Encode(f32, out.Groups, opts.Spec)
		if err != nil {
			t.Fatal(err)
		}
		out.q = q
	}
	dec, err := out.decode()
	if err != nil {
		t.Fatal(err)
	}
	var e2 float64
	for i, v := range vals {
		e := math.Abs(v - float64(dec[i]))
		out.MaxError = math.Max(out.MaxError, e)
		e2 += e * e
	}
	if norm > 0 {
		out.RelError = math.Sqrt(e2 / norm)
	}
	return out
}

// refMeasure computes a unit's relative difference over whole tensors read as float32.
func refMeasure(t *testing.T, opts ExtractOptions, u Unit) float64 {
	t.Helper()
	read := func(path, name string) []float32 {
		r, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		v, err := r.ReadFloat32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var dd, cc float64
	for _, name := range u.Tensors {
		c := read(opts.Clean, name)
		sum := make([]float64, len(c))
		for _, p := range opts.Robust {
			for i, x := range read(p, name) {
				sum[i] += float64(x)
			}
		}
		k := float64(len(opts.Robust))
		for i, x := range c {
			d := sum[i]/k - float64(x)
			dd += d * d
			cc += float64(x) * float64(x)
		}
	}
	if cc == 0 {
		return 0
	}
	return math.Sqrt(dd / cc)
}

func putFloat64(b []byte, v float64) {
	u := math.Float64bits(v)
	for i := range 8 {
		b[i] = byte(u >> (8 * i))
	}
}
