package corrupt

import "math"

// border is how a filter reads outside the image.
type border int

const (
	// borderNearest repeats the edge pixel: scipy mode 'nearest', skimage.filters.gaussian's
	// default, cv2.BORDER_REPLICATE.
	borderNearest border = iota
	// borderReflect mirrors about the pixel edge (d c b a | a b c d | d c b a): scipy mode
	// 'reflect'.
	borderReflect
	// borderReflect101 mirrors about the edge pixel (c b | a b c d | c b):
	// cv2.BORDER_REFLECT_101, OpenCV's default.
	borderReflect101
	// borderWrap repeats the line periodically (scipy mode 'wrap').
	borderWrap
)

// borderIndex maps the index i of a line of n samples (any integer) into [0, n) under mode b.
func borderIndex(i, n int, b border) int {
	if i >= 0 && i < n {
		return i
	}
	if n == 1 {
		return 0
	}
	switch b {
	case borderWrap:
		i %= n
		if i < 0 {
			i += n
		}
		return i
	case borderReflect:
		p := 2 * n
		i %= p
		if i < 0 {
			i += p
		}
		if i >= n {
			i = p - 1 - i
		}
		return i
	case borderReflect101:
		p := 2*n - 2
		i %= p
		if i < 0 {
			i += p
		}
		if i >= n {
			i = p - i
		}
		return i
	}
	return min(max(i, 0), n-1)
}

// borderTable returns t with t[i+r] = borderIndex(i, n, b) for i in [-r, n+r).
func borderTable(n, r int, b border) []int {
	t := make([]int, n+2*r)
	for i := range t {
		t[i] = borderIndex(i-r, n, b)
	}
	return t
}

// gaussKernel returns scipy.ndimage's 1-D Gaussian kernel for sigma and truncate: radius
// int(truncate·sigma + 0.5), weights exp(−x²/(2σ²)) normalised to sum 1. A sigma of 0 gives [1].
func gaussKernel(sigma, truncate float64) []float64 {
	r := int(truncate*sigma + 0.5)
	if sigma <= 0 || r < 0 {
		return []float64{1}
	}
	k := make([]float64, 2*r+1)
	s := 0.0
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-0.5 / (sigma * sigma) * x * x)
		s += k[i]
	}
	for i := range k {
		k[i] /= s
	}
	return k
}

// correlate1D writes to dst (same shape as src, not overlapping it) every channel of src
// correlated along one axis (0 = rows, i.e. vertically; 1 = columns) with the odd-length kernel
// k centred on its middle tap, reading outside the image with mode b. It is
// scipy.ndimage.correlate1d with origin 0, including its arithmetic for symmetric kernels (the
// centre tap, then each pair of mirrored samples summed before weighting, outermost pair first),
// so that results round as scipy's do.
func correlate1D(dst, src Image, k []float64, axis int, b border) {
	r := len(k) / 2
	sym := true
	for i := 1; i <= r; i++ {
		if math.Abs(k[r+i]-k[r-i]) > 0x1p-52 {
			sym = false
		}
	}
	C := src.C
	row := src.W * C
	if axis == 0 {
		// Whole rows at a time: dst row y = Σ_j k[j]·src row t[y+j].
		t := borderTable(src.H, r, b)
		for y := 0; y < src.H; y++ {
			d := dst.Pix[y*row : y*row+row]
			c := src.Pix[t[y+r]*row : t[y+r]*row+row]
			for i, v := range c {
				d[i] = v * k[r]
			}
			for j := 0; j < r; j++ {
				lo := src.Pix[t[y+j]*row : t[y+j]*row+row]
				hi := src.Pix[t[y+2*r-j]*row : t[y+2*r-j]*row+row]
				kj, kh := k[j], k[2*r-j]
				if sym {
					for i := range d {
						d[i] += (lo[i] + hi[i]) * kj
					}
				} else {
					for i := range d {
						d[i] += lo[i]*kj + hi[i]*kh
					}
				}
			}
		}
		return
	}
	// Along each row, through a copy padded by r pixels on both sides.
	t := borderTable(src.W, r, b)
	pad := getScratch((src.W + 2*r) * C)
	defer putScratch(pad)
	for y := 0; y < src.H; y++ {
		s := src.Pix[y*row : y*row+row]
		for i, sx := range t {
			copy(pad[i*C:i*C+C], s[sx*C:sx*C+C])
		}
		// Tap by tap over the whole row: every output keeps scipy's order of summation.
		d := dst.Pix[y*row : y*row+row]
		ctr := pad[r*C : r*C+row]
		for i, v := range ctr {
			d[i] = v * k[r]
		}
		for j := 0; j < r; j++ {
			lo := pad[j*C : j*C+row]
			hi := pad[(2*r-j)*C : (2*r-j)*C+row]
			kj, kh := k[j], k[2*r-j]
			if sym {
				for i := range d {
					d[i] += (lo[i] + hi[i]) * kj
				}
			} else {
				for i := range d {
					d[i] += lo[i]*kj + hi[i]*kh
				}
			}
		}
	}
}

// gaussianFilter is skimage.filters.gaussian(x, sigma, mode, truncate, multichannel=True) as
// scikit-image 0.19 runs it: scipy.ndimage.gaussian_filter along rows, then columns, never across
// channels. skimage's defaults are mode 'nearest' (borderNearest) and truncate 4.
func gaussianFilter(src Image, sigma float64, b border, truncate float64) Image {
	return gaussianFilterYX(src, sigma, sigma, b, truncate)
}

// gaussianFilterYX is gaussianFilter with its own sigma for the vertical (sy) and horizontal (sx)
// axis. An axis whose sigma is at most 1e-15 is left alone, as in scipy.
func gaussianFilterYX(src Image, sy, sx float64, b border, truncate float64) Image {
	dst := NewImage(src.H, src.W, src.C)
	gaussianInto(dst, src, sy, sx, b, truncate)
	return dst
}

// gaussianInto is gaussianFilterYX writing into dst (same shape as src; it may be src itself).
func gaussianInto(dst, src Image, sy, sx float64, b border, truncate float64) {
	ky, kx := []float64{1}, []float64{1}
	if sy > 1e-15 {
		ky = gaussKernel(sy, truncate)
	}
	if sx > 1e-15 {
		kx = gaussKernel(sx, truncate)
	}
	tmp := scratchImage(src.H, src.W, src.C)
	defer putScratch(tmp.Pix)
	switch {
	case len(ky) > 1 && len(kx) > 1:
		correlate1D(tmp, src, ky, 0, b)
		correlate1D(dst, tmp, kx, 1, b)
	case len(ky) > 1:
		correlate1D(tmp, src, ky, 0, b)
		copy(dst.Pix, tmp.Pix)
	case len(kx) > 1:
		correlate1D(tmp, src, kx, 1, b)
		copy(dst.Pix, tmp.Pix)
	default:
		copy(dst.Pix, src.Pix)
	}
}

// plane wraps a one-channel field of h rows and w columns as an Image (without copying).
func plane(p []float64, h, w int) Image { return Image{Pix: p, H: h, W: w, C: 1} }

// filter2D correlates every channel of src with the kh×kw kernel k (row-major, anchor at the
// centre), reading outside the image with mode b: cv2.filter2D with ddepth −1 on a float image.
// Taps that are zero or negligible (below 1e-15 of the largest) are skipped.
func filter2D(src Image, k []float64, kh, kw int, b border) Image {
	dst := NewImage(src.H, src.W, src.C)
	ry, rx := kh/2, kw/2
	ty := borderTable(src.H, ry, b)
	tx := borderTable(src.W, rx, b)
	type tap struct {
		dy, dx int
		w      float64
	}
	big := 0.0
	for _, v := range k {
		big = max(big, math.Abs(v))
	}
	var taps []tap
	for i := 0; i < kh; i++ {
		for j := 0; j < kw; j++ {
			// Taps below 1e-15 of the largest (the e^−50 tails of a narrow Gaussian) cannot
			// change a float64 sum of this kernel's size.
			if v := k[i*kw+j]; math.Abs(v) > 1e-15*big {
				taps = append(taps, tap{i, j, v})
			}
		}
	}
	C := src.C
	row := src.W * C
	for y := 0; y < src.H; y++ {
		d := dst.Pix[y*row : y*row+row]
		for _, t := range taps {
			s := src.Pix[ty[y+t.dy]*row : ty[y+t.dy]*row+row]
			off := t.dx - rx // source column = x + off inside the image
			// Interior columns read a shifted copy of the row; the few border columns go
			// through the border table. Every output still sums its taps in kernel order.
			x0, x1 := max(0, -off), min(src.W, src.W-off)
			for x := 0; x < min(x0, src.W); x++ {
				sx := tx[x+t.dx] * C
				for c := 0; c < C; c++ {
					d[x*C+c] += t.w * s[sx+c]
				}
			}
			if x0 < x1 {
				dd := d[x0*C : x1*C]
				ss := s[(x0+off)*C : (x1+off)*C]
				for i := range dd {
					dd[i] += t.w * ss[i]
				}
			}
			for x := max(x1, 0); x < src.W; x++ {
				sx := tx[x+t.dx] * C
				for c := 0; c < C; c++ {
					d[x*C+c] += t.w * s[sx+c]
				}
			}
		}
	}
	return dst
}
