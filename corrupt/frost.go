package corrupt

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // texture files
	_ "image/png"  // texture files
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// texture is an 8-bit RGB image, row-major, 3 bytes per pixel.
type texture struct {
	pix  []uint8
	h, w int
}

// Textures is a set of frost textures. The references pick one of their texture files at random
// (np.random.randint(5) over six files, so the sixth is never used), resize it and crop a window
// of the image's size. The default set, ProceduralTextures, is generated: it looks like frost but
// is not the reference photographs, whose licence is unknown, so frost results differ from
// CIFAR-10-C's. LoadTextures reads the originals (or any other pictures) from a folder. A
// Textures is safe for concurrent use.
type Textures struct {
	name string
	n    int
	// gen, for procedural sets, draws texture i at side n (a power of two) with crystals scaled
	// by scale; loaded sets keep their pictures in base instead.
	gen   func(i, n int, scale float64) texture
	mu    sync.Mutex
	base  map[int]*texture    // loaded pictures
	small map[int]*texture    // make_cifar_c's 0.2 reduction
	sized map[[3]int]*texture // imagecorruptions' rescale per (texture, H, W)
}

// String returns "procedural" or the folder the textures were loaded from.
func (t *Textures) String() string { return t.name }

// Len returns the number of textures.
func (t *Textures) Len() int { return t.n }

// pickIndex returns the texture index the references draw: randint(min(n, 5)). With the six
// reference files in name order, frost6 is never chosen, as in CIFAR-10-C and ImageNet-C.
func (t *Textures) pickIndex(rng *rand.Rand) int {
	return rng.IntN(min(t.n, 5))
}

// cifar returns texture i as make_cifar_c uses it: resized by 0.2 (cv2.resize(fx=fy=0.2),
// bilinear, no antialiasing). Procedural textures are drawn directly at a quarter of their full
// size instead, which keeps their fine crystals visible rather than aliased.
func (t *Textures) cifar(i int) *texture {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.small[i]; ok {
		return s
	}
	var r texture
	if t.gen != nil {
		r = t.gen(i, proceduralSize/4, 0.25)
	} else {
		s := t.base[i]
		w := max(int(math.RoundToEven(float64(s.w)*0.2)), 1)
		h := max(int(math.RoundToEven(float64(s.h)*0.2)), 1)
		r = resizeLinear(*s, h, w, 5, 5)
	}
	t.small[i] = &r
	return &r
}

// forSize returns texture i rescaled for an h×w image as imagecorruptions does: by
// max(1, h/th, w/tw)·1.1 with bicubic interpolation (cv2.INTER_CUBIC), new size ceil(size·factor).
// Procedural textures are instead drawn at the first power of two (at least 512) that is 10%
// larger than the image, with crystals of the same size in pixels.
func (t *Textures) forSize(i, h, w int) *texture {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gen != nil {
		n := max(512, nextPow2(int(math.Ceil(1.1*float64(max(h, w))))))
		key := [3]int{i, n, -1}
		if s, ok := t.sized[key]; ok {
			return s
		}
		r := t.gen(i, n, 1)
		t.sized[key] = &r
		return &r
	}
	key := [3]int{i, h, w}
	if s, ok := t.sized[key]; ok {
		return s
	}
	s := *t.base[i]
	f := 1.0
	switch {
	case s.h < h && s.w >= w:
		f = float64(h) / float64(s.h)
	case s.h >= h && s.w < w:
		f = float64(w) / float64(s.w)
	case s.h < h && s.w < w:
		f = max(float64(h)/float64(s.h), float64(w)/float64(s.w))
	}
	f *= 1.1
	nw := int(math.Ceil(float64(s.w) * f))
	nh := int(math.Ceil(float64(s.h) * f))
	r := resizeCubic(s, nh, nw)
	t.sized[key] = &r
	return &r
}

// newTextures returns an empty set called name with n textures.
func newTextures(name string, n int, gen func(i, n int, scale float64) texture) *Textures {
	return &Textures{name: name, n: n, gen: gen,
		base: map[int]*texture{}, small: map[int]*texture{}, sized: map[[3]int]*texture{}}
}

// resizeLinear is cv2.resize with INTER_LINEAR to h×w where the source position of output pixel
// x is (x + 0.5)·sx − 0.5 (sx = source/destination scale), clamped at the edges, rounded to bytes.
func resizeLinear(s texture, h, w int, sy, sx float64) texture {
	out := texture{pix: make([]uint8, h*w*3), h: h, w: w}
	pos := func(d int, scale float64, n int) (int, int, float64) {
		f := (float64(d)+0.5)*scale - 0.5
		i := int(math.Floor(f))
		t := f - float64(i)
		if i < 0 {
			return 0, 0, 0
		}
		if i >= n-1 {
			return n - 1, n - 1, 0
		}
		return i, i + 1, t
	}
	for y := 0; y < h; y++ {
		y0, y1, ty := pos(y, sy, s.h)
		for x := 0; x < w; x++ {
			x0, x1, tx := pos(x, sx, s.w)
			for c := 0; c < 3; c++ {
				p := func(yy, xx int) float64 { return float64(s.pix[(yy*s.w+xx)*3+c]) }
				v := (1-ty)*((1-tx)*p(y0, x0)+tx*p(y0, x1)) + ty*((1-tx)*p(y1, x0)+tx*p(y1, x1))
				out.pix[(y*w+x)*3+c] = uint8(min(max(math.RoundToEven(v), 0), 255))
			}
		}
	}
	return out
}

// cubicWeights returns OpenCV's bicubic weights (A = −0.75) for the fraction t.
func cubicWeights(t float64) [4]float64 {
	const A = -0.75
	var k [4]float64
	k[0] = ((A*(t+1)-5*A)*(t+1)+8*A)*(t+1) - 4*A
	k[1] = ((A+2)*t-(A+3))*t*t + 1
	k[2] = ((A+2)*(1-t)-(A+3))*(1-t)*(1-t) + 1
	k[3] = 1 - k[0] - k[1] - k[2]
	return k
}

// resizeCubic is cv2.resize with INTER_CUBIC to h×w (edge pixels repeated), rounded to bytes.
func resizeCubic(s texture, h, w int) texture {
	sy, sx := float64(s.h)/float64(h), float64(s.w)/float64(w)
	type tap struct {
		i [4]int
		k [4]float64
	}
	axis := func(n, src int, scale float64) []tap {
		t := make([]tap, n)
		for d := range t {
			f := (float64(d)+0.5)*scale - 0.5
			i := int(math.Floor(f))
			t[d].k = cubicWeights(f - float64(i))
			for j := range 4 {
				t[d].i[j] = min(max(i-1+j, 0), src-1)
			}
		}
		return t
	}
	ty, tx := axis(h, s.h, sy), axis(w, s.w, sx)
	tmp := make([]float64, s.h*w*3)
	for y := 0; y < s.h; y++ {
		for x, t := range tx {
			for c := 0; c < 3; c++ {
				v := 0.0
				for j := range 4 {
					v += t.k[j] * float64(s.pix[(y*s.w+t.i[j])*3+c])
				}
				tmp[(y*w+x)*3+c] = v
			}
		}
	}
	out := texture{pix: make([]uint8, h*w*3), h: h, w: w}
	for y, t := range ty {
		for i := 0; i < w*3; i++ {
			v := 0.0
			for j := range 4 {
				v += t.k[j] * tmp[t.i[j]*w*3+i]
			}
			out.pix[y*w*3+i] = uint8(min(max(math.RoundToEven(v), 0), 255))
		}
	}
	return out
}

// LoadTextures reads the frost textures in dir: every .png, .jpg and .jpeg file, in name order
// (frost1.png … frost6.jpg for the reference set). Colours are taken as 8-bit RGB; alpha is
// dropped, as cv2.imread does.
func LoadTextures(dir string) (*Textures, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("corrupt: frost textures: %w", err)
	}
	var names []string
	for _, e := range ents {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("corrupt: frost textures: no .png or .jpg files in %q", dir)
	}
	t := newTextures(dir, len(names), nil)
	for i, n := range names {
		tex, err := readTexture(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		t.base[i] = &tex
	}
	return t, nil
}

// readTexture decodes one texture file.
func readTexture(path string) (texture, error) {
	f, err := os.Open(path)
	if err != nil {
		return texture{}, fmt.Errorf("corrupt: frost texture: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return texture{}, fmt.Errorf("corrupt: frost texture %q: %w", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 1 || b.Dy() < 1 {
		return texture{}, fmt.Errorf("corrupt: frost texture %q: empty image", path)
	}
	tex := texture{pix: make([]uint8, b.Dx()*b.Dy()*3), h: b.Dy(), w: b.Dx()}
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			tex.pix[i], tex.pix[i+1], tex.pix[i+2] = c.R, c.G, c.B
			i += 3
		}
	}
	return tex, nil
}

// ---------------------------------------------------------------- procedural frost

// Procedural texture layout: proceduralCount tileable textures; make_cifar_c's reduced textures
// are proceduralSize/4 pixels square with crystals at a quarter of their full size.
const (
	proceduralCount = 5
	proceduralSize  = 1024
)

// procTextures is the default set; its textures are drawn on first use.
var procTextures = newTextures("procedural", proceduralCount, func(i, n int, scale float64) texture {
	return frostTexture(n, scale, uint64(i))
})

// ProceduralTextures returns the default frost textures: proceduralCount tileable pictures of
// ice crystals on hazy glass, generated from fixed seeds on first use (at the size a suite needs),
// so they are the same in every run and on every machine. They imitate the look and the
// brightness of the reference photographs but are not them.
func ProceduralTextures() *Textures { return procTextures }

// frostTexture draws one tileable n×n frost texture (n a power of two, at least 64) from seed: a
// plasma haze, fern-like ice dendrites (a main needle with side branches at about ±60°, drawn
// with wrap-around and widened by a small blur) and fine grain, mixed into a bluish white. At
// scale 1 crystals are 30-200 pixels long; their number keeps the ice cover per area the same at
// every n and scale.
func frostTexture(n int, scale float64, seed uint64) texture {
	rng := rand.New(rand.NewPCG(seed, 0x66726f7374)) // "frost"
	haze := plasmaFractal(n, 2.0, rng.Float64)
	grain := plasmaFractal(n, 1.15, rng.Float64)
	ice := make([]float64, n*n)
	line := func(x, y, ang, length, v float64) {
		dx, dy := math.Cos(ang), math.Sin(ang)
		for s := 0.0; s < length; s += 0.7 {
			xi := (int(math.Floor(x+s*dx))%n + n) % n
			yi := (int(math.Floor(y+s*dy))%n + n) % n
			ice[yi*n+xi] += scale * v * (1 - 0.6*s/length) // same ice per area at every size
		}
	}
	var dendrite func(x, y, ang, length, v float64, depth int)
	dendrite = func(x, y, ang, length, v float64, depth int) {
		line(x, y, ang, length, v)
		if depth == 0 || length < 8*scale {
			return
		}
		step := (5 + rng.Float64()*9) * scale
		for s := step; s < length; s += step + rng.Float64()*6*scale {
			bx, by := x+s*math.Cos(ang), y+s*math.Sin(ang)
			bl := (length - s) * (0.25 + 0.35*rng.Float64())
			for _, side := range []float64{-1, 1} {
				if rng.Float64() < 0.8 {
					ba := ang + side*(math.Pi/3+0.2*(rng.Float64()-0.5))
					dendrite(bx, by, ba, bl, v*0.8, depth-1)
				}
			}
		}
	}
	count := int(math.Round(300 * float64(n*n) / (1024 * 1024) / (scale * scale)))
	for k := 0; k < count; k++ {
		x, y := rng.Float64()*float64(n), rng.Float64()*float64(n)
		// Crystals grow where the haze is dense.
		d := haze[(int(y)%n)*n+int(x)%n]
		length := (30 + 170*rng.Float64()*(0.4+d)) * scale
		dendrite(x, y, rng.Float64()*2*math.Pi, length, 0.5+0.5*rng.Float64(), 2)
	}
	icy := gaussianFilter(plane(ice, n, n), 1.6*scale, borderWrap, 3) // the texture tiles
	tex := texture{pix: make([]uint8, n*n*3), h: n, w: n}
	for i := range ice {
		v := 0.30 + 0.38*haze[i] + 0.55*min(2.2*icy.Pix[i]+0.15*ice[i], 1.2) + 0.22*(grain[i]-0.5)
		v = min(max(v, 0), 1.15)
		f := 255 * v
		tex.pix[3*i] = uint8(min(max(0.84*f, 0), 255))
		tex.pix[3*i+1] = uint8(min(max(0.92*f+4, 0), 255))
		tex.pix[3*i+2] = uint8(min(max(0.98*f+14, 0), 255))
	}
	return tex
}
