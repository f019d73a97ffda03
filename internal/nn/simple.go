package nn

import (
	"math"
	"math/rand/v2"
)

// minElems is the smallest chunk of an elementwise loop worth a goroutine.
const minElems = 1 << 15

// relu is torch.nn.ReLU(inplace=True): it overwrites its input, which every architecture here
// owns exclusively (the output of the layer before it).
type relu struct {
	o shape
	y []float32
}

func (r *relu) out() shape        { return r.o }
func (r *relu) state() []*param   { return nil }
func (r *relu) modules() []string { return nil }
func newReLU(in shape) *relu      { return &relu{o: in} }

func (r *relu) forward(x []float32, n int, train bool) []float32 {
	x = x[:n*r.o.size()]
	parallel(len(x), minElems, func(_, lo, hi int) {
		reluInPlace(x[lo:hi])
	})
	r.y = x
	return x
}

// backward zeroes dy where the output was not positive, as PyTorch's threshold_backward does.
func (r *relu) backward(dy []float32, needDx bool) []float32 {
	y := r.y
	parallel(len(y), minElems, func(_, lo, hi int) {
		reluMask(dy[lo:hi], y[lo:hi])
	})
	return dy
}

// reluInPlace sets the negative values of s to zero, without branches (random signs defeat
// branch prediction).
func reluInPlace(s []float32) {
	for i, v := range s {
		s[i] = max(v, 0)
	}
}

// reluMask zeroes d where y is not positive (y being a ReLU output, so never −0 or negative),
// without branches.
func reluMask(d, y []float32) {
	y = y[:len(d)]
	for i, v := range y {
		u := int32(math.Float32bits(v))
		m := uint32((-u) >> 31) // all ones when v > 0
		d[i] = math.Float32frombits(math.Float32bits(d[i]) & m)
	}
}

// flatten is torch.nn.Flatten: NCHW examples are already contiguous in (C, H, W) order, so it
// only changes the shape.
type flatten struct{ in shape }

func (f *flatten) out() shape                                       { return shape{f.in.size(), 1, 1} }
func (f *flatten) state() []*param                                  { return nil }
func (f *flatten) modules() []string                                { return nil }
func (f *flatten) forward(x []float32, n int, train bool) []float32 { return x[:n*f.in.size()] }
func (f *flatten) backward(dy []float32, needDx bool) []float32     { return dy }

// dropout is torch.nn.Dropout(p): in training it zeroes each value with probability p and
// scales the others by 1/(1−p); in evaluation it is the identity. Its random stream is seeded.
type dropout struct {
	o        shape
	p        float64
	rng      *rand.Rand
	mask     []float32
	y, dx    []float32
	training bool
}

func newDropout(in shape, p float64, seed uint64) *dropout {
	return &dropout{o: in, p: p, rng: rand.New(rand.NewPCG(seed, 0x64726f706f7574))}
}

func (d *dropout) out() shape        { return d.o }
func (d *dropout) state() []*param   { return nil }
func (d *dropout) modules() []string { return nil }

func (d *dropout) forward(x []float32, n int, train bool) []float32 {
	d.training = train && d.p > 0
	if !d.training {
		return x[:n*d.o.size()]
	}
	m := n * d.o.size()
	d.mask, d.y = grow(d.mask, m), grow(d.y, m)
	scale := float32(1 / (1 - d.p))
	if d.p >= 1 {
		scale = 0
	}
	for i := range d.mask {
		if d.rng.Float64() < d.p {
			d.mask[i] = 0
		} else {
			d.mask[i] = scale
		}
	}
	for i := range d.y {
		d.y[i] = x[i] * d.mask[i]
	}
	return d.y
}

func (d *dropout) backward(dy []float32, needDx bool) []float32 {
	if !d.training {
		return dy
	}
	d.dx = grow(d.dx, len(d.mask))
	for i := range d.dx {
		d.dx[i] = dy[i] * d.mask[i]
	}
	return d.dx
}

// globalAvgPool is torch.nn.AdaptiveAvgPool2d(1) followed by flatten: one mean per channel.
type globalAvgPool struct {
	in    shape
	y, dx []float32
	n     int
}

func (g *globalAvgPool) out() shape        { return shape{g.in.c, 1, 1} }
func (g *globalAvgPool) state() []*param   { return nil }
func (g *globalAvgPool) modules() []string { return nil }

func (g *globalAvgPool) forward(x []float32, n int, train bool) []float32 {
	g.n = n
	hw := g.in.h * g.in.w
	planes := n * g.in.c
	g.y = grow(g.y, planes)
	inv := 1 / float64(hw)
	for pl := 0; pl < planes; pl++ {
		var s float64
		for _, v := range x[pl*hw : (pl+1)*hw] {
			s += float64(v)
		}
		g.y[pl] = float32(s * inv)
	}
	return g.y
}

func (g *globalAvgPool) backward(dy []float32, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	hw := g.in.h * g.in.w
	planes := g.n * g.in.c
	g.dx = grow(g.dx, planes*hw)
	inv := 1 / float32(hw)
	for pl := 0; pl < planes; pl++ {
		v := dy[pl] * inv
		d := g.dx[pl*hw : (pl+1)*hw]
		for i := range d {
			d[i] = v
		}
	}
	return g.dx
}
