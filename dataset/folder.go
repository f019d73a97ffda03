package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register the JPEG decoder
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// imageExts are the file extensions loadFolder reads (case-insensitive); other files are
// skipped, as torchvision's ImageFolder does.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true}

// loadFolder loads dir/CLASS/IMAGE files, classes in name order, images in name order within a
// class. When dir has both a train and a test subfolder, dir/split is read instead. Images must
// all have one size; they are grey (C 1) when every file is greyscale, else RGB (alpha dropped).
// Go's JPEG decoder may differ from libjpeg by a grey level or two.
func loadFolder(dir string, split Split) (*Set, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, notFound("dataset: folder %q not found", dir)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dataset: %q is not a folder (folder:DIR wants one subfolder of images per class)", dir)
	}
	name := "folder:" + dir
	if isDir(filepath.Join(dir, "train")) && isDir(filepath.Join(dir, "test")) {
		dir = filepath.Join(dir, string(split))
		name += "/" + string(split)
	}
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var (
		classes []string
		files   []string
		labels  []int
	)
	for _, e := range es { // os.ReadDir sorts by name: class i is the i-th subfolder
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		cls := len(classes)
		classes = append(classes, e.Name())
		fs, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		for _, f := range fs {
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") || !imageExts[strings.ToLower(filepath.Ext(f.Name()))] {
				continue
			}
			files = append(files, filepath.Join(dir, e.Name(), f.Name()))
			labels = append(labels, cls)
		}
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("dataset: folder %q has no class subfolders (want DIR/CLASS/IMAGE.png)", dir)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("dataset: folder %q has no .png or .jpg images in its class subfolders", dir)
	}
	imgs, err := decodeAll(files)
	if err != nil {
		return nil, err
	}
	b0 := imgs[0].Bounds()
	s := &Set{Name: name, N: len(imgs), H: b0.Dy(), W: b0.Dx(), C: 1, Labels: labels, Classes: len(classes), ClassNames: classes}
	for i, im := range imgs {
		if b := im.Bounds(); b.Dx() != s.W || b.Dy() != s.H {
			return nil, fmt.Errorf("dataset: image %q is %d×%d pixels but %q is %d×%d; all images must have one size", files[i], b.Dx(), b.Dy(), files[0], s.W, s.H)
		}
		switch im.(type) {
		case *image.Gray, *image.Gray16:
		default:
			s.C = 3
		}
	}
	sz := s.ImageSize()
	s.Images = make([]byte, s.N*sz)
	parallel(len(imgs), func(i int) {
		toBytes(s.Images[i*sz:(i+1)*sz], imgs[i], s.C)
	})
	return s, nil
}

// ReadImage reads one PNG or JPEG file as a Set of one unlabelled image: grey (C 1) for a
// greyscale file, else RGB with alpha dropped.
func ReadImage(path string) (*Set, error) {
	imgs, err := decodeAll([]string{path})
	if err != nil {
		return nil, err
	}
	b := imgs[0].Bounds()
	s := &Set{Name: path, N: 1, H: b.Dy(), W: b.Dx(), C: 3}
	switch imgs[0].(type) {
	case *image.Gray, *image.Gray16:
		s.C = 1
	}
	s.Images = make([]byte, s.ImageSize())
	toBytes(s.Images, imgs[0], s.C)
	return s, s.check()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// decodeAll decodes the image files in parallel.
func decodeAll(files []string) ([]image.Image, error) {
	imgs := make([]image.Image, len(files))
	errs := make([]error, len(files))
	parallel(len(files), func(i int) {
		f, err := os.Open(files[i])
		if err != nil {
			errs[i] = fmt.Errorf("dataset: %w", err)
			return
		}
		defer f.Close()
		im, _, err := image.Decode(f)
		if err != nil {
			errs[i] = fmt.Errorf("dataset: image %q: %w (not a valid PNG or JPEG file?)", files[i], err)
			return
		}
		imgs[i] = im
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// parallel calls f(i) for i in [0, n) on all cores.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// EncodePNG encodes one H×W×c image of bytes (c 1: grey, c 3: RGB), as the image folders that
// loadFolder reads hold them.
func EncodePNG(pix []byte, h, w, c int) ([]byte, error) {
	if c != 1 && c != 3 || len(pix) != h*w*c {
		return nil, fmt.Errorf("dataset: %d bytes are not a %d×%d×%d image (channels 1 or 3)", len(pix), h, w, c)
	}
	var im image.Image
	if c == 1 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		copy(g.Pix, pix)
		im = g
	} else {
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		for p := range h * w {
			m.Pix[4*p], m.Pix[4*p+1], m.Pix[4*p+2], m.Pix[4*p+3] = pix[3*p], pix[3*p+1], pix[3*p+2], 255
		}
		im = m
	}
	var b bytes.Buffer
	if err := png.Encode(&b, im); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// toBytes writes im as H×W×c bytes into dst (c 1: grey, c 3: RGB with alpha dropped, like
// PIL's convert("RGB")).
func toBytes(dst []byte, im image.Image, c int) {
	b := im.Bounds()
	i := 0
	switch m := im.(type) {
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := range b.Dx() {
				for range c {
					dst[i] = row[x]
					i++
				}
			}
		}
		return
	case *image.RGBA:
		if c == 3 && m.Opaque() {
			for y := b.Min.Y; y < b.Max.Y; y++ {
				row := m.Pix[m.PixOffset(b.Min.X, y):]
				for x := range b.Dx() {
					dst[i], dst[i+1], dst[i+2] = row[4*x], row[4*x+1], row[4*x+2]
					i += 3
				}
			}
			return
		}
	case *image.NRGBA:
		if c == 3 {
			for y := b.Min.Y; y < b.Max.Y; y++ {
				row := m.Pix[m.PixOffset(b.Min.X, y):]
				for x := range b.Dx() {
					dst[i], dst[i+1], dst[i+2] = row[4*x], row[4*x+1], row[4*x+2]
					i += 3
				}
			}
			return
		}
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if c == 1 {
				dst[i] = color.GrayModel.Convert(im.At(x, y)).(color.Gray).Y
				i++
				continue
			}
			n := color.NRGBAModel.Convert(im.At(x, y)).(color.NRGBA)
			dst[i], dst[i+1], dst[i+2] = n.R, n.G, n.B
			i += 3
		}
	}
}
