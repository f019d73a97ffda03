package dataset

import (
	"fmt"

	"github.com/rws-project/rws/npy"
	"github.com/rws-project/rws/tensor"
)

// loadNPY loads uint8 images N×H×W or N×H×W×C (C 1 or 3) from a .npy file, and labels from an
// optional second .npy file of N integers; the classes are 1 + the largest label.
func loadNPY(images, labels string) (*Set, error) {
	a, err := npy.ReadFile(images)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	s := &Set{Name: "npy:" + images, Images: a.Data}
	if a.DType != tensor.U8 {
		return nil, fmt.Errorf("dataset: %q holds %s, want uint8 images (save a.astype(np.uint8) with values 0 to 255)", images, a.DType)
	}
	sh := a.Shape
	switch {
	case len(sh) == 3:
		s.N, s.H, s.W, s.C = int(sh[0]), int(sh[1]), int(sh[2]), 1
	case len(sh) == 4 && (sh[3] == 1 || sh[3] == 3):
		s.N, s.H, s.W, s.C = int(sh[0]), int(sh[1]), int(sh[2]), int(sh[3])
	default:
		return nil, fmt.Errorf("dataset: %q has shape %v, want N×H×W or N×H×W×C with C 1 or 3 (channels last)", images, sh)
	}
	if s.H == 0 || s.W == 0 {
		return nil, fmt.Errorf("dataset: %q has shape %v: empty images", images, sh)
	}
	if labels == "" {
		return s, nil
	}
	la, err := npy.ReadFile(labels)
	if err != nil {
		return nil, fmt.Errorf("dataset: labels: %w", err)
	}
	ls, err := la.Ints()
	if err != nil || len(la.Shape) != 1 {
		return nil, fmt.Errorf("dataset: %q holds %s %v, want a 1-d integer label array", labels, la.DType, la.Shape)
	}
	if len(ls) != s.N {
		return nil, fmt.Errorf("dataset: %q has %d labels but %q has %d images", labels, len(ls), images, s.N)
	}
	max := -1
	for i, l := range ls {
		if l < 0 {
			return nil, fmt.Errorf("dataset: %q: label %d of image %d is negative", labels, l, i)
		}
		if l > max {
			max = l
		}
	}
	s.Labels, s.Classes = ls, max+1
	return s, nil
}
