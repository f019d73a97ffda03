package signature

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// entry is one tensor of a test layout.
type entry struct {
	name  string
	shape []int64
}

// smallCNN is a conv net with batch norm, in PyTorch state_dict names.
var smallCNN = []entry{
	{"features.0.weight", []int64{8, 3, 3, 3}},
	{"features.0.bias", []int64{8}},
	{"features.1.weight", []int64{8}},
	{"features.1.bias", []int64{8}},
	{"features.1.running_mean", []int64{8}},
	{"features.1.running_var", []int64{8}},
	{"features.1.num_batches_tracked", []int64{}},
	{"features.3.weight", []int64{16, 8, 3, 3}},
	{"features.3.bias", []int64{16}},
	{"features.4.weight", []int64{16}},
	{"features.4.bias", []int64{16}},
	{"features.4.running_mean", []int64{16}},
	{"features.4.running_var", []int64{16}},
	{"features.4.num_batches_tracked", []int64{}},
	{"features.7.weight", []int64{32, 16, 3, 3}},
	{"features.7.bias", []int64{32}},
	{"features.10.weight", []int64{32, 32, 3, 3}},
	{"features.10.bias", []int64{32}},
	{"classifier.weight", []int64{10, 32}},
	{"classifier.bias", []int64{10}},
}

// mediumCNN is smallCNN with wider layers (tens of thousands of values per tensor), so that
// compression and per-tensor overheads behave as in real models.
var mediumCNN = []entry{
	{"features.0.weight", []int64{32, 3, 3, 3}},
	{"features.0.bias", []int64{32}},
	{"features.1.weight", []int64{32}},
	{"features.1.bias", []int64{32}},
	{"features.1.running_mean", []int64{32}},
	{"features.1.running_var", []int64{32}},
	{"features.1.num_batches_tracked", []int64{}},
	{"features.3.weight", []int64{64, 32, 3, 3}},
	{"features.3.bias", []int64{64}},
	{"features.4.weight", []int64{64}},
	{"features.4.bias", []int64{64}},
	{"features.4.running_mean", []int64{64}},
	{"features.4.running_var", []int64{64}},
	{"features.4.num_batches_tracked", []int64{}},
	{"features.7.weight", []int64{64, 64, 3, 3}},
	{"features.7.bias", []int64{64}},
	{"features.10.weight", []int64{64, 64, 3, 3}},
	{"features.10.bias", []int64{64}},
	{"classifier.weight", []int64{10, 64}},
	{"classifier.bias", []int64{10}},
}

// vgg16 is the VGG-16 CIFAR layout: 13 3×3 convolutions with bias (3→64, 64→64, 64→128,
// 128→128, 128→256, 256→256 ×2, 256→512, 512→512 ×5) and a 512→10 linear head, under
// torchvision-style names (features.N with ReLU and pooling indices skipped).
func vgg16() []entry {
	chans := [][2]int64{{3, 64}, {64, 64}, {64, 128}, {128, 128}, {128, 256}, {256, 256}, {256, 256},
		{256, 512}, {512, 512}, {512, 512}, {512, 512}, {512, 512}, {512, 512}}
	idx := []int{0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28}
	var out []entry
	for i, c := range chans {
		n := "features." + itoa(idx[i])
		out = append(out, entry{n + ".weight", []int64{c[1], c[0], 3, 3}}, entry{n + ".bias", []int64{c[1]}})
	}
	return append(out, entry{"classifier.weight", []int64{10, 512}}, entry{"classifier.bias", []int64{10}})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// model holds test checkpoint values by name.
type model map[string][]float32

// baseModel returns seeded values N(0, 0.1²) for a layout.
func baseModel(layout []entry, seed uint64) model {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := model{}
	for _, e := range layout {
		v := make([]float32, tensor.Elements(e.shape))
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.1)
		}
		m[e.name] = v
	}
	return m
}

// moved returns m plus seeded noise of the given scale; the scale of tensor k is scale(k).
func (m model) moved(seed uint64, scale func(name string) float64) model {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := model{}
	for n, v := range m {
		w := make([]float32, len(v))
		s := scale(n)
		for i := range v {
			w[i] = v[i] + float32(rng.NormFloat64()*s)
		}
		out[n] = w
	}
	return out
}

func constScale(s float64) func(string) float64 { return func(string) float64 { return s } }

// write stores m with the given float type, tensors sorted by name as safetensors writers do;
// tensors with an empty shape are written as I64 counters.
func (m model) write(t testing.TB, path string, layout []entry, dt tensor.DType) string {
	t.Helper()
	var ts []safetensors.Tensor
	for _, e := range layout {
		if len(e.shape) == 0 {
			ts = append(ts, safetensors.Tensor{Name: e.name, DType: tensor.I64, Shape: e.shape, Data: make([]byte, 8)})
			continue
		}
		data := make([]byte, len(m[e.name])*dt.Size())
		if err := tensor.EncodeFloat32(dt, m[e.name], data); err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: e.name, DType: dt, Shape: e.shape, Data: data})
	}
	sortTensors(ts)
	if err := safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}, safetensors.WriteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	return path
}

func sortTensors(ts []safetensors.Tensor) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Name < ts[j-1].Name; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// family writes θ₀, θ_std and robust models of one layout into dir and returns their paths.
type family struct {
	init, clean string
	robust      []string
}

func makeFamily(t testing.TB, dir string, layout []entry, dt tensor.DType, nRobust int) family {
	t.Helper()
	base := baseModel(layout, 1)
	f := family{
		init:  base.write(t, filepath.Join(dir, "init.safetensors"), layout, dt),
		clean: base.moved(2, constScale(0.01)).write(t, filepath.Join(dir, "clean.safetensors"), layout, dt),
	}
	for k := range nRobust {
		// Robust models move most in the shallow layers, as the paper observes.
		shallow := func(name string) float64 {
			for _, p := range []string{"features.0.", "features.1.", "features.2.", "features.3.", "features.4."} {
				if strings.HasPrefix(name, p) {
					return 0.05
				}
			}
			return 0.005
		}
		p := filepath.Join(dir, "robust"+itoa(k)+".safetensors")
		f.robust = append(f.robust, base.moved(uint64(10+k), shallow).write(t, p, layout, dt))
	}
	return f
}

func mustExtract(t testing.TB, opts ExtractOptions) *Signature {
	t.Helper()
	if opts.Spec.Codec == "" {
		opts.Spec = quant.Spec{Codec: quant.None}
	}
	s, _, err := Extract(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeSig(t testing.TB, s *Signature, path string) *Signature {
	t.Helper()
	if err := s.Write(path, WriteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	r, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sameFile(t testing.TB, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// fuzzDir is a folder for the files a fuzz target rewrites on every run. It prefers a RAM file
// system: on ext4 mounted with discard (as on our CI machines), truncating or replacing a file
// waits for the device to discard its blocks, and a fuzz worker then manages a few runs a
// second and the fuzz pass times out.
func fuzzDir(f *testing.F) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "rws-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return f.TempDir()
}

// readAll returns every tensor's raw bytes of the checkpoint at path, by name.
func readAll(t testing.TB, path string) map[string][]byte {
	t.Helper()
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string][]byte{}
	for _, in := range r.Tensors() {
		b, err := r.ReadRaw(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		out[in.Name] = b
	}
	return out
}
