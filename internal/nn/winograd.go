package nn

import (
	"math"

	"github.com/rws-project/rws/internal/nn/blas"
)

// Winograd F(2×2, 3×3) for the forward pass of 3×3, stride-1 convolutions (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016). The output is cut into 2×2 tiles;
// tile t of input channel ci is the 4×4 input patch d under it, transformed to V = Bᵀ d B, and
// each weight kernel g [3×3] to U = G g Gᵀ. For each of the 16 positions ξ of the transformed
// tiles one matrix product M_ξ = U_ξ V_ξ, [cout × cin] × [cin × tiles], sums over the input
// channels, and the output tile is Aᵀ M A. That is 16·cin multiplications per tile and output
// channel instead of 36·cin, at the price of the transforms; the transform matrices hold only
// 0, ±1 and ±½, so the rounding error stays within a few times that of the direct sum
// (TestWinogradForward). The backward pass stays with im2col: it needs only the input and the
// output, which are the same up to rounding.
//
//	Bᵀ = ⎡1  0 −1  0⎤   G = ⎡1    0   0⎤   Aᵀ = ⎡1 1  1  0⎤
//	     ⎢0  1  1  0⎥       ⎢½    ½   ½⎥        ⎣0 1 −1 −1⎦
//	     ⎢0 −1  1  0⎥       ⎢½   −½   ½⎥
//	     ⎣0  1  0 −1⎦       ⎣0    0   1⎦
//
// Layouts: U is [16][cout][cin], V is [16][cin][tiles] and M is [16][cout][tiles], ξ = 4·row +
// column of the transformed tile; tiles are numbered example, tile row, tile column. The input
// and output transforms are AVX2 assembly on amd64 (winograd_amd64.s; build tag purego or a
// processor without AVX2 selects the Go versions, which round alike).

// winoMinCin is the smallest number of input channels for which a convolution uses Winograd,
// with the AVX2 transforms and with the Go ones. The transforms cost in proportion to cin + cout
// per tile, the products they save to cin·cout. BenchmarkWinograd, CPU time per batch of 128
// on 2 cores (AMD EPYC Zen 5, OpenBLAS; a loaded machine, so ±20 %): with AVX2, 3 input
// channels lose (1.6× slower), 8 gain 1.2×, 16 to 128 1.4–2×, the cnn's 32 and 64 1.8–2× where
// a pool follows and 1.1–1.4× where not; with the Go transforms, 8 and 16 lose (1.1–1.3×), 32
// and more gain 1.2–1.8×. With gonum's BLAS (noopenblas) the products cost more and Winograd
// gains about 2× from 16 channels on, either way.
func winoMinCin() int {
	if useAVX2 {
		return 8
	}
	return 32
}

// winoMinTiles is the number of tiles per matrix product the forward pass aims for: examples are
// transformed side by side until they reach it (cnn: one 28×28 example has 196 tiles, a 14×14
// one 49).
const winoMinTiles = 196

// winoPolicy chooses between Winograd and im2col for the forward pass; tests and benchmarks
// switch it to compare the two.
var winoPolicy = winoAuto

const (
	winoAuto   = iota // Winograd for 3×3 stride-1 convolutions with at least winoMinCin() inputs
	winoNever         // im2col everywhere
	winoAlways        // Winograd for every 3×3 stride-1 convolution
)

// winograd is a convolution's Winograd state: the transformed weights, the weights they were
// computed from, and per-worker scratch space.
type winograd struct {
	th, tw int       // tile rows and columns per example: ⌈o.h/2⌉, ⌈o.w/2⌉
	src    []float32 // the weights u was computed from, bit for bit; nil before the first use
	u      []float32 // [16][cout][cin]
	v, m   scratch   // per-worker transformed inputs and products
	y      scratch   // per-worker outputs, as four planes (see winoConv)
	pad    scratch   // per-worker zero-padded input plane
}

// useWinograd reports whether forward computes the convolution with Winograd F(2×2, 3×3).
func (c *conv2d) useWinograd() bool {
	if c.k != 3 || c.stride != 1 {
		return false
	}
	switch winoPolicy {
	case winoNever:
		return false
	case winoAlways:
		return true
	}
	return c.in.c >= winoMinCin()
}

// winoGroup returns how many examples to transform side by side.
func (c *conv2d) winoGroup(perWorker int) int {
	tiles := c.wino.th * c.wino.tw
	return max(1, min(perWorker, (winoMinTiles+tiles-1)/tiles))
}

// winoPrepare sets up the tile grid and the scratch spaces and brings the transformed weights up
// to date. Any code may write the weights (the optimizer, LoadStateDict, Model.Tensor's aliasing
// Data, signature patches, finite differences in tests), so instead of a version counter that
// every writer would have to bump, the weights are compared with the copy the transform was made
// from: one pass over cout·cin·9 values, small next to the convolution. Training changes the
// weights at every step, and the transform is then redone (cout·cin kernels, also small).
func (c *conv2d) winoPrepare() {
	wg := &c.wino
	wg.th, wg.tw = (c.co.h+1)/2, (c.co.w+1)/2
	wg.pad.prepare()
	wg.v.prepare()
	wg.m.prepare()
	wg.y.prepare()
	w := c.weight.w
	if wg.src != nil && sameBits(wg.src, w) {
		return
	}
	wg.src = append(wg.src[:0], w...)
	cout, cin := c.co.c, c.in.c
	if wg.u == nil {
		wg.u = make([]float32, 16*cout*cin)
	}
	parallel(cout, 8, func(_, lo, hi int) {
		for co := lo; co < hi; co++ {
			for ci := 0; ci < cin; ci++ {
				var u [16]float32
				winoKernel(w[(co*cin+ci)*9:][:9], &u)
				for xi, v := range u {
					wg.u[(xi*cout+co)*cin+ci] = v
				}
			}
		}
	})
}

// sameBits reports whether a and b (of equal length) hold the same bit patterns.
func sameBits(a, b []float32) bool {
	b = b[:len(a)]
	for i, v := range a {
		if math.Float32bits(v) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// winoKernel sets u to G g Gᵀ for one 3×3 kernel g (row-major), computed in float64 and rounded
// once.
func winoKernel(g []float32, u *[16]float32) {
	var t [4][3]float64 // G g
	for j := 0; j < 3; j++ {
		g0, g1, g2 := float64(g[j]), float64(g[3+j]), float64(g[6+j])
		t[0][j] = g0
		t[1][j] = (g0 + g1 + g2) / 2
		t[2][j] = (g0 - g1 + g2) / 2
		t[3][j] = g2
	}
	for i := 0; i < 4; i++ {
		r0, r1, r2 := t[i][0], t[i][1], t[i][2]
		u[4*i+0] = float32(r0)
		u[4*i+1] = float32((r0 + r1 + r2) / 2)
		u[4*i+2] = float32((r0 - r1 + r2) / 2)
		u[4*i+3] = float32(r2)
	}
}

// winoSlack is the room left after the padded input plane, the transformed inputs of each ξ,
// the products and the outputs, for the AVX2 transforms, which work in whole steps of eight
// tiles (and read one more pair of padded columns than they use).
const winoSlack = 16

// winoLayout gives the sizes of one worker's Winograd scratch space for nt tiles: the padded
// plane [2·th+2, w2] with w2 = 2·tw+2, and the strides of V, M and Y (the four output planes)
// per ξ or output position.
func (c *conv2d) winoLayout(nt int) (w2, vs, ms, ys int) {
	return 2*c.wino.tw + 2, c.in.c*nt + winoSlack, c.co.c * nt, c.co.c*nt + winoSlack
}

// winoConv computes the convolution (without bias) of gi examples x [gi, in.c, in.h, in.w] and
// returns its outputs as four planes y[q·ys:], q = 2·a + b holding output (2·ty+a, 2·tx+b) of
// tile (ty, tx) at co·nt + j·th·tw + ty·tw + tx for example j, nt = gi·th·tw. wk is the worker
// index for the scratch space; winoPrepare must have run and the scratch spaces prepared.
func (c *conv2d) winoConv(wk int, x []float32, gi int) (y []float32, ys int) {
	wg := &c.wino
	cin, cout := c.in.c, c.co.c
	th, tw := wg.th, wg.tw
	tiles := th * tw
	nt := gi * tiles
	w2, vs, ms, ys := c.winoLayout(nt)
	pad := wg.pad.get(wk, (2*th+2)*w2+winoSlack)
	v := wg.v.get(wk, 16*vs)
	m := wg.m.get(wk, 16*ms+winoSlack)
	y = wg.y.get(wk, 4*ys)
	isz, hw := c.in.size(), c.in.h*c.in.w
	// Channels outside, examples inside: the AVX2 transform's extra tiles past the end of a
	// plane land in the next plane's place, which is written later, or in the slack.
	for ci := 0; ci < cin; ci++ {
		for j := 0; j < gi; j++ {
			c.winoPad(x[j*isz+ci*hw:][:hw], pad, w2)
			winoInput(pad, w2, v[ci*nt+j*tiles:], vs, th, tw)
		}
	}
	for xi := 0; xi < 16; xi++ {
		blas.Sgemm(false, false, cout, nt, cin, 1, wg.u[xi*cout*cin:], cin, v[xi*vs:], nt, 0, m[xi*ms:], nt)
	}
	winoOutput(m, ms, y, ys, cout*nt)
	return y, ys
}

// winoPad writes one input plane x [in.h, in.w] into pad [2·th+2, w2] at row and column offset
// in.padding, zero around it.
func (c *conv2d) winoPad(x, pad []float32, w2 int) {
	h, w, p := c.in.h, c.in.w, c.pd
	ph := 2*c.wino.th + 2
	clear(pad[:p*w2])
	for iy := 0; iy < h && iy+p < ph; iy++ {
		row := pad[(iy+p)*w2:][:w2]
		n := copy(row[p:], x[iy*w:][:w])
		// A few values on either side: stores, not calls to clear.
		for k := range row[:p] {
			row[k] = 0
		}
		for k := p + n; k < w2; k++ {
			row[k] = 0
		}
	}
	clear(pad[min(h+p, ph)*w2 : ph*w2])
}

// winoInputGo is winoInputAVX2 in Go: it transforms the padded plane p [2·th+2, w2] (w2 =
// 2·tw+2) tile by tile, tile (ty, tx) being the 4×4 block at row 2·ty, column 2·tx, and writes
// the 16 values of tile t = ty·tw+tx to v[ξ·vs+t]. Each row of the block is multiplied by B
// first, then Bᵀ combines the rows, in the AVX2 code's order, so both round alike.
func winoInputGo(p []float32, w2 int, v []float32, vs, th, tw int) {
	for ty := 0; ty < th; ty++ {
		r0, r1 := p[2*ty*w2:][:w2], p[(2*ty+1)*w2:][:w2]
		r2, r3 := p[(2*ty+2)*w2:][:w2], p[(2*ty+3)*w2:][:w2]
		for tx := 0; tx < tw; tx++ {
			q := 2 * tx
			a0, a1, a2, a3 := r0[q:q+4:q+4], r1[q:q+4:q+4], r2[q:q+4:q+4], r3[q:q+4:q+4]
			// Rows times B.
			h00, h01, h02, h03 := a0[0]-a0[2], a0[1]+a0[2], a0[2]-a0[1], a0[1]-a0[3]
			h10, h11, h12, h13 := a1[0]-a1[2], a1[1]+a1[2], a1[2]-a1[1], a1[1]-a1[3]
			h20, h21, h22, h23 := a2[0]-a2[2], a2[1]+a2[2], a2[2]-a2[1], a2[1]-a2[3]
			h30, h31, h32, h33 := a3[0]-a3[2], a3[1]+a3[2], a3[2]-a3[1], a3[1]-a3[3]
			// Bᵀ times that.
			t := ty*tw + tx
			v[t], v[vs+t], v[2*vs+t], v[3*vs+t] = h00-h20, h01-h21, h02-h22, h03-h23
			v[4*vs+t], v[5*vs+t], v[6*vs+t], v[7*vs+t] = h10+h20, h11+h21, h12+h22, h13+h23
			v[8*vs+t], v[9*vs+t], v[10*vs+t], v[11*vs+t] = h20-h10, h21-h11, h22-h12, h23-h13
			v[12*vs+t], v[13*vs+t], v[14*vs+t], v[15*vs+t] = h10-h30, h11-h31, h12-h32, h13-h33
		}
	}
}

// winoOutputGo is winoOutputAVX2 in Go: for each of the n tiles t, with M's values m[ξ·ms+t],
// it writes the four outputs Aᵀ M A to y[q·ys+t], q = 2·row + column, in the AVX2 code's order.
func winoOutputGo(m []float32, ms int, y []float32, ys int, n int) {
	m0, m1, m2, m3 := m[:n], m[ms:][:n], m[2*ms:][:n], m[3*ms:][:n]
	m4, m5, m6, m7 := m[4*ms:][:n], m[5*ms:][:n], m[6*ms:][:n], m[7*ms:][:n]
	m8, m9, m10, m11 := m[8*ms:][:n], m[9*ms:][:n], m[10*ms:][:n], m[11*ms:][:n]
	m12, m13, m14, m15 := m[12*ms:][:n], m[13*ms:][:n], m[14*ms:][:n], m[15*ms:][:n]
	y0, y1, y2, y3 := y[:n], y[ys:][:n], y[2*ys:][:n], y[3*ys:][:n]
	for t := range y0 {
		// Aᵀ's rows times column j of M: s (first row) and e (second).
		s0, e0 := m0[t]+m4[t]+m8[t], m4[t]-m8[t]-m12[t]
		s1, e1 := m1[t]+m5[t]+m9[t], m5[t]-m9[t]-m13[t]
		s2, e2 := m2[t]+m6[t]+m10[t], m6[t]-m10[t]-m14[t]
		s3, e3 := m3[t]+m7[t]+m11[t], m7[t]-m11[t]-m15[t]
		y0[t] = s0 + s1 + s2
		y1[t] = s1 - s2 - s3
		y2[t] = e0 + e1 + e2
		y3[t] = e1 - e2 - e3
	}
}

// winoPooled reports whether the fused pool takes exactly the 2×2 tiles, so that the
// epilogue pools the four output planes directly.
func (c *conv2d) winoPooled() bool {
	p := c.pool
	return p != nil && p.k == 2 && p.s == 2 && c.co.h%2 == 0 && c.co.w%2 == 0
}

// winoEpilogue finishes the forward pass of examples i0 … i0+gi−1 from winoConv's output
// planes, with the same operations as conv2d.forward's epilogue: without a pool, it lays the
// planes out into c.y; with a pool over exactly the tiles, it pools each tile (as maxPool.plane's
// 2×2 path, indices included unless inference is set); then bias and ReLU. It reports false,
// doing nothing, for other pools: the caller then lays the planes out with winoScatter and runs
// the general epilogue.
func (c *conv2d) winoEpilogue(y []float32, ys, i0, gi int, inference bool) bool {
	if c.pool != nil && !c.winoPooled() {
		return false
	}
	cout := c.co.c
	tiles := c.wino.th * c.wino.tw
	nt := gi * tiles
	osz := c.out().size() / cout // per channel
	for j := 0; j < gi; j++ {
		for co := 0; co < cout; co++ {
			pl := (i0+j)*cout + co
			dst := c.y[pl*osz:][:osz]
			src := y[co*nt+j*tiles:]
			var bias float32
			if c.bias != nil {
				bias = c.bias.w[co]
			}
			if c.pool == nil {
				c.winoScatter(src, ys, dst)
				biasReLU(dst, bias, c.relu)
				continue
			}
			y0, y1, y2, y3 := src[:osz], src[ys:][:osz], src[2*ys:][:osz], src[3*ys:][:osz]
			if inference {
				for t := range dst {
					dst[t] = max(max(y0[t], y1[t]), max(y2[t], y3[t]))
				}
			} else {
				id := c.pool.idx[pl*osz:][:osz]
				for t := range dst {
					a, b, c, e := y0[t], y1[t], y2[t], y3[t]
					i01 := b2u(b > a)
					i23 := 2 + b2u(e > c)
					m01, m23 := max(a, b), max(c, e)
					s := b2u(m23 > m01)
					dst[t] = max(m01, m23)
					id[t] = i01 + s*(i23-i01)
				}
			}
			biasReLU(dst, bias, c.relu)
		}
	}
	return true
}

// winoScatter lays out one output plane from winoConv's four planes (src[q·ys+t] for the
// plane's tiles t) into dst [o.h, o.w]; tiles that hang over an odd edge keep only their inside.
func (c *conv2d) winoScatter(src []float32, ys int, dst []float32) {
	oh, ow, tw := c.co.h, c.co.w, c.wino.tw
	full := ow / 2
	for oy := 0; oy < oh; oy++ {
		ty, a := oy/2, oy%2
		even, odd := src[2*a*ys+ty*tw:][:tw], src[(2*a+1)*ys+ty*tw:][:tw]
		row := dst[oy*ow:][:ow]
		for tx := 0; tx < full; tx++ {
			d := row[2*tx : 2*tx+2 : 2*tx+2]
			d[0], d[1] = even[tx], odd[tx]
		}
		if ow%2 == 1 {
			row[ow-1] = even[full]
		}
	}
}
