package corrupt

import "math/rand/v2"

// The "imagenet-c" suite: the ImageNet-C parameters (make_imagenet_c.py of hendrycks/robustness)
// with bethgelab/imagecorruptions' size-generic implementations, so that any image of at least
// 32×32 pixels works. Differences from Hendrycks' ImageNet-C code are imagecorruptions' own; see
// doc.go.

// imagenetSnow holds ImageNet-C's snow parameters.
var imagenetSnow = []snowParams{
	{0.1, 0.3, 3, 0.5, 10, 4, 0.8},
	{0.2, 0.3, 2, 0.5, 12, 4, 0.7},
	{0.55, 0.3, 4, 0.9, 12, 8, 0.7},
	{0.55, 0.3, 4.5, 0.85, 12, 8, 0.65},
	{0.55, 0.3, 2.5, 0.85, 12, 12, 0.55},
}

// imagenetSpatter holds ImageNet-C's spatter parameters.
var imagenetSpatter = []spatterParams{
	{0.65, 0.3, 4, 0.69, 0.6, false},
	{0.65, 0.3, 3, 0.68, 0.6, false},
	{0.65, 0.3, 2, 0.68, 0.5, false},
	{0.65, 0.3, 1, 0.65, 1.5, true},
	{0.67, 0.4, 1, 0.65, 1.5, true},
}

// imagenetCorruptions is the imagenet-c suite in imagecorruptions' order.
var imagenetCorruptions = []Corruption{
	{Name: "gaussian_noise", Severities: severities15, Random: true, Apply: gaussianNoiseFunc([]float64{.08, .12, 0.18, 0.26, 0.38})},
	{Name: "shot_noise", Severities: severities15, Random: true, Apply: shotNoiseFunc([]float64{60, 25, 12, 5, 3})},
	{Name: "impulse_noise", Severities: severities15, Random: true, Apply: impulseNoiseFunc([]float64{.03, .06, .09, 0.17, 0.27})},
	{Name: "defocus_blur", Severities: severities15, Apply: defocusFunc([][2]float64{{3, 0.1}, {4, 0.5}, {6, 0.5}, {8, 0.5}, {10, 0.5}})},
	{Name: "glass_blur", Severities: severities15, Random: true, Apply: glassFunc([]glassParams{{0.7, 1, 2}, {0.9, 2, 1}, {1, 2, 3}, {1.1, 3, 2}, {1.5, 4, 2}})},
	{Name: "motion_blur", Severities: severities15, Random: true, Apply: imagenetMotion},
	{Name: "zoom_blur", Severities: severities15, Apply: zoomFunc([][2]float64{{1.11, .01}, {1.16, .01}, {1.21, .02}, {1.26, .02}, {1.31, .03}}, false)},
	{Name: "snow", Severities: severities15, Random: true, Apply: snowFunc(imagenetSnow, true)},
	{Name: "frost", Severities: severities15, Random: true, Apply: imagenetFrost},
	{Name: "fog", Severities: severities15, Random: true, Apply: fogFunc([][2]float64{{1.5, 2}, {2., 2}, {2.5, 1.7}, {2.5, 1.5}, {3., 1.4}}, true)},
	{Name: "brightness", Severities: severities15, Apply: brightnessFunc([]float64{.1, .2, .3, .4, .5})},
	{Name: "contrast", Severities: severities15, Apply: contrastFunc([]float64{0.4, .3, .2, .1, .05})},
	{Name: "elastic_transform", Severities: severities15, Random: true, Apply: imagenetElastic},
	{Name: "pixelate", Severities: severities15, Apply: pixelateFunc([]float64{0.6, 0.5, 0.4, 0.3, 0.25}, true)},
	{Name: "jpeg_compression", Severities: severities15, Apply: jpegFunc([]int{25, 18, 15, 10, 7})},
	{Name: "speckle_noise", Severities: severities15, Random: true, Apply: speckleNoiseFunc([]float64{.15, .2, 0.35, 0.45, 0.6})},
	{Name: "gaussian_blur", Severities: severities15, Apply: gaussianBlurFunc([]float64{1, 2, 3, 4, 6})},
	{Name: "spatter", Severities: severities15, Random: true, Apply: spatterFunc(imagenetSpatter)},
	{Name: "saturate", Severities: severities15, Apply: saturateFunc([][2]float64{{0.3, 0}, {0.1, 0}, {2, 0}, {5, 0.1}, {20, 0.2}})},
}

func init() {
	mustRegister(NewSuite("imagenet-c", Truncate, 32, imagenetCorruptions))
}

// imagenetMotion is imagecorruptions' motion_blur: its NumPy port of ImageMagick's motion blur
// (no 8-bit rounding, taps stop once the offset reaches the image size) with an angle drawn from
// U(−45, 45).
func imagenetMotion(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
	c := pick([][2]float64{{10, 3}, {15, 5}, {15, 8}, {15, 12}, {20, 15}}, sev)
	k := newMotionKernel(c[0], c[1], uniform(rng, -45, 45)).clipTo(img.H, img.W)
	return motionBlur(img, k).clip01(), nil
}

// imagenetFrost is imagecorruptions' frost: a texture drawn with randint(5), rescaled to cover
// the image with 10% to spare (bicubic), cropped at (randint(0, th−H), randint(0, tw−W)) and
// blended as clip(a·x + b·frost, 0, 255).
func imagenetFrost(img Image, sev int, rng *rand.Rand, opt *Options) (Image, error) {
	c := pick([][2]float64{{1, 0.4}, {0.8, 0.6}, {0.7, 0.7}, {0.65, 0.7}, {0.6, 0.75}}, sev)
	t := opt.frost()
	tex := t.forSize(t.pickIndex(rng), img.H, img.W)
	y0 := randint(rng, 0, tex.h-img.H)
	x0 := randint(rng, 0, tex.w-img.W)
	return frostBlend(img, tex, y0, x0, c[0], c[1]), nil
}

// imagenetElastic is imagecorruptions' elastic_transform (no affine step, displacement fields
// sized to the image).
func imagenetElastic(img Image, sev int, rng *rand.Rand, _ *Options) (Image, error) {
	alpha := pick([]float64{250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12}, sev)
	d := 0.005 * float64(img.H)
	n := img.H * img.W
	fx, fy := getScratch(n), getScratch(n)
	defer func() { putScratch(fx); putScratch(fy) }()
	for i := range fx {
		fx[i] = uniform(rng, -d, d)
	}
	for i := range fy {
		fy[i] = uniform(rng, -d, d)
	}
	return elasticImagecorruptions(img, alpha, fx, fy).clip01(), nil
}
