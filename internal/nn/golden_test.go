package nn

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/rws-project/rws/safetensors"
)

// Golden vectors: testdata/golden, written by scripts/gen_nn_golden.py with PyTorch 1.13 in
// float64 from float32 inputs and weights. Tolerance: per tensor, max|got − want| / max|want|.
const goldenTol = 1e-4

// The deterministic values shared with scripts/rws_torch.py (hash_uniform, hash_value).

func fnv1a64(s string) uint64 {
	h := uint64(0xCBF29CE484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001B3
	}
	return h
}

func splitmix64(x uint64) uint64 {
	z := x + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func hashUniform(name string, n int) []float32 {
	base := fnv1a64(name)
	u := make([]float32, n)
	for i := range u {
		u[i] = float32(float64(splitmix64(base+uint64(i))>>40)/(1<<23) - 1)
	}
	return u
}

// hashValue fills a state_dict entry as rws_torch.hash_value does (explicit float32 conversions
// keep Go from fusing a multiply-add that numpy rounds twice).
func hashValue(name string, shape []int) []float32 {
	u := hashUniform(name, max(1, prod(shape)))
	leaf := name[strings.LastIndex(name, ".")+1:]
	fanIn := 1
	if len(shape) > 1 {
		fanIn = prod(shape[1:])
	}
	bound := float32(math.Sqrt(6 / float64(fanIn)))
	for i, v := range u {
		switch {
		case leaf == "num_batches_tracked":
			u[i] = 0
		case leaf == "running_mean":
			u[i] = v * 0.1
		case leaf == "running_var":
			u[i] = 1.25 + float32(v*0.25)
		case leaf == "weight" && len(shape) == 1:
			u[i] = 1 + float32(v*0.1)
		case leaf == "bias":
			u[i] = v * 0.1
		default:
			u[i] = v * bound
		}
	}
	return u
}

type golden struct {
	t    testing.TB
	ts   map[string][]float32
	meta map[string]string
}

func readGolden(t testing.TB, file string) golden {
	t.Helper()
	r, err := safetensors.Open(filepath.Join("testdata", "golden", file))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	g := golden{t: t, ts: map[string][]float32{}, meta: r.Metadata()}
	for _, in := range r.Tensors() {
		v, err := r.ReadFloat32(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		g.ts[in.Name] = v
	}
	return g
}

func (g golden) get(name string) []float32 {
	v, ok := g.ts[name]
	if !ok {
		g.t.Fatalf("golden tensor %q missing", name)
	}
	return v
}

// relErr is max|got − want| / max|want| (1 when want is all zero and got is not).
func relErr(got, want []float32) float64 {
	var d, s float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
		s = max(s, math.Abs(float64(want[i])))
	}
	if s == 0 {
		if d == 0 {
			return 0
		}
		return 1
	}
	return d / s
}

// subsample picks the elements the generator stored for tensors of more than 4096 values.
func subsample(v []float32) []float32 {
	if len(v) <= 4096 {
		return v
	}
	out := make([]float32, 1024)
	for i := range out {
		out[i] = v[i*len(v)/1024]
	}
	return out
}

func (g golden) check(what string, got []float32, want string) {
	g.t.Helper()
	w := g.get(want)
	got = subsample(got)
	if len(got) != len(w) {
		g.t.Errorf("%s: %d values, golden %q has %d", what, len(got), want, len(w))
		return
	}
	if e := relErr(got, w); !(e <= goldenTol) {
		g.t.Errorf("%s: max relative error %.3g > %g", what, e, goldenTol)
	}
}

type layerCase struct {
	Name   string `json:"name"`
	Layer  string `json:"layer"`
	N      int    `json:"n"`
	Inp    []int  `json:"inp"`
	Out    int    `json:"out"`
	K      int    `json:"k"`
	S      int    `json:"s"`
	Stride int    `json:"stride"`
	Pad    int    `json:"pad"`
	Bias   bool   `json:"bias"`
	ReLU   bool   `json:"relu"`
	Ceil   bool   `json:"ceil"`
	Train  *bool  `json:"train"`
	Planes int    `json:"planes"`
	Ties   bool   `json:"ties"`
	Pool   *struct {
		K, S int
		Ceil bool
	} `json:"pool"`
}

// buildLayer makes the Go layer of a golden case; prefix is the part of the Go parameter names
// that PyTorch's state_dict keys of the case lack.
func buildLayer(t *testing.T, c layerCase) (l layer, prefix string) {
	in := shape{c.Inp[0], c.Inp[1], c.Inp[2]}
	switch c.Layer {
	case "conv":
		conv, err := newConv("0", in, c.Out, c.K, c.Stride, c.Pad, c.Bias)
		if err != nil {
			t.Fatal(err)
		}
		if c.ReLU {
			var pool *maxPool
			if c.Pool != nil {
				pool = newMaxPool(conv.co, c.Pool.K, c.Pool.S, c.Pool.Ceil)
			}
			conv.fuse(pool)
		}
		return conv, ""
	case "linear":
		return &sequential{in: in, layers: []layer{&flatten{in: in}, newLinear("1", in, c.Out)}}, ""
	case "relu":
		return newReLU(in), ""
	case "maxpool":
		return newMaxPool(in, c.K, c.S, c.Ceil), ""
	case "gap":
		return &globalAvgPool{in: in}, ""
	case "bn":
		return newBatchNorm("bn", in), "bn."
	case "block":
		b, err := newBasicBlock("b", in, c.Planes, c.Stride)
		if err != nil {
			t.Fatal(err)
		}
		return b, "b."
	}
	t.Fatalf("unknown layer %q", c.Layer)
	return nil, ""
}

func TestGoldenLayers(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "layer_*.safetensors"))
	if len(files) == 0 {
		t.Fatal("no golden layer vectors; run scripts/gen_nn_golden.py")
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "layer_"), ".safetensors")
		t.Run(name, func(t *testing.T) {
			g := readGolden(t, filepath.Base(f))
			var c layerCase
			if err := json.Unmarshal([]byte(g.meta["case"]), &c); err != nil {
				t.Fatal(err)
			}
			x := g.get("x")
			if c.Layer == "xent" {
				k := c.Inp[0]
				labels := make([]int, c.N)
				for i, v := range g.get("labels") {
					labels[i] = int(v)
				}
				grad := make([]float32, len(x))
				loss, _ := crossEntropy(x, labels, k, grad)
				g.check("loss", []float32{float32(loss)}, "loss")
				g.check("dlogits", grad, "dx")
				return
			}
			l, prefix := buildLayer(t, c)
			for _, p := range l.state() {
				key := strings.TrimPrefix(p.name, prefix)
				if p.kind == kindParam {
					copy(p.w, g.get("param."+key))
				} else {
					copy(p.w, hashValue(c.Name+"."+key, p.shape))
				}
			}
			train := c.Train == nil || *c.Train
			y := l.forward(slices.Clone(x), c.N, train)
			g.check("y", y, "y")
			dx := l.backward(slices.Clone(g.get("dy")), true)
			g.check("dx", dx, "dx")
			for _, p := range l.state() {
				key := strings.TrimPrefix(p.name, prefix)
				if p.kind == kindParam {
					g.check("grad "+key, p.g, "grad."+key)
				} else {
					g.check(key+" after forward", p.w, "buffer."+key)
				}
			}
		})
	}
}

func TestGoldenModels(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "model_*.safetensors"))
	if len(files) == 0 {
		t.Fatal("no golden model vectors; run scripts/gen_nn_golden.py")
	}
	ctx := context.Background()
	// One worker takes all four examples, so examples with small outputs are unfolded side by
	// side (conv2d.group); with several workers each takes fewer.
	procs := []int{1, runtime.GOMAXPROCS(0)}
	if procs[1] == 1 {
		procs = procs[:1]
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, f := range files {
		for _, p := range procs {
			name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "model_"), ".safetensors")
			t.Run(fmt.Sprintf("%s/procs=%d", name, p), func(t *testing.T) {
				runtime.GOMAXPROCS(p)
				g := readGolden(t, filepath.Base(f))
				var cfg Config
				if err := json.Unmarshal([]byte(g.meta["arch_config"]), &cfg); err != nil {
					t.Fatal(err)
				}
				m, err := New(g.meta["arch"], cfg, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range m.state {
					copy(p.w, hashValue(p.name, p.shape))
				}
				pix := g.get("images")
				im := Images{Pix: make([]uint8, len(pix)), N: 4, H: cfg.Height, W: cfg.Width, C: cfg.InChannels}
				for i, v := range pix {
					im.Pix[i] = uint8(v)
				}
				labels := make([]int, im.N)
				for i, v := range g.get("labels") {
					labels[i] = int(v)
				}
				k := cfg.Classes
				for _, mode := range []string{"eval", "train"} {
					x, err := m.PrepareInput(im, nil)
					if err != nil {
						t.Fatal(err)
					}
					logits, err := m.Forward(x, im.N, mode == "train")
					if err != nil {
						t.Fatal(err)
					}
					g.check("logits "+mode, logits, "logits_"+mode)
					dl := make([]float32, len(logits))
					loss, _ := crossEntropy(logits, labels, k, dl)
					g.check("loss "+mode, []float32{float32(loss)}, "loss_"+mode)
					m.ZeroGrad()
					dx, err := m.Backward(dl, true)
					if err != nil {
						t.Fatal(err)
					}
					g.check("input gradient "+mode, dx, "dx_"+mode)
					for _, gr := range m.Grads() {
						g.check("gradient "+mode+" "+gr.Name, gr.Data, "grad_"+mode+"."+gr.Name)
					}
					if mode == "eval" {
						// The public API computes the same eval-mode gradients.
						loss2, grads, err := Gradients(ctx, m, im, labels)
						if err != nil {
							t.Fatal(err)
						}
						g.check("Gradients loss", []float32{float32(loss2)}, "loss_eval")
						for _, gr := range grads {
							g.check("Gradients "+gr.Name, gr.Data, "grad_eval."+gr.Name)
						}
					}
				}
				for _, p := range m.state {
					if p.kind != kindParam {
						g.check(p.name+" after train forward", p.w, "buffer_train."+p.name)
					}
				}
			})
		}
	}
}

// TestTorchCheckpoint loads a checkpoint written from PyTorch (PyTorch's own initialisation,
// rws metadata) and compares the logits PyTorch computed.
func TestTorchCheckpoint(t *testing.T) {
	m, err := LoadCheckpoint(filepath.Join("testdata", "golden", "torch_cnn_4x4.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	g := readGolden(t, "torch_cnn_4x4_expect.safetensors")
	pix := g.get("images")
	im := Images{Pix: make([]uint8, len(pix)), N: len(pix) / 16, H: 4, W: 4, C: 1}
	for i, v := range pix {
		im.Pix[i] = uint8(v)
	}
	logits, err := m.Logits(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	g.check("logits", logits, "logits")
	if got := fmt.Sprint(m.Modules()); got != "[features.0 features.2 features.5 features.7 classifier.0 classifier.2]" {
		t.Errorf("modules = %s", got)
	}
}

// TestUnfoldPaths checks the whole-plane unfolding of "same" convolutions against the general
// path on shapes with padding wider than the image.
func TestUnfoldPaths(t *testing.T) {
	defer func() { genericUnfold = false }()
	for _, tc := range []struct {
		in     shape
		k, pad int
	}{{shape{3, 7, 5}, 3, 1}, {shape{2, 1, 1}, 3, 1}, {shape{2, 2, 3}, 5, 2}, {shape{1, 4, 4}, 1, 0}} {
		c, err := newConv("c", tc.in, 2, tc.k, 1, tc.pad, false)
		if err != nil {
			t.Fatal(err)
		}
		genericUnfold = false
		if !c.same() {
			t.Fatalf("%v k=%d p=%d is not a same convolution", tc.in, tc.k, tc.pad)
		}
		x := hashUniform(fmt.Sprint(tc), tc.in.size())
		n := c.in.c * c.k * c.k * c.co.h * c.co.w
		var cols, dxs [2][]float32
		for i, generic := range []bool{false, true} {
			genericUnfold = generic
			cols[i] = make([]float32, n)
			for j := range cols[i] {
				cols[i][j] = 99 // every entry must be written
			}
			c.im2col(x, cols[i], c.co.h*c.co.w)
			dcol := hashUniform("dcol", n)
			dxs[i] = make([]float32, len(x))
			c.col2im(dcol, dxs[i], c.co.h*c.co.w)
		}
		if !slices.Equal(cols[0], cols[1]) {
			t.Errorf("%v k=%d p=%d: im2col paths differ", tc.in, tc.k, tc.pad)
		}
		if relErr(dxs[0], dxs[1]) > 1e-6 {
			t.Errorf("%v k=%d p=%d: col2im paths differ", tc.in, tc.k, tc.pad)
		}
	}
}
