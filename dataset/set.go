package dataset

import (
	"errors"
	"fmt"
)

// Split selects the training or the test part of a dataset.
type Split string

// The splits. Formats that hold one split ignore it.
const (
	Train Split = "train"
	Test  Split = "test"
)

// ParseSplit returns the Split named s ("train" or "test").
func ParseSplit(s string) (Split, error) {
	switch Split(s) {
	case Train, Test:
		return Split(s), nil
	}
	return "", fmt.Errorf("dataset: unknown split %q (want train or test)", s)
}

// ErrNotFound matches (errors.Is) the errors for a dataset whose files are missing.
var ErrNotFound = errors.New("dataset not found")

// notFoundError is an error message that matches ErrNotFound.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

func notFound(format string, args ...any) error {
	return &notFoundError{msg: fmt.Sprintf(format, args...)}
}

// Set is a labelled image dataset held in memory.
type Set struct {
	// Name says where the set came from, e.g. "mnist/test" or "cifar10c:fog:3".
	Name string
	// N, H, W, C are the number of images, their height and width in pixels and the number of
	// channels: 1 (grey) or 3 (RGB).
	N, H, W, C int
	// Images holds N×H×W×C bytes, image after image, each row-major with channels interleaved.
	Images []byte
	// Labels holds N class indices in [0, Classes), or is nil for unlabelled images.
	Labels []int
	// Classes is the number of classes, 0 for unlabelled images.
	Classes int
	// ClassNames names the classes when known (len Classes), else nil.
	ClassNames []string
}

// Len returns the number of images.
func (s *Set) Len() int { return s.N }

// ImageSize is the number of bytes of one image, H×W×C.
func (s *Set) ImageSize() int { return s.H * s.W * s.C }

// Image returns image i, a slice of Images (not a copy). It panics when i is out of range.
func (s *Set) Image(i int) []byte {
	sz := s.ImageSize()
	return s.Images[i*sz : (i+1)*sz : (i+1)*sz]
}

// Subset returns a new Set of the images at idx, in that order, with copied data.
func (s *Set) Subset(idx []int) (*Set, error) {
	out := *s
	out.N = len(idx)
	sz := s.ImageSize()
	out.Images = make([]byte, len(idx)*sz)
	if s.Labels != nil {
		out.Labels = make([]int, len(idx))
	}
	for j, i := range idx {
		if i < 0 || i >= s.N {
			return nil, fmt.Errorf("dataset: %s: index %d out of range [0, %d)", s.Name, i, s.N)
		}
		copy(out.Images[j*sz:], s.Image(i))
		if s.Labels != nil {
			out.Labels[j] = s.Labels[i]
		}
	}
	return &out, nil
}

// Limit returns the first n images (all when n <= 0 or n >= Len), sharing the data of s.
func (s *Set) Limit(n int) *Set {
	if n <= 0 || n >= s.N {
		return s
	}
	out := *s
	out.N = n
	out.Images = s.Images[: n*s.ImageSize() : n*s.ImageSize()]
	if s.Labels != nil {
		out.Labels = s.Labels[:n:n]
	}
	return &out
}

// check validates the invariants of s: sizes agree and every label is within [0, Classes).
func (s *Set) check() error {
	if s.N < 0 || s.H <= 0 || s.W <= 0 || (s.C != 1 && s.C != 3) {
		return fmt.Errorf("dataset: %s: bad image shape %d×%d×%d×%d (want N×H×W×C with C 1 or 3)", s.Name, s.N, s.H, s.W, s.C)
	}
	if len(s.Images) != s.N*s.ImageSize() {
		return fmt.Errorf("dataset: %s: %d image bytes, want %d×%d×%d×%d", s.Name, len(s.Images), s.N, s.H, s.W, s.C)
	}
	if s.Labels == nil {
		return nil
	}
	if len(s.Labels) != s.N {
		return fmt.Errorf("dataset: %s: %d labels for %d images", s.Name, len(s.Labels), s.N)
	}
	if s.ClassNames != nil && len(s.ClassNames) != s.Classes {
		return fmt.Errorf("dataset: %s: %d class names for %d classes", s.Name, len(s.ClassNames), s.Classes)
	}
	for i, l := range s.Labels {
		if l < 0 || l >= s.Classes {
			return fmt.Errorf("dataset: %s: label %d of image %d is out of range [0, %d)", s.Name, l, i, s.Classes)
		}
	}
	return nil
}
