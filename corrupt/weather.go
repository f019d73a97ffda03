package corrupt

import (
	"math"
	"math/bits"
)

// ---------------------------------------------------------------- fog

// plasmaFractal is ImageNet-C's plasma_fractal(mapsize, wibbledecay): a mapsize×mapsize
// (row-major, mapsize a power of two) diamond-square height map with wrap-around neighbours,
// normalised to [0, 1]. uni supplies uniform numbers in [0, 1) in the reference's order: at each
// step size, the square centres, then the diamond points on the corner rows, then those on the
// centre rows, each block in row-major order, every value displaced by wibble·U(−wibble, wibble),
// with wibble starting at 100 and divided by wibbledecay after each step.
func plasmaFractal(mapsize int, decay float64, uni func() float64) []float64 {
	N := mapsize
	m := make([]float64, N*N)
	wibble := 100.0
	for s := N; s >= 2; s /= 2 {
		n, h := N/s, s/2
		next := func(i int) int { // i+1 with wrap-around, in grid steps
			if i+1 == n {
				return 0
			}
			return i + 1
		}
		prev := func(i int) int {
			if i == 0 {
				return n - 1
			}
			return i - 1
		}
		w2 := wibble + wibble // numpy.random.uniform(-wibble, wibble) = -wibble + 2·wibble·U
		// Squares: centre = mean of the four corners.
		for i := 0; i < n; i++ {
			r0, r1 := i*s*N, next(i)*s*N
			for j := 0; j < n; j++ {
				c0, c1 := j*s, next(j)*s
				a := m[r0+c0] + m[r1+c0]
				b := m[r0+c1] + m[r1+c1]
				m[r0+h*N+c0+h] = (a+b)/4 + wibble*(-wibble+w2*uni())
			}
		}
		// Diamonds on the corner rows (left/right of each centre pair), then on the centre rows.
		for i := 0; i < n; i++ {
			r0, rc, rp := i*s*N, (i*s+h)*N, (prev(i)*s+h)*N
			for j := 0; j < n; j++ {
				c0, c1 := j*s, next(j)*s
				sum := (m[rc+c0+h] + m[rp+c0+h]) + (m[r0+c0] + m[r0+c1])
				m[r0+c0+h] = sum/4 + wibble*(-wibble+w2*uni())
			}
		}
		for i := 0; i < n; i++ {
			r0, r1, rc := i*s*N, next(i)*s*N, (i*s+h)*N
			for j := 0; j < n; j++ {
				c0, cp := j*s, prev(j)*s
				sum := (m[rc+c0+h] + m[rc+cp+h]) + (m[r0+c0] + m[r1+c0])
				m[rc+c0] = sum/4 + wibble*(-wibble+w2*uni())
			}
		}
		wibble /= decay
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range m {
		lo, hi = min(lo, v), max(hi, v)
	}
	for i, v := range m {
		m[i] = (v - lo) / (hi - lo)
	}
	return m
}

// nextPow2 returns the smallest power of two >= n (1 for n <= 1).
func nextPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// fog adds a·plasma to the image u (the top-left H×W of a mapsize×mapsize plasma map,
// the same for every channel) and rescales by max/(max + a), where max is the largest value of u:
// the references' fog, unclipped.
func fog(u Image, a float64, plasma []float64, mapsize int) Image {
	mx := math.Inf(-1)
	for _, v := range u.Pix {
		mx = max(mx, v)
	}
	out := NewImage(u.H, u.W, u.C)
	for y := 0; y < u.H; y++ {
		for x := 0; x < u.W; x++ {
			p := a * plasma[y*mapsize+x]
			for c := 0; c < u.C; c++ {
				i := (y*u.W+x)*u.C + c
				out.Pix[i] = (u.Pix[i] + p) * mx / (mx + a)
			}
		}
	}
	return out
}

// ---------------------------------------------------------------- snow

// snowParams are the seven numbers of a snow severity: the snow layer's normal mean and standard
// deviation, its zoom, the threshold below which it is zeroed, the motion blur radius and sigma,
// and the weight of the image in the whitening blend.
type snowParams struct {
	mean, sd, zoom, thresh, radius, sigma, blend float64
}

// snowLayer builds the snow layer from the normal field (H×W, drawn from N(mean, sd)) and the
// blur angle in degrees. Hendrycks' version (imagecorruptions false): centred clipped zoom,
// threshold, truncation to an 8-bit image, ImageMagick motion blur with 8-bit PNG output.
// imagecorruptions' version: zoom without the centre trim, threshold, clip, its own motion blur on
// the whole zoomed layer, rounding to 8 bits, then the top-left H×W. The result is on the unit
// scale.
func snowLayer(field []float64, h, w int, p snowParams, angle float64, imagecorruptions bool) Image {
	layer := plane(field, h, w)
	if !imagecorruptions {
		z := clippedZoom(layer, p.zoom, true)
		for i, v := range z.Pix {
			if v < p.thresh {
				v = 0
			}
			z.Pix[i] = unitTable[uint8(min(max(v, 0), 1)*255)] // astype(np.uint8) truncates
		}
		return magickMotionBlur(z, p.radius, p.sigma, angle)
	}
	ch := int(math.Ceil(float64(h) / p.zoom))
	cw := int(math.Ceil(float64(w) / p.zoom))
	zh := int(math.RoundToEven(float64(ch) * p.zoom))
	zw := int(math.RoundToEven(float64(cw) * p.zoom))
	z := zoomCrop(layer, (h-ch)/2, (w-cw)/2, ch, cw, p.zoom, 0, 0, zh, zw)
	for i, v := range z.Pix {
		if v < p.thresh {
			v = 0
		}
		z.Pix[i] = min(max(v, 0), 1)
	}
	b := motionBlur(z, newMotionKernel(p.radius, p.sigma, angle).clipTo(zh, zw))
	out := NewImage(h, w, 1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out.Pix[y*w+x] = math.RoundToEven(b.Pix[y*zw+x]*255) / 255
		}
	}
	return out
}

// snow whitens the image u, x ← blend·x + (1 − blend)·max(x, 1.5·gray(x) + 0.5), and
// adds the layer and the layer turned by 180°: the references' snow, unclipped.
func snow(u Image, layer Image, blend float64) Image {
	g := u.luma()
	out := NewImage(u.H, u.W, u.C)
	n := u.H * u.W
	for i := 0; i < n; i++ {
		s := layer.Pix[i] + layer.Pix[n-1-i]
		white := g.Pix[i]*1.5 + 0.5
		for c := 0; c < u.C; c++ {
			x := u.Pix[i*u.C+c]
			out.Pix[i*u.C+c] = blend*x + (1-blend)*max(x, white) + s
		}
	}
	return out
}

// ---------------------------------------------------------------- frost

// frostBlend returns clip(a·x + b·frost, 0, 255)/255 with x = 255·img (the references blend on
// the 0..255 scale), where frost is the H×W window of tex at (y0, x0), wrapping around the
// texture's edges. A one-channel image takes the grey of the window as imagecorruptions computes
// it: the weights 0.2989, 0.5870, 0.1140 applied to the texture in OpenCV's BGR order, i.e. to B,
// G and R.
func frostBlend(img Image, tex *texture, y0, x0 int, a, b float64) Image {
	out := NewImage(img.H, img.W, img.C)
	txs := make([]int, img.W)
	for x := range txs {
		txs[x] = (x0 + x) % tex.w * 3
	}
	for y := 0; y < img.H; y++ {
		row := tex.pix[(y0+y)%tex.h*tex.w*3:]
		for x, tx := range txs {
			t := row[tx : tx+3]
			i := (y*img.W + x) * img.C
			if img.C == 1 {
				f := 0.2989*float64(t[2]) + 0.5870*float64(t[1]) + 0.1140*float64(t[0])
				out.Pix[i] = min(max(a*(img.Pix[i]*255)+b*f, 0), 255) / 255
				continue
			}
			for c := 0; c < 3; c++ {
				out.Pix[i+c] = min(max(a*(img.Pix[i+c]*255)+b*float64(t[c]), 0), 255) / 255
			}
		}
	}
	return out
}
