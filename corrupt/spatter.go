package corrupt

import "math"

// spatterParams are the six numbers of a spatter severity: the liquid layer's normal mean and
// standard deviation, its blur sigma, the threshold below which it is dry, the strength
// (water) or mask blur sigma (mud), and whether it is mud.
type spatterParams struct {
	mean, sd, sigma, thresh, strength float64
	mud                               bool
}

// liquidLayer smooths the normal field (H×W) with sigma (skimage gaussian, mode 'nearest') and
// zeroes it below thresh.
func liquidLayer(field []float64, h, w int, p spatterParams) []float64 {
	l := getScratch(h * w)
	gaussianInto(plane(l, h, w), plane(field, h, w), p.sigma, p.sigma, borderNearest, 4)
	for i, v := range l {
		if v < p.thresh {
			l[i] = 0
		}
	}
	return l
}

// spatter is the references' spatter on the image u, from the normal field (H×W
// draws of N(mean, sd)). Water (severities 1-3) adds pale turquoise (175, 238, 238)/255, weighted
// by the liquid layer times an embossed, equalised distance-to-edge map, normalised to the given
// strength. Mud (4-5) blends toward brown (63, 42, 20)/255 where the blurred wet mask is at least
// 0.8. As in the references, the water weights come from the liquid layer truncated to 8 bits, and
// the blend is computed in float32. A one-channel image receives the grey of the colour, weights
// 0.2989, 0.587, 0.114 (imagecorruptions' grey branch). The result is clipped to [0, 1].
//
// Where no pixel is wet the reference divides 0 by 0 and its output is NaN (0 after np.uint8);
// here the image is returned unchanged instead.
func spatter(u Image, field []float64, p spatterParams) Image {
	h, w := u.H, u.W
	liquid := liquidLayer(field, h, w, p)
	defer putScratch(liquid)
	out := NewImage(h, w, u.C)
	// The references compute the blend in float32: x = np.array(x, dtype=np.float32)/255.
	x := func(i int) float32 { return float32(u.Pix[i]) }
	// store writes a float32 result v (on the 0..1 scale) as its ·255 value divided by 255.
	store := func(i int, v float32) { out.Pix[i] = float64(min(max(v, 0), 1)*255) / 255 }
	if p.mud {
		m := getScratch(len(liquid))
		defer putScratch(m)
		for i, v := range liquid {
			m[i] = 0
			if v > p.thresh {
				m[i] = 1
			}
		}
		// m.astype(np.float32) is blurred as float32.
		gaussianInto(plane(m, h, w), plane(m, h, w), p.strength, p.strength, borderNearest, 4)
		col := [3]float32{63.0 / 255, 42.0 / 255, 20.0 / 255}
		for i, v := range m {
			mv := float32(v)
			if mv < 0.8 {
				mv = 0
			}
			if u.C == 1 {
				g := 0.2989*float64(col[0]*mv) + 0.5870*float64(col[1]*mv) + 0.1140*float64(col[2]*mv)
				out.Pix[i] = min(max(float64(x(i)*(1-mv))+g, 0), 1)
				continue
			}
			for c := 0; c < 3; c++ {
				store(3*i+c, x(3*i+c)*(1-mv)+col[c]*mv)
			}
		}
		return out
	}
	// Water. From here the reference works on the uint8 liquid layer.
	l8 := make([]uint8, len(liquid))
	for i, v := range liquid {
		l8[i] = uint8(int32(v * 255)) // (liquid*255).astype(np.uint8): C cast, wraps above 255
	}
	edges := cvCanny(l8, h, w, 50, 150)
	for i, e := range edges {
		edges[i] = 255 - e
	}
	dist := cvDistanceL2Mask5(edges, h, w)
	for i, v := range dist {
		dist[i] = min(v, 20) // THRESH_TRUNC at 20
	}
	blurred := cvBlur3(dist, h, w)
	putScratch(dist)
	d8 := make([]uint8, len(blurred))
	for i, v := range blurred {
		d8[i] = uint8(v) // astype(np.uint8); values are in [0, 20]
	}
	putScratch(blurred)
	d8 = cvEqualizeHist(d8)
	d8 = cvEmboss(d8, h, w)
	d8 = cvBlur3U8(d8, h, w)
	// m = liquid (uint8) · dist (float32), normalised by its maximum and scaled, in float32.
	var mx float32
	for i, l := range l8 {
		mx = max(mx, float32(l)*float32(d8[i]))
	}
	if !(mx > 0) {
		return u.Clone()
	}
	col := [3]float32{175.0 / 255, 238.0 / 255, 238.0 / 255}
	strength := float32(p.strength)
	for i, l := range l8 {
		mv := float32(l) * float32(d8[i]) / mx * strength
		if u.C == 1 {
			var g float64
			for c, wt := range [3]float64{0.2989, 0.5870, 0.1140} {
				g += wt * float64(min(max(mv*col[c], 0), 1))
			}
			out.Pix[i] = min(max(u.Pix[i]+g, 0), 1)
			continue
		}
		for c := 0; c < 3; c++ {
			store(3*i+c, x(3*i+c)+mv*col[c])
		}
	}
	return out
}

// cvCanny is cv2.Canny(src, low, high) with a 3×3 Sobel aperture and the L1 gradient, as OpenCV
// 4.6 computes it: Sobel derivatives with replicated borders, |dx| + |dy|, non-maximum
// suppression in four directions (tan 22.5° in 15-bit fixed point, zero magnitude outside the
// image), then hysteresis over 8-neighbours from the pixels above high. It returns 255 on edges
// and 0 elsewhere.
func cvCanny(src []uint8, h, w int, low, high float64) []uint8 {
	lo, hi := int(math.Floor(low)), int(math.Floor(high))
	p := pad1(src, h, w, borderNearest)
	W := w + 2
	buf := make([]int32, 2*h*w+(h+2)*W)
	dx, dy, mag := buf[:h*w], buf[h*w:2*h*w], buf[2*h*w:] // mag has a zero border
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			q := p[y*W+x:]
			gx := (int32(q[2]) - int32(q[0])) + 2*(int32(q[W+2])-int32(q[W])) + (int32(q[2*W+2]) - int32(q[2*W]))
			gy := (int32(q[2*W]) - int32(q[0])) + 2*(int32(q[2*W+1])-int32(q[1])) + (int32(q[2*W+2]) - int32(q[2]))
			dx[y*w+x], dy[y*w+x] = gx, gy
			mag[(y+1)*W+x+1] = max(gx, -gx) + max(gy, -gy)
		}
	}
	const shift = 15
	const tg22 = 13573 // (int)(tan(22.5°)·2^15 + 0.5)
	const (
		weak   = 0
		none   = 1
		strong = 2
	)
	mp := make([]uint8, h*w)
	var stack []int
	M := func(y, x int) int { return int(mag[(y+1)*W+x+1]) }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			m := M(y, x)
			mp[i] = none
			if m <= lo {
				continue
			}
			xs, ys := int(dx[i]), int(dy[i])
			ax, ay := abs(xs), abs(ys)<<shift
			t22 := ax * tg22
			var keep bool
			if ay < t22 {
				keep = m > M(y, x-1) && m >= M(y, x+1)
			} else if t67 := t22 + ax<<(shift+1); ay > t67 {
				keep = m > M(y-1, x) && m >= M(y+1, x)
			} else {
				s := 1
				if (xs < 0) != (ys < 0) { // (xs ^ ys) < 0
					s = -1
				}
				keep = m > M(y-1, x-s) && m > M(y+1, x+s)
			}
			if !keep {
				continue
			}
			if m > hi {
				mp[i] = strong
				stack = append(stack, i)
			} else {
				mp[i] = weak
			}
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		y, x := i/w, i%w
		for yy := y - 1; yy <= y+1; yy++ {
			for xx := x - 1; xx <= x+1; xx++ {
				if yy < 0 || yy >= h || xx < 0 || xx >= w {
					continue
				}
				if j := yy*w + xx; mp[j] == weak {
					mp[j] = strong
					stack = append(stack, j)
				}
			}
		}
	}
	out := make([]uint8, h*w)
	for i, v := range mp {
		if v == strong {
			out[i] = 255
		}
	}
	return out
}

// cvDistanceL2Mask5 is cv2.distanceTransform(src, cv2.DIST_L2, 5): for every non-zero pixel the
// 5×5 chamfer distance (weights 1, 1.4 and 2.1969, 16-bit fixed point) to the nearest zero pixel;
// pixels outside the image count as far away.
func cvDistanceL2Mask5(src []uint8, h, w int) []float64 { // the result is a scratch buffer
	const shift = 16
	fix := func(v float64) int { return int(math.RoundToEven(v * (1 << shift))) }
	hv, diag, long := fix(1), fix(1.4), fix(2.1969)
	const far = math.MaxInt32 >> 2
	const b = 2
	W := w + 2*b
	t := make([]int, (h+2*b)*W)
	for i := range t {
		t[i] = far
	}
	idx := func(y, x int) int { return (y+b)*W + x + b }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if src[y*w+x] == 0 {
				t[idx(y, x)] = 0
				continue
			}
			j := idx(y, x)
			d := t[j-2*W-1] + long
			d = min(d, t[j-2*W+1]+long, t[j-W-2]+long, t[j-W-1]+diag, t[j-W]+hv,
				t[j-W+1]+diag, t[j-W+2]+long, t[j-1]+hv)
			t[j] = d
		}
	}
	out := getScratch(h * w)
	for y := h - 1; y >= 0; y-- {
		for x := w - 1; x >= 0; x-- {
			j := idx(y, x)
			d := t[j]
			if d > hv {
				d = min(d, t[j+2*W+1]+long, t[j+2*W-1]+long, t[j+W+2]+long, t[j+W+1]+diag,
					t[j+W]+hv, t[j+W-1]+diag, t[j+W-2]+long, t[j+1]+hv)
				t[j] = d
			}
			out[y*w+x] = float64(float32(float64(d) / (1 << shift)))
		}
	}
	return out
}

// pad1 returns src (h×w) with a one-pixel border filled as mode b fills it, (h+2)×(w+2).
func pad1[T uint8 | float64](src []T, h, w int, b border) []T {
	W := w + 2
	out := make([]T, (h+2)*W)
	for y := -1; y <= h; y++ {
		sy := borderIndex(y, h, b)
		for x := -1; x <= w; x++ {
			out[(y+1)*W+x+1] = src[sy*w+borderIndex(x, w, b)]
		}
	}
	return out
}

// cvBlur3 is cv2.blur(src, (3, 3)) on a float32 plane: the 3×3 sum with BORDER_REFLECT_101 in
// float64 (OpenCV's box filter sums float images in double), times 1/9, rounded to float32.
func cvBlur3(src []float64, h, w int) []float64 { // the result is a scratch buffer
	p := pad1(src, h, w, borderReflect101)
	W := w + 2
	out := getScratch(h * w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			s := 0.0
			for _, o := range [9]int{0, 1, 2, W, W + 1, W + 2, 2 * W, 2*W + 1, 2*W + 2} {
				s += p[y*W+x+o]
			}
			out[y*w+x] = float64(float32(s * (1.0 / 9)))
		}
	}
	return out
}

// cvBlur3U8 is cv2.blur(src, (3, 3)) on an 8-bit plane: the 3×3 sum divided by 9, rounded.
func cvBlur3U8(src []uint8, h, w int) []uint8 {
	p := pad1(src, h, w, borderReflect101)
	W := w + 2
	out := make([]uint8, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			q := p[y*W+x:]
			s := int(q[0]) + int(q[1]) + int(q[2]) + int(q[W]) + int(q[W+1]) + int(q[W+2]) +
				int(q[2*W]) + int(q[2*W+1]) + int(q[2*W+2])
			out[y*w+x] = uint8((2*s + 9) / 18) // round(s/9), ties up; s/9 never ends in .5
		}
	}
	return out
}

// cvEqualizeHist is cv2.equalizeHist.
func cvEqualizeHist(src []uint8) []uint8 {
	var hist [256]int
	for _, v := range src {
		hist[v]++
	}
	i := 0
	for hist[i] == 0 {
		i++
	}
	out := make([]uint8, len(src))
	if hist[i] == len(src) {
		for j := range out {
			out[j] = uint8(i)
		}
		return out
	}
	scale := float32(255) / float32(len(src)-hist[i])
	var lut [256]uint8
	sum := 0
	for i++; i < 256; i++ {
		sum += hist[i]
		lut[i] = uint8(min(max(math.RoundToEven(float64(float32(sum)*scale)), 0), 255))
	}
	for j, v := range src {
		out[j] = lut[v]
	}
	return out
}

// cvEmboss is cv2.filter2D(src, cv2.CV_8U, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]): correlation with
// BORDER_REFLECT_101, saturated to [0, 255].
func cvEmboss(src []uint8, h, w int) []uint8 {
	p := pad1(src, h, w, borderReflect101)
	W := w + 2
	out := make([]uint8, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			q := p[y*W+x:]
			s := -2*int(q[0]) - int(q[1]) - int(q[W]) + int(q[W+1]) + int(q[W+2]) + int(q[2*W+1]) + 2*int(q[2*W+2])
			out[y*w+x] = uint8(min(max(s, 0), 255))
		}
	}
	return out
}
