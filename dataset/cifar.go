package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rws-project/rws/npy"
	"github.com/rws-project/rws/tensor"
)

// CIFAR binary records: label byte(s), then 3072 bytes: the 1024 red, 1024 green and 1024 blue
// values of a 32×32 image, each plane row-major. See https://www.cs.toronto.edu/~kriz/cifar.html.
const (
	cifarSide  = 32
	cifarPlane = cifarSide * cifarSide
	cifarImage = 3 * cifarPlane
)

var cifar10Names = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// cifarDir returns dir, or dir/sub when dir holds the unpacked archive folder sub.
func cifarDir(dir, sub string) string {
	if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
		return filepath.Join(dir, sub)
	}
	return dir
}

// readCIFARFiles reads and concatenates the records of files, each with nlabels label bytes;
// labelIdx selects which label byte is the class.
func readCIFARFiles(files []string, nlabels, labelIdx, classes int, name, get string) (*Set, error) {
	rec := nlabels + cifarImage
	s := &Set{Name: name, H: cifarSide, W: cifarSide, C: 3, Classes: classes}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, notFound("dataset: %s: %q is missing; download and unpack %s", name, f, get)
			}
			return nil, fmt.Errorf("dataset: %w", err)
		}
		if len(b) == 0 || len(b)%rec != 0 {
			return nil, fmt.Errorf("dataset: %s: %q has %d bytes, not a whole number of %d-byte records (truncated, or not a CIFAR binary batch?)", name, f, len(b), rec)
		}
		n := len(b) / rec
		img := make([]byte, n*cifarImage)
		for i := range n {
			r := b[i*rec : (i+1)*rec]
			l := int(r[labelIdx])
			if l >= classes {
				return nil, fmt.Errorf("dataset: %s: %q: label %d of record %d is out of range [0, %d) (wrong file?)", name, f, l, i, classes)
			}
			s.Labels = append(s.Labels, l)
			planesToHWC(img[i*cifarImage:(i+1)*cifarImage], r[nlabels:])
		}
		s.Images = append(s.Images, img...)
		s.N += n
	}
	return s, nil
}

// planesToHWC converts a 3×32×32 planar image to 32×32×3 interleaved.
func planesToHWC(dst, src []byte) {
	r, g, b := src[:cifarPlane], src[cifarPlane:2*cifarPlane], src[2*cifarPlane:]
	for p := range cifarPlane {
		dst[3*p], dst[3*p+1], dst[3*p+2] = r[p], g[p], b[p]
	}
}

// readNames reads one class name per non-empty line of path, or returns nil when it is absent
// or does not have n names.
func readNames(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	if len(names) != n {
		return nil
	}
	return names
}

func loadCIFAR10(dir string, split Split) (*Set, error) {
	const get = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
	if err := mustDir(dir, "cifar10", get); err != nil {
		return nil, err
	}
	dir = cifarDir(dir, "cifar-10-batches-bin")
	var files []string
	if split == Train {
		for i := 1; i <= 5; i++ {
			files = append(files, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)))
		}
	} else {
		files = []string{filepath.Join(dir, "test_batch.bin")}
	}
	s, err := readCIFARFiles(files, 1, 0, 10, "cifar10/"+string(split), get)
	if err != nil {
		return nil, err
	}
	s.ClassNames = readNames(filepath.Join(dir, "batches.meta.txt"), 10)
	if s.ClassNames == nil {
		s.ClassNames = cifar10Names
	}
	return s, nil
}

func loadCIFAR100(dir string, split Split, coarse bool) (*Set, error) {
	const get = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
	if err := mustDir(dir, "cifar100", get); err != nil {
		return nil, err
	}
	dir = cifarDir(dir, "cifar-100-binary")
	file := "train.bin"
	if split == Test {
		file = "test.bin"
	}
	classes, idx, names, name := 100, 1, "fine_label_names.txt", "cifar100/"+string(split)
	if coarse {
		classes, idx, names, name = 20, 0, "coarse_label_names.txt", "cifar100-coarse/"+string(split)
	}
	s, err := readCIFARFiles([]string{filepath.Join(dir, file)}, 2, idx, classes, name, get)
	if err != nil {
		return nil, err
	}
	s.ClassNames = readNames(filepath.Join(dir, names), classes)
	return s, nil
}

// mustDir reports a missing dataset folder.
func mustDir(dir, kind, get string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return notFound("dataset: %s: folder %q not found; download and unpack %s", kind, dir, get)
	}
	if !st.IsDir() {
		return fmt.Errorf("dataset: %s: %q is not a folder; name the folder of the unpacked %s", kind, dir, get)
	}
	return nil
}

// loadCIFARC loads one corruption (and optionally one severity) of CIFAR-10-C or CIFAR-100-C.
func loadCIFARC(sp Spec, split Split) (*Set, error) {
	classes, get, names := 10, "https://zenodo.org/record/2535967", cifar10Names
	if sp.Kind == "cifar100c" {
		classes, get, names = 100, "https://zenodo.org/record/3555552", nil
	}
	if split != Test {
		return nil, fmt.Errorf("dataset: %s holds test images only; use the test split", sp.Kind)
	}
	if err := mustDir(sp.Path, sp.Kind, get); err != nil {
		return nil, err
	}
	dir := sp.Path
	for _, sub := range []string{"CIFAR-10-C", "CIFAR-100-C"} {
		dir = cifarDir(dir, sub)
	}
	if sp.Corruption == "" {
		return nil, fmt.Errorf("dataset: %s needs a corruption: %s:%s,CORRUPTION[,SEVERITY] (available: %s)", sp.Kind, sp.Kind, sp.Path, availableNPY(dir))
	}
	if strings.ContainsAny(sp.Corruption, `/\`) || sp.Corruption == "labels" {
		return nil, fmt.Errorf("dataset: %s: bad corruption name %q", sp.Kind, sp.Corruption)
	}
	path := filepath.Join(dir, sp.Corruption+".npy")
	if _, err := os.Stat(path); err != nil {
		return nil, notFound("dataset: %s: corruption %q not found in %q (available: %s)", sp.Kind, sp.Corruption, dir, availableNPY(dir))
	}
	r, err := npy.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer r.Close()
	h := r.Header()
	// CIFAR-10-C stores 5·n×H×W×3 (severity 1 first); rws corrupt --severity all writes
	// 5×n×H×W×C. Both are the same bytes.
	sh := h.Shape
	var n, H, W, C int64
	switch {
	case h.DType == tensor.U8 && len(sh) == 4 && sh[0]%5 == 0 && sh[0] > 0:
		n, H, W, C = sh[0]/5, sh[1], sh[2], sh[3]
	case h.DType == tensor.U8 && len(sh) == 5 && sh[0] == 5 && sh[1] > 0:
		n, H, W, C = sh[1], sh[2], sh[3], sh[4]
	}
	if n == 0 || H == 0 || W == 0 || (C != 1 && C != 3) {
		return nil, fmt.Errorf("dataset: %q holds %s %v, want uint8 5·n×H×W×C or 5×n×H×W×C with C 1 or 3 (5 severities of n images)", path, h.DType, h.Shape)
	}
	start, count := int64(0), 5*n
	if sp.Severity != 0 {
		start, count = int64(sp.Severity-1)*n, n
	}
	sz := H * W * C
	img, err := r.ReadData(start*sz, count*sz)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	lpath := filepath.Join(dir, "labels.npy")
	la, err := npy.ReadFile(lpath)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s labels: %w", sp.Kind, err)
	}
	labels, err := la.Ints()
	if err != nil || len(la.Shape) != 1 || (int64(len(labels)) != 5*n && int64(len(labels)) != n) {
		return nil, fmt.Errorf("dataset: %q holds %s %v, want %d or %d integer labels", lpath, la.DType, la.Shape, 5*n, n)
	}
	if int64(len(labels)) == n { // one label per image, the same for every severity
		labels = slices.Repeat(labels, 5)
	}
	labels = labels[start : start+count]
	for i, l := range labels {
		if l < 0 || l >= classes {
			return nil, fmt.Errorf("dataset: %q: label %d of image %d is out of range [0, %d)", lpath, l, int64(i)+start, classes)
		}
	}
	name := sp.Kind + ":" + sp.Corruption
	if sp.Severity != 0 {
		name += fmt.Sprintf(":%d", sp.Severity)
	}
	return &Set{
		Name: name, N: int(count), H: int(H), W: int(W), C: int(C),
		Images: img, Labels: labels, Classes: classes, ClassNames: names,
	}, nil
}

// availableNPY lists the .npy files of dir without extension, except labels.
func availableNPY(dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.npy"))
	var names []string
	for _, p := range m {
		if n := strings.TrimSuffix(filepath.Base(p), ".npy"); n != "labels" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// loadMNISTC loads one corruption of MNIST-C (google-research/mnist-c, Zenodo 3239543):
// DIR/CORRUPTION/{train,test}_images.npy (uint8 N×28×28×1) and _labels.npy.
func loadMNISTC(sp Spec, split Split) (*Set, error) {
	const get = "https://zenodo.org/record/3239543"
	if err := mustDir(sp.Path, "mnistc", get); err != nil {
		return nil, err
	}
	dir := cifarDir(sp.Path, "mnist_c")
	if sp.Corruption == "" || strings.ContainsAny(sp.Corruption, `/\`) {
		return nil, fmt.Errorf("dataset: mnistc needs a corruption: mnistc:%s,CORRUPTION (available: %s)", sp.Path, availableDirs(dir))
	}
	cdir := filepath.Join(dir, sp.Corruption)
	if st, err := os.Stat(cdir); err != nil || !st.IsDir() {
		return nil, notFound("dataset: mnistc: corruption %q not found in %q (available: %s)", sp.Corruption, dir, availableDirs(dir))
	}
	s, err := loadNPY(filepath.Join(cdir, string(split)+"_images.npy"), filepath.Join(cdir, string(split)+"_labels.npy"))
	if err != nil {
		return nil, err
	}
	if s.Classes > 10 {
		return nil, fmt.Errorf("dataset: mnistc: %q: labels reach %d, want digits 0 to 9", cdir, s.Classes-1)
	}
	s.Name = "mnistc:" + sp.Corruption + "/" + string(split)
	s.Classes, s.ClassNames = 10, digitNames
	return s, nil
}

func availableDirs(dir string) string {
	es, _ := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
