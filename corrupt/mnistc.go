package corrupt

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
)

// MNIST-C (Mu & Gilmer 2019; google-research/mnist-c corruptions.py at commit bba57e4c): 15
// corruptions of 28×28 grayscale digits, each at one fixed severity, the default argument of its
// function. The functions below follow the reference step by step on float64 planes in [0, 1]
// (the reference's np.array(x)/255.) and write the reference's own output, float32 in [0, 255].
//
// Quirks of the reference that are reproduced on purpose:
//
//   - glass_blur: gaussian(x, sigma, multichannel=True) on a 2-D array treats the columns as
//     channels, so both blurs run along axis 0 only (vertically). The intermediate image is
//     truncated to uint8. Each visited pixel is swapped with probability 0.5
//     (np.random.choice([True, False])), and the offsets come from randint(−1, 1), whose upper
//     bound is exclusive: dx, dy ∈ {−1, 0}.
//   - shear: scikit-image 0.19's AffineTransform(shear=s) matrix [[1, −sin s], [0, cos s]];
//     0.21 changed it.
//   - dotted_line: line_from_points(0, r0, 27, r1) zeroes column 27 (corruption[:, 27:] = 0),
//     so the last visible dash is the single column 26.
//   - zigzag: the last vertex is (d, r_i/(2·(d − max_c))) as written in the reference.
//   - np.int in line_from_points (which fails on NumPy ≥ 1.24) is plain integer conversion here.
//   - motion_blur: ImageMagick 6 MotionBlurImage (width 2·ceil(radius)+1, one-sided Gaussian,
//     offsets ceil(i·cos θ − 0.5), ceil(i·sin θ − 0.5), edge pixels repeated) on the 8-bit PNG
//     of the input, with Q16 rounding and the 8-bit PNG of the result, whose encoder truncates.
//   - fog: the plasma fractal is defined at 256×256 and cropped to the top-left 28×28 after
//     normalising by the minimum and maximum of the whole 256×256 map (computed here without
//     evaluating most of the finest level; see mcPlasmaCrop).
//   - spatter: only the "mud" branch exists in MNIST-C's version (colour 63/255).
//   - brightness: on a gray image the HSV round trip is exactly clip(x + 0.5).
//
// Random draws do not reproduce NumPy's streams (no canonical seed exists); each function takes
// its random inputs either from rng or, in the mc…With variants, as explicit arguments, which the
// tests fill with the draws the reference made (testdata/mnistc/README.md).

const (
	mnistcSide   = 28
	mnistcPixels = mnistcSide * mnistcSide
	mnistcCenter = 13.5 // the fixed point of MNIST-C's affine corruptions
)

func init() {
	mustRegister(NewSuite("mnist-c", Round, mnistcSide, mnistcList()))
}

// mnistcList returns the MNIST-C suite as Corruptions. A corruption's only severity is the
// reference function's default; functions without a severity parameter (stripe, dotted_line,
// zigzag, canny_edges) use 0, the severity term stats.json's seed rule gives them.
func mnistcList() []Corruption {
	list := make([]Corruption, len(mnistcCorruptions))
	for i, c := range mnistcCorruptions {
		list[i] = Corruption{
			Name:       c.name,
			Severities: []int{c.severity},
			Random:     c.random,
			Apply:      mnistcFunc(c.apply),
		}
	}
	return list
}

// mnistcFunc adapts an MNIST-C function to Func: it checks that the image is 28×28 grey (the
// reference hard-codes that size in several places), runs f on it and returns f's float32 output
// converted with mcUnit.
func mnistcFunc(f func(dst []float32, src []float64, rng *rand.Rand)) Func {
	return func(img Image, _ int, rng *rand.Rand, _ *Options) (Image, error) {
		if img.H != mnistcSide || img.W != mnistcSide || img.C != 1 || len(img.Pix) != mnistcPixels {
			return Image{}, fmt.Errorf("corrupt: mnist-c needs 28x28 grey images, not %dx%dx%d: resize to 28x28 and convert to one channel first",
				img.H, img.W, img.C)
		}
		var dst [mnistcPixels]float32
		f(dst[:], img.Pix, rng)
		out := NewImage(mnistcSide, mnistcSide, 1)
		for i, v := range dst {
			out.Pix[i] = mcUnit(v)
		}
		return out, nil
	}
}

// mcUnit returns the Image value (0..1 scale) for the reference's float32 output f (0..255
// scale): f/255, moved by the fewest float64 steps needed for Round's RoundToEven(v·255) to give
// the reference's np.round(f). The step matters for ties: brightness, for one, outputs exact
// halves (x + 127.5), which float32 holds exactly and which f/255·255 may miss by an ulp.
func mcUnit(f float32) float64 {
	want := math.RoundToEven(float64(f))
	v := float64(f) / 255
	for i := 0; i < 16 && math.RoundToEven(v*255) != want; i++ {
		v = math.Nextafter(v, want/255)
	}
	return v
}

// mnistcCorruption is one entry of the MNIST-C suite.
type mnistcCorruption struct {
	name     string
	severity int  // the reference function's default severity; 0 when it has none
	random   bool // whether the function draws random numbers
	// apply writes the corruption of src (28×28, [0, 1]) to dst (28×28, the reference's float32
	// output in [0, 255]), drawing its random inputs from rng.
	apply func(dst []float32, src []float64, rng *rand.Rand)
}

// mnistcCorruptions lists the 15 MNIST-C corruptions in the order of corruptions.py's CORRUPTIONS
// (identity excluded).
var mnistcCorruptions = [...]mnistcCorruption{
	{"shot_noise", 5, true, mcShotNoise},
	{"impulse_noise", 4, true, mcImpulseNoise},
	{"glass_blur", 1, true, mcGlassBlur},
	{"motion_blur", 1, true, mcMotionBlur},
	{"shear", 2, true, mcShear},
	{"scale", 3, false, mcScale},
	{"rotate", 2, true, mcRotate},
	{"brightness", 5, false, mcBrightness},
	{"translate", 3, true, mcTranslate},
	{"stripe", 0, false, mcStripe},
	{"fog", 5, true, mcFog},
	{"spatter", 4, true, mcSpatter},
	{"dotted_line", 0, true, mcDottedLine},
	{"zigzag", 0, true, mcZigzag},
	{"canny_edges", 0, false, mcCannyEdges},
}

// mcStore writes the values of src (the reference's [0, 1] scale) to dst as the reference does
// at the end of each function: np.clip(x, 0, 1) * 255, then astype(np.float32).
func mcStore(dst []float32, src []float64) {
	for i, v := range src {
		dst[i] = float32(min(max(v, 0), 1) * 255)
	}
}

// mcRand is a small, fast generator (wyrand) seeded from the caller's rng. The heavy loops (fog's
// 16 383 plasma uniforms, glass blur's swap bits, the noises) draw from it to avoid an interface
// call per number.
type mcRand struct{ s uint64 }

func newMCRand(rng *rand.Rand) mcRand { return mcRand{rng.Uint64()} }

func (r *mcRand) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// float64 returns a uniform number in [0, 1).
func (r *mcRand) float64() float64 { return float64(r.next()>>11) * 0x1p-53 }

// ---------------------------------------------------------------- noise

// mcShotLambda is shot_noise's λ at severity 5.
const mcShotLambda = 3.0

// mcShotLimit[l] is exp(−λ·l/255), the stopping bound of Knuth's Poisson sampler for the 8-bit
// level l.
var mcShotLimit = sync.OnceValue(func() *[256]float64 {
	var t [256]float64
	for l := range t {
		t[l] = math.Exp(-mcShotLambda * float64(l) / 255)
	}
	return &t
})

// mcShotNoise is shot_noise at severity 5: Poisson(3x)/3, clipped.
func mcShotNoise(dst []float32, src []float64, rng *rand.Rand) {
	r := newMCRand(rng)
	limits := mcShotLimit()
	var out [mnistcPixels]float64
	for i, v := range src {
		var limit float64
		if l := v * 255; l == math.Trunc(l) && l >= 0 && l <= 255 {
			limit = limits[int(l)] // inputs read from bytes: no exp per pixel
		} else {
			limit = math.Exp(-mcShotLambda * v)
		}
		out[i] = float64(r.poisson(limit)) / mcShotLambda
	}
	mcStore(dst, out[:])
}

// poisson draws from Poisson(λ) by Knuth's product of uniforms, given limit = exp(−λ); λ is at
// most 3 here, so about λ+1 uniforms are drawn.
func (r *mcRand) poisson(limit float64) int {
	if limit >= 1 {
		return 0
	}
	k := 0
	for p := r.float64(); p > limit; p *= r.float64() {
		k++
	}
	return k
}

// mcImpulseNoise is impulse_noise at severity 4: skimage.util.random_noise(mode='s&p',
// amount=0.17), each pixel replaced with probability 0.17 by 1 or 0 with equal odds.
func mcImpulseNoise(dst []float32, src []float64, rng *rand.Rand) {
	const amount = 0.17
	r := newMCRand(rng)
	var out [mnistcPixels]float64
	for i, v := range src {
		u := r.next()
		if float64(u>>11)*0x1p-53 < amount {
			v = float64(u & 1) // salt or pepper from the lowest bit
		}
		out[i] = v
	}
	mcStore(dst, out[:])
}

// ---------------------------------------------------------------- blurs

// mcGlassPasses, mcGlassSigma: glass_blur severity 1 is (sigma 0.7, max_delta 1, 2 iterations).
const (
	mcGlassPasses = 2
	mcGlassSigma  = 0.7
	// mcGlassVisits is the number of pixels the swap loops visit: h and w run from 27 down to 2.
	mcGlassVisits = mcGlassPasses * (mnistcSide - 2) * (mnistcSide - 2)
)

// Glass-blur swap codes, one per visited pixel: bit 0 set means swap; then bit 1 set means
// dx = −1 (else 0) and bit 2 set means dy = −1 (else 0).
const (
	mcSwap   = 1
	mcSwapDX = 2
	mcSwapDY = 4
)

// mcGlassBlur is glass_blur at severity 1 with random swap codes.
func mcGlassBlur(dst []float32, src []float64, rng *rand.Rand) {
	var codes [mcGlassVisits]uint8
	r := newMCRand(rng)
	for i := 0; i < len(codes); {
		u := r.next()
		for j := 0; j < 21 && i < len(codes); j++ { // 3 bits per visit, 21 visits per draw
			codes[i] = uint8(u & 7)
			u >>= 3
			i++
		}
	}
	mcGlassBlurWith(dst, src, codes[:])
}

// mcGlassBlurWith is glass_blur at severity 1 with the given swap codes (mcGlassVisits of them, in
// the reference's visiting order: pass, then h = 27…2, then w = 27…2):
// vertical Gaussian blur (σ 0.7, mode nearest) → uint8 by truncation → swaps → vertical blur.
func mcGlassBlurWith(dst []float32, src []float64, codes []uint8) {
	k := gaussKernel(mcGlassSigma, 4)
	var a, b [mnistcPixels]float64
	mcCorrelate(a[:], src, mnistcSide, mnistcSide, k, 0, mcBorderNearest)
	var u8 [mnistcPixels]uint8
	for i, v := range a {
		u8[i] = uint8(v * 255) // np.uint8 truncates; v is in [0, 1]
	}
	// Offset of the swap partner for each code: 0 (a no-op swap) when the swap bit is clear.
	var delta [8]int
	for c := range delta {
		if c&mcSwap == 0 {
			continue
		}
		if c&mcSwapDX != 0 {
			delta[c]--
		}
		if c&mcSwapDY != 0 {
			delta[c] -= mnistcSide
		}
	}
	n := 0
	for range mcGlassPasses {
		for h := mnistcSide - 1; h > 1; h-- {
			for w := mnistcSide - 1; w > 1; w-- {
				p := h*mnistcSide + w
				q := p + delta[codes[n]&7]
				n++
				u8[p], u8[q] = u8[q], u8[p]
			}
		}
	}
	for i, v := range u8 {
		a[i] = float64(v) / 255
	}
	mcCorrelate(b[:], a[:], mnistcSide, mnistcSide, k, 0, mcBorderNearest)
	mcStore(dst, b[:])
}

// mcMotionRadius, mcMotionSigma: motion_blur severity 1 is (radius 10, sigma 3).
const (
	mcMotionRadius = 10
	mcMotionSigma  = 3
)

// mcMotionBlur is motion_blur at severity 1 with the angle drawn from U(−45°, 45°).
func mcMotionBlur(dst []float32, src []float64, rng *rand.Rand) {
	mcMotionBlurWith(dst, src, -45+90*rng.Float64())
}

// mcMotionBlurWith is motion_blur at severity 1 for angle (degrees), as ImageMagick 6's
// MotionBlurImage computes it on the image's 8-bit levels (the PNG the reference writes): the
// output pixel (x, y) is Σ k_i · in(x + ox_i, y + oy_i) over the 21 taps of newMotionKernel,
// k_i ∝ exp(−i²/(2σ²)), ox_i = ceil(i·cos θ − 0.5), oy_i = ceil(i·sin θ − 0.5), coordinates
// clamped to the image (ImageMagick's edge virtual pixels); the sum is rounded half up to a
// 16-bit quantum q (ClampToQuantum), and the 8-bit PNG that the reference decodes holds
// floor(q/257). That truncation was measured, not read: ImageMagick 6.9.11-60 Q16 writing PNG
// (Wand or convert) gives floor(q/257) on all 12 544 pixels of the 16 test images at the seed-0
// angles, while the rounding ScaleQuantumToChar(q) differs on 33 % of them
// (scripts/gen_mnistc_motion.py, testdata/mnistc/motion_blur_seed0.npy).
func mcMotionBlurWith(dst []float32, src []float64, angle float64) {
	mk := newMotionKernel(mcMotionRadius, mcMotionSigma, angle)
	var in, acc [mnistcPixels]float64
	for i, v := range src {
		in[i] = math.Round(min(max(v, 0), 1)*255) * 257 // 8-bit level as a Q16 quantum
	}
	// Accumulate tap by tap (the per-pixel order of the sum is the taps' order, as in
	// ImageMagick), with the clamped column of every x precomputed per tap.
	var xs [mnistcSide]int
	for i, wt := range mk.w {
		for x := range xs {
			xs[x] = min(max(x+mk.ox[i], 0), mnistcSide-1)
		}
		for y := 0; y < mnistcSide; y++ {
			yy := min(max(y+mk.oy[i], 0), mnistcSide-1)
			row := in[yy*mnistcSide : yy*mnistcSide+mnistcSide]
			a := acc[y*mnistcSide : y*mnistcSide+mnistcSide]
			for x, sx := range xs {
				a[x] += wt * row[sx]
			}
		}
	}
	for i, s := range acc {
		q := uint32(min(max(s+0.5, 0), 65535)) // ClampToQuantum
		dst[i] = float32(q / 257)              // the 8-bit PNG encoder truncates
	}
}

// ---------------------------------------------------------------- geometry

// mcWarp applies the inverse map m and stores the result.
func mcWarp(dst []float32, src []float64, m affine) {
	var out [mnistcPixels]float64
	warpBilinear(out[:], src, mnistcSide, mnistcSide, m)
	mcStore(dst, out[:])
}

// mcSign draws np.random.choice([-1, 1]).
func mcSign(rng *rand.Rand) int {
	if rng.Uint64()&1 == 0 {
		return -1
	}
	return 1
}

// mcShear is shear at severity 2: shear angle 0.4 rad with a random sign.
func mcShear(dst []float32, src []float64, rng *rand.Rand) { mcShearWith(dst, src, mcSign(rng)) }

// mcShearWith is shear at severity 2 with the given sign (±1).
func mcShearWith(dst []float32, src []float64, sign int) {
	mcWarp(dst, src, shearAffine(0.4*float64(sign), mnistcCenter))
}

// mcRotate is rotate at severity 2: 0.4 rad with a random sign.
func mcRotate(dst []float32, src []float64, rng *rand.Rand) { mcRotateWith(dst, src, mcSign(rng)) }

// mcRotateWith is rotate at severity 2 with the given sign (±1).
func mcRotateWith(dst []float32, src []float64, sign int) {
	mcWarp(dst, src, rotateAffine(0.4*float64(sign), mnistcCenter))
}

// mcScale is scale at severity 3: inverse scale 1/0.7, the content shrunk to 70 % about the
// centre. It draws nothing from rng.
func mcScale(dst []float32, src []float64, _ *rand.Rand) {
	mcWarp(dst, src, scaleAffine(1/0.7, mnistcCenter))
}

// mcTranslate is translate at severity 3: 3 px along each axis, each sign random.
func mcTranslate(dst []float32, src []float64, rng *rand.Rand) {
	sx := mcSign(rng)
	mcTranslateWith(dst, src, sx, mcSign(rng))
}

// mcTranslateWith is translate at severity 3 with the given signs (±1): the inverse map adds
// (3·sx, 3·sy), so the content moves by (−3·sx, −3·sy).
func mcTranslateWith(dst []float32, src []float64, sx, sy int) {
	mcWarp(dst, src, translateAffine(3*float64(sx), 3*float64(sy)))
}

// ---------------------------------------------------------------- digital

// mcBrightness is brightness at severity 5: +0.5 on V in HSV, which on a gray image is exactly
// clip(x + 0.5).
func mcBrightness(dst []float32, src []float64, _ *rand.Rand) {
	for i, v := range src {
		dst[i] = float32(min(max(v+0.5, 0), 1) * 255)
	}
}

// mcStripe is stripe: the columns 0–6 and 21–27 inverted (255 − x).
func mcStripe(dst []float32, src []float64, _ *rand.Rand) {
	for i, v := range src {
		x := float32(min(max(v, 0), 1) * 255)
		if c := i % mnistcSide; c < 7 || c >= 21 {
			x = 255 - x
		}
		dst[i] = x
	}
}

// mcCannyEdges is canny_edges: skimage.feature.canny with its defaults, edges 255, else 0.
func mcCannyEdges(dst []float32, src []float64, _ *rand.Rand) {
	var e [mnistcPixels]float64
	var scratch [cannyScratch * mnistcPixels]float64
	cannyEdges(e[:], src, mnistcSide, mnistcSide, 1, 0.1, 0.2, scratch[:])
	for i, v := range e {
		dst[i] = float32(v * 255)
	}
}

// ---------------------------------------------------------------- weather

// Fog at severity 5: strength 3, plasma wibble decay 1.4, plasma computed at 256×256.
const (
	mcFogStrength = 3.0
	mcFogDecay    = 1.4
	mcFogMapSize  = 256
)

// mcFogCoarse is the side of the even-coordinate grid of the 256×256 plasma map: all points
// except the last diamond-square level.
const mcFogCoarse = mcFogMapSize / 2

// mcCoarseMaps keeps coarse plasma grids (128 KiB each) for reuse: a bounded free list rather
// than a sync.Pool, which is emptied at every garbage collection.
var mcCoarseMaps = make(chan *[mcFogCoarse * mcFogCoarse]float64, 32)

// mcFog is fog at severity 5 with a random plasma fractal.
func mcFog(dst []float32, src []float64, rng *rand.Rand) {
	var p [mnistcPixels]float64
	r := newMCRand(rng)
	mcPlasmaCrop(p[:], &r)
	mcFogWith(dst, src, p[:])
}

// mcFogWith is fog at severity 5 with the given normalised plasma crop (28×28, [0, 1]):
// x + 3·P, scaled by max(x)/(max(x) + 3), clipped.
func mcFogWith(dst []float32, src []float64, plasma []float64) {
	mx := 0.0
	for _, v := range src {
		mx = max(mx, v)
	}
	var out [mnistcPixels]float64
	for i, v := range src {
		out[i] = (v + mcFogStrength*plasma[i]) * mx / (mx + mcFogStrength)
	}
	mcStore(dst, out[:])
}

// mcPlasmaCrop writes to dst the top-left 28×28 of MNIST-C's plasma_fractal(mapsize=256,
// wibbledecay=1.4), normalised by the minimum and maximum of the whole 256×256 map, as the
// reference computes them: the diamond-square algorithm with wrap-around neighbours (np.roll),
// wibble starting at 100 and divided by the decay after each level, each new point the mean of its
// four neighbours plus wibble·U(−wibble, wibble).
//
// The result is that of the full computation, but most of the finest level is never computed.
// The first seven levels (the points with even coordinates, a 128×128 diamond-square grid) are
// computed in full, drawing from r in the reference's order. A point of the last level is within
// 1.5·A of the largest (smallest) even-coordinate point around it, A = wibble² being the noise
// bound of that level, so the last level is evaluated only in the 8×8-cell blocks where it could
// reach beyond the current minimum or maximum, and in the crop. Its noise is therefore drawn per
// point from a counter-based generator (mcHashUniform of the point's index), so that skipping
// points does not change the others. The values are identically distributed to the reference's.
func mcPlasmaCrop(dst []float64, r *mcRand) {
	const (
		n     = mcFogCoarse
		block = 4 // cells per block side
		nb    = n / block
	)
	var ep *[n * n]float64
	select {
	case ep = <-mcCoarseMaps:
	default:
		ep = new([n * n]float64)
	}
	defer func() {
		select {
		case mcCoarseMaps <- ep:
		default:
		}
	}()
	e := ep[:]
	wibble := 100.0
	mcPlasmaLevels(e, n, &wibble, r)
	key := r.next()

	// Minimum and maximum of the coarse points per block of block×block cells, and overall.
	var bmax, bmin [nb * nb]float64
	for bi := 0; bi < nb; bi++ {
		for bj := 0; bj < nb; bj++ {
			bl, bh := math.Inf(1), math.Inf(-1)
			for i := bi * block; i < (bi+1)*block; i++ {
				for _, v := range e[i*n+bj*block : i*n+(bj+1)*block] {
					bl, bh = min(bl, v), max(bh, v)
				}
			}
			bmin[bi*nb+bj], bmax[bi*nb+bj] = bl, bh
		}
	}
	lo, hi := slices.Min(bmin[:]), slices.Max(bmax[:])

	// The last level: for cell (i, j) of the coarse grid, the square centre Q at (2i+1, 2j+1) and
	// the diamonds D1 at (2i, 2j+1) and D2 at (2i+1, 2j) of the 256×256 map.
	pl := mcPlasmaLast{e: e, key: key, amp: wibble * wibble}
	cell := func(i, j int) (q, d1, d2 float64) {
		q, d1, d2 = pl.cell(i, j)
		lo = min(lo, q, d1, d2)
		hi = max(hi, q, d1, d2)
		return q, d1, d2
	}

	// The crop: rows and columns 0..27 are the cells 0..13 and the coarse points 0..13.
	const cc = mnistcSide / 2
	var crop [mnistcPixels]float64
	for i := 0; i < cc; i++ {
		for j := 0; j < cc; j++ {
			q, d1, d2 := cell(i, j)
			y, x := 2*i, 2*j
			crop[y*mnistcSide+x] = e[i*n+j]
			crop[y*mnistcSide+x+1] = d1
			crop[(y+1)*mnistcSide+x] = d2
			crop[(y+1)*mnistcSide+x+1] = q
		}
	}

	// Every point of cell (i, j) lies within 1.5·amp of the coarse points in rows i−1..i+1 and
	// columns j−1..j+1 (a square centre is the mean of four of them plus less than amp; a diamond
	// the mean of two such centres and two of them plus less than amp). Blocks of cells whose
	// neighbourhood stays 1.5·amp inside [lo, hi] are skipped, then single cells the same way.
	// Skipping is safe because lo and hi only move outwards.
	margin := 1.5*pl.amp + 1e-9*(math.Abs(lo)+math.Abs(hi)+pl.amp) // plus rounding slack
	for bi := 0; bi < nb; bi++ {
		for bj := 0; bj < nb; bj++ {
			bl, bh := math.Inf(1), math.Inf(-1)
			for di := -1; di <= 1; di++ {
				for dj := -1; dj <= 1; dj++ {
					k := ((bi+di)&(nb-1))*nb + (bj+dj)&(nb-1)
					bl, bh = min(bl, bmin[k]), max(bh, bmax[k])
				}
			}
			if bh+margin < hi && bl-margin > lo {
				continue
			}
			for i := bi * block; i < (bi+1)*block; i++ {
				for j := bj * block; j < (bj+1)*block; j++ {
					if i < cc && j < cc {
						continue // in the crop: done above
					}
					cl, ch := pl.around(i, j)
					if ch+margin < hi && cl-margin > lo {
						continue
					}
					cell(i, j)
				}
			}
		}
	}
	scale := hi - lo
	for i, v := range crop {
		dst[i] = (v - lo) / scale
	}
}

// mcPlasmaLast evaluates points of the last plasma level from the coarse grid e (mcFogCoarse²).
type mcPlasmaLast struct {
	e   []float64
	key uint64  // of the counter-based noise
	amp float64 // the level's noise bound, wibble²
}

// at returns the coarse point (i, j), wrapping around.
func (p *mcPlasmaLast) at(i, j int) float64 {
	const n = mcFogCoarse
	return p.e[(i&(n-1))*n+j&(n-1)]
}

// noise returns the noise of the map point (y, x): amp·U(−1, 1).
func (p *mcPlasmaLast) noise(y, x int) float64 {
	return -p.amp + 2*p.amp*mcHashUniform(p.key, uint64(y*mcFogMapSize+x))
}

// square returns the square centre of cell (i, j), at (2i+1, 2j+1) of the map.
func (p *mcPlasmaLast) square(i, j int) float64 {
	s := (p.at(i, j) + p.at(i+1, j)) + (p.at(i, j+1) + p.at(i+1, j+1))
	return s/4 + p.noise((2*i+1)&(mcFogMapSize-1), (2*j+1)&(mcFogMapSize-1))
}

// cell returns the three last-level points of cell (i, j): the square centre q and the diamonds
// d1 at (2i, 2j+1) and d2 at (2i+1, 2j), summed in the reference's order.
func (p *mcPlasmaLast) cell(i, j int) (q, d1, d2 float64) {
	q = p.square(i, j)
	d1 = ((q+p.square(i-1, j))+(p.at(i, j)+p.at(i, j+1)))/4 + p.noise(2*i, 2*j+1)
	d2 = ((q+p.square(i, j-1))+(p.at(i, j)+p.at(i+1, j)))/4 + p.noise(2*i+1, 2*j)
	return q, d1, d2
}

// around returns the minimum and maximum of the coarse points in rows i−1..i+1 and columns
// j−1..j+1, on which the points of cell (i, j) depend.
func (p *mcPlasmaLast) around(i, j int) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for di := -1; di <= 1; di++ {
		for dj := -1; dj <= 1; dj++ {
			v := p.at(i+di, j+dj)
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	return lo, hi
}

// mcPlasmaLevels runs the diamond-square levels of plasma_fractal on the size×size map m (size a
// power of two), from step size down to step 2, starting with the given wibble and leaving in it
// the wibble of the next level. Uniforms come from r in the reference's order (per level: square
// centres, then the diamonds on the corner rows, then those on the centre rows, each row-major).
func mcPlasmaLevels(m []float64, size int, wibble *float64, r *mcRand) {
	m[0] = 0
	rs := r.s // r's state, kept local so that the draws below inline (as r.float64 would)
	mask := size - 1
	for step := size; step >= 2; step /= 2 {
		half := step / 2
		n := size / step
		base, span := -*wibble**wibble, 2**wibble**wibble
		// Squares: centre = mean of the four corners + noise.
		for i := 0; i < n; i++ {
			y0 := i * step
			r0, r1, rc := y0*size, (y0+step)&mask*size, (y0+half)*size
			for c0 := 0; c0 < size; c0 += step {
				c1 := (c0 + step) & mask
				s := (m[r0+c0] + m[r1+c0]) + (m[r0+c1] + m[r1+c1])
				rs += 0xa0761d6478bd642f
				h64, l64 := bits.Mul64(rs, rs^0xe7037ed1a0b428db)
				m[rc+c0+half] = s/4 + (base + span*(float64((h64^l64)>>11)*0x1p-53))
			}
		}
		// Diamonds on the corner rows: centres above and below, corners left and right.
		for i := 0; i < n; i++ {
			y0 := i * step
			rr, rd, ru := y0*size, (y0+half)*size, ((y0-half)&mask)*size
			for c0 := 0; c0 < size; c0 += step {
				c1 := (c0 + step) & mask
				s := (m[rd+c0+half] + m[ru+c0+half]) + (m[rr+c0] + m[rr+c1])
				rs += 0xa0761d6478bd642f
				h64, l64 := bits.Mul64(rs, rs^0xe7037ed1a0b428db)
				m[rr+c0+half] = s/4 + (base + span*(float64((h64^l64)>>11)*0x1p-53))
			}
		}
		// Diamonds on the centre rows: centres left and right, corners above and below.
		for i := 0; i < n; i++ {
			y0 := i * step
			rc, r0, r1 := (y0+half)*size, y0*size, ((y0+step)&mask)*size
			for c0 := 0; c0 < size; c0 += step {
				cl := (c0 - half) & mask
				s := (m[rc+c0+half] + m[rc+cl]) + (m[r0+c0] + m[r1+c0])
				rs += 0xa0761d6478bd642f
				h64, l64 := bits.Mul64(rs, rs^0xe7037ed1a0b428db)
				m[rc+c0] = s/4 + (base + span*(float64((h64^l64)>>11)*0x1p-53))
			}
		}
		*wibble /= mcFogDecay
	}
	r.s = rs
}

// mcHashUniform returns a uniform number in [0, 1) determined by key and i (SplitMix64's
// finaliser of key + i·golden ratio): a counter-based generator, so that any subset of the
// numbers can be drawn in any order.
func mcHashUniform(key, i uint64) float64 {
	z := key + i*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) * 0x1p-53
}

// Spatter at severity 4: (loc 0.65, scale 0.3, sigma 1, threshold 0.65, sigma 1.5, mud).
const (
	mcSpatterLoc    = 0.65
	mcSpatterScale  = 0.3
	mcSpatterSigma  = 1.0
	mcSpatterThresh = 0.65
	mcSpatterSigma2 = 1.5
	mcSpatterColor  = 63.0 / 255
)

// mcSpatter is spatter at severity 4 with a random liquid layer.
func mcSpatter(dst []float32, src []float64, rng *rand.Rand) {
	var layer [mnistcPixels]float64
	for i := range layer {
		layer[i] = mcSpatterLoc + mcSpatterScale*rng.NormFloat64()
	}
	mcSpatterWith(dst, src, layer[:])
}

// mcSpatterWith is spatter at severity 4 with the given liquid layer (28×28, drawn from
// N(0.65, 0.3)): blur (σ 1, mode nearest) → mask of values > 0.65 → blur (σ 1.5) → zero below
// 0.8 → x·(1 − m) + 63/255·m.
func mcSpatterWith(dst []float32, src []float64, layer []float64) {
	var a, b [mnistcPixels]float64
	mcGaussNearest(a[:], b[:], layer, mnistcSide, mnistcSide, mcSpatterSigma)
	for i, v := range a {
		if v > mcSpatterThresh {
			a[i] = 1
		} else {
			a[i] = 0
		}
	}
	var m [mnistcPixels]float64
	mcGaussNearest(m[:], b[:], a[:], mnistcSide, mnistcSide, mcSpatterSigma2)
	var out [mnistcPixels]float64
	for i, v := range src {
		mv := m[i]
		if mv < 0.8 {
			mv = 0
		}
		out[i] = v*(1-mv) + mcSpatterColor*mv
	}
	mcStore(dst, out[:])
}

// ---------------------------------------------------------------- lines

// mcDottedLine is dotted_line with random end rows r0, r1 ∈ [0, 26] (randint(0, 27)).
func mcDottedLine(dst []float32, src []float64, rng *rand.Rand) {
	r0 := rng.IntN(27)
	mcDottedLineWith(dst, src, r0, rng.IntN(27))
}

// mcDottedLineWith is dotted_line from (column 0, row r0) to (column 27, row r1).
func mcDottedLineWith(dst []float32, src []float64, r0, r1 int) {
	var out [mnistcPixels]float64
	copy(out[:], src)
	addLine(out[:], mnistcSide, mnistcSide, 0, float64(r0), 27, float64(r1), dottedKeep)
	mcStore(dst, out[:])
}

// mcZigzag is zigzag with a random start row r0 ∈ [0, 26] and end-row offset dr ∈ [−5, 4].
func mcZigzag(dst []float32, src []float64, rng *rand.Rand) {
	r0 := rng.IntN(27)
	mcZigzagWith(dst, src, r0, rng.IntN(10)-5)
}

// mcZigzagWith is zigzag from row r0 at column 2 towards row r0+dr at column 25.
func mcZigzagWith(dst []float32, src []float64, r0, dr int) {
	var out [mnistcPixels]float64
	copy(out[:], src)
	cs, rs := zigzagPoints(r0, dr)
	for i := 1; i < len(cs); i++ {
		addLine(out[:], mnistcSide, mnistcSide, cs[i-1], rs[i-1], cs[i], rs[i], nil)
	}
	mcStore(dst, out[:])
}

// ---------------------------------------------------------------- Gaussian filters

// mcBorder is how mcCorrelate reads outside the image.
type mcBorder int

const (
	mcBorderNearest mcBorder = iota // repeat the edge value (scipy mode 'nearest')
	mcBorderZero                    // zeros (scipy mode 'constant', cval 0)
)

// mcCorrelate filters src (w×h, row-major) along one axis (0: down the columns, 1: along the
// rows) with the odd, symmetric kernel k, reading outside the image by mode b, and writes dst
// (which must not overlap src). It sums as scipy's correlate1d does for symmetric kernels, centre
// tap first, then the pairs from the outermost in, so that results agree with scipy to the last
// bit in most cases; glass_blur truncates the blurred image to uint8, where the order matters.
func mcCorrelate(dst, src []float64, w, h int, k []float64, axis int, b mcBorder) {
	rad := len(k) / 2
	n, lines, step, stride := w, h, 1, w // axis 1: lines are rows
	if axis == 0 {
		n, lines, step, stride = h, w, w, 1
	}
	var lineBuf [64]float64
	line := lineBuf[:0]
	if n+2*rad > len(lineBuf) {
		line = make([]float64, n+2*rad)
	}
	line = line[:n+2*rad]
	for l := 0; l < lines; l++ {
		base := l * stride
		for i := range n {
			line[rad+i] = src[base+i*step]
		}
		lo, hi := 0.0, 0.0
		if b == mcBorderNearest {
			lo, hi = line[rad], line[rad+n-1]
		}
		for i := range rad {
			line[i], line[rad+n+i] = lo, hi
		}
		for i := range n {
			p := line[i : i+2*rad+1]
			s := p[rad] * k[rad]
			for j := rad; j >= 1; j-- {
				s += (p[rad-j] + p[rad+j]) * k[rad-j]
			}
			dst[base+i*step] = s
		}
	}
}

// mcGaussNearest is skimage.filters.gaussian(src, sigma) on a 2-D array: scipy gaussian_filter
// with mode 'nearest' and truncate 4, axis 0 then axis 1. tmp is scratch of the same size.
func mcGaussNearest(dst, tmp, src []float64, w, h int, sigma float64) {
	k := gaussKernel(sigma, 4)
	mcCorrelate(tmp, src, w, h, k, 0, mcBorderNearest)
	mcCorrelate(dst, tmp, w, h, k, 1, mcBorderNearest)
}
