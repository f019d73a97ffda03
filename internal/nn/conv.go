package nn

import (
	"fmt"

	"github.com/rws-project/rws/internal/nn/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// conv2d is torch.nn.Conv2d with square kernels, equal stride and zero padding on both axes,
// dilation 1 and groups 1. Weight [out, in, k, k], optional bias [out]. Each example is
// unfolded (im2col) and multiplied by the weight matrix; examples are spread over workers.
//
// A following ReLU, and a max-pool after that ReLU, may be fused into the layer (relu, pool):
// they then run on each example's output while it is in cache, and out() is the pooled shape.
// The modules keep their PyTorch names; fusion only changes the order of the loops.
type conv2d struct {
	name          string
	in, co        shape // input, convolution output
	k, stride, pd int
	weight, bias  *param
	relu          bool
	pool          *maxPool // fused after relu, or nil
	inference     bool     // the next forward is not followed by backward: skip what only it needs

	x      []float32 // input of the last forward
	n      int
	y, dx  []float32 // output of the last forward (pooled when pool is set); input gradient
	col    scratch   // per-worker unfolded input
	dcol   scratch   // per-worker gradient of the unfolded input
	tmp    scratch   // per-worker convolution output (fused pool) or its gradient
	wgrad  scratch   // per-worker partial weight (and bias) gradients
	direct bool      // 1×1, stride 1, no padding: the input is its own unfolding
	wino   winograd  // forward state of 3×3 stride-1 convolutions computed with Winograd
}

func newConv(name string, in shape, out, k, stride, pad int, bias bool) (*conv2d, error) {
	if k < 1 || stride < 1 || pad < 0 || in.h+2*pad < k || in.w+2*pad < k {
		return nil, fmt.Errorf("%s: kernel %d stride %d padding %d do not fit input %v", name, k, stride, pad, in)
	}
	oh := (in.h+2*pad-k)/stride + 1
	ow := (in.w+2*pad-k)/stride + 1
	c := &conv2d{
		name: name, in: in, co: shape{out, oh, ow}, k: k, stride: stride, pd: pad,
		weight: newParam(name+".weight", kindParam, out, in.c, k, k),
		direct: k == 1 && stride == 1 && pad == 0,
	}
	if bias {
		c.bias = newParam(name+".bias", kindParam, out)
	}
	return c, nil
}

// fuse adds a ReLU and, when pool is not nil, a max-pool after it.
func (c *conv2d) fuse(pool *maxPool) {
	c.relu, c.pool = true, pool
}

func (c *conv2d) out() shape {
	if c.pool != nil {
		return c.pool.o
	}
	return c.co
}

func (c *conv2d) modules() []string { return []string{c.name} }

func (c *conv2d) state() []*param {
	if c.bias == nil {
		return []*param{c.weight}
	}
	return []*param{c.weight, c.bias}
}

// minColumns is the smallest number of output positions per matrix product: examples with
// smaller outputs (late layers of VGG and ResNet) are unfolded side by side, g at a time, so
// that SGEMM sees a wide enough matrix.
const minColumns = 256

// group returns how many examples to unfold side by side.
func (c *conv2d) group(perWorker int) int {
	ohw := c.co.h * c.co.w
	return max(1, min(perWorker, (minColumns+ohw-1)/ohw))
}

func (c *conv2d) forward(x []float32, n int, train bool) []float32 {
	c.x, c.n = x, n
	isz, osz := c.in.size(), c.out().size()
	ckk, ohw, cout := c.in.c*c.k*c.k, c.co.h*c.co.w, c.co.c
	c.y = grow(c.y, n*osz)
	var pohw int
	if c.pool != nil {
		pohw = c.pool.o.h * c.pool.o.w
		c.pool.idx = growU8(c.pool.idx, n*osz)
	}
	inference := c.inference
	w := c.weight.w
	c.col.prepare()
	c.tmp.prepare()
	perWorker := (n + workers() - 1) / workers()
	g := c.group(perWorker)
	wino := c.useWinograd()
	if wino {
		c.winoPrepare()
		g = c.winoGroup(perWorker)
	}
	parallel(n, 1, func(wk, lo, hi int) {
		ld := g * ohw
		var col []float32
		if !wino && (!c.direct || g > 1) {
			col = c.col.get(wk, ckk*ld)
		}
		for i0 := lo; i0 < hi; i0 += g {
			gi := min(g, hi-i0) // examples in this group
			var y []float32     // Winograd's output planes
			var ys int
			if wino {
				// Winograd's epilogue works on its output planes directly, except for a pool
				// whose windows are not its tiles.
				y, ys = c.winoConv(wk, x[i0*isz:(i0+gi)*isz], gi)
				if c.winoEpilogue(y, ys, i0, gi, inference) {
					continue
				}
			}
			// The product's output: the example's own output when alone and not pooled.
			var out []float32
			oldOut := ld
			if gi == 1 && c.pool == nil {
				out, oldOut = c.y[i0*osz:(i0+1)*osz], ohw
			} else {
				out = c.tmp.get(wk, cout*ld)
			}
			if wino {
				tiles := c.wino.th * c.wino.tw
				for j := 0; j < gi; j++ {
					for co := 0; co < cout; co++ {
						c.winoScatter(y[(co*gi+j)*tiles:], ys, out[co*oldOut+j*ohw:][:ohw])
					}
				}
			} else {
				b, ldb := x[i0*isz:(i0+1)*isz], ohw
				if !c.direct || gi > 1 {
					for j := 0; j < gi; j++ {
						c.unfold(x[(i0+j)*isz:(i0+j+1)*isz], col[j*ohw:], ld)
					}
					b, ldb = col, ld
				}
				blas.Sgemm(false, false, cout, gi*ohw, ckk, 1, w, ckk, b, ldb, 0, out, oldOut)
			}
			// The epilogue adds the bias and applies the ReLU in one pass; before a pool it
			// pools first and then works on a quarter of the values: a per-channel constant and
			// the ReLU commute with the maximum (where the maximum is not positive, the value
			// and the gradient are zero either way), so results match PyTorch's order exactly.
			for j := 0; j < gi; j++ {
				i := i0 + j
				for co := 0; co < cout; co++ {
					src := out[co*oldOut+j*ohw : co*oldOut+(j+1)*ohw]
					var bias float32
					if c.bias != nil {
						bias = c.bias.w[co]
					}
					pl := i*cout + co
					if c.pool != nil {
						var idx []uint8 // the maxima's positions, for backward
						if !inference {
							idx = c.pool.idx[pl*pohw : (pl+1)*pohw]
						}
						dst := c.y[pl*pohw : (pl+1)*pohw]
						c.pool.plane(src, dst, idx)
						biasReLU(dst, bias, c.relu)
						continue
					}
					biasReLU(src, bias, c.relu)
					if gi > 1 {
						copy(c.y[pl*ohw:(pl+1)*ohw], src)
					}
				}
			}
		}
	})
	return c.y
}

// unfold writes the im2col unfolding of one example into col with row stride ld; a 1×1,
// stride-1 convolution's unfolding is the example itself.
func (c *conv2d) unfold(x, col []float32, ld int) {
	if c.direct {
		ohw := c.co.h * c.co.w
		for r := 0; r < c.in.c; r++ {
			copy(col[r*ld:r*ld+ohw], x[r*ohw:(r+1)*ohw])
		}
		return
	}
	c.im2col(x, col, ld)
}

// fold adds the gradient of one example's unfolding (row stride ld) into dx, which it sets.
func (c *conv2d) fold(dcol, dx []float32, ld int) {
	if c.direct {
		ohw := c.co.h * c.co.w
		for r := 0; r < c.in.c; r++ {
			copy(dx[r*ohw:(r+1)*ohw], dcol[r*ld:r*ld+ohw])
		}
		return
	}
	c.col2im(dcol, dx, ld)
}

func (c *conv2d) backward(dy []float32, needDx bool) []float32 {
	n, x := c.n, c.x
	isz, osz := c.in.size(), c.out().size()
	ckk, ohw, cout := c.in.c*c.k*c.k, c.co.h*c.co.w, c.co.c
	nw := cout * ckk
	gsz := nw
	if c.bias != nil {
		gsz += cout
	}
	if needDx {
		c.dx = grow(c.dx, n*isz)
	}
	w := c.weight.w
	c.col.prepare()
	c.dcol.prepare()
	c.tmp.prepare()
	c.wgrad.prepare()
	g := c.group((n + workers() - 1) / workers())
	used := parallel(n, 1, func(wk, lo, hi int) {
		ld := g * ohw
		// Worker 0 accumulates into the parameters' gradients, the others into partial sums
		// that reduce adds afterwards.
		gw, gb := c.weight.g, []float32(nil)
		if c.bias != nil {
			gb = c.bias.g
		}
		if wk > 0 {
			gr := c.wgrad.get(wk, gsz)
			clear(gr)
			gw, gb = gr[:nw], gr[nw:]
		}
		var col, dcol []float32
		if !c.direct || g > 1 {
			col = c.col.get(wk, ckk*ld)
			if needDx {
				dcol = c.dcol.get(wk, ckk*ld)
			}
		}
		for i0 := lo; i0 < hi; i0 += g {
			gi := min(g, hi-i0)
			// d: the gradient of the convolution's output, [cout, gi·ohw] with row stride ldd.
			var d []float32
			ldd := ld
			if gi == 1 && c.pool == nil {
				d, ldd = dy[i0*osz:(i0+1)*osz], ohw
				if c.relu {
					reluMask(d, c.y[i0*osz:(i0+1)*osz])
				}
			} else {
				d = c.tmp.get(wk, cout*ld)
				pohw := 0
				if c.pool != nil {
					pohw = c.pool.o.h * c.pool.o.w
				}
				for j := 0; j < gi; j++ {
					i := i0 + j
					for co := 0; co < cout; co++ {
						dst := d[co*ld+j*ohw : co*ld+(j+1)*ohw]
						pl := i*cout + co
						if c.pool != nil {
							// Route the pooled gradient to the maxima, through the fused ReLU.
							clear(dst)
							c.pool.scatter(dy[pl*pohw:(pl+1)*pohw], c.pool.idx[pl*pohw:(pl+1)*pohw], dst, c.y[pl*pohw:(pl+1)*pohw])
							continue
						}
						copy(dst, dy[pl*ohw:(pl+1)*ohw])
						if c.relu {
							reluMask(dst, c.y[pl*ohw:(pl+1)*ohw])
						}
					}
				}
			}
			if c.bias != nil {
				for co := range cout {
					var s float32
					for _, v := range d[co*ldd : co*ldd+gi*ohw] {
						s += v
					}
					gb[co] += s
				}
			}
			b, ldb := x[i0*isz:(i0+1)*isz], ohw
			if !c.direct || gi > 1 {
				for j := 0; j < gi; j++ {
					c.unfold(x[(i0+j)*isz:(i0+j+1)*isz], col[j*ohw:], ld)
				}
				b, ldb = col, ld
			}
			blas.Sgemm(false, true, cout, ckk, gi*ohw, 1, d, ldd, b, ldb, 1, gw, ckk)
			if !needDx {
				continue
			}
			if c.direct && gi == 1 {
				blas.Sgemm(true, false, ckk, ohw, cout, 1, w, ckk, d, ldd, 0, c.dx[i0*isz:(i0+1)*isz], ohw)
				continue
			}
			blas.Sgemm(true, false, ckk, gi*ohw, cout, 1, w, ckk, d, ldd, 0, dcol, ld)
			for j := 0; j < gi; j++ {
				c.fold(dcol[j*ohw:], c.dx[(i0+j)*isz:(i0+j+1)*isz], ld)
			}
		}
	})
	c.reduce(used, gsz)
	if needDx {
		return c.dx
	}
	return nil
}

// reduce adds the partial gradients of workers 1 to used−1 into the parameters' gradients.
func (c *conv2d) reduce(used, gsz int) {
	nw := len(c.weight.g)
	parallel(nw, 1<<14, func(_, lo, hi int) {
		for wk := 1; wk < used; wk++ {
			addTo(c.weight.g[lo:hi], c.wgrad.bufs[wk][lo:hi])
		}
	})
	if c.bias != nil {
		for wk := 1; wk < used; wk++ {
			addTo(c.bias.g, c.wgrad.bufs[wk][nw:gsz])
		}
	}
}

// span returns the range [x0, x1) of output columns whose input column ox·stride − pad + kj
// falls inside [0, w).
func span(w, ow, stride, pad, kj int) (x0, x1 int) {
	off := pad - kj // ix = ox·stride − off
	if off > 0 {
		x0 = (off + stride - 1) / stride
	}
	if last := w - 1 + off; last >= 0 {
		x1 = min(ow, last/stride+1)
	}
	if x1 < x0 {
		x1 = x0
	}
	return x0, x1
}

// im2col unfolds one example x [in.c, in.h, in.w] into col [in.c·k·k, o.h·o.w] (row stride ld), row
// (ci·k+ki)·k+kj holding input pixel (oy·stride−pad+ki, ox·stride−pad+kj) of channel ci, zero
// outside the image.
func (c *conv2d) im2col(x, col []float32, ld int) {
	h, w, oh, ow := c.in.h, c.in.w, c.co.h, c.co.w
	k, s, p := c.k, c.stride, c.pd
	ohw := oh * ow
	if c.same() {
		c.im2colSame(x, col, ld)
		return
	}
	for ci := 0; ci < c.in.c; ci++ {
		plane := x[ci*h*w : (ci+1)*h*w]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := col[((ci*k+ki)*k+kj)*ld:][:ohw]
				x0, x1 := span(w, ow, s, p, kj)
				for oy := 0; oy < oh; oy++ {
					dst := row[oy*ow : (oy+1)*ow]
					iy := oy*s - p + ki
					if iy < 0 || iy >= h {
						clear(dst)
						continue
					}
					src := plane[iy*w : (iy+1)*w]
					clear(dst[:x0])
					clear(dst[x1:])
					if s == 1 {
						copy(dst[x0:x1], src[x0-p+kj:])
					} else {
						for ox := x0; ox < x1; ox++ {
							dst[ox] = src[ox*s-p+kj]
						}
					}
				}
			}
		}
	}
}

// col2im is the adjoint of im2col: it sets dx to the sum of the entries of dcol that im2col
// copied from each input pixel.
func (c *conv2d) col2im(dcol, dx []float32, ld int) {
	h, w, oh, ow := c.in.h, c.in.w, c.co.h, c.co.w
	k, s, p := c.k, c.stride, c.pd
	ohw := oh * ow
	clear(dx)
	if c.same() {
		c.col2imSame(dcol, dx, ld)
		return
	}
	for ci := 0; ci < c.in.c; ci++ {
		plane := dx[ci*h*w : (ci+1)*h*w]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := dcol[((ci*k+ki)*k+kj)*ld:][:ohw]
				x0, x1 := span(w, ow, s, p, kj)
				for oy := 0; oy < oh; oy++ {
					iy := oy*s - p + ki
					if iy < 0 || iy >= h {
						continue
					}
					src := row[oy*ow+x0 : oy*ow+x1]
					dst := plane[iy*w : (iy+1)*w]
					if s == 1 {
						dst = dst[x0-p+kj:][:len(src)]
						for j, v := range src {
							dst[j] += v
						}
					} else {
						for j, v := range src {
							dst[(x0+j)*s-p+kj] += v
						}
					}
				}
			}
		}
	}
}

// same reports a stride-1 convolution whose output has the input's size (padding (k−1)/2).
// Each row of its unfolding is then the input plane shifted by a constant offset, so im2col and
// col2im work on whole planes instead of image rows.
// genericUnfold turns the same() fast path off, for benchmarks and tests of the general path.
var genericUnfold bool

func (c *conv2d) same() bool {
	return !genericUnfold && c.stride == 1 && c.co.h == c.in.h && c.co.w == c.in.w
}

// shift describes unfolding row (ki, kj) of a same convolution: output position q reads input
// q+off; positions [a, b) are in range (others are zero padding), and columns ox < z0 or
// ox >= z1 of the rows in range wrap around into a neighbouring image row, so they are padding too.
func (c *conv2d) shift(ki, kj int) (off, a, b, z0, z1 int) {
	h, w, p := c.in.h, c.in.w, c.pd
	off = (ki-p)*w + kj - p
	oy0, oy1 := max(0, p-ki), min(h, h+p-ki)
	a = min(max(oy0*w, -off), h*w)
	b = max(min(oy1*w, h*w-off), a)
	z0, z1 = max(0, p-kj), min(w, w+p-kj)
	return off, a, b, z0, z1
}

func (c *conv2d) im2colSame(x, col []float32, ld int) {
	h, w, k := c.in.h, c.in.w, c.k
	hw := h * w
	for ci := 0; ci < c.in.c; ci++ {
		plane := x[ci*hw : (ci+1)*hw]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := col[((ci*k+ki)*k+kj)*ld:][:hw]
				off, a, b, z0, z1 := c.shift(ki, kj)
				clear(row[:a])
				if b > a {
					copy(row[a:b], plane[a+off:b+off])
				}
				clear(row[b:])
				if z0 > 0 || z1 < w {
					zeroColumns(row[a/w*w:min(len(row), (b+w-1)/w*w)], w, z0, z1)
				}
			}
		}
	}
}

func (c *conv2d) col2imSame(dcol, dx []float32, ld int) {
	h, w, k := c.in.h, c.in.w, c.k
	hw := h * w
	for ci := 0; ci < c.in.c; ci++ {
		plane := dx[ci*hw : (ci+1)*hw]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := dcol[((ci*k+ki)*k+kj)*ld:][:hw]
				off, a, b, z0, z1 := c.shift(ki, kj)
				if z0 > 0 || z1 < w { // drop the gradient of wrapped (padding) positions
					zeroColumns(row[a/w*w:min(len(row), (b+w-1)/w*w)], w, z0, z1)
				}
				if b > a {
					addTo(plane[a+off:b+off], row[a:b])
				}
			}
		}
	}
}

// biasReLU adds bias to s and, when relu is set, replaces negative results by zero.
func biasReLU(s []float32, bias float32, relu bool) {
	switch {
	case relu:
		for i, v := range s {
			s[i] = max(v+bias, 0)
		}
	case bias != 0:
		for i := range s {
			s[i] += bias
		}
	}
}

// zeroColumns zeroes columns [0, z0) and [z1, w) of each row of the w-wide rows in s (a few
// values per row: a loop, not a clear call per row).
func zeroColumns(s []float32, w, z0, z1 int) {
	for r := 0; r+w <= len(s); r += w {
		row := s[r : r+w]
		for x := 0; x < z0; x++ {
			row[x] = 0
		}
		for x := z1; x < w; x++ {
			row[x] = 0
		}
	}
}

// addTo adds src into dst elementwise (len(dst) ≥ len(src)), with gonum's SIMD saxpy kernel
// for long slices.
func addTo(dst, src []float32) {
	if len(src) >= 64 {
		gonum.Implementation{}.Saxpy(len(src), 1, src, 1, dst, 1)
		return
	}
	dst = dst[:len(src)]
	i := 0
	for ; i+4 <= len(src); i += 4 {
		d, s := dst[i:i+4:i+4], src[i:i+4:i+4]
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
	}
	for ; i < len(src); i++ {
		dst[i] += src[i]
	}
}
