package corrupt

import "math"

// This file holds the affine warp that MNIST-C's shear, scale, rotate and translate use:
// skimage.transform.warp (scikit-image 0.19) with an AffineTransform as inverse_map, order 1
// (bilinear), mode 'constant', cval 0, clip=True.

// affine is a 2-D affine map in scikit-image's convention (the first two rows of
// AffineTransform.params). For an output pixel at column x and row y it gives the input position
// x' = m[0]·x + m[1]·y + m[2] and y' = m[3]·x + m[4]·y + m[5].
type affine [6]float64

// affineAbout returns the linear map [[a1 a2] [b1 b2]] with the translation MNIST-C adds so that
// the point (c, c) maps to itself: t = c·(1 − a1 − a2), c·(1 − b1 − b2). MNIST-C uses c = 13.5,
// the centre of a 28×28 image.
func affineAbout(a1, a2, b1, b2, c float64) affine {
	return affine{a1, a2, c * (1 - a1 - a2), b1, b2, c * (1 - b1 - b2)}
}

// shearAffine is skimage 0.19's AffineTransform(shear=s) about (c, c): [[1, −sin s], [0, cos s]].
// scikit-image 0.21 changed the shear parameterisation (PR #6752); MNIST-C was made with the old
// one, which is what this reproduces.
func shearAffine(s, c float64) affine {
	return affineAbout(1, -math.Sin(s), 0, math.Cos(s), c)
}

// rotateAffine is AffineTransform(rotation=rad) about (c, c): [[cos, −sin], [sin, cos]].
func rotateAffine(rad, c float64) affine {
	sin, cos := math.Sincos(rad)
	return affineAbout(cos, -sin, sin, cos, c)
}

// scaleAffine is AffineTransform(scale=(s, s)) about (c, c). As an inverse map, s > 1 shrinks the
// content: MNIST-C's scale uses s = 1/0.7.
func scaleAffine(s, c float64) affine {
	return affineAbout(s, 0, 0, s, c)
}

// translateAffine is AffineTransform(translation=(dx, dy)): the output pixel (x, y) reads the
// input at (x+dx, y+dy), so the content moves by (−dx, −dy).
func translateAffine(dx, dy float64) affine {
	return affine{1, 0, dx, 0, 1, dy}
}

// warpBilinear writes to dst (w×h, row-major) the image src (same size) sampled through the
// inverse map m, as skimage.transform.warp(src, m, order=1, mode='constant', cval=0) does:
// bilinear interpolation between the pixels floor/ceil of each coordinate, a neighbour outside
// the image counting as 0, then the result clipped to [min(src), max(src)] (skimage's clip=True),
// keeping exact zeros when 0 lies outside that range. dst and src must not overlap.
func warpBilinear(dst, src []float64, w, h int, m affine) {
	src = src[:w*h]
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range src {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	keepZero := !(lo <= 0 && 0 <= hi)
	for y := 0; y < h; y++ {
		fy := float64(y)
		for x := 0; x < w; x++ {
			fx := float64(x)
			c := m[0]*fx + m[1]*fy + m[2]
			r := m[3]*fx + m[4]*fy + m[5]
			r0, c0 := math.Floor(r), math.Floor(c)
			dr, dc := r-r0, c-c0
			ir, ic := int(r0), int(c0)
			var v float64
			switch {
			case ir >= 0 && ir < h-1 && ic >= 0 && ic < w-1:
				// All four neighbours inside. When r or c is an integer, ceil = floor and the
				// weight of the second row or column is exactly 0, so reading the next one
				// gives the same value.
				p := ir*w + ic
				top := (1-dc)*src[p] + dc*src[p+1]
				bottom := (1-dc)*src[p+w] + dc*src[p+w+1]
				v = (1-dr)*top + dr*bottom
			case ir < -1 || ir >= h || ic < -1 || ic >= w:
				v = 0 // all four neighbours outside
			default:
				r1, c1 := int(math.Ceil(r)), int(math.Ceil(c))
				top := (1-dc)*warpPixel(src, w, h, ir, ic) + dc*warpPixel(src, w, h, ir, c1)
				bottom := (1-dc)*warpPixel(src, w, h, r1, ic) + dc*warpPixel(src, w, h, r1, c1)
				v = (1-dr)*top + dr*bottom
			}
			if !(keepZero && v == 0) {
				if v < lo {
					v = lo
				} else if v > hi {
					v = hi
				}
			}
			dst[y*w+x] = v
		}
	}
}

// warpPixel returns src at row r, column c, or 0 outside the image (mode 'constant', cval 0).
func warpPixel(src []float64, w, h, r, c int) float64 {
	if r < 0 || r >= h || c < 0 || c >= w {
		return 0
	}
	return src[r*w+c]
}
