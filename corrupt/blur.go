package corrupt

import (
	"math"
	"math/rand/v2"
	"sync"
)

// ---------------------------------------------------------------- defocus

// diskKernel returns the defocus kernel of ImageNet-C's disk(radius, alias_blur) and its side:
// the indicator of x² + y² ≤ radius² on the grid −8..8 (or −radius..radius when radius > 8),
// normalised to sum 1 in float32, then smoothed by cv2.GaussianBlur with a 3×3 (5×5 when
// radius > 8) kernel of standard deviation alias and BORDER_REFLECT_101, in float32 as OpenCV 4
// computes it: its bit-exact Gaussian taps (computed in float64, rounded to float32) and its
// small symmetric filters (centre·k0 + (left + right)·k1 + …), rows first. Reproducing the float32
// rounding matters: the taps sum to 1 only up to about 1e-7, and the sign of the difference
// decides the truncated value of every pixel in a flat region.
func diskKernel(radius, alias float64) ([]float64, int) {
	lo, ks := -8.0, 3
	if radius > 8 {
		lo, ks = -radius, 5
	}
	var grid []float64 // np.arange(lo, -lo+1)
	for v := lo; v < -lo+1; v++ {
		grid = append(grid, v)
	}
	n := len(grid)
	disk := make([]float32, n*n)
	var sum float32
	for i, y := range grid {
		for j, x := range grid {
			if x*x+y*y <= radius*radius {
				disk[i*n+j] = 1
				sum++
			}
		}
	}
	for i := range disk {
		disk[i] /= sum
	}
	g := cvGaussianTaps(ks, alias) // g[0] is the centre tap
	r := ks / 2
	filt := func(at func(int) float32) float32 {
		s := at(0) * g[0]
		for t := 1; t <= r; t++ {
			s += (at(-t) + at(t)) * g[t]
		}
		return s
	}
	tmp := make([]float32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			tmp[i*n+j] = filt(func(d int) float32 { return disk[i*n+borderIndex(j+d, n, borderReflect101)] })
		}
	}
	k := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			k[i*n+j] = float64(filt(func(d int) float32 { return tmp[borderIndex(i+d, n, borderReflect101)*n+j] }))
		}
	}
	return k, n
}

// cvGaussianTaps returns the centre and one side of OpenCV 4's getGaussianKernel(n, sigma, CV_32F)
// (n odd, sigma > 0): t_i = exp(−i²/(2σ²)) in float64, normalised by 1/(1 + 2·Σ t_i), rounded to
// float32.
func cvGaussianTaps(n int, sigma float64) []float32 {
	h := n / 2
	t := make([]float64, h+1)
	sum := 0.0
	for i := h; i >= 1; i-- { // OpenCV sums from the outermost tap inwards
		x := float64(2 * i)
		t[i] = math.Exp(x * x * (-0.125 / (sigma * sigma)))
		sum += t[i]
	}
	sum = sum*2 + 1
	m := 1 / sum
	g := make([]float32, h+1)
	g[0] = float32(m)
	for i := 1; i <= h; i++ {
		g[i] = float32(t[i] * m)
	}
	return g
}

// diskKernels caches diskKernel by [radius, alias].
var diskKernels sync.Map

type diskEntry struct {
	k []float64
	n int
}

// defocusBlur correlates every channel of the image u with diskKernel(radius, alias)
// (cv2.filter2D, BORDER_REFLECT_101).
func defocusBlur(u Image, radius, alias float64) Image {
	key := [2]float64{radius, alias}
	e, ok := diskKernels.Load(key)
	if !ok {
		k, n := diskKernel(radius, alias)
		e, _ = diskKernels.LoadOrStore(key, diskEntry{k, n})
	}
	d := e.(diskEntry)
	return filter2D(u, d.k, d.n, d.n, borderReflect101)
}

// ---------------------------------------------------------------- glass

// glassShuffle walks the pixels of the image x (modified in place) as
// ImageNet-C's glass_blur does: iters times, for rows h from H−delta down to delta+1 and, within
// each row, columns w from W−delta down to delta+1, it takes an offset (dx, dy) from next and
// exchanges pixel (h, w) with pixel (h+dy, w+dx). The references draw dx, dy with
// np.random.randint(−delta, delta), whose upper bound is exclusive, so the walk drifts up and
// left. For RGB images the reference's tuple swap
// x[h, w], x[h', w'] = x[h', w'], x[h, w] assigns through NumPy views: x[h, w] receives the
// colour of x[h', w'] and x[h', w'] is left as it was, so pixels are copied, not swapped. For
// one-channel images the elements are scalars and the swap is real. Both are reproduced.
func glassShuffle(x Image, delta, iters int, next func() (dx, dy int)) {
	C := x.C
	for it := 0; it < iters; it++ {
		for h := x.H - delta; h > delta; h-- {
			for w := x.W - delta; w > delta; w-- {
				dx, dy := next()
				p := (h*x.W + w) * C
				q := ((h+dy)*x.W + w + dx) * C
				if C == 1 {
					x.Pix[p], x.Pix[q] = x.Pix[q], x.Pix[p]
				} else {
					copy(x.Pix[p:p+C], x.Pix[q:q+C])
				}
			}
		}
	}
}

// glassOffsets returns a source of glass_blur offsets: dx then dy, each uniform in
// [−delta, delta). Powers of two take their bits from one 64-bit draw.
func glassOffsets(rng *rand.Rand, delta int) func() (int, int) {
	n := 2 * delta
	if n&(n-1) != 0 {
		return func() (int, int) { return rng.IntN(n) - delta, rng.IntN(n) - delta }
	}
	bits := 0
	for 1<<bits < n {
		bits++
	}
	mask := uint64(n - 1)
	var word uint64
	left := 0
	take := func() int {
		if left < bits {
			word, left = rng.Uint64(), 64
		}
		v := int(word & mask)
		word >>= bits
		left -= bits
		return v - delta
	}
	return func() (int, int) {
		dx := take()
		return dx, take()
	}
}

// glassBlur is ImageNet-C's glass_blur on img: Gaussian blur (sigma, skimage defaults),
// truncation to uint8, glassShuffle, Gaussian blur again, clip.
func glassBlur(img Image, sigma float64, delta, iters int, next func() (int, int)) Image {
	b := scratchImage(img.H, img.W, img.C)
	defer putScratch(b.Pix)
	gaussianInto(b, img, sigma, sigma, borderNearest, 4)
	for i, v := range b.Pix {
		b.Pix[i] = unitTable[uint8(v*255)] // np.uint8(gaussian(x/255.)*255); v*255 stays in [0, 255]
	}
	glassShuffle(b, delta, iters, next)
	return gaussianFilter(b, sigma, borderNearest, 4).clip01()
}

// ---------------------------------------------------------------- motion

// motionKernel is ImageMagick's MotionBlurImage kernel: taps i = 0..width−1 with weight
// exp(−i²/(2σ²)) normalised to sum 1, reading the pixel offset by (ox[i], oy[i]) =
// (ceil(i·cos θ − 0.5), ceil(i·sin θ − 0.5)) from the output pixel.
type motionKernel struct {
	w      []float64
	ox, oy []int
}

// newMotionKernel returns the kernel of width 2·ceil(radius)+1 (ImageMagick 6's
// GetOptimalKernelWidth1D, and bethgelab's port for integer radii) for sigma and the angle in
// degrees.
func newMotionKernel(radius, sigma, angle float64) motionKernel {
	width := int(2*math.Ceil(radius) + 1)
	if sigma < 1e-12 {
		sigma = 1e-12
	}
	k := motionKernel{w: make([]float64, width), ox: make([]int, width), oy: make([]int, width)}
	s := 0.0
	for i := range k.w {
		k.w[i] = math.Exp(-float64(i*i)/(2*sigma*sigma)) / (math.Sqrt(2*math.Pi) * sigma)
		s += k.w[i]
	}
	px := float64(width) * math.Sin(angle*math.Pi/180)
	py := float64(width) * math.Cos(angle*math.Pi/180)
	hyp := math.Hypot(px, py)
	for i := range k.w {
		k.w[i] /= s
		k.ox[i] = int(math.Ceil(float64(i)*py/hyp - 0.5))
		k.oy[i] = int(math.Ceil(float64(i)*px/hyp - 0.5))
	}
	return k
}

// clipTo drops the taps from the first whose offset reaches the image size on either axis: the
// `break` of imagecorruptions' _motion_blur ("simulated motion exceeded image borders").
func (k motionKernel) clipTo(h, w int) motionKernel {
	for i := range k.w {
		if abs(k.oy[i]) >= h || abs(k.ox[i]) >= w {
			return motionKernel{w: k.w[:i], ox: k.ox[:i], oy: k.oy[:i]}
		}
	}
	return k
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// motionBlur returns Σ_i w[i]·src(y+oy[i], x+ox[i]) for every pixel and channel, reading edge
// pixels for positions outside the image (ImageMagick's default virtual pixels, and the shift of
// bethgelab's port). It works on any scale.
func motionBlur(src Image, k motionKernel) Image {
	dst := NewImage(src.H, src.W, src.C)
	C, W := src.C, src.W
	row := W * C
	for i, wt := range k.w {
		ox := k.ox[i]
		// Columns whose source x+ox lies inside the image read a shifted row; the rest read the
		// edge pixel. Every output adds its taps in kernel order either way.
		x0, x1 := min(max(-ox, 0), W), max(min(W-ox, W), 0)
		for y := 0; y < src.H; y++ {
			sy := min(max(y+k.oy[i], 0), src.H-1)
			s := src.Pix[sy*row : sy*row+row]
			d := dst.Pix[y*row : y*row+row]
			for x := 0; x < x0; x++ {
				for c := 0; c < C; c++ {
					d[x*C+c] += wt * s[c]
				}
			}
			if x0 < x1 {
				dd := d[x0*C : x1*C]
				ss := s[(x0+ox)*C : (x1+ox)*C]
				for j := range dd {
					dd[j] += wt * ss[j]
				}
			}
			for x := max(x1, x0); x < W; x++ {
				for c := 0; c < C; c++ {
					d[x*C+c] += wt * s[(W-1)*C+c]
				}
			}
		}
	}
	return dst
}

// magickRound8 converts a 0..255 value as ImageMagick 6.9.11 Q16 stores it and then writes it to
// an 8-bit PNG: ClampToQuantum(257·v) (round half up to a 16-bit quantum q), then floor(q/257).
// The truncation was measured by the MNIST-C port (see mcMotionBlurWith) against ImageMagick
// itself; with it the cifar10-c motion_blur statistics match make_cifar_c's.
func magickRound8(v float64) float64 {
	q := 257 * v
	var Q uint64
	switch {
	case !(q > 0):
		Q = 0
	case q >= 65535:
		Q = 65535
	default:
		Q = uint64(q + 0.5)
	}
	return float64(Q / 257)
}

// magickMotionBlur is make_cifar_c's motion blur through Wand: the 8-bit image of img (a PNG),
// ImageMagick's MotionBlurImage(radius, sigma, angle) in Q16, and an 8-bit PNG of the result.
func magickMotionBlur(img Image, radius, sigma, angle float64) Image {
	b := img.bytes8()
	in := NewImage(img.H, img.W, img.C)
	for i, v := range b {
		in.Pix[i] = float64(v)
	}
	out := motionBlur(in, newMotionKernel(radius, sigma, angle))
	for i, v := range out.Pix {
		out.Pix[i] = unitTable[int(magickRound8(v))]
	}
	return out
}

// ---------------------------------------------------------------- zoom

// zoomAxis returns, for scipy.ndimage.zoom with order 1 and grid_mode False of a line of n
// samples by factor z, the output length round(n·z) (half to even, as Python's round) and for
// each output index j the left input index i0[j] and weight t[j] of i0+1, from the input
// position j·(n−1)/(nOut−1).
func zoomAxis(n int, z float64) (nOut int, i0 []int, t []float64) {
	nOut = int(math.RoundToEven(float64(n) * z))
	scale := 1.0
	if nOut > 1 {
		scale = float64(n-1) / float64(nOut-1)
	}
	i0 = make([]int, nOut)
	t = make([]float64, nOut)
	for j := range i0 {
		cc := float64(j) * scale
		f := math.Floor(cc)
		i, w := int(f), cc-f
		if i >= n-1 {
			i, w = max(n-2, 0), 1
			if n == 1 {
				w = 0
			}
		}
		i0[j], t[j] = i, w
	}
	return nOut, i0, t
}

// zoomPlan is the precomputed form of one scipy zoom of a crop: the crop (top, left, ch×cw), the
// window of the zoomed crop that is kept (h×w from row oy and column ox) and, per kept output row
// and column, the left input index and the weight of the next one.
type zoomPlan struct {
	top, left, ch, cw, h, w int
	yi, xi                  []int
	yt, xt                  []float64
}

// newZoomPlan returns the plan for zooming the ch×cw crop at (top, left) by z as
// scipy.ndimage.zoom(crop, (z, z, 1), order=1) does, keeping h×w output pixels from (oy, ox).
func newZoomPlan(top, left, ch, cw int, z float64, oy, ox, h, w int) *zoomPlan {
	_, yi, yt := zoomAxis(ch, z)
	_, xi, xt := zoomAxis(cw, z)
	p := &zoomPlan{top: top, left: left, ch: ch, cw: cw, h: h, w: w,
		yi: yi[oy : oy+h], yt: yt[oy : oy+h], xi: xi[ox : ox+w], xt: xt[ox : ox+w]}
	if ch == 1 {
		clear(p.yt)
		for i := range p.yi {
			p.yi[i] = -1 // marks a one-row crop: no second row
		}
	}
	return p
}

// rows runs the horizontal pass of p over src: tmp (at least ch·w·C long) receives, for every
// crop row, the w kept output columns, interpolated in float64.
func (p *zoomPlan) rows(src Image, tmp []float64) {
	C := src.C
	for r := 0; r < p.ch; r++ {
		s := src.Pix[((p.top+r)*src.W+p.left)*C : ((p.top+r)*src.W+p.left+p.cw)*C]
		d := tmp[r*p.w*C : (r+1)*p.w*C]
		for j, a := range p.xi {
			t := p.xt[j]
			a *= C
			b := a + C
			if p.cw == 1 {
				b = a
			}
			if C == 3 {
				d[3*j] = s[a]*(1-t) + s[b]*t
				d[3*j+1] = s[a+1]*(1-t) + s[b+1]*t
				d[3*j+2] = s[a+2]*(1-t) + s[b+2]*t
			} else {
				d[j] = s[a]*(1-t) + s[b]*t
			}
		}
	}
}

// apply returns the h×w window of the zoomed crop of src.
func (p *zoomPlan) apply(src Image) Image {
	C := src.C
	tmp := make([]float64, p.ch*p.w*C)
	p.rows(src, tmp)
	dst := NewImage(p.h, p.w, C)
	p.cols(tmp, C, func(i int, v float64) { dst.Pix[i] = v })
	return dst
}

// cols runs the vertical pass of p over the output of rows, handing each output value and its
// index (HWC order) to put.
func (p *zoomPlan) cols(tmp []float64, C int, put func(i int, v float64)) {
	row := p.w * C
	for i, a := range p.yi {
		b := a + 1
		if a < 0 {
			a, b = 0, 0
		}
		t := p.yt[i]
		ra, rb := tmp[a*row:a*row+row], tmp[b*row:b*row+row]
		for j := range ra {
			put(i*row+j, ra[j]*(1-t)+rb[j]*t)
		}
	}
}

// zoomCrop zooms the ch×cw crop of src at (top, left) by z as scipy.ndimage.zoom(crop, (z, z, 1),
// order=1) does, and returns the h×w window of the zoomed crop that starts at row oy and column
// ox (oy+h and ox+w must not exceed the zoomed size), interpolating in float64.
func zoomCrop(src Image, top, left, ch, cw int, z float64, oy, ox, h, w int) Image {
	return newZoomPlan(top, left, ch, cw, z, oy, ox, h, w).apply(src)
}

// clippedZoomPlan returns the plan of clippedZoom for an h×w image.
func clippedZoomPlan(h, w int, z float64, centred bool) *zoomPlan {
	ch := int(math.Ceil(float64(h) / z))
	cw := int(math.Ceil(float64(w) / z))
	oy, ox := 0, 0
	if centred {
		oy = (int(math.RoundToEven(float64(ch)*z)) - h) / 2
		ox = (int(math.RoundToEven(float64(cw)*z)) - w) / 2
	}
	return newZoomPlan((h-ch)/2, (w-cw)/2, ch, cw, z, oy, ox, h, w)
}

// clippedZoom is the clipped_zoom of make_cifar_c.py and make_imagenet_c.py: the centre crop of
// ceil(n/z) pixels per axis, zoomed by z, trimmed back to the centre H×W (the references use the
// height for both axes; this uses each axis's own size, which is the same for square images).
// With centred false it is imagecorruptions' version, which keeps the top-left H×W of the zoomed
// crop instead (not centred).
func clippedZoom(src Image, z float64, centred bool) Image {
	return clippedZoomPlan(src.H, src.W, z, centred).apply(src)
}

// zoomFactors returns np.arange(1, end, step) as NumPy computes it: ceil((end−1)/step) values
// 1 + i·d with d = (1 + step) − 1. Float rounding matters: np.arange(1, 1.06, 0.01) has 7
// values (the last is 1.06), and its 1.25 is 1.2500000000000002, which changes the zoomed size.
func zoomFactors(end, step float64) []float64 {
	n := int(math.Ceil((end - 1) / step))
	d := (1 + step) - 1
	z := make([]float64, n)
	for i := range z {
		z[i] = 1 + float64(i)*d
	}
	return z
}

// zoomPlans caches clippedZoomPlan by (h, w, z, centred).
var zoomPlans sync.Map

type zoomKey struct {
	h, w    int
	z       float64
	centred bool
}

// zoomBlur is zoom_blur on img: the mean of x and clippedZoom(x, z) for every factor, in
// float32 as the references compute it: (x/255).astype(np.float32), each zoom rounded to float32
// (scipy's output type) and summed in float32, and the final clip(x, 0, 1)*255 in float32. The
// result holds that float32 value divided by 255, which Quantize multiplies back exactly.
func zoomBlur(img Image, factors []float64, centred bool) Image {
	x := scratchImage(img.H, img.W, img.C)
	tmp := getScratch(len(x.Pix))
	defer func() { putScratch(x.Pix); putScratch(tmp) }()
	acc := make([]float32, len(x.Pix))
	for i, v := range img.Pix {
		x.Pix[i] = float64(float32(v))
	}
	for _, z := range factors {
		if z == 1 {
			for i, v := range x.Pix {
				acc[i] += float32(v)
			}
			continue
		}
		key := zoomKey{img.H, img.W, z, centred}
		pv, ok := zoomPlans.Load(key)
		if !ok {
			pv, _ = zoomPlans.LoadOrStore(key, clippedZoomPlan(img.H, img.W, z, centred))
		}
		p := pv.(*zoomPlan)
		p.rows(x, tmp)
		row := p.w * img.C
		for i, a := range p.yi {
			b := a + 1
			if a < 0 {
				a, b = 0, 0
			}
			t := p.yt[i]
			ra, rb := tmp[a*row:a*row+row], tmp[b*row:b*row+row]
			d := acc[i*row : i*row+row]
			ra, rb = ra[:len(d)], rb[:len(d)]
			for j := range d {
				d[j] += float32(ra[j]*(1-t) + rb[j]*t)
			}
		}
	}
	out := NewImage(img.H, img.W, img.C)
	n := float32(len(factors) + 1)
	for i, v := range x.Pix {
		m := (float32(v) + acc[i]) / n
		out.Pix[i] = float64(min(max(m, 0), 1)*255) / 255
	}
	return out
}
