package corrupt

import "math"

// affineFromPoints returns the 2×3 matrix m with m·(x, y, 1) = dst[i] for the three points src[i]
// (cv2.getAffineTransform). Points are (x, y).
func affineFromPoints(src, dst [3][2]float64) [6]float64 {
	// Solve [x y 1]·(a b c) = x' and = y' by Cramer's rule.
	det := src[0][0]*(src[1][1]-src[2][1]) - src[0][1]*(src[1][0]-src[2][0]) + (src[1][0]*src[2][1] - src[2][0]*src[1][1])
	solve := func(v [3]float64) (a, b, c float64) {
		a = (v[0]*(src[1][1]-src[2][1]) - src[0][1]*(v[1]-v[2]) + (v[1]*src[2][1] - v[2]*src[1][1])) / det
		b = (src[0][0]*(v[1]-v[2]) - v[0]*(src[1][0]-src[2][0]) + (src[1][0]*v[2] - src[2][0]*v[1])) / det
		c = (src[0][0]*(src[1][1]*v[2]-src[2][1]*v[1]) - src[0][1]*(src[1][0]*v[2]-src[2][0]*v[1]) + v[0]*(src[1][0]*src[2][1]-src[2][0]*src[1][1])) / det
		return
	}
	a, b, c := solve([3]float64{dst[0][0], dst[1][0], dst[2][0]})
	d, e, f := solve([3]float64{dst[0][1], dst[1][1], dst[2][1]})
	return [6]float64{a, b, c, d, e, f}
}

// invertAffine is cv2.invertAffineTransform.
func invertAffine(m [6]float64) [6]float64 {
	d := m[0]*m[4] - m[1]*m[3]
	if d != 0 {
		d = 1 / d
	}
	a11, a22 := m[4]*d, m[0]*d
	a12, a21 := -m[1]*d, -m[3]*d
	return [6]float64{a11, a12, -a11*m[2] - a12*m[5], a21, a22, -a21*m[2] - a22*m[5]}
}

// warpAffineCV writes to dst (the shape of src) cv2.warpAffine(src, m, (W, H), INTER_LINEAR,
// BORDER_REFLECT_101) for a float image: every output pixel (x, y) reads the input at m⁻¹·(x, y)
// with OpenCV's fixed-point coordinates (1/32 pixel, rounded as its AB_BITS = 10 arithmetic
// rounds) and bilinear weights.
func warpAffineCV(dst, src Image, m [6]float64) {
	M := invertAffine(m)
	const abBits, interBits = 10, 5
	const abScale = 1 << abBits
	const roundDelta = abScale / (1 << interBits) / 2
	C := src.C
	adelta := make([]int, src.W)
	bdelta := make([]int, src.W)
	for x := range adelta {
		adelta[x] = int(math.RoundToEven(M[0] * float64(x) * abScale))
		bdelta[x] = int(math.RoundToEven(M[3] * float64(x) * abScale))
	}
	for y := 0; y < src.H; y++ {
		X0 := int(math.RoundToEven((M[1]*float64(y)+M[2])*abScale)) + roundDelta
		Y0 := int(math.RoundToEven((M[4]*float64(y)+M[5])*abScale)) + roundDelta
		for x := 0; x < src.W; x++ {
			X := (X0 + adelta[x]) >> (abBits - interBits)
			Y := (Y0 + bdelta[x]) >> (abBits - interBits)
			ix, iy := X>>interBits, Y>>interBits
			fx := float32(X&(1<<interBits-1)) / (1 << interBits)
			fy := float32(Y&(1<<interBits-1)) / (1 << interBits)
			w := [4]float64{
				float64((1 - fy) * (1 - fx)), float64((1 - fy) * fx),
				float64(fy * (1 - fx)), float64(fy * fx),
			}
			x0 := borderIndex(ix, src.W, borderReflect101) * C
			x1 := borderIndex(ix+1, src.W, borderReflect101) * C
			y0 := borderIndex(iy, src.H, borderReflect101) * src.W * C
			y1 := borderIndex(iy+1, src.H, borderReflect101) * src.W * C
			d := dst.Pix[(y*src.W+x)*C : (y*src.W+x+1)*C]
			for c := range d {
				d[c] = src.Pix[y0+x0+c]*w[0] + src.Pix[y0+x1+c]*w[1] + src.Pix[y1+x0+c]*w[2] + src.Pix[y1+x1+c]*w[3]
			}
		}
	}
}

// mapCoordinates is scipy.ndimage.map_coordinates(src, [y + dy, x + dx, c], order=1,
// mode='reflect'): every output pixel (x, y) reads src bilinearly at (x + dx, y + dy), the
// samples continuing outside the image by half-sample symmetric reflection. dx and dy hold one
// displacement per pixel (H×W).
func mapCoordinates(src Image, dx, dy []float64) Image {
	dst := NewImage(src.H, src.W, src.C)
	C := src.C
	for y := 0; y < src.H; y++ {
		for x := 0; x < src.W; x++ {
			i := y*src.W + x
			cy, cx := float64(y)+dy[i], float64(x)+dx[i]
			fy, fx := math.Floor(cy), math.Floor(cx)
			ty, tx := cy-fy, cx-fx
			y0 := borderIndex(int(fy), src.H, borderReflect) * src.W * C
			y1 := borderIndex(int(fy)+1, src.H, borderReflect) * src.W * C
			x0 := borderIndex(int(fx), src.W, borderReflect) * C
			x1 := borderIndex(int(fx)+1, src.W, borderReflect) * C
			d := dst.Pix[i*C : (i+1)*C]
			for c := range d {
				top := src.Pix[y0+x0+c]*(1-tx) + src.Pix[y0+x1+c]*tx
				bot := src.Pix[y1+x0+c]*(1-tx) + src.Pix[y1+x1+c]*tx
				d[c] = top*(1-ty) + bot*ty
			}
		}
	}
	return dst
}

// elasticParams are make_cifar_c's elastic_transform numbers for one severity, already
// multiplied by the image size 32: displacement scale alpha, field smoothing sigma and the
// largest affine jitter of the three control points.
type elasticParams struct{ alpha, sigma, affine float64 }

// elasticHendrycks is make_cifar_c's (and make_imagenet_c's) elastic_transform on the image
// image u. jitter holds the six U(−affine, affine) offsets of the control points (x, y per point),
// fx and fy the two H×W fields of U(−1, 1) draws. The control points are the centre ± a third of
// the smaller side; the references take the centre as (H/2, W/2) in OpenCV's (x, y) order, which
// only matters for non-square images and is kept.
func elasticHendrycks(u Image, p elasticParams, jitter [6]float64, fx, fy []float64) Image {
	cy, cx := float64(u.H/2), float64(u.W/2)
	s := float64(min(u.H, u.W) / 3)
	src := [3][2]float64{{cy + s, cx + s}, {cy + s, cx - s}, {cy - s, cx - s}}
	var dst [3][2]float64
	for i := range src {
		for j := range 2 {
			// pts1 + np.random.uniform(...).astype(np.float32), in float32.
			dst[i][j] = float64(float32(src[i][j]) + float32(jitter[2*i+j]))
		}
	}
	warped := scratchImage(u.H, u.W, u.C)
	defer putScratch(warped.Pix)
	warpAffineCV(warped, u, affineFromPoints(src, dst))
	return mapCoordinates(warped, displacement(fx, u.H, u.W, p.sigma, p.sigma, p.alpha),
		displacement(fy, u.H, u.W, p.sigma, p.sigma, p.alpha))
}

// displacement turns the random field f (H×W, modified in place) into an elastic displacement:
// skimage gaussian with sigma (sy, sx), mode 'reflect' and truncate 3, times alpha, rounded to
// float32 (.astype(np.float32)). It returns f.
func displacement(f []float64, h, w int, sy, sx, alpha float64) []float64 {
	p := plane(f, h, w)
	gaussianInto(p, p, sy, sx, borderReflect, 3)
	for i, v := range f {
		f[i] = float64(float32(v * alpha))
	}
	return f
}

// elasticImagecorruptions is imagecorruptions' elastic_transform on the image u with
// displacement scale alpha: fx and fy are H×W fields of U(−0.005·H, 0.005·H) draws, smoothed with
// sigma 0.01·H vertically and 0.01·W horizontally (mode 'reflect', truncate 3). There is no affine
// step.
func elasticImagecorruptions(u Image, alpha float64, fx, fy []float64) Image {
	sy, sx := 0.01*float64(u.H), 0.01*float64(u.W)
	return mapCoordinates(u, displacement(fx, u.H, u.W, sy, sx, alpha), displacement(fy, u.H, u.W, sy, sx, alpha))
}
