package corrupt

import "sync"

// ---------------------------------------------------------------- pixelate

// pilPrecision is Pillow's PRECISION_BITS for 8-bit resampling (32 − 8 − 2).
const pilPrecision = 22

// pilCoeffs holds one axis of a Pillow BOX resampling: for each output index its first input
// index, its number of taps and the taps in 22-bit fixed point.
type pilCoeffs struct {
	xmin, xcount []int
	k            [][]int32
}

var pilCoeffCache sync.Map // [2]int{in, out} → *pilCoeffs

// pilBoxCoeffsCached is pilBoxCoeffs, cached.
func pilBoxCoeffsCached(inSize, outSize int) *pilCoeffs {
	key := [2]int{inSize, outSize}
	if c, ok := pilCoeffCache.Load(key); ok {
		return c.(*pilCoeffs)
	}
	var c pilCoeffs
	c.xmin, c.xcount, c.k = pilBoxCoeffs(inSize, outSize)
	got, _ := pilCoeffCache.LoadOrStore(key, &c)
	return got.(*pilCoeffs)
}

// pilBoxCoeffs returns Pillow's (9.x) resampling coefficients for a BOX filter from inSize to
// outSize samples: for each output index its first input index, the number of taps and the taps
// in 22-bit fixed point.
func pilBoxCoeffs(inSize, outSize int) (xmin, xcount []int, k [][]int32) {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1.0)
	support := 0.5 * filterscale
	xmin = make([]int, outSize)
	xcount = make([]int, outSize)
	k = make([][]int32, outSize)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1.0 / filterscale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), inSize)
		n := hi - lo
		ws := make([]float64, n)
		ww := 0.0
		for x := 0; x < n; x++ {
			v := (float64(x+lo) - center + 0.5) * ss
			if v > -0.5 && v <= 0.5 {
				ws[x] = 1
			}
			ww += ws[x]
		}
		k[xx] = make([]int32, n)
		for x := range ws {
			if ww != 0 {
				ws[x] /= ww
			}
			if ws[x] < 0 {
				k[xx][x] = int32(-0.5 + ws[x]*(1<<pilPrecision))
			} else {
				k[xx][x] = int32(0.5 + ws[x]*(1<<pilPrecision))
			}
		}
		xmin[xx], xcount[xx] = lo, n
	}
	return xmin, xcount, k
}

// pilClip8 is Pillow's clip8: the accumulator shifted down by PRECISION_BITS and saturated.
func pilClip8(v int64) uint8 {
	if v >= 256<<pilPrecision {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return uint8(v >> pilPrecision)
}

// pilResizeBox is PIL's Image.resize((nw, nh), Image.BOX) of an 8-bit h×w×c image: a horizontal
// pass, then a vertical pass, each in 22-bit fixed point with rounding, through an 8-bit
// intermediate image.
func pilResizeBox(src []uint8, h, w, c, nh, nw int) []uint8 {
	cur, cw := src, w
	if nw != w {
		cf := pilBoxCoeffsCached(w, nw)
		xmin, xn, k := cf.xmin, cf.xcount, cf.k
		tmp := make([]uint8, h*nw*c)
		for y := 0; y < h; y++ {
			for xx := 0; xx < nw; xx++ {
				for ch := 0; ch < c; ch++ {
					acc := int64(1) << (pilPrecision - 1)
					for t := 0; t < xn[xx]; t++ {
						acc += int64(cur[(y*cw+xmin[xx]+t)*c+ch]) * int64(k[xx][t])
					}
					tmp[(y*nw+xx)*c+ch] = pilClip8(acc)
				}
			}
		}
		cur, cw = tmp, nw
	}
	if nh != h {
		cf := pilBoxCoeffsCached(h, nh)
		ymin, yn, k := cf.xmin, cf.xcount, cf.k
		tmp := make([]uint8, nh*cw*c)
		row := cw * c
		for yy := 0; yy < nh; yy++ {
			for i := 0; i < row; i++ {
				acc := int64(1) << (pilPrecision - 1)
				for t := 0; t < yn[yy]; t++ {
					acc += int64(cur[(ymin[yy]+t)*row+i]) * int64(k[yy][t])
				}
				tmp[yy*row+i] = pilClip8(acc)
			}
		}
		cur = tmp
	}
	if &cur[0] == &src[0] {
		cur = append([]uint8(nil), src...)
	}
	return cur
}

// pilResizeNearest is PIL's Image.resize((nw, nh), Image.NEAREST): output pixel x reads input
// pixel floor(x0), x0 starting at scale/2 and advancing by scale = w/nw (accumulated in float64, as
// Pillow's ImagingScaleAffine does), and likewise for rows.
func pilResizeNearest(src []uint8, h, w, c, nh, nw int) []uint8 {
	table := func(in, out int) []int {
		a := float64(in) / float64(out)
		t := make([]int, out)
		xo := a * 0.5
		for i := range t {
			t[i] = min(max(int(xo), 0), in-1)
			xo += a
		}
		return t
	}
	ty, tx := table(h, nh), table(w, nw)
	out := make([]uint8, nh*nw*c)
	for y, sy := range ty {
		for x, sx := range tx {
			copy(out[(y*nw+x)*c:(y*nw+x+1)*c], src[(sy*w+sx)*c:(sy*w+sx+1)*c])
		}
	}
	return out
}

// pixelate shrinks the 8-bit image img to int(W·c)×int(H·c) with PIL's BOX filter and enlarges
// it back with BOX (make_cifar_c) or NEAREST (imagecorruptions, nearest true).
func pixelate(img Image, c float64, nearest bool) Image {
	b := img.bytes8()
	nw := max(int(float64(img.W)*c), 1)
	nh := max(int(float64(img.H)*c), 1)
	small := pilResizeBox(b, img.H, img.W, img.C, nh, nw)
	var big []uint8
	if nearest {
		big = pilResizeNearest(small, nh, nw, img.C, img.H, img.W)
	} else {
		big = pilResizeBox(small, nh, nw, img.C, img.H, img.W)
	}
	return fromBytes8(big, img.H, img.W, img.C)
}
