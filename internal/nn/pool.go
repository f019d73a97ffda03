package nn

import "math"

// maxPool is torch.nn.MaxPool2d(k, stride, padding=0, ceil_mode). Ties go to the first maximum
// in row-major window order, as in PyTorch, which also routes the gradient there. The conv2d
// layer runs it fused after a ReLU (see conv2d.pool); standalone it is used in tests.
type maxPool struct {
	in, o shape
	k, s  int
	idx   []uint8 // per output: position of the maximum in its window, ky·k + kx
	y, dx []float32
	n     int
}

// poolOut is PyTorch's pooling_output_shape for padding 0 and dilation 1; it is below 1 when
// the window does not fit (which PyTorch rejects). In ceil mode a window may hang over the
// edge, e.g. MaxPool2d(2, ceil_mode=True) takes 1×1 to 1×1.
func poolOut(size, k, s int, ceil bool) int {
	num := size - k
	if ceil {
		num += s - 1
	}
	o := floorDiv(num, s) + 1
	if ceil && (o-1)*s >= size {
		o--
	}
	return o
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func newMaxPool(in shape, k, s int, ceil bool) *maxPool {
	return &maxPool{in: in, o: shape{in.c, poolOut(in.h, k, s, ceil), poolOut(in.w, k, s, ceil)}, k: k, s: s}
}

func (p *maxPool) out() shape        { return p.o }
func (p *maxPool) state() []*param   { return nil }
func (p *maxPool) modules() []string { return nil }

func (p *maxPool) forward(x []float32, n int, train bool) []float32 {
	p.n = n
	hw, ohw := p.in.h*p.in.w, p.o.h*p.o.w
	planes := n * p.in.c
	p.y = grow(p.y, planes*ohw)
	p.idx = growU8(p.idx, planes*ohw)
	parallel(planes, 16, func(_, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			p.plane(x[pl*hw:(pl+1)*hw], p.y[pl*ohw:(pl+1)*ohw], p.idx[pl*ohw:(pl+1)*ohw])
		}
	})
	return p.y
}

func (p *maxPool) backward(dy []float32, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	hw, ohw := p.in.h*p.in.w, p.o.h*p.o.w
	planes := p.n * p.in.c
	p.dx = grow(p.dx, planes*hw)
	parallel(planes, 16, func(_, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dst := p.dx[pl*hw : (pl+1)*hw]
			clear(dst)
			p.scatter(dy[pl*ohw:(pl+1)*ohw], p.idx[pl*ohw:(pl+1)*ohw], dst, nil)
		}
	})
	return p.dx
}

func growU8(buf []uint8, n int) []uint8 {
	if cap(buf) < n {
		return make([]uint8, n)
	}
	return buf[:n]
}

func b2u(b bool) uint8 {
	var x uint8
	if b {
		x = 1
	}
	return x
}

// plane pools one input plane src [in.h, in.w] into dst [o.h, o.w], recording the window
// position of each maximum in idx unless idx is nil.
func (p *maxPool) plane(src, dst []float32, idx []uint8) {
	h, w, oh, ow := p.in.h, p.in.w, p.o.h, p.o.w
	// Full 2×2 windows, branch-free: a pairwise maximum whose ties keep the earlier position.
	fh, fw := 0, 0
	if p.k == 2 && p.s == 2 {
		fh, fw = min(oh, h/2), min(ow, w/2)
		for oy := 0; oy < fh; oy++ {
			r0 := src[2*oy*w : 2*oy*w+2*fw]
			r1 := src[(2*oy+1)*w : (2*oy+1)*w+2*fw]
			d := dst[oy*ow : oy*ow+fw]
			if idx == nil {
				for ox := range d {
					d[ox] = max(max(r0[2*ox], r0[2*ox+1]), max(r1[2*ox], r1[2*ox+1]))
				}
				continue
			}
			id := idx[oy*ow : oy*ow+fw]
			for ox := range d {
				a, b, c, e := r0[2*ox], r0[2*ox+1], r1[2*ox], r1[2*ox+1]
				i01 := b2u(b > a)
				i23 := 2 + b2u(e > c)
				m01, m23 := max(a, b), max(c, e)
				s := b2u(m23 > m01)
				d[ox] = max(m01, m23)
				id[ox] = i01 + s*(i23-i01)
			}
		}
	}
	// The rest (other kernels, and the partial windows of ceil mode).
	for oy := 0; oy < oh; oy++ {
		ox0 := 0
		if oy < fh {
			ox0 = fw
		}
		y0, y1 := oy*p.s, min(oy*p.s+p.k, h)
		for ox := ox0; ox < ow; ox++ {
			x0, x1 := ox*p.s, min(ox*p.s+p.k, w)
			m, at := float32(math.Inf(-1)), 0
			for yy := y0; yy < y1; yy++ {
				for xx := x0; xx < x1; xx++ {
					if v := src[yy*w+xx]; v > m || v != v {
						m, at = v, (yy-y0)*p.k+xx-x0
					}
				}
			}
			dst[oy*ow+ox] = m
			if idx != nil {
				idx[oy*ow+ox] = uint8(at)
			}
		}
	}
}

// scatter adds each output gradient dy to the input position of its window's maximum in dx (one
// plane). With out not nil (the pooled values after a fused ReLU), gradients of outputs that are
// not positive are dropped, which is the ReLU's backward.
func (p *maxPool) scatter(dy []float32, idx []uint8, dx, out []float32) {
	w, ow := p.in.w, p.o.w
	for j, g := range dy {
		if out != nil && !(out[j] > 0) {
			continue
		}
		oy, ox := j/ow, j%ow
		at := int(idx[j])
		dx[(oy*p.s+at/p.k)*w+ox*p.s+at%p.k] += g
	}
}
