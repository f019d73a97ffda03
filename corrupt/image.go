package corrupt

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Image is an image of H rows, W columns and C channels (1 = grey, 3 = RGB) with values on the
// 0..1 scale, stored row-major with the channels interleaved: the value of row y, column x,
// channel c is Pix[(y*W+x)*C+c]. A byte v is stored as v/255 in float64, exactly the references'
// np.array(x)/255., and corruptions return the references' value before their final
// np.clip(x, 0, 1)*255 and uint8 conversion, which Quantize performs; so results round exactly
// as the references' do. Corruptions return a new Image and never modify their input.
type Image struct {
	Pix     []float64
	H, W, C int
}

// NewImage returns a black image of h rows, w columns and c channels. It panics if a dimension is
// negative.
func NewImage(h, w, c int) Image {
	m := scratchImage(h, w, c)
	clear(m.Pix)
	return m
}

// FromUint8 returns the image whose values are the bytes of pix divided by 255 (h×w×c bytes in
// HWC order).
func FromUint8(pix []uint8, h, w, c int) (Image, error) {
	if err := checkShape(h, w, c); err != nil {
		return Image{}, err
	}
	if len(pix) != h*w*c {
		return Image{}, fmt.Errorf("corrupt: %d bytes for a %dx%dx%d image, want %d", len(pix), h, w, c, h*w*c)
	}
	return fromBytes8(pix, h, w, c), nil
}

// checkShape reports whether h×w×c is an image shape the corruptions accept.
func checkShape(h, w, c int) error {
	if h <= 0 || w <= 0 {
		return fmt.Errorf("corrupt: image size %dx%d: want positive height and width", h, w)
	}
	if c != 1 && c != 3 {
		return fmt.Errorf("corrupt: %d channels: want 1 (grey) or 3 (RGB)", c)
	}
	return nil
}

// Clone returns a copy of m that shares no memory with it.
func (m Image) Clone() Image {
	out := m
	out.Pix = append([]float64(nil), m.Pix...)
	return out
}

// valid reports whether m's fields describe its pixel slice.
func (m Image) valid() error {
	if err := checkShape(m.H, m.W, m.C); err != nil {
		return err
	}
	if len(m.Pix) != m.H*m.W*m.C {
		return fmt.Errorf("corrupt: image %dx%dx%d has %d values, want %d", m.H, m.W, m.C, len(m.Pix), m.H*m.W*m.C)
	}
	return nil
}

// Quantize is the rule that turns a value on the 0..1 scale into a byte: the value is clipped to
// [0, 1] and multiplied by 255 (the references' np.clip(x, 0, 1)*255), then converted. NaN
// becomes 0.
type Quantize int

const (
	// Truncate is np.uint8(x): truncation toward zero, as make_cifar_c.py, make_imagenet_c.py and
	// imagecorruptions.corrupt() store their results.
	Truncate Quantize = iota
	// Round is np.round(x).astype(np.uint8), ties to even: MNIST-C's rule.
	Round
)

// String returns "truncate" or "round".
func (q Quantize) String() string {
	switch q {
	case Truncate:
		return "truncate"
	case Round:
		return "round"
	}
	return fmt.Sprintf("Quantize(%d)", int(q))
}

// Byte converts one value on the 0..1 scale to a byte with rule q.
func (q Quantize) Byte(v float64) uint8 {
	if !(v > 0) { // also NaN
		return 0
	}
	if v >= 1 {
		return 255
	}
	v *= 255
	if q == Round {
		v = math.RoundToEven(v)
	}
	return uint8(v)
}

// Uint8 writes m to dst (len(dst) >= len(m.Pix)) as bytes with rule q.
func (m Image) Uint8(dst []uint8, q Quantize) {
	dst = dst[:len(m.Pix)]
	if q != Truncate {
		for i, v := range m.Pix {
			dst[i] = q.Byte(v)
		}
		return
	}
	for i, v := range m.Pix {
		switch {
		case v >= 1:
			dst[i] = 255
		case v > 0:
			dst[i] = uint8(v * 255)
		default: // also NaN
			dst[i] = 0
		}
	}
}

// Bytes returns m as bytes with rule q.
func (m Image) Bytes(q Quantize) []uint8 {
	b := make([]uint8, len(m.Pix))
	m.Uint8(b, q)
	return b
}

// FromImage converts a standard-library image to an Image with c channels: 1 takes the luma of
// image/color.GrayModel, 3 takes the 8-bit R, G and B of the non-premultiplied colour.
func FromImage(src image.Image, c int) (Image, error) {
	r := src.Bounds()
	if err := checkShape(r.Dy(), r.Dx(), c); err != nil {
		return Image{}, err
	}
	m := NewImage(r.Dy(), r.Dx(), c)
	i := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			px := src.At(x, y)
			if c == 1 {
				m.Pix[i] = unitTable[color.GrayModel.Convert(px).(color.Gray).Y]
				i++
				continue
			}
			n := color.NRGBAModel.Convert(px).(color.NRGBA)
			m.Pix[i], m.Pix[i+1], m.Pix[i+2] = unitTable[n.R], unitTable[n.G], unitTable[n.B]
			i += 3
		}
	}
	return m, nil
}

// ToImage converts m to an *image.Gray (C = 1) or an opaque *image.RGBA (C = 3) with rule q.
func (m Image) ToImage(q Quantize) image.Image {
	b := m.Bytes(q)
	r := image.Rect(0, 0, m.W, m.H)
	if m.C == 1 {
		g := image.NewGray(r)
		copy(g.Pix, b)
		return g
	}
	out := image.NewRGBA(r)
	for i := 0; i < m.H*m.W; i++ {
		copy(out.Pix[4*i:4*i+3], b[3*i:3*i+3])
		out.Pix[4*i+3] = 255
	}
	return out
}

// unitTable[k] is k/255 in float64.
var unitTable = func() (t [256]float64) {
	for i := range t {
		t[i] = float64(i) / 255
	}
	return t
}()

// clip01 clips every value of m to [0, 1] in place and returns m. NaN stays NaN (Quantize makes
// it 0, as np.uint8 does on x86).
func (m Image) clip01() Image {
	for i, v := range m.Pix {
		if v < 0 {
			m.Pix[i] = 0
		} else if v > 1 {
			m.Pix[i] = 1
		}
	}
	return m
}

// bytes8 returns m as the 8-bit image the references' PIL and PNG steps work on: clip(v)·255
// rounded to the nearest integer (halves up). Images read from bytes give their bytes back
// exactly.
func (m Image) bytes8() []uint8 {
	b := make([]uint8, len(m.Pix))
	for i, v := range m.Pix {
		if v < 0 {
			v = 0
		} else if v > 1 {
			v = 1
		}
		b[i] = uint8(v*255 + 0.5) // NaN converts to an unspecified byte, as in NumPy
	}
	return b
}

// byteOf returns k when v is exactly k/255 for a byte k, and −1 otherwise.
func byteOf(v float64) int {
	f := v * 255
	if !(f >= 0 && f <= 255) {
		return -1
	}
	k := int(f + 0.5)
	if unitTable[k] != v {
		return -1
	}
	return k
}

// fromBytes8 returns the image of the 8-bit values b (v/255 each).
func fromBytes8(b []uint8, h, w, c int) Image {
	m := scratchImage(h, w, c) // every value is written below
	for i, v := range b {
		m.Pix[i] = unitTable[v]
	}
	return m
}

// luma returns 0.299·R + 0.587·G + 0.114·B of every pixel of m (cv2.COLOR_RGB2GRAY on a float
// image), or a copy of m when it has one channel.
func (m Image) luma() Image {
	if m.C == 1 {
		return m.Clone()
	}
	g := NewImage(m.H, m.W, 1)
	for i := range g.Pix {
		p := m.Pix[3*i : 3*i+3]
		g.Pix[i] = 0.299*p[0] + 0.587*p[1] + 0.114*p[2]
	}
	return g
}
