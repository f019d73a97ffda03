package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// withWinograd runs fn with winoPolicy set to policy.
func withWinograd(policy int, fn func()) {
	defer func(old int) { winoPolicy = old }(winoPolicy)
	winoPolicy = policy
	fn()
}

// directConv is the float64 reference: the convolution (stride 1, no activation) of n examples
// x [n, in] with weight w [cout, in.c, 3, 3] and bias b, and for each output the sum of the
// magnitudes of its terms, which bounds the rounding error of any summation order.
func directConv(x []float32, n int, in shape, w, b []float32, cout, pad int) (y, mag []float64, o shape) {
	o = shape{cout, in.h + 2*pad - 2, in.w + 2*pad - 2}
	y = make([]float64, n*o.size())
	mag = make([]float64, len(y))
	for i := 0; i < n; i++ {
		for co := 0; co < cout; co++ {
			for oy := 0; oy < o.h; oy++ {
				for ox := 0; ox < o.w; ox++ {
					s, a := float64(b[co]), math.Abs(float64(b[co]))
					for ci := 0; ci < in.c; ci++ {
						for ki := 0; ki < 3; ki++ {
							for kj := 0; kj < 3; kj++ {
								iy, ix := oy-pad+ki, ox-pad+kj
								if iy < 0 || iy >= in.h || ix < 0 || ix >= in.w {
									continue
								}
								t := float64(w[((co*in.c+ci)*3+ki)*3+kj]) * float64(x[((i*in.c+ci)*in.h+iy)*in.w+ix])
								s += t
								a += math.Abs(t)
							}
						}
					}
					j := ((i*cout+co)*o.h+oy)*o.w + ox
					y[j], mag[j] = s, a
				}
			}
		}
	}
	return y, mag, o
}

// randomConv returns a 3×3 stride-1 convolution with bias and Kaiming-normal weights, and n
// standard-normal examples for it.
func randomConv(t *testing.T, in shape, cout, pad, n int, seed uint64) (*conv2d, []float32) {
	t.Helper()
	c, err := newConv("c", in, cout, 3, 1, pad, true)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 11))
	std := math.Sqrt(2 / float64(in.c*9))
	for i := range c.weight.w {
		c.weight.w[i] = float32(r.NormFloat64() * std)
	}
	for i := range c.bias.w {
		c.bias.w[i] = float32(0.1 * r.NormFloat64())
	}
	x := make([]float32, n*in.size())
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return c, x
}

// winoTol is the error allowed relative to the sum of the magnitudes of an output's terms. The
// im2col product's own error is a few float32 epsilons (6e-8) times that sum. Winograd computes
// the four outputs of a 2×2 tile together from the 4×4 input patch under it: the transforms'
// intermediate values hold pixels outside an output's own window, which cancel exactly but not
// their rounding errors, so its error is bounded by the largest magnitude sum in the tile
// (tileMax). Observed: up to 7e-7 of that; a wrong transform coefficient gives errors of the
// order of the sum itself.
const winoTol = 1e-5

// tileMax returns, for each output of planes [oh, ow], the largest value of mag over its
// Winograd tile (the 2×2 block of outputs at even row and column that holds it).
func tileMax(mag []float64, oh, ow int) []float64 {
	t := make([]float64, len(mag))
	for j := range mag {
		plane, q := j/(oh*ow), j%(oh*ow)
		y0, x0 := q/ow&^1, q%ow&^1
		for y := y0; y < min(y0+2, oh); y++ {
			for x := x0; x < min(x0+2, ow); x++ {
				t[j] = max(t[j], mag[plane*oh*ow+y*ow+x])
			}
		}
	}
	return t
}

// TestWinogradForward compares the Winograd forward pass with the im2col one and with a
// float64 direct convolution, for input channels below and above winoMinCin, even and odd
// sizes, paddings 0 to 2 and batches of 1 and 7.
func TestWinogradForward(t *testing.T) {
	seed := uint64(0)
	for _, cin := range []int{1, 3, 32} {
		for _, cout := range []int{32, 64} {
			for _, hw := range []int{28, 14, 7, 5} {
				for _, pad := range []int{1, 0, 2} {
					for _, n := range []int{1, 7} {
						seed++
						in := shape{cin, hw, hw}
						if testing.Short() && (hw == 28 && cin == 32 && n == 7) {
							continue
						}
						t.Run(fmt.Sprintf("%v/cout=%d/pad=%d/n=%d", in, cout, pad, n), func(t *testing.T) {
							c, x := randomConv(t, in, cout, pad, n, seed)
							var yi, yw []float32
							withWinograd(winoNever, func() { yi = append(yi, c.forward(x, n, false)...) })
							withWinograd(winoAlways, func() { yw = append(yw, c.forward(x, n, false)...) })
							ref, mag, o := directConv(x, n, in, c.weight.w, c.bias.w, cout, pad)
							tmag := tileMax(mag, o.h, o.w)
							var worst, normDiff, norm float64
							for j, r := range ref {
								ei := math.Abs(float64(yi[j])-r) / mag[j]
								ew := math.Abs(float64(yw[j])-r) / tmag[j]
								worst = max(worst, ew)
								if ei > winoTol || ew > winoTol {
									t.Fatalf("output %d: im2col %g, Winograd %g, float64 %g (magnitude sums: own %g, tile %g)", j, yi[j], yw[j], r, mag[j], tmag[j])
								}
								normDiff = max(normDiff, math.Abs(float64(yw[j]-yi[j])))
								norm = max(norm, math.Abs(float64(yi[j])))
							}
							if normDiff > 1e-5*norm {
								t.Errorf("max |Winograd − im2col| = %g, largest output %g", normDiff, norm)
							}
							t.Logf("largest Winograd error / tile magnitude sum %.2g; max |Winograd − im2col| / max |y| %.2g", worst, normDiff/norm)
						})
					}
				}
			}
		}
	}
}

// TestWinogradFused checks the fused ReLU and max-pool after a Winograd convolution, in
// training mode (pool indices kept): outputs as the im2col path within rounding, and indices the
// same except where a window's two candidates are equal within rounding.
func TestWinogradFused(t *testing.T) {
	for i, tc := range []struct {
		in        shape
		cout, pad int
		ceil      bool
		n         int
	}{
		{shape{32, 28, 28}, 32, 1, false, 3},
		{shape{32, 14, 14}, 64, 1, false, 7},
		{shape{16, 7, 7}, 32, 1, true, 2},
		{shape{8, 5, 5}, 16, 1, false, 1},
		{shape{8, 6, 6}, 16, 0, true, 3},
	} {
		t.Run(fmt.Sprintf("%v/cout=%d/pad=%d/ceil=%v/n=%d", tc.in, tc.cout, tc.pad, tc.ceil, tc.n), func(t *testing.T) {
			c, x := randomConv(t, tc.in, tc.cout, tc.pad, tc.n, uint64(100+i))
			c.fuse(newMaxPool(c.co, 2, 2, tc.ceil))
			var yi, yw []float32
			var ii, iw []uint8
			withWinograd(winoNever, func() {
				yi = append(yi, c.forward(x, tc.n, true)...)
				ii = append(ii, c.pool.idx...)
			})
			withWinograd(winoAlways, func() {
				yw = append(yw, c.forward(x, tc.n, true)...)
				iw = append(iw, c.pool.idx...)
			})
			ref, mag, o := directConv(x, tc.n, tc.in, c.weight.w, c.bias.w, tc.cout, tc.pad)
			mag = tileMax(mag, o.h, o.w)
			p := c.pool
			ohw := p.o.h * p.o.w
			for j := range yi {
				plane, q := j/ohw, j%ohw
				oy, ox := q/p.o.w, q%p.o.w
				at := func(idx uint8) int {
					return plane*o.h*o.w + (oy*p.s+int(idx)/p.k)*o.w + ox*p.s + int(idx)%p.k
				}
				a, b := at(ii[j]), at(iw[j])
				if d := math.Abs(float64(yw[j] - yi[j])); d > winoTol*mag[a] {
					t.Fatalf("output %d: Winograd %g, im2col %g (magnitude sum %g)", j, yw[j], yi[j], mag[a])
				}
				if a != b && math.Abs(ref[a]-ref[b]) > 2*winoTol*max(mag[a], mag[b]) {
					t.Fatalf("output %d: Winograd picks window position %d (%g), im2col %d (%g)", j, iw[j], ref[b], ii[j], ref[a])
				}
			}
		})
	}
}

// TestWinogradWeightChanges checks that the transformed weights follow every change of the
// weights, including writes that bypass the optimizer (as Model.Tensor's Data allows).
func TestWinogradWeightChanges(t *testing.T) {
	in := shape{16, 9, 9}
	c, x := randomConv(t, in, 16, 1, 2, 5)
	withWinograd(winoAlways, func() {
		for step := 0; step < 3; step++ {
			yw := append([]float32(nil), c.forward(x, 2, false)...)
			ref, mag, o := directConv(x, 2, in, c.weight.w, c.bias.w, 16, 1)
			mag = tileMax(mag, o.h, o.w)
			for j, r := range ref {
				if math.Abs(float64(yw[j])-r) > winoTol*mag[j] {
					t.Fatalf("step %d: output %d is %g, want %g", step, j, yw[j], r)
				}
			}
			c.weight.w[step*37] += 0.5 // one weight, in place
		}
	})
}

// TestWinogradTransformsAVX2 checks the AVX2 transforms against the Go ones, bit for bit (they
// do the same operations in the same order), on tile grids narrower and wider than a step of
// eight, and that they write nothing past the room they are given.
func TestWinogradTransformsAVX2(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 transforms in this build or on this processor")
	}
	defer func(old bool) { useAVX2 = old }(useAVX2)
	r := rand.New(rand.NewPCG(21, 22))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	const guard = 64
	guarded := func(n int) []float32 { // n values, then guard values of −7
		s := make([]float32, n+guard)
		for i := range s[n:] {
			s[n+i] = -7
		}
		return s
	}
	checkGuard := func(what string, s []float32, n int) {
		t.Helper()
		for i, v := range s[n:] {
			if v != -7 {
				t.Fatalf("%s: value %d past the end overwritten", what, i)
			}
		}
	}
	for _, th := range []int{1, 2, 7, 14} {
		for _, tw := range []int{1, 4, 7, 8, 9, 14, 16, 17} {
			t.Run(fmt.Sprintf("input/%dx%d", th, tw), func(t *testing.T) {
				w2, vs := 2*tw+2, th*tw+winoSlack
				p := fill((2*th+2)*w2 + winoSlack)
				want, got := guarded(16*vs), guarded(16*vs)
				useAVX2 = false
				winoInput(p, w2, want, vs, th, tw)
				useAVX2 = true
				winoInput(p, w2, got, vs, th, tw)
				checkGuard("V", got, 16*vs)
				for xi := 0; xi < 16; xi++ {
					for k := 0; k < th*tw; k++ {
						if g, w := got[xi*vs+k], want[xi*vs+k]; math.Float32bits(g) != math.Float32bits(w) {
							t.Fatalf("ξ %d, tile %d: AVX2 %g, Go %g", xi, k, g, w)
						}
					}
				}
			})
		}
	}
	for _, n := range []int{1, 7, 8, 9, 100} {
		t.Run(fmt.Sprintf("output/%d", n), func(t *testing.T) {
			ms, ys := n, n+winoSlack
			m := fill(16*ms + winoSlack)
			want, got := guarded(4*ys), guarded(4*ys)
			useAVX2 = false
			winoOutput(m, ms, want, ys, n)
			useAVX2 = true
			winoOutput(m, ms, got, ys, n)
			checkGuard("Y", got, 4*ys)
			for q := 0; q < 4; q++ {
				for k := 0; k < n; k++ {
					if g, w := got[q*ys+k], want[q*ys+k]; math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("output %d, tile %d: AVX2 %g, Go %g", q, k, g, w)
					}
				}
			}
		})
	}
}

// TestWinogradEpilogue checks that the epilogues that work on the four output planes directly
// (fused ReLU, bias, and a 2×2 pool over exactly the tiles) give bit for bit what the general
// epilogue gives on the laid-out convolution: maxPool.plane, then biasReLU.
func TestWinogradEpilogue(t *testing.T) {
	for i, tc := range []struct {
		in   shape
		cout int
		pool bool
		n    int
	}{
		{shape{8, 8, 8}, 4, true, 3},
		{shape{8, 8, 8}, 4, false, 3},
		{shape{8, 7, 5}, 4, false, 2},
	} {
		for _, inference := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/pool=%v/inference=%v", tc.in, tc.pool, inference), func(t *testing.T) {
				c, x := randomConv(t, tc.in, tc.cout, 1, tc.n, uint64(300+i))
				var pool *maxPool
				if tc.pool {
					pool = newMaxPool(c.co, 2, 2, false)
				}
				c.fuse(pool)
				c.inference = inference
				// One worker, so that forward transforms all examples in one group, as below
				// (SGEMM's rounding may depend on the width of the product).
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
				var got []float32
				withWinograd(winoAlways, func() { got = append(got, c.forward(x, tc.n, !inference)...) })
				// The reference: the same planes, laid out, through the general epilogue.
				y, ys := c.winoConv(0, x, tc.n)
				ohw := c.co.h * c.co.w
				plane := make([]float32, ohw)
				osz := c.out().size() / tc.cout
				tiles := c.wino.th * c.wino.tw
				for j := 0; j < tc.n; j++ {
					for co := 0; co < tc.cout; co++ {
						c.winoScatter(y[(co*tc.n+j)*tiles:], ys, plane)
						want := plane
						var idx []uint8
						if pool != nil {
							want = make([]float32, osz)
							if !inference {
								idx = make([]uint8, osz)
							}
							pool.plane(plane, want, idx)
						}
						biasReLU(want, c.bias.w[co], true)
						pl := j*tc.cout + co
						for k, w := range want {
							if g := got[pl*osz+k]; math.Float32bits(g) != math.Float32bits(w) {
								t.Fatalf("example %d, channel %d, output %d: %g, want %g", j, co, k, g, w)
							}
							if idx != nil && c.pool.idx[pl*osz+k] != idx[k] {
								t.Fatalf("example %d, channel %d, output %d: pool index %d, want %d", j, co, k, c.pool.idx[pl*osz+k], idx[k])
							}
						}
					}
				}
			})
		}
	}
}

// TestWinogradKernel checks G g Gᵀ on a kernel whose transform is known by hand: g with a single
// 1 at row i, column j transforms to the outer product of G's columns i and j.
func TestWinogradKernel(t *testing.T) {
	G := [4][3]float32{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			var g [9]float32
			g[3*i+j] = 1
			var u [16]float32
			winoKernel(g[:], &u)
			for a := 0; a < 4; a++ {
				for b := 0; b < 4; b++ {
					if want := G[a][i] * G[b][j]; u[4*a+b] != want {
						t.Errorf("g=e(%d,%d): u[%d][%d] = %g, want %g", i, j, a, b, u[4*a+b], want)
					}
				}
			}
		}
	}
}

// BenchmarkWinograd compares the im2col and Winograd forward passes (AVX2 transforms where the
// processor has them, and Go ones) of single 3×3 convolutions on a batch of 128: cnn's (with
// their fused ReLU and pool), resnet20's and a VGG one, and a few with few input channels, to
// choose winoMinCin. Training mode changes a weight before each pass, as an optimizer step does.
// Besides examples/s it reports the process's CPU time per pass (cpu-ns/op), steadier than
// wall time on a loaded machine.
func BenchmarkWinograd(b *testing.B) {
	const n = 128
	type policy struct {
		name   string
		policy int
		avx    bool
	}
	policies := []policy{{"im2col", winoNever, useAVX2}, {"winograd", winoAlways, useAVX2}}
	if useAVX2 {
		policies = append(policies, policy{"winograd-go", winoAlways, false})
	}
	defer func(old bool) { useAVX2 = old }(useAVX2)
	for _, tc := range []struct {
		name string
		in   shape
		cout int
		pool bool
	}{
		{"cnn.f0:1x28x28-32", shape{1, 28, 28}, 32, false},
		{"cnn.f2:32x28x28-32+pool", shape{32, 28, 28}, 32, true},
		{"cnn.f5:32x14x14-64", shape{32, 14, 14}, 64, false},
		{"cnn.f7:64x14x14-64+pool", shape{64, 14, 14}, 64, true},
		{"resnet:16x32x32-16", shape{16, 32, 32}, 16, false},
		{"resnet:32x16x16-32", shape{32, 16, 16}, 32, false},
		{"resnet:64x8x8-64", shape{64, 8, 8}, 64, false},
		{"vgg:128x16x16-128", shape{128, 16, 16}, 128, false},
		{"3x32x32-64", shape{3, 32, 32}, 64, false},
		{"8x32x32-16", shape{8, 32, 32}, 16, false},
	} {
		c, err := newConv("c", tc.in, tc.cout, 3, 1, 1, true)
		if err != nil {
			b.Fatal(err)
		}
		var pool *maxPool
		if tc.pool {
			pool = newMaxPool(c.co, 2, 2, false)
		}
		c.fuse(pool)
		copy(c.weight.w, hashUniform(tc.name+".w", len(c.weight.w)))
		x := hashUniform(tc.name, n*tc.in.size())
		for _, p := range policies {
			for _, train := range []bool{false, true} {
				mode := "infer"
				if train {
					mode = "train"
				}
				b.Run(tc.name+"/"+mode+"/"+p.name, func(b *testing.B) {
					useAVX2 = p.avx
					withWinograd(p.policy, func() {
						c.inference = !train
						cpu0 := cpuNanos()
						for b.Loop() {
							if train {
								c.weight.w[0] += 1e-6
							}
							c.forward(x, n, train)
						}
						reportCPU(b, cpu0)
					})
					b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "examples/s")
				})
			}
		}
	}
}

// BenchmarkWinogradTransforms times the padding and input transform and the output transform
// of one example of cnn's features.2 (32×28×28 to 32×28×28), single-threaded, in AVX2 (where
// the processor has it) and in Go.
func BenchmarkWinogradTransforms(b *testing.B) {
	c, err := newConv("c", shape{32, 28, 28}, 32, 3, 1, 1, true)
	if err != nil {
		b.Fatal(err)
	}
	c.winoPrepare()
	x := hashUniform("x", c.in.size())
	th, tw := c.wino.th, c.wino.tw
	nt := th * tw
	w2, vs, ms, ys := c.winoLayout(nt)
	pad := make([]float32, (2*th+2)*w2+winoSlack)
	v := make([]float32, 16*vs)
	m := hashUniform("m", 16*ms+winoSlack)
	y := make([]float32, 4*ys)
	defer func(old bool) { useAVX2 = old }(useAVX2)
	for _, avx := range []bool{true, false} {
		if avx && !useAVX2 {
			continue
		}
		name := "go"
		if avx {
			name = "avx2"
		}
		useAVX2 = avx
		b.Run("input/"+name, func(b *testing.B) {
			for b.Loop() {
				for ci := 0; ci < c.in.c; ci++ {
					c.winoPad(x[ci*28*28:][:28*28], pad, w2)
					winoInput(pad, w2, v[ci*nt:], vs, th, tw)
				}
			}
		})
		b.Run("output/"+name, func(b *testing.B) {
			for b.Loop() {
				winoOutput(m, ms, y, ys, c.co.c*nt)
			}
		})
	}
}
