package corrupt

import "math"

// cannyScratch is the scratch size cannyEdges needs, in units of w×h values.
const cannyScratch = 6

// This file ports skimage.feature.canny as scikit-image 0.19 runs it with its defaults
// (sigma 1, low_threshold 0.1, high_threshold 0.2, no mask, mode 'constant', cval 0), which is
// what MNIST-C's canny_edges calls on the image scaled to [0, 1].

// cannyEdges writes to edges (w×h, row-major) 1 where skimage.feature.canny(img, sigma) finds an
// edge and 0 elsewhere, with thresholds low and high on the gradient magnitude. img is in
// [0, 1]. The steps are scikit-image's:
//
//  1. Gaussian smoothing (scipy gaussian_filter, truncate 4) with zero padding, divided by the
//     same smoothing of an all-ones image (the "bleed-over" normalisation), plus float64 eps.
//  2. scipy.ndimage.sobel along each axis, mode 'reflect' (half-sample symmetric), and the
//     magnitude hypot(isobel, jsobel).
//  3. Non-maximum suppression along the gradient direction with bilinear interpolation between
//     the two neighbours either side (the 0.19 Cython rule, ties included), border pixels
//     excluded, magnitude ≥ low.
//  4. Hysteresis: keep the 8-connected components of the step-3 mask that hold a pixel with
//     magnitude ≥ high.
//
// scratch (cannyScratch·w·h values) is working memory; a shorter one is replaced by an
// allocation.
func cannyEdges(edges, img []float64, w, h int, sigma, low, high float64, scratch []float64) {
	n := w * h
	if len(scratch) < cannyScratch*n {
		scratch = make([]float64, cannyScratch*n)
	}
	buf := scratch
	smooth, isobel, jsobel, mag, tmp, bleed := buf[:n], buf[n:2*n], buf[2*n:3*n], buf[3*n:4*n], buf[4*n:5*n], buf[5*n:]

	// 1. Smoothing with zero padding, normalised by the same smoothing of an all-ones image.
	k := gaussKernel(sigma, 4)
	mcCorrelate(tmp, img, w, h, k, 0, mcBorderZero)
	mcCorrelate(smooth, tmp, w, h, k, 1, mcBorderZero)
	for i := range bleed {
		bleed[i] = 1
	}
	mcCorrelate(tmp, bleed, w, h, k, 0, mcBorderZero)
	mcCorrelate(bleed, tmp, w, h, k, 1, mcBorderZero)
	const eps = 0x1p-52 // np.finfo(np.float64).eps
	for i := range smooth {
		smooth[i] /= bleed[i] + eps
	}

	// 2. Sobel with reflect borders: difference along the axis, then [1 2 1] across it.
	refl := func(i, n int) int {
		if i < 0 {
			return -i - 1
		}
		if i >= n {
			return 2*n - i - 1
		}
		return i
	}
	d := tmp                 // free again
	for y := 0; y < h; y++ { // jsobel: derivative along axis 1 (x)
		for x := 0; x < w; x++ {
			d[y*w+x] = smooth[y*w+refl(x+1, w)] - smooth[y*w+refl(x-1, w)]
		}
	}
	for y := 0; y < h; y++ {
		ym, yp := refl(y-1, h), refl(y+1, h)
		for x := 0; x < w; x++ {
			jsobel[y*w+x] = d[ym*w+x] + 2*d[y*w+x] + d[yp*w+x]
		}
	}
	for y := 0; y < h; y++ { // isobel: derivative along axis 0 (y)
		ym, yp := refl(y-1, h), refl(y+1, h)
		for x := 0; x < w; x++ {
			d[y*w+x] = smooth[yp*w+x] - smooth[ym*w+x]
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			isobel[y*w+x] = d[y*w+refl(x-1, w)] + 2*d[y*w+x] + d[y*w+refl(x+1, w)]
		}
	}
	for i := range mag {
		a, b := isobel[i], jsobel[i]
		mag[i] = math.Sqrt(a*a + b*b) // np.hypot; equal to it except near overflow
	}

	// 3. Non-maximum suppression; the eroded mask is the interior (border pixels excluded).
	if low == 0 {
		low = 1e-14
	}
	// edges holds cannyCandidate for the pixels that pass non-maximum suppression and the low
	// threshold, then 1 for those hysteresis keeps; the remaining candidates are cleared at the end.
	for i := range edges[:n] {
		edges[i] = 0
	}
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			i := y*w + x
			m := mag[i]
			if !(m >= low) {
				continue
			}
			// Offsets are (row, column); skimage names rows x and columns y.
			gi, gj := isobel[i], jsobel[i]
			down, left := gi <= 0, gj <= 0
			up, right := !down, !left
			ai, aj := math.Abs(gi), math.Abs(gj)
			var wt float64
			var n1a, n1b, n2a, n2b int // c_plus mixes n1a,n1b; c_minus mixes n2a,n2b
			switch {
			case (up && right) || (down && left):
				if ai > aj {
					wt = aj / ai
					n1a, n1b, n2a, n2b = i+w, i+w+1, i-w, i-w-1
				} else {
					wt = ai / aj
					n1a, n1b, n2a, n2b = i+1, i+w+1, i-1, i-w-1
				}
			default: // (down && right) || (up && left)
				if ai < aj {
					wt = ai / aj
					n1a, n1b, n2a, n2b = i+1, i-w+1, i-1, i+w-1
				} else {
					wt = aj / ai
					n1a, n1b, n2a, n2b = i-w, i-w+1, i+w, i+w-1
				}
			}
			if mag[n1b]*wt+mag[n1a]*(1-wt) <= m && mag[n2b]*wt+mag[n2a]*(1-wt) <= m {
				edges[i] = cannyCandidate
			}
		}
	}

	// 4. Hysteresis by flood fill from the strong pixels through the 8-connected low mask.
	var stackBuf [64]int
	stack := stackBuf[:0]
	for i := 0; i < n; i++ {
		if edges[i] != cannyCandidate || mag[i] < high {
			continue
		}
		edges[i] = 1
		stack = append(stack[:0], i)
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			py, px := p/w, p%w
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					qy, qx := py+dy, px+dx
					if qy < 0 || qy >= h || qx < 0 || qx >= w {
						continue
					}
					q := qy*w + qx
					if edges[q] == cannyCandidate {
						edges[q] = 1
						stack = append(stack, q)
					}
				}
			}
		}
	}
	for i, v := range edges[:n] {
		if v == cannyCandidate {
			edges[i] = 0
		}
	}
}

// cannyCandidate marks a pixel of the low mask that hysteresis has not reached (yet).
const cannyCandidate = 0.5
