package corrupt

import (
	"errors"
	"fmt"
	"image"
	"image/color"
)

// Sheet geometry, in pixels.
const (
	sheetGap      = 2 // between cells
	sheetGroupGap = 8 // between the column groups of two images
)

// Sheet draws a contact sheet of suite s for images, which must all have the same size: one row
// per corruption in the suite's order, and for each image a group of columns holding the clean
// image followed by one column per severity. Image i corrupted at severity v uses the stream
// NewRand(seed, s.Name(), corruption, v, i). Results are converted with the suite's rule; grey
// images are drawn grey.
func Sheet(s *Suite, images []Image, seed uint64) (image.Image, error) {
	if len(images) == 0 {
		return nil, errors.New("corrupt: sheet: no images")
	}
	h, w := images[0].H, images[0].W
	for i, img := range images {
		if err := s.checkImage(img); err != nil {
			return nil, fmt.Errorf("corrupt: sheet: image %d: %w", i, err)
		}
		if img.H != h || img.W != w {
			return nil, fmt.Errorf("corrupt: sheet: image %d is %dx%d, image 0 is %dx%d: want one size", i, img.H, img.W, h, w)
		}
	}
	cols := 1
	for _, c := range s.list {
		cols = max(cols, 1+len(c.Severities))
	}
	groupW := cols*(w+sheetGap) - sheetGap
	W := len(images)*(groupW+sheetGroupGap) - sheetGroupGap
	H := len(s.list)*(h+sheetGap) - sheetGap
	sheet := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range sheet.Pix {
		sheet.Pix[i] = 40
		if i%4 == 3 {
			sheet.Pix[i] = 255
		}
	}
	for r, c := range s.list {
		y0 := r * (h + sheetGap)
		for i, img := range images {
			x0 := i * (groupW + sheetGroupGap)
			drawCell(sheet, img, x0, y0, s.quantize)
			for k, sev := range c.Severities {
				out, err := s.Apply(c.Name, sev, img, NewRand(seed, s.name, c.Name, sev, i))
				if err != nil {
					return nil, fmt.Errorf("corrupt: sheet: %w", err)
				}
				drawCell(sheet, out, x0+(k+1)*(w+sheetGap), y0, s.quantize)
			}
		}
	}
	return sheet, nil
}

// drawCell copies img, converted with q, into dst with its top-left corner at (x0, y0).
func drawCell(dst *image.RGBA, img Image, x0, y0 int, q Quantize) {
	b := img.Bytes(q)
	for y := 0; y < img.H; y++ {
		for x := 0; x < img.W; x++ {
			p := b[(y*img.W+x)*img.C:]
			c := color.RGBA{p[0], p[0], p[0], 255}
			if img.C == 3 {
				c.G, c.B = p[1], p[2]
			}
			dst.SetRGBA(x0+x, y0+y, c)
		}
	}
}
