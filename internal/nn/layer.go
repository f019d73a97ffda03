package nn

import "fmt"

// shape is the per-example shape of an activation: channels, height, width. Flat vectors (the
// input and output of linear layers) have h = w = 1.
type shape struct{ c, h, w int }

func (s shape) size() int { return s.c * s.h * s.w }

func (s shape) String() string { return fmt.Sprintf("%d×%d×%d", s.c, s.h, s.w) }

// kind tells parameters from buffers in a state_dict.
type kind uint8

const (
	kindParam   kind = iota // trained by the optimizer
	kindBuffer              // running statistic (batch norm mean and variance)
	kindCounter             // integer counter stored as I64 (num_batches_tracked)
)

// param is one entry of a model's state_dict: its value and, for trained parameters, its
// gradient. Values are row-major in PyTorch's layout.
type param struct {
	name  string
	shape []int
	kind  kind
	w     []float32
	g     []float32 // nil for buffers and counters
}

func newParam(name string, k kind, shape ...int) *param {
	n := 1
	for _, d := range shape {
		n *= d
	}
	p := &param{name: name, shape: shape, kind: k, w: make([]float32, n)}
	if k == kindParam {
		p.g = make([]float32, n)
	}
	return p
}

// layer is one module of a network. forward reads x (n examples of the input shape, NCHW) and
// returns its output, which stays valid until the next forward; it may keep x for backward.
// backward takes the gradient of the loss with respect to the output of the last forward (it may
// overwrite dy), adds the gradients of its parameters into their g, and returns the gradient with
// respect to its input when needDx is set (nil otherwise).
type layer interface {
	forward(x []float32, n int, train bool) []float32
	backward(dy []float32, needDx bool) []float32
	// out is the output shape for the input shape the layer was built for.
	out() shape
	// state lists the layer's state_dict entries in PyTorch's order.
	state() []*param
	// modules lists the names of the modules that hold parameters, in forward order.
	modules() []string
}
