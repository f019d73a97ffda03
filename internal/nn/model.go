package nn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// ErrArch is matched (errors.Is) by errors for an unknown architecture or a configuration the
// architecture cannot take.
var ErrArch = errors.New("unsupported architecture")

// Config is the input and output geometry of a model: images of InChannels × Height × Width and
// Classes logits. It is stored in checkpoints as the rws.arch_config metadata.
type Config struct {
	InChannels int `json:"in_channels"`
	Height     int `json:"height"`
	Width      int `json:"width"`
	Classes    int `json:"classes"`
}

// Preprocess maps a uint8 pixel p of channel c to the network input (p/Scale − Mean[c]) /
// Std[c]. It is stored in checkpoints as the rws.preprocess metadata.
type Preprocess struct {
	Scale float32   `json:"scale"`
	Mean  []float32 `json:"mean"`
	Std   []float32 `json:"std"`
}

// DefaultPreprocess is pixel/255 with no further normalization, for c channels.
func DefaultPreprocess(c int) Preprocess {
	p := Preprocess{Scale: 255, Mean: make([]float32, c), Std: make([]float32, c)}
	for i := range p.Std {
		p.Std[i] = 1
	}
	return p
}

func (p Preprocess) validate(c int) error {
	if !(p.Scale > 0) || len(p.Mean) != c || len(p.Std) != c {
		return fmt.Errorf("nn: preprocess %+v does not fit %d channels (want scale > 0 and %d means and stds)", p, c, c)
	}
	for _, s := range p.Std {
		if !(s > 0) {
			return fmt.Errorf("nn: preprocess std %v must be positive", p.Std)
		}
	}
	return nil
}

// Tensor is a named float32 tensor of a model's state_dict: Shape as in PyTorch, Data row-major.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Model is an image classifier: an architecture, its configuration, preprocessing and state.
// A Model is not safe for concurrent use.
type Model struct {
	arch   string
	cfg    Config
	pre    Preprocess
	net    *sequential
	state  []*param // in PyTorch's state_dict order
	byName map[string]*param
	bns    []*batchNorm
	meta   map[string]string // extra checkpoint metadata kept across load and save

	input     []float32 // preprocessed batch
	dlogits   []float32
	logits    []float32 // of the last Forward, nil after infer
	inference bool      // the layers are set for infer
}

// Archs lists the architecture names New accepts.
func Archs() []string { return []string{"cnn", "resnet20", "vgg11", "vgg16"} }

// New builds architecture arch for cfg with weights initialised from seed (each architecture
// uses the initialisation of its usual PyTorch definition) and pixel/255 preprocessing.
func New(arch string, cfg Config, seed uint64) (*Model, error) {
	if cfg.InChannels < 1 || cfg.Height < 1 || cfg.Width < 1 || cfg.Classes < 1 {
		return nil, fmt.Errorf("nn: %w: config %+v: channels, height, width and classes must be positive", ErrArch, cfg)
	}
	in := shape{cfg.InChannels, cfg.Height, cfg.Width}
	var (
		net *sequential
		err error
	)
	switch arch {
	case "cnn":
		net, err = buildCNN(in, cfg.Classes)
	case "vgg11", "vgg16":
		net, err = buildVGG(arch, in, cfg.Classes)
	case "resnet20":
		net, err = buildResNet(in, cfg.Classes, 3)
	default:
		return nil, fmt.Errorf("nn: %w %q (known: %s)", ErrArch, arch, strings.Join(Archs(), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("nn: %w: %s for input %v: %v", ErrArch, arch, in, err)
	}
	m := &Model{arch: arch, cfg: cfg, pre: DefaultPreprocess(cfg.InChannels), net: net,
		state: net.state(), byName: map[string]*param{}, meta: map[string]string{}}
	for _, p := range m.state {
		m.byName[p.name] = p
	}
	collectBN(net, &m.bns)
	m.init(rand.New(rand.NewPCG(seed, 0x726e6e)))
	return m, nil
}

func collectBN(l layer, out *[]*batchNorm) {
	switch v := l.(type) {
	case *sequential:
		for _, s := range v.layers {
			collectBN(s, out)
		}
	case *basicBlock:
		*out = append(*out, v.bn1, v.bn2)
		if v.scBN != nil {
			*out = append(*out, v.scBN)
		}
	case *batchNorm:
		*out = append(*out, v)
	}
}

func buildCNN(in shape, classes int) (*sequential, error) {
	s := &sequential{in: in}
	cur := in
	add := func(l layer) { s.layers = append(s.layers, l); cur = l.out() }
	for _, c := range []struct {
		idx, out int
		pool     bool
	}{{0, 32, false}, {2, 32, true}, {5, 64, false}, {7, 64, true}} {
		conv, err := newConv(fmt.Sprintf("features.%d", c.idx), cur, c.out, 3, 1, 1, true)
		if err != nil {
			return nil, err
		}
		// features.i+1 ReLU and, after the second convolution of a stage, the MaxPool2d(2) at
		// features.i+2 run fused into the convolution.
		var pool *maxPool
		if c.pool {
			pool = newMaxPool(conv.out(), 2, 2, false)
			if pool.o.h < 1 || pool.o.w < 1 {
				return nil, fmt.Errorf("input too small for 2×2 pooling at %v", conv.out())
			}
		}
		conv.fuse(pool)
		add(conv)
	}
	add(&flatten{in: cur})
	add(newLinear("classifier.0", cur, 128))
	add(newReLU(cur))
	add(newLinear("classifier.2", cur, classes))
	return s, nil
}

// vggConfigs are the CIFAR VGG layer lists: channel counts, 0 for a 2×2 max-pool.
var vggConfigs = map[string][]int{
	"vgg11": {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0},
	"vgg16": {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0},
}

// buildVGG makes the CIFAR VGG without batch norm: features.i as in torchvision (conv, ReLU,
// MaxPool2d(2, ceil_mode=True) each taking one index), a global average pool and one linear head
// named classifier. ceil_mode changes nothing for 32×32 inputs and keeps 28×28 inputs at 1×1
// after the fifth pool instead of 0×0.
func buildVGG(arch string, in shape, classes int) (*sequential, error) {
	s := &sequential{in: in}
	cur := in
	add := func(l layer) { s.layers = append(s.layers, l); cur = l.out() }
	idx := 0
	cfg := vggConfigs[arch]
	for i := 0; i < len(cfg); i++ {
		conv, err := newConv(fmt.Sprintf("features.%d", idx), cur, cfg[i], 3, 1, 1, true)
		if err != nil {
			return nil, err
		}
		idx += 2
		// The ReLU, and the pool that may follow it, run fused into the convolution.
		var pool *maxPool
		if i+1 < len(cfg) && cfg[i+1] == 0 {
			pool = newMaxPool(conv.out(), 2, 2, true)
			if pool.o.h < 1 || pool.o.w < 1 {
				return nil, fmt.Errorf("input too small for 2×2 pooling at %v", conv.out())
			}
			i++
			idx++
		}
		conv.fuse(pool)
		add(conv)
	}
	add(&globalAvgPool{in: cur})
	add(newLinear("classifier", cur, classes))
	return s, nil
}

// buildResNet makes the CIFAR ResNet-(6n+2) of He et al. with batch norm: conv1, bn1, three
// stages layer1..layer3 of n basic blocks with 16, 32, 64 planes (stride 2 at the start of
// stages 2 and 3), a global average pool and a linear head named linear.
func buildResNet(in shape, classes, n int) (*sequential, error) {
	s := &sequential{in: in}
	conv1, err := newConv("conv1", in, 16, 3, 1, 1, false)
	if err != nil {
		return nil, err
	}
	s.layers = append(s.layers, conv1, newBatchNorm("bn1", conv1.out()), newReLU(conv1.out()))
	cur := conv1.out()
	for stage, planes := range []int{16, 32, 64} {
		for b := 0; b < n; b++ {
			stride := 1
			if stage > 0 && b == 0 {
				stride = 2
			}
			blk, err := newBasicBlock(fmt.Sprintf("layer%d.%d", stage+1, b), cur, planes, stride)
			if err != nil {
				return nil, err
			}
			s.layers = append(s.layers, blk)
			cur = blk.out()
		}
	}
	s.layers = append(s.layers, &globalAvgPool{in: cur}, newLinear("linear", shape{cur.c, 1, 1}, classes))
	return s, nil
}

// init sets the weights as the architecture's PyTorch definition does: cnn uses PyTorch's
// defaults (weights and biases uniform in ±1/√fan_in); vgg uses torchvision's VGG scheme
// (convolutions Kaiming-normal over fan_out, linear N(0, 0.01), zero biases); resnet20 uses
// Kaiming-normal over fan_in for convolutions and the linear weight, PyTorch's default bias.
func (m *Model) init(r *rand.Rand) {
	inBN := map[*param]bool{}
	for _, b := range m.bns {
		inBN[b.weight], inBN[b.bias] = true, true
	}
	for _, p := range m.state {
		if p.kind != kindParam || inBN[p] {
			continue
		}
		w := m.byName[strings.TrimSuffix(strings.TrimSuffix(p.name, ".weight"), ".bias")+".weight"]
		fanIn := 1
		for _, d := range w.shape[1:] {
			fanIn *= d
		}
		fanOut := w.shape[0]
		for _, d := range w.shape[2:] {
			fanOut *= d
		}
		isWeight := strings.HasSuffix(p.name, ".weight")
		isConv := len(w.shape) == 4
		uniform := func(bound float64) {
			for i := range p.w {
				p.w[i] = float32((2*r.Float64() - 1) * bound)
			}
		}
		normal := func(std float64) {
			for i := range p.w {
				p.w[i] = float32(r.NormFloat64() * std)
			}
		}
		switch {
		case m.arch == "cnn":
			uniform(1 / math.Sqrt(float64(fanIn)))
		case strings.HasPrefix(m.arch, "vgg") && isWeight && isConv:
			normal(math.Sqrt(2 / float64(fanOut)))
		case strings.HasPrefix(m.arch, "vgg") && isWeight:
			normal(0.01)
		case strings.HasPrefix(m.arch, "vgg"):
			clear(p.w)
		case isWeight:
			normal(math.Sqrt(2 / float64(fanIn)))
		default:
			uniform(1 / math.Sqrt(float64(fanIn)))
		}
	}
}

// Arch is the architecture name.
func (m *Model) Arch() string { return m.arch }

// Config is the model's input and output geometry.
func (m *Model) Config() Config { return m.cfg }

// Preprocess is the pixel preprocessing of the model (a copy).
func (m *Model) Preprocess() Preprocess {
	return Preprocess{Scale: m.pre.Scale, Mean: slices.Clone(m.pre.Mean), Std: slices.Clone(m.pre.Std)}
}

// SetPreprocess changes the pixel preprocessing; it must have one mean and std per channel.
func (m *Model) SetPreprocess(p Preprocess) error {
	if err := p.validate(m.cfg.InChannels); err != nil {
		return err
	}
	m.pre = Preprocess{Scale: p.Scale, Mean: slices.Clone(p.Mean), Std: slices.Clone(p.Std)}
	return nil
}

// Modules lists the names of the modules with parameters in forward order
// (e.g. features.0, features.2, …, classifier.2), as stored in rws.modules.
func (m *Model) Modules() []string { return m.net.modules() }

// HasBatchNorm reports whether the model has batch-norm layers (and so running statistics).
func (m *Model) HasBatchNorm() bool { return len(m.bns) > 0 }

// NumParams is the number of trainable values.
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.state {
		if p.kind == kindParam {
			n += len(p.w)
		}
	}
	return n
}

func (p *param) tensor(data []float32) Tensor {
	return Tensor{Name: p.name, Shape: slices.Clone(p.shape), Data: data}
}

// StateDict returns a copy of every state_dict entry in PyTorch's order: parameters, batch-norm
// running statistics and num_batches_tracked (as a float32 scalar).
func (m *Model) StateDict() []Tensor {
	ts := make([]Tensor, len(m.state))
	for i, p := range m.state {
		ts[i] = p.tensor(slices.Clone(p.w))
	}
	return ts
}

// Names lists the state_dict names in PyTorch's order.
func (m *Model) Names() []string {
	ns := make([]string, len(m.state))
	for i, p := range m.state {
		ns[i] = p.name
	}
	return ns
}

// Tensor returns the named state_dict entry with Data aliasing the model's storage, so writes
// change the model; ok is false for an unknown name.
func (m *Model) Tensor(name string) (t Tensor, ok bool) {
	p, ok := m.byName[name]
	if !ok {
		return Tensor{}, false
	}
	return p.tensor(p.w), true
}

// IsTrainable reports whether name is a trained parameter (not a running statistic or counter).
func (m *Model) IsTrainable(name string) bool {
	p, ok := m.byName[name]
	return ok && p.kind == kindParam
}

// LoadStateDict sets the model's state from ts. Every name of the model must be present once
// with its shape, and no other name may appear (PyTorch's strict loading).
func (m *Model) LoadStateDict(ts []Tensor) error {
	seen := map[string]bool{}
	for _, t := range ts {
		p, ok := m.byName[t.Name]
		if !ok {
			return fmt.Errorf("nn: state_dict entry %q is not part of %s", t.Name, m.arch)
		}
		if seen[t.Name] {
			return fmt.Errorf("nn: state_dict entry %q appears twice", t.Name)
		}
		seen[t.Name] = true
		if !sameShape(t.Shape, p.shape) || len(t.Data) != len(p.w) {
			return fmt.Errorf("nn: tensor %q: shape %v (%d values) does not match model %v", t.Name, t.Shape, len(t.Data), p.shape)
		}
	}
	if len(seen) != len(m.state) {
		var missing []string
		for _, p := range m.state {
			if !seen[p.name] {
				missing = append(missing, p.name)
			}
		}
		sort.Strings(missing)
		return fmt.Errorf("nn: state_dict lacks %d entries of %s: %q", len(missing), m.arch, missing)
	}
	for _, t := range ts {
		copy(m.byName[t.Name].w, t.Data)
	}
	return nil
}

// sameShape compares shapes, taking [] and [1] as the same (a scalar such as
// num_batches_tracked, 0-d in PyTorch).
func sameShape(a, b []int) bool {
	if len(a) <= 1 && len(b) <= 1 && prod(a) == 1 && prod(b) == 1 {
		return true
	}
	return slices.Equal(a, b)
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Clone returns an independent copy of the model (architecture, preprocessing, state, metadata).
func (m *Model) Clone() *Model {
	c, err := New(m.arch, m.cfg, 0)
	if err != nil {
		panic("nn: clone of a valid model failed: " + err.Error())
	}
	c.pre = m.Preprocess()
	for i, p := range m.state {
		copy(c.state[i].w, p.w)
	}
	for k, v := range m.meta {
		c.meta[k] = v
	}
	return c
}

// ZeroGrad sets every parameter gradient to zero.
func (m *Model) ZeroGrad() {
	for _, p := range m.state {
		if p.g != nil {
			clear(p.g)
		}
	}
}

// Grads returns the gradient of every trainable parameter, Data aliasing the model's gradient
// storage, in state_dict order. Gradients accumulate over Backward calls until ZeroGrad.
func (m *Model) Grads() []Tensor {
	var ts []Tensor
	for _, p := range m.state {
		if p.kind == kindParam {
			ts = append(ts, p.tensor(p.g))
		}
	}
	return ts
}

// Forward runs the network on n preprocessed examples x ([n, C, H, W] float32, as
// PrepareInput makes) and returns the logits [n, classes]. train selects training mode (batch
// statistics, running-statistic updates, dropout). The result is reused by the next call.
func (m *Model) Forward(x []float32, n int, train bool) ([]float32, error) {
	in := shape{m.cfg.InChannels, m.cfg.Height, m.cfg.Width}
	if n < 1 || len(x) != n*in.size() {
		return nil, fmt.Errorf("nn: forward: %d values for %d examples of %v (want %d)", len(x), n, in, n*in.size())
	}
	m.setInference(false)
	out := m.net.forward(x, n, train)
	m.logits = out
	return out, nil
}

// infer is Forward in evaluation mode without keeping what Backward needs; Backward then
// refuses to run until the next Forward.
func (m *Model) infer(x []float32, n int) []float32 {
	m.setInference(true)
	out := m.net.forward(x, n, false)
	m.logits = nil
	return out
}

func (m *Model) setInference(on bool) {
	if m.inference == on {
		return
	}
	m.inference = on
	var walk func(l layer)
	walk = func(l layer) {
		switch v := l.(type) {
		case *sequential:
			for _, s := range v.layers {
				walk(s)
			}
		case *basicBlock:
			for _, s := range []layer{v.conv1, v.conv2} {
				walk(s)
			}
			if v.scConv != nil {
				walk(v.scConv)
			}
		case *conv2d:
			v.inference = on
		}
	}
	walk(m.net)
}

// Backward back-propagates dlogits, the gradient of a loss with respect to the logits of the
// last Forward ([n, classes]), adds the parameter gradients into Grads and, when inputGrad is
// set, returns the gradient with respect to the input (valid until the next call).
func (m *Model) Backward(dlogits []float32, inputGrad bool) ([]float32, error) {
	if m.logits == nil {
		return nil, fmt.Errorf("nn: backward without a Forward since the last Logits or Evaluate")
	}
	if len(dlogits) != len(m.logits) {
		return nil, fmt.Errorf("nn: backward: %d gradient values for %d logits of the last forward", len(dlogits), len(m.logits))
	}
	m.dlogits = grow(m.dlogits, len(dlogits))
	copy(m.dlogits, dlogits)
	return m.net.backward(m.dlogits, inputGrad), nil
}
