package corrupt

import (
	"math/rand/v2"
)

// The "cifar10-c" suite: make_cifar_c.py of hendrycks/robustness (commit 8190fe32), the
// parameters CIFAR-10-C and CIFAR-100-C were made with. The reference only handles 32×32 RGB
// images; other sizes and grey images run the same steps with the image's own size (see doc.go).

// severities15 is the severity list of the ImageNet-C family.
var severities15 = []int{1, 2, 3, 4, 5}

// pick returns table[severity-1].
func pick[T any](table []T, severity int) T { return table[severity-1] }

// cifarSnow holds make_cifar_c's snow parameters.
var cifarSnow = []snowParams{
	{0.1, 0.2, 1, 0.6, 8, 3, 0.95},
	{0.1, 0.2, 1, 0.5, 10, 4, 0.9},
	{0.15, 0.3, 1.75, 0.55, 10, 4, 0.9},
	{0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
	{0.3, 0.3, 1.25, 0.65, 14, 12, 0.8},
}

// cifarSpatter holds make_cifar_c's spatter parameters.
var cifarSpatter = []spatterParams{
	{0.62, 0.1, 0.7, 0.7, 0.5, false},
	{0.65, 0.1, 0.8, 0.7, 0.5, false},
	{0.65, 0.3, 1, 0.69, 0.5, false},
	{0.65, 0.1, 0.7, 0.69, 0.6, true},
	{0.65, 0.1, 0.5, 0.68, 0.6, true},
}

// cifarElastic holds make_cifar_c's elastic_transform parameters (×32, its IMSIZE).
var cifarElastic = []elasticParams{
	{32 * 0, 32 * 0, 32 * 0.08},
	{32 * 0.05, 32 * 0.2, 32 * 0.07},
	{32 * 0.08, 32 * 0.06, 32 * 0.06},
	{32 * 0.1, 32 * 0.04, 32 * 0.05},
	{32 * 0.1, 32 * 0.03, 32 * 0.03},
}

// glassParams are glass_blur's sigma, maximum displacement and number of passes.
type glassParams struct {
	sigma         float64
	delta, passes int
}

// cifarCorruptions is the cifar10-c suite in the order of the released dataset.
var cifarCorruptions = []Corruption{
	{Name: "gaussian_noise", Severities: severities15, Random: true, Apply: gaussianNoiseFunc([]float64{0.04, 0.06, .08, .09, .10})},
	{Name: "shot_noise", Severities: severities15, Random: true, Apply: shotNoiseFunc([]float64{500, 250, 100, 75, 50})},
	{Name: "impulse_noise", Severities: severities15, Random: true, Apply: impulseNoiseFunc([]float64{.01, .02, .03, .05, .07})},
	{Name: "defocus_blur", Severities: severities15, Apply: defocusFunc([][2]float64{{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}})},
	{Name: "glass_blur", Severities: severities15, Random: true, Apply: glassFunc([]glassParams{{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}})},
	{Name: "motion_blur", Severities: severities15, Random: true, Apply: cifarMotion},
	{Name: "zoom_blur", Severities: severities15, Apply: zoomFunc([][2]float64{{1.06, .01}, {1.11, .01}, {1.16, .01}, {1.21, .01}, {1.26, .01}}, true)},
	{Name: "snow", Severities: severities15, Random: true, Apply: snowFunc(cifarSnow, false)},
	{Name: "frost", Severities: severities15, Random: true, Apply: cifarFrost},
	{Name: "fog", Severities: severities15, Random: true, Apply: fogFunc([][2]float64{{.2, 3}, {.5, 3}, {0.75, 2.5}, {1, 2}, {1.5, 1.75}}, false)},
	{Name: "brightness", Severities: severities15, Apply: brightnessFunc([]float64{.05, .1, .15, .2, .3})},
	{Name: "contrast", Severities: severities15, Apply: contrastFunc([]float64{.75, .5, .4, .3, 0.15})},
	{Name: "elastic_transform", Severities: severities15, Random: true, Apply: cifarElasticFunc},
	{Name: "pixelate", Severities: severities15, Apply: pixelateFunc([]float64{0.95, 0.9, 0.85, 0.75, 0.65}, false)},
	{Name: "jpeg_compression", Severities: severities15, Apply: jpegFunc([]int{80, 65, 58, 50, 40})},
	{Name: "speckle_noise", Severities: severities15, Random: true, Apply: speckleNoiseFunc([]float64{.06, .1, .12, .16, .2})},
	{Name: "gaussian_blur", Severities: severities15, Apply: gaussianBlurFunc([]float64{.4, .6, 0.7, .8, 1})},
	{Name: "spatter", Severities: severities15, Random: true, Apply: spatterFunc(cifarSpatter)},
	{Name: "saturate", Severities: severities15, Apply: saturateFunc([][2]float64{{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}})},
}

func init() {
	mustRegister(NewSuite("cifar10-c", Truncate, 1, cifarCorruptions))
}

// ---------------------------------------------------------------- shared Funcs

func gaussianNoiseFunc(sd []float64) Func {
	return func(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
		return addNoise(img, normalDraws(rng, 0, pick(sd, sev)), false).clip01(), nil
	}
}

func speckleNoiseFunc(sd []float64) Func {
	return func(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
		return addNoise(img, normalDraws(rng, 0, pick(sd, sev)), true).clip01(), nil
	}
}

func shotNoiseFunc(lam []float64) Func {
	return func(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
		return shotNoise(img, pick(lam, sev), rng).clip01(), nil
	}
}

func impulseNoiseFunc(amount []float64) Func {
	return func(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
		return impulseNoise(img, impulseDraws(rng, pick(amount, sev))).clip01(), nil
	}
}

func defocusFunc(p [][2]float64) Func {
	return func(img Image, sev int, _ *rand.Rand, _ *Options) (Image, error) {
		c := pick(p, sev)
		return defocusBlur(img, c[0], c[1]).clip01(), nil
	}
}

func glassFunc(p []glassParams) Func {
	return func(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
		c := pick(p, sev)
		return glassBlur(img, c.sigma, c.delta, c.passes, glassOffsets(rng, c.delta)), nil
	}
}

func zoomFunc(p [][2]float64, centred bool) Func {
	return func(img Image, sev int, _ *rand.Rand, _ *Options) (Image, error) {
		c := pick(p, sev)
		return zoomBlur(img, zoomFactors(c[0], c[1]), centred), nil
	}
}

func snowFunc(p []snowParams, imagecorruptions bool) Func {
	return func(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
		c := pick(p, sev)
		field := getScratch(img.H * img.W)
		defer putScratch(field)
		fillNormal(field, rng, c.mean, c.sd)
		angle := uniform(rng, -135, -45)
		layer := snowLayer(field, img.H, img.W, c, angle, imagecorruptions)
		return snow(img, layer, c.blend).clip01(), nil
	}
}

func fogFunc(p [][2]float64, imagecorruptions bool) Func {
	return func(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
		c := pick(p, sev)
		size := max(32, nextPow2(max(img.H, img.W)))
		if imagecorruptions {
			size = nextPow2(max(img.H, img.W, img.C))
		}
		return fog(img, c[0], plasmaFractal(size, c[1], rng.Float64), size).clip01(), nil
	}
}

func brightnessFunc(p []float64) Func {
	return func(img Image, sev int, _ *rand.Rand, _ *Options) (Image, error) {
		return hsvAdjust(img, 1, 0, pick(p, sev)).clip01(), nil
	}
}

func saturateFunc(p [][2]float64) Func {
	return func(img Image, sev int, _ *rand.Rand, _ *Options) (Image, error) {
		c := pick(p, sev)
		return hsvAdjust(img, c[0], c[1], 0).clip01(), nil
	}
}

func contrastFunc(p []float64) Func {
	return func(img Image, sev int, _ *rand.Rand, _ *Options) (Image, error) {
		return contrast(img, pick(p, sev)).clip01(), nil
	}
}

func pixelateFunc(p []float64, nearest bool) Func {
	return func(img Image, sev int, _ *rand.Rand, _ *Options) (Image, error) {
		return pixelate(img, pick(p, sev), nearest), nil
	}
}

func jpegFunc(q []int) Func {
	return func(img Image, sev int, _ *rand.Rand, _ *Options) (Image, error) {
		return jpegRoundTrip(img, pick(q, sev)), nil
	}
}

func gaussianBlurFunc(p []float64) Func {
	return func(img Image, sev int, _ *rand.Rand, _ *Options) (Image, error) {
		return gaussianFilter(img, pick(p, sev), borderNearest, 4).clip01(), nil
	}
}

func spatterFunc(p []spatterParams) Func {
	return func(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
		c := pick(p, sev)
		field := getScratch(img.H * img.W)
		defer putScratch(field)
		fillNormal(field, rng, c.mean, c.sd)
		return spatter(img, field, c).clip01(), nil
	}
}

// ---------------------------------------------------------------- cifar-only Funcs

// cifarMotion is make_cifar_c's motion_blur: ImageMagick's motion blur through Wand with an angle
// drawn from U(−45, 45).
func cifarMotion(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
	c := pick([][2]float64{{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}}, sev)
	return magickMotionBlur(img, c[0], c[1], uniform(rng, -45, 45)), nil
}

// cifarFrost is make_cifar_c's frost: a texture drawn with randint(5), resized by 0.2, cropped at
// (randint(0, th−H), randint(0, tw−W)) and blended as clip(a·x + b·frost, 0, 255).
func cifarFrost(img Image, sev int, rng *rand.Rand, opt *Options) (Image, error) {
	c := pick([][2]float64{{1, 0.2}, {1, 0.3}, {0.9, 0.4}, {0.85, 0.4}, {0.75, 0.45}}, sev)
	t := opt.frost()
	tex := t.cifar(t.pickIndex(rng))
	y0 := randint(rng, 0, tex.h-img.H)
	x0 := randint(rng, 0, tex.w-img.W)
	return frostBlend(img, tex, y0, x0, c[0], c[1]), nil
}

// cifarElasticFunc is make_cifar_c's elastic_transform.
func cifarElasticFunc(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
	c := pick(cifarElastic, sev)
	var jitter [6]float64
	for i := range jitter {
		jitter[i] = uniform(rng, -c.affine, c.affine)
	}
	n := img.H * img.W
	fx, fy := getScratch(n), getScratch(n)
	defer func() { putScratch(fx); putScratch(fy) }()
	for i := range fx {
		fx[i] = uniform(rng, -1, 1)
	}
	for i := range fy {
		fy[i] = uniform(rng, -1, 1)
	}
	return elasticHendrycks(img, c, jitter, fx, fy).clip01(), nil
}
