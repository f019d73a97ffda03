package nn

import (
	"fmt"
	"math/rand/v2"
)

// Images is a batch of 8-bit images stored N×H×W×C (channels interleaved, C = 1 for grey).
type Images struct {
	Pix        []uint8
	N, H, W, C int
}

// Validate checks that Pix holds N×H×W×C values and the dimensions are positive.
func (im Images) Validate() error {
	if im.N < 0 || im.H < 1 || im.W < 1 || im.C < 1 || len(im.Pix) != im.N*im.H*im.W*im.C {
		return fmt.Errorf("nn: images %d×%d×%d×%d do not match %d pixel values", im.N, im.H, im.W, im.C, len(im.Pix))
	}
	return nil
}

// Slice returns examples [lo, hi) sharing the pixels.
func (im Images) Slice(lo, hi int) Images {
	sz := im.H * im.W * im.C
	return Images{Pix: im.Pix[lo*sz : hi*sz], N: hi - lo, H: im.H, W: im.W, C: im.C}
}

// checkImages reports images that do not fit the model.
func (m *Model) checkImages(im Images) error {
	if err := im.Validate(); err != nil {
		return err
	}
	if im.H != m.cfg.Height || im.W != m.cfg.Width || im.C != m.cfg.InChannels {
		return fmt.Errorf("nn: images are %d×%d×%d (H×W×C) but %s model takes %d×%d×%d",
			im.H, im.W, im.C, m.arch, m.cfg.Height, m.cfg.Width, m.cfg.InChannels)
	}
	return nil
}

// PrepareInput converts images to the network input [N, C, H, W] float32 with the model's
// preprocessing, reusing dst when it is large enough.
func (m *Model) PrepareInput(im Images, dst []float32) ([]float32, error) {
	if err := m.checkImages(im); err != nil {
		return nil, err
	}
	return m.pre.apply(im, grow(dst, len(im.Pix))), nil
}

func (p Preprocess) apply(im Images, dst []float32) []float32 {
	hw, c := im.H*im.W, im.C
	sz := hw * c
	parallel(im.N, 8, func(_, lo, hi int) {
		var lut [256]float32
		for ch := 0; ch < c; ch++ {
			for v := range lut {
				lut[v] = (float32(v)/p.Scale - p.Mean[ch]) / p.Std[ch]
			}
			for i := lo; i < hi; i++ {
				src := im.Pix[i*sz : (i+1)*sz]
				out := dst[i*sz+ch*hw : i*sz+(ch+1)*hw]
				if c == 1 {
					for j, v := range src {
						out[j] = lut[v]
					}
					continue
				}
				for j := range out {
					out[j] = lut[src[j*c+ch]]
				}
			}
		}
	})
	return dst
}

// augment writes into dst (same geometry) a random crop of each image from the image padded
// with pad zero pixels on every side, flipped horizontally with probability 1/2 when flip is
// set: torchvision's RandomCrop(size, padding=pad) and RandomHorizontalFlip().
func augment(r *rand.Rand, im Images, dst []uint8, pad int, flip bool) {
	h, w, c := im.H, im.W, im.C
	sz := h * w * c
	for i := 0; i < im.N; i++ {
		dy, dx := r.IntN(2*pad+1)-pad, r.IntN(2*pad+1)-pad
		mirror := flip && r.IntN(2) == 1
		src, out := im.Pix[i*sz:(i+1)*sz], dst[i*sz:(i+1)*sz]
		for y := 0; y < h; y++ {
			sy := y + dy
			row := out[y*w*c : (y+1)*w*c]
			if sy < 0 || sy >= h {
				clear(row)
				continue
			}
			for x := 0; x < w; x++ {
				sx := x + dx
				if mirror {
					sx = w - 1 - x + dx
				}
				o := row[x*c : (x+1)*c]
				if sx < 0 || sx >= w {
					clear(o)
					continue
				}
				copy(o, src[(sy*w+sx)*c:(sy*w+sx+1)*c])
			}
		}
	}
}
